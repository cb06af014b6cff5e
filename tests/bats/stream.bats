#!/usr/bin/env bats
# Stream v2 (pcapng) against the real kernel and independent decoders:
# tcpdump, tshark, scapy, and tests/stream/ngdump.py (the custom option).

load helpers

PY=/usr/bin/python3
NGDUMP="$BATS_TEST_DIRNAME/../stream/ngdump.py"

setup() { hosts_up; }
teardown() {
	hosts_down
	local ns
	for ns in ${NS_C:-} ${NS_D:-}; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	return 0
}

inD() { ip netns exec "$NS_D" "$@"; }


# The first 4 bytes of FILE, in hex ("0a0d0d0a": pcapng; "d4c3b2a1": classic pcap here).
magic() { od -An -tx1 -N4 "$1" | tr -d ' \n'; }

# udp_counter NS PORT: count UDP packets to PORT arriving in NS (nft), read by count_of.
udp_counter() {
	ip netns exec "$1" nft add table inet cnt
	ip netns exec "$1" nft add chain inet cnt in '{ type filter hook input priority 0; }'
	ip netns exec "$1" nft add rule inet cnt in udp dport "$2" counter
}
iif_count() {	# NS IFACE: the packets counted by table cnt's rule for iifname IFACE
	ip netns exec "$1" nft list table inet cnt |
	    sed -n "s/.*iifname \"$2\".*counter packets \([0-9]*\).*/\1/p"
}
count_of() {	# NS: the packets the one counter in table cnt has seen
	ip netns exec "$1" nft list table inet cnt | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | head -1
}

# ping_capture ARGS: A's pings to B (2) out and their replies in, as divert-listen ARGS writes them.
ping_capture() {
	inA divert-rule add output icmp 4321
	inA divert-rule add input icmp 4321
	bg_A "$TMP/l.out" "$TMP/l.err" divert-listen --tee -c 4 "$@" 4321
	local lpid=$BG
	wait_queue "$NS_A" 4321
	inA ping -c 2 -i 0.2 -W 1 $B4
	wait_gone "$lpid"
	grep -q '4 received, 4 written' "$TMP/l.err"
}

@test "stream: tcpdump prints listen's pcapng exactly as the classic stream of the same packets (In/Out, interface)" {
	ping_capture -w "$TMP/s.pcapng"
	[ "$(magic "$TMP/s.pcapng")" = 0a0d0d0a ]
	divert-mangle -F pcap <"$TMP/s.pcapng" >"$TMP/s.pcap"
	[ "$(magic "$TMP/s.pcap")" = d4c3b2a1 ]
	inA tcpdump -n -r "$TMP/s.pcapng" >"$TMP/ng.txt" 2>/dev/null
	inA tcpdump -n -r "$TMP/s.pcap" >"$TMP/classic.txt" 2>/dev/null
	cat "$TMP/ng.txt"
	diff "$TMP/ng.txt" "$TMP/classic.txt"
	[ "$(grep -cE " vA +Out IP $A4 > $B4: ICMP echo request" "$TMP/ng.txt")" -eq 2 ]
	[ "$(grep -cE " vA +In +IP $B4 > $A4: ICMP echo reply" "$TMP/ng.txt")" -eq 2 ]
	# From a pipe, as in divert-listen | tcpdump -n -r -
	cat "$TMP/s.pcapng" | inA tcpdump -n -r - 2>/dev/null | diff - "$TMP/classic.txt"
}

@test "stream: tshark shows the interface name, the divert port, the packet id and the direction" {
	ping_capture -w "$TMP/s.pcapng"
	run tshark_fields "$TMP/s.pcapng" frame.interface_name frame.interface_queue \
	    frame.packet_id frame.packet_flags_direction icmp.type
	echo "$output"
	[ "${#lines[@]}" -eq 4 ]
	# Requests out (direction 2), replies in (1); the queue's ids in order.
	ids=""
	for l in "${lines[@]}"; do
		IFS=$'\t' read -r name queue id dir type <<<"$l"
		[ "$name" = vA ]
		[ "$queue" = 4321 ]
		case $type in
		8) [ "$dir" = 0x00000002 ] ;;
		0) [ "$dir" = 0x00000001 ] ;;
		*) false ;;
		esac
		ids="$ids $id"
	done
	[ "$ids" = " 1 2 3 4" ]
}

@test "stream: scapy reads listen's pcapng: the packets, SLL2 headers and times tshark sees" {
	ping_capture -w "$TMP/s.pcapng"
	run $PY -c "
from scapy.all import rdpcap, CookedLinuxV2, IP
for p in rdpcap('$TMP/s.pcapng'):
    print(p[CookedLinuxV2].pkttype, p[CookedLinuxV2].ifindex, p[IP].src, p[IP].dst, '%.6f' % p.time)
"
	echo "$output"
	want=$(tshark -r "$TMP/s.pcapng" -T fields -e sll.pkttype -e sll.ifindex -e ip.src -e ip.dst \
	    -e frame.time_epoch 2>/dev/null | awk -F'\t' '{ printf "%s %s %s %s %.6f\n", $1, $2, $3, $4, $5 }')
	[ "${#lines[@]}" -eq 4 ]
	[ "$output" = "$want" ]
	[[ "${lines[0]}" == "4 $IDX_A $A4 $B4 "* ]]
	[[ "${lines[1]}" == "0 $IDX_A $B4 $A4 "* ]]
}

@test "stream: -F pcap is the classic stream byte for byte; classic through pcapng and back is unchanged" {
	ping_capture -F pcap -w "$TMP/c.pcap"
	# The classic SLL2 header: magic, version 2.4, snaplen 262144, link type 276.
	[ "$(od -An -tx1 -N8 "$TMP/c.pcap" | tr -d ' \n')" = d4c3b2a102000400 ]
	[ "$(od -An -tu4 -j16 -N8 "$TMP/c.pcap" | tr -s ' ')" = " 262144 276" ]
	[ "$(tshark_fields "$TMP/c.pcap" sll.pkttype sll.ifindex | sort | uniq -c | awk '{ print $1, $2, $3 }' | tr '\n' ' ')" = \
	    "2 0 $IDX_A 2 4 $IDX_A " ]
	# No edits: every tool writes the classic input back as it was.
	divert-mangle -F pcap <"$TMP/c.pcap" | cmp - "$TMP/c.pcap"
	divert-defrag -F pcap <"$TMP/c.pcap" | cmp - "$TMP/c.pcap"
	divert-mangle <"$TMP/c.pcap" | divert-defrag | divert-mangle -F pcap | cmp - "$TMP/c.pcap"
	# A pinned classic capture of odd records (a cut one, IPv6, an inbound MAC, RAW).
	$PY - "$TMP" <<-'EOF'
	import struct, sys
	from scapy.all import IP, IPv6, UDP, Raw
	d = sys.argv[1]
	def sll2(pkttype, ifindex, mac, p):
	    return struct.pack(">HHIHBB8s", 0x86dd if IPv6 in p else 0x0800, 0, ifindex, 1, pkttype,
	                       6 if mac else 0, mac or b"") + bytes(p)
	def capture(name, linktype, recs):
	    with open(d + "/" + name, "wb") as f:
	        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, linktype))
	        for i, (rec, cut) in enumerate(recs):
	            f.write(struct.pack("<IIII", 1700000000 + i, 999999 - i, len(rec), len(rec) + cut) + rec)
	capture("pinned.pcap", 276, [
	    (sll2(4, 7, None, IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(b"x" * 30)), 0),
	    (sll2(0, 3, b"\x02\0\0\0\0\x09", IPv6(src="fd00::1", dst="fd00::2") / UDP()), 0),
	    (sll2(4, 9, None, IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(b"y" * 100))[:60], 68)])
	capture("raw.pcap", 101, [(bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP()), 0)] * 3)
	EOF
	for f in pinned raw; do
		divert-mangle -F pcap <"$TMP/$f.pcap" | cmp - "$TMP/$f.pcap"
		divert-mangle <"$TMP/$f.pcap" | divert-mangle -F pcap | cmp - "$TMP/$f.pcap"
	done
}

@test "stream: every reading tool takes classic pcap, our pcapng and Wireshark's pcapng alike" {
	udp_counter "$NS_B" 7777
	$PY - "$TMP" "$A4" "$B4" <<-'EOF'
	import struct, sys
	from scapy.all import IP, UDP, Raw, fragment
	d, a, b = sys.argv[1:4]
	pk = [IP(src=a, dst=b) / UDP(sport=5000, dport=7777) / Raw(b"%d" % i * 10) for i in range(3)]
	pk += fragment(IP(src=a, dst=b, id=9) / UDP(sport=5000, dport=7777) / Raw(b"z" * 1000), 400)
	with open(d + "/c.pcap", "wb") as f:
	    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 276))
	    for i, p in enumerate(pk):
	        rec = struct.pack(">HHIHBB8s", 0x0800, 0, 2, 1, 4, 0, b"") + bytes(p)
	        f.write(struct.pack("<IIII", 1700000000, i, len(rec), len(rec)) + rec)
	EOF
	divert-mangle <"$TMP/c.pcap" >"$TMP/ours.pcapng"
	editcap -F pcapng "$TMP/c.pcap" "$TMP/ws.pcapng"
	[ "$(magic "$TMP/ours.pcapng")" = 0a0d0d0a ]
	[ "$(magic "$TMP/ws.pcapng")" = 0a0d0d0a ]
	divert-mangle -F pcap --ttl 9 <"$TMP/c.pcap" >"$TMP/m.pcap"
	divert-defrag -F pcap <"$TMP/c.pcap" >"$TMP/d.pcap"
	[ "$(tshark_fields "$TMP/d.pcap" udp.length | tr '\n' ' ')" = "18 18 18 1008 " ]
	n=0
	for f in c.pcap ours.pcapng ws.pcapng; do
		echo "== $f"
		divert-mangle -F pcap --ttl 9 <"$TMP/$f" | cmp - "$TMP/m.pcap"
		divert-defrag -F pcap <"$TMP/$f" | cmp - "$TMP/d.pcap"
		inA divert-inject -r "$TMP/$f" 2>"$TMP/i.err"
		grep -q '6 read, 6 injected (6 out, 0 in)' "$TMP/i.err"
		n=$((n + 4))	# three datagrams and one in three fragments, reassembled by B
		wait_until 30 sh -c "[ \"\$(ip netns exec $NS_B nft list table inet cnt | grep -o 'packets [0-9]*')\" = 'packets $n' ]"
	done
	[ "$(count_of "$NS_B")" -eq 12 ]
}

@test "stream: a forwarded packet's context survives listen | mangle | defrag (independent decoder)" {
	router_up
	inB nft add table inet m
	inB nft add chain inet m pre '{ type filter hook prerouting priority -300; }'
	inB nft add rule inet m pre icmp type echo-request meta mark set 0x42
	inB divert-rule add forward icmp 4321
	bgsh "$NS_B" "divert-listen --tee -c 4 4321 2>$TMP/l.err | divert-mangle --ttl 5 2>$TMP/m.err | divert-defrag >$TMP/f.pcapng 2>$TMP/d.err"
	local pid=$BG
	wait_queue "$NS_B" 4321
	inA ping -c 2 -i 0.2 -W 1 10.78.0.2
	wait_gone "$pid"
	cat "$TMP"/*.err
	run $PY "$NGDUMP" "$TMP/f.pcapng"
	printf '%s\n' "${lines[@]}"
	[ "${#lines[@]}" -eq 4 ]
	ib=$(inB cat /sys/class/net/vB/ifindex)
	ic=$(inB cat /sys/class/net/vBC/ifindex)
	for i in 0 2; do	# requests A -> C: out vBC, in vB, marked
		[[ "${lines[$i]}" == "ifid=0 ifname=vBC ifindex=$ic dir=out port=4321 id=$((i + 1)) hook=2 mark=0x42 oifindex=$ib oifname=vB holder=- uid=- gid=- "* ]]
	done
	for i in 1 3; do	# replies C -> A: out vB, in vBC, unmarked
		[[ "${lines[$i]}" == "ifid=1 ifname=vB ifindex=$ib dir=out port=4321 id=$((i + 1)) hook=2 mark=- oifindex=$ic oifname=vBC holder=- uid=- gid=- "* ]]
	done
	# The edit is there too, and tshark agrees on the names and ids.
	[ "$(tshark_fields "$TMP/f.pcapng" ip.ttl | sort -u)" = 5 ]
	[ "$(tshark_fields "$TMP/f.pcapng" frame.interface_name frame.packet_id | tr '\t\n' ': ')" = \
	    "vBC:1 vB:2 vBC:3 vB:4 " ]
}

@test "stream: a stream saved in one namespace is replayed by interface name in another (other indexes)" {
	inA divert-rule add input icmp 4321
	bg_A /dev/null "$TMP/l.err" divert-listen -c 3 -w "$TMP/cap.pcapng" 4321
	local lpid=$BG
	wait_queue "$NS_A" 4321
	inB ping -c 3 -i 0.2 -W 1 $A4 || true		# stolen: no replies
	wait_gone "$lpid"
	divert-mangle -F pcap <"$TMP/cap.pcapng" >"$TMP/cap.pcap"
	# C and D: the same names and addresses, but C's vA comes after three other interfaces.
	NS_C="dvC-$$-${BATS_TEST_NUMBER:-0}" NS_D="dvD-$$-${BATS_TEST_NUMBER:-0}"
	ip netns add "$NS_C"
	ip netns add "$NS_D"
	for d in d0 d1; do
		inC ip link add $d type veth peer name ${d}p
		inC ip link set $d up
		inC ip link set ${d}p up
	done
	ip link add vA netns "$NS_C" type veth peer name vB netns "$NS_D"
	inC ip addr add $A4/24 dev vA
	inD ip addr add $B4/24 dev vB
	inC ip link set vA up
	inD ip link set vB up
	inC ip link set lo up
	idx_c=$(inC cat /sys/class/net/vA/ifindex)
	echo "vA: index $IDX_A in A, $idx_c in C"
	[ "$idx_c" -ne "$IDX_A" ]
	# C counts echo requests arriving on vA; D counts C's replies.
	inC nft add table inet cnt
	inC nft add chain inet cnt in '{ type filter hook input priority 0; }'
	inC nft add rule inet cnt in iifname vA icmp type echo-request counter
	inC nft add rule inet cnt in iifname d0 icmp type echo-request counter
	inD nft add table inet cnt
	inD nft add chain inet cnt in '{ type filter hook input priority 0; }'
	inD nft add rule inet cnt in iifname vB icmp type echo-reply counter
	inC divert-inject -r "$TMP/cap.pcapng" 2>"$TMP/i.err"
	cat "$TMP/i.err"
	grep -q '3 read, 3 injected (0 out, 3 in)' "$TMP/i.err"
	wait_until 30 sh -c "[ \"\$(ip netns exec $NS_D nft list table inet cnt | grep -o 'packets [0-9]*')\" = 'packets 3' ]"
	[ "$(iif_count "$NS_C" vA)" -eq 3 ]
	# --in names another interface: it wins over the record's name.
	inC divert-inject --in d0 -r "$TMP/cap.pcapng" 2>"$TMP/i.err"
	grep -q '3 read, 3 injected (0 out, 3 in)' "$TMP/i.err"
	wait_until 30 sh -c "ip netns exec $NS_C nft list table inet cnt | grep -q 'iifname \"d0\".*packets 3 '"
	[ "$(iif_count "$NS_C" vA)" -eq 3 ]
	# The classic stream names interfaces by index only: not vA here.
	inC divert-inject -r "$TMP/cap.pcap" 2>"$TMP/i2.err" || true
	cat "$TMP/i2.err"
	[ "$(iif_count "$NS_C" vA)" -eq 3 ]
}

@test "stream: mangle and defrag keep an Ethernet input's link type in pcapng" {
	$PY -c "
from scapy.all import Ether, IP, UDP, wrpcap
wrpcap('$TMP/e.pcap', [Ether(src='02:00:00:00:00:01', dst='02:00:00:00:00:02') /
    IP(src='10.0.0.1', dst='10.0.0.2', ttl=64) / UDP(sport=1, dport=2) for _ in range(2)])
"
	divert-mangle --ttl 3 <"$TMP/e.pcap" >"$TMP/e.pcapng"
	tcpdump -r "$TMP/e.pcapng" 2>&1 >/dev/null | grep -q 'link-type EN10MB'
	[ "$(tshark_fields "$TMP/e.pcapng" eth.src ip.ttl | sort -u)" = "$(printf '02:00:00:00:00:01\t3')" ]
	run $PY "$BATS_TEST_DIRNAME/../mangle/pcapdiff.py" "$TMP/e.pcapng" "$TMP/e.pcap"
	echo "$output"
	[ "$(printf '%s\n' "${lines[@]}" | grep -cE 'differ at \[22, 24(, 25)?\]$')" -eq 2 ]	# TTL, checksum
	divert-defrag <"$TMP/e.pcapng" >"$TMP/d.pcapng"
	run $PY "$BATS_TEST_DIRNAME/../mangle/pcapdiff.py" "$TMP/d.pcapng" "$TMP/e.pcapng"
	[ "$status" -eq 0 ]
}

@test "stream: broken pcapng ends each tool with a message after the records before it; unknown blocks are skipped" {
	$PY - "$TMP" <<-'EOF'
	import struct, sys
	from scapy.all import IP, UDP
	p = bytes(IP(src="10.77.0.1", dst="10.77.0.2") / UDP(dport=7777))
	with open(sys.argv[1] + "/r.pcap", "wb") as f:
	    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 101))
	    for i in range(5):
	        f.write(struct.pack("<IIII", 1700000000, i, len(p), len(p)) + p)
	EOF
	divert-mangle <"$TMP/r.pcap" >"$TMP/r.pcapng"
	size=$(file_size "$TMP/r.pcapng")
	head -c $((size - 10)) "$TMP/r.pcapng" >"$TMP/cut.pcapng"
	run timeout 10 divert-mangle -F pcap <"$TMP/cut.pcapng"
	[ "$status" -eq 1 ]
	[[ "$output" == *"broken stream: truncated block after 4 records"* ]]
	run timeout 10 sh -c "divert-defrag -F pcap <$TMP/cut.pcapng 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l"
	[ "$output" -eq 4 ]
	run timeout 10 ip netns exec "$NS_A" divert-inject -r "$TMP/cut.pcapng"
	[ "$status" -eq 1 ]
	[[ "$output" == *"4 read, 4 injected"* ]]
	# A block whose length is no multiple of 4, the writer still there: refused at once.
	mkfifo "$TMP/fifo"
	sh -c "cat $TMP/r.pcapng; printf '\006\000\000\000\035\000\000\000'; exec sleep 60" \
	    >"$TMP/fifo" 3>&- &
	echo $! >>"$TMP/pids"
	run timeout 10 divert-mangle -F pcap <"$TMP/fifo"
	[ "$status" -eq 1 ]
	[[ "$output" == *"bad block length after 5 records"* ]]
	# Unknown blocks and options from another writer: skipped, every record read.
	$PY - "$TMP" <<-'EOF'
	import struct, sys
	d = open(sys.argv[1] + "/r.pcapng", "rb").read()
	shb = struct.unpack("<I", d[4:8])[0]
	junk = struct.pack("<II", 0x80000123, 20) + b"abcdefgh" + struct.pack("<I", 20)
	open(sys.argv[1] + "/junk.pcapng", "wb").write(d[:shb] + junk + d[shb:] + junk)
	EOF
	run divert-mangle -F pcap <"$TMP/junk.pcapng"
	[ "$status" -eq 0 ]
	divert-mangle -F pcap <"$TMP/junk.pcapng" 2>/dev/null | cmp - "$TMP/r.pcap"
}

@test "stream: -F takes pcapng or pcap, anything else exits 64; inject's -F needs -w" {
	for tool in "divert-mangle" "divert-defrag" "divert-listen 4321" "divert-inject -w /dev/null"; do
		run $tool -F pcapx </dev/null
		[ "$status" -eq 64 ]
		[[ "${lines[0]}" == "${tool%% *}: bad -F 'pcapx': want pcapng (the default) or pcap" ]]
		run $tool --help
		[[ "$output" == *"-F, --format=FORMAT"* ]]
	done
	run divert-inject -F pcap -r /dev/null
	[ "$status" -eq 64 ]
	[[ "${lines[0]}" == "divert-inject: -F chooses the format of -w FILE: give -w too" ]]
}

# blocked_reading PID: PID sleeps in a pipe read (pipe_read, anon_pipe_read: by kernel).
blocked_reading() { [[ "$(cat /proc/"$1"/wchan 2>/dev/null)" == *pipe_read ]]; }

@test "stream: a reader waiting for the first bytes, or for pcapng's first interface, stops on SIGTERM" {
	$PY -c "
import struct
open('$TMP/shb', 'wb').write(struct.pack('<IIIHHqI', 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))"
	mkfifo "$TMP/f1" "$TMP/f2"
	sh -c "exec sleep 60" >"$TMP/f1" 3>&- &			# says nothing yet
	echo $! >>"$TMP/pids"
	sh -c "cat $TMP/shb; exec sleep 60" >"$TMP/f2" 3>&- &	# a section header, no interface
	echo $! >>"$TMP/pids"
	for f in f1 f2; do
		divert-mangle <"$TMP/$f" >/dev/null 2>"$TMP/$f.err" 3>&- &
		pid=$!
		echo $pid >>"$TMP/pids"
		wait_until 50 blocked_reading $pid
		kill -TERM $pid
		wait_gone $pid 30
		cat "$TMP/$f.err"
		grep -q 'Interrupted system call' "$TMP/$f.err"
	done
}
