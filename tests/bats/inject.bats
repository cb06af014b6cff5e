#!/usr/bin/env bats
# divert-inject against the real kernel, in two namespaces A and B.

load helpers

MKPCAP="/usr/bin/python3 $BATS_TEST_DIRNAME/../inject/mkpcap.py"

setup() {
	hosts_up
	# IPv6 is usable only once the prefix routes are in (else B counts Ip6InNoRoutes).
	wait_until 100 inA ping -6 -c 1 -W 1 $B6
}
teardown() { hosts_down; }

# interceptor PORT [INJECT-ARGS...]: divert-listen PORT | divert-inject in A,
# through a fifo so each end has its own pid ($LPID, $IPID) and stderr
# ($TMP/l.err, $TMP/i.err).
interceptor() {
	local port=$1
	shift
	mkfifo "$TMP/pipe"
	bg_A "$TMP/pipe" "$TMP/l.err" divert-listen "$port"
	LPID=$BG
	bg_A /dev/null "$TMP/i.err" divert-inject -r "$TMP/pipe" "$@"
	IPID=$BG
	wait_queue "$NS_A" "$port"
}

# Stop the listener; the injector ends with its stream.  Both print counters.
stop_interceptor() {
	kill "$LPID"
	wait_gone "$LPID"
	wait_gone "$IPID"
	cat "$TMP/l.err" "$TMP/i.err"
}

# transfer FROM TO ADDR PORT: send $TMP/5mb from host FROM (A or B) over TCP
# to a receiver on host TO at ADDR (v4 or v6), then compare the data's sha256.
transfer() {
	local from=$1 to=$2 addr=$3 port=$4 fam=4 dst=$3 rpid
	case $addr in *:*) fam=6 dst="[$addr]" ;; esac
	rm -f "$TMP/got"
	bg_$to /dev/null "$TMP/recv.err" socat -u TCP$fam-LISTEN:$port,reuseaddr OPEN:"$TMP/got",creat
	rpid=$BG
	wait_until 50 listening "$to" "$port"
	timeout 60 ip netns exec "$(ns_of "$from")" socat -u OPEN:"$TMP/5mb" TCP$fam:$dst:$port
	wait_gone "$rpid" 300
	[ "$(sha256sum <"$TMP/5mb")" = "$(sha256sum <"$TMP/got")" ]
}
ns_of() { if [ "$1" = A ]; then echo "$NS_A"; else echo "$NS_B"; fi; }
listening() { ip netns exec "$(ns_of "$1")" ss -tuln | grep -q ":$2 "; }

# udp_receiver HOST PORT OUT [v6]: a socat UDP receiver writing what it gets to OUT.
udp_receiver() {
	local recv=UDP4-RECV
	[ "${4:-}" = v6 ] && recv=UDP6-RECV
	bg_$1 "$3" /dev/null socat -u $recv:$2 -
	wait_until 50 listening "$1" "$2"
}

size_is() { [ "$(file_size "$1")" -eq "$2" ]; }

# n_of N FILE TEXT: wait (up to 5 s) for N occurrences of TEXT in FILE.
n_of() { wait_until 50 sh -c "[ \$(grep -o '$3' '$2' | wc -l) -ge $1 ]"; }

@test "inject: the interceptor loop carries 5 MB of TCP A->B intact, IPv4 and IPv6" {
	head -c 5000000 /dev/urandom >"$TMP/5mb"
	inA divert-rule add output tcp 4321
	interceptor 4321
	transfer A B $B4 5001
	transfer A B $B6 5002
	stop_interceptor
	diverted=$(sed -n 's/.*: \([0-9]*\) received.*/\1/p' "$TMP/l.err")
	[ "$diverted" -gt 6000 ]			# 2 x 5 MB in segments of 1448 or 1428 bytes
	grep -q "$diverted read, $diverted injected ($diverted out, 0 in), 0 fragmented into 0, 0 refused" "$TMP/i.err"
}

@test "inject: inbound reinjection (rule on input) keeps iif and passes rp_filter=1, IPv4 and IPv6" {
	head -c 5000000 /dev/urandom >"$TMP/5mb"
	inA sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.vA.rp_filter=1
	# After the divert rule (priority 0): only reinjected packets get here.
	inA nft -f - <<-EOF
	table inet probe {
		chain input {
			type filter hook input priority 10;
			iifname "vA" meta mark & 0x10000000 == 0x10000000 counter
			iifname != "vA" counter
		}
	}
	EOF
	inA divert-rule add input tcp 4321
	interceptor 4321
	transfer B A $A4 5001
	transfer B A $A6 5002
	inA ip -o link show | grep -q divert		# the TUN exists while injecting
	stop_interceptor
	diverted=$(sed -n 's/.*: \([0-9]*\) received.*/\1/p' "$TMP/l.err")
	[ "$diverted" -gt 6000 ]
	grep -q "$diverted read, $diverted injected (0 out, $diverted in)" "$TMP/i.err"
	run inA nft list table inet probe
	echo "$output"
	[[ "$output" == *"iifname \"vA\" meta mark & 0x10000000 == 0x10000000 counter packets $diverted "* ]]
	[[ "$output" == *"iifname != \"vA\" counter packets 0 "* ]]
	[ -z "$(inA ip -o link show | grep divert)" ]	# and is gone with the injector
}

@test "inject: no loop: each packet is diverted exactly once, and -v shows each" {
	inA divert-rule add output udp 4321
	interceptor 4321 -v
	udp_receiver B 7777 "$TMP/b.out"
	inA /usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(50):
    s.sendto(b'ping %d\n' % i, ('$B4', 7777))"
	n_of 50 "$TMP/b.out" ping
	sleep 0.3			# time for a looping packet to come round again
	stop_interceptor
	[ "$(grep -c ping "$TMP/b.out")" -eq 50 ]
	grep -q '50 received, 50 written, 0 let through' "$TMP/l.err"
	grep -q '50 read, 50 injected (50 out, 0 in)' "$TMP/i.err"
	[ "$(grep -c " out vA $A4:[0-9]* > $B4:7777 UDP 3[56]\$" "$TMP/i.err")" -eq 50 ]
}

@test "inject: a scapy-built pcap goes out with --out to B, and in with --in vA to A" {
	inA sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.vA.rp_filter=1
	$MKPCAP "$TMP/out.pcap" --src $A4 --dst $B4 --count 5
	$MKPCAP "$TMP/in.pcap" --src $B4 --dst $A4 --count 4
	udp_receiver B 7777 "$TMP/b.out"
	udp_receiver A 7777 "$TMP/a.out"
	run inA divert-inject --out -r "$TMP/out.pcap"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"5 read, 5 injected (5 out, 0 in)"* ]]
	n_of 5 "$TMP/b.out" dgram
	run inA divert-inject --in vA -w "$TMP/w.pcap" <"$TMP/in.pcap"
	echo "$output"
	[[ "$output" == *"4 read, 4 injected (0 out, 4 in)"* ]]
	n_of 4 "$TMP/a.out" dgram
	[ "$(grep -o dgram "$TMP/b.out" | wc -l)" -eq 5 ]
	# -w says what went in, where: inbound on vA's index (tshark reads SLL2 itself).
	run sh -c "tshark -r $TMP/w.pcap -T fields -e sll.pkttype -e sll.ifindex -e ip.src -e udp.dstport 2>/dev/null"
	[ "${#lines[@]}" -eq 4 ]
	[ "${lines[3]}" = "$(printf '0\t%s\t%s\t7777' "$IDX_A" "$B4")" ]
}

@test "inject: direction comes from the record; RAW and Ethernet ones go out" {
	$MKPCAP "$TMP/sll2.pcap" --link sll2 --dir in --ifindex "$IDX_A" --src $B4 --dst $A4 --count 3
	$MKPCAP "$TMP/eth.pcap" --link ether --src $A4 --dst $B4 --count 2
	$MKPCAP "$TMP/raw6.pcap" --v6 --src $A6 --dst $B6 --count 2 --dport 7778
	udp_receiver A 7777 "$TMP/a.out"
	udp_receiver B 7777 "$TMP/b.out"
	udp_receiver B 7778 "$TMP/b6.out" v6
	run inA divert-inject -v -r "$TMP/sll2.pcap"
	echo "$output"
	[[ "$output" == *"3 read, 3 injected (0 out, 3 in)"* ]]
	[[ "$output" == *" in  vA $B4:40000 > $A4:7777 UDP 60"* ]]
	n_of 3 "$TMP/a.out" dgram
	run inA divert-inject -r "$TMP/eth.pcap"
	[[ "$output" == *"2 read, 2 injected (2 out, 0 in)"* ]]
	n_of 2 "$TMP/b.out" dgram
	run inA divert-inject -r "$TMP/raw6.pcap"
	[[ "$output" == *"2 read, 2 injected (2 out, 0 in)"* ]]
	n_of 2 "$TMP/b6.out" dgram
	# --out turns the inbound records round: they leave A for B.
	$MKPCAP "$TMP/sll2b.pcap" --link sll2 --dir in --ifindex "$IDX_A" --src $A4 --dst $B4 --count 2
	run inA divert-inject --out -r "$TMP/sll2b.pcap"
	[[ "$output" == *"2 read, 2 injected (2 out, 0 in)"* ]]
	n_of 4 "$TMP/b.out" dgram
}

@test "inject: 3000-byte IPv4 (no DF) and IPv6 datagrams are fragmented to the route MTU; DF is refused" {
	inA ip route add $B4/32 dev vA mtu 1200		# route MTU below the link's 1500
	$MKPCAP "$TMP/big4.pcap" --src $A4 --dst $B4 --size 2972
	$MKPCAP "$TMP/big6.pcap" --v6 --src $A6 --dst $B6 --size 2952 --dport 7778
	$MKPCAP "$TMP/df.pcap" --src $A4 --dst $B4 --size 2972 --df
	udp_receiver B 7777 "$TMP/b.out"
	udp_receiver B 7778 "$TMP/b6.out" v6
	run inA divert-inject -r "$TMP/big4.pcap" -w "$TMP/w4.pcap"
	echo "$output"
	[[ "$output" == *"1 read, 1 injected (1 out, 0 in), 1 fragmented into 3, 0 refused"* ]]
	wait_until 30 size_is "$TMP/b.out" 2972
	# The fragments, as an independent decoder sees them: at most 1200 bytes, offsets in 8s.
	run sh -c "tshark -r $TMP/w4.pcap -o ip.defragment:FALSE -o ip.check_checksum:TRUE -T fields -e ip.len -e ip.flags.mf -e ip.frag_offset -e ip.checksum.status 2>/dev/null"
	echo "$output"
	# offsets in 8-byte units; checksum status 1: good
	[ "$output" = "$(printf '1196\t1\t0\t1\n1196\t1\t147\t1\n648\t0\t294\t1')" ]

	run inA divert-inject -r "$TMP/big6.pcap" -w "$TMP/w6.pcap"
	echo "$output"
	[[ "$output" == *"1 fragmented into 3, 0 refused"* ]]
	wait_until 30 size_is "$TMP/b6.out" 2952
	[ "$(pcap_count "$TMP/w6.pcap" 'ip6[6] == 44')" -eq 3 ]

	run inA divert-inject -r "$TMP/df.pcap"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"refused 10.77.0.1:40000 > 10.77.0.2:7777 UDP 3000: Don't Fragment set, 3000 bytes > route MTU 1200"* ]]
	[[ "$output" == *"1 read, 0 injected (0 out, 0 in), 0 fragmented into 0, 1 refused (1 over the MTU with Don't Fragment)"* ]]
	sleep 0.3
	[ "$(file_size "$TMP/b.out")" -eq 2972 ]		# nothing more arrived
}

@test "inject: garbage, a truncated stream, a 1 GB caplen: message, status 1, what came before injected" {
	run sh -c "head -c 300 /dev/urandom | ip netns exec $NS_A divert-inject"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == "divert-inject: standard input: not a pcap stream"* ]]

	udp_receiver B 7777 "$TMP/b.out"
	# 5 records of 16 + 60 bytes after the 24-byte header; cut in the 4th.
	$MKPCAP "$TMP/five.pcap" --src $A4 --dst $B4 --count 5
	head -c $((24 + 3 * 76 + 40)) "$TMP/five.pcap" >"$TMP/cut.pcap"
	run inA divert-inject -r "$TMP/cut.pcap"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"truncated"*"after 3 records"* ]]
	[[ "$output" == *"3 read, 3 injected"* ]]
	n_of 3 "$TMP/b.out" dgram

	$MKPCAP "$TMP/huge.pcap" --src $A4 --dst $B4 --count 2 --huge-caplen
	run inA sh -c "divert-inject <$TMP/huge.pcap"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"1073741824"*"after 2 records"* ]]
	n_of 5 "$TMP/b.out" dgram

	# Records that are not IP are counted and skipped; the stream goes on.
	$MKPCAP "$TMP/junk.pcap" --src $A4 --dst $B4 --count 2 --garbage 3
	run inA divert-inject -r "$TMP/junk.pcap"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"5 read, 2 injected (2 out, 0 in), 0 fragmented into 0, 3 refused ("* ]]
	n_of 7 "$TMP/b.out" dgram
}

@test "inject: the TUN goes away even when the injector is killed with SIGKILL" {
	mkfifo "$TMP/hold"
	bg_A /dev/null "$TMP/i.err" divert-inject --in vA -r "$TMP/hold"
	IPID=$BG
	exec 7>"$TMP/hold"		# a writer that never writes: the injector waits
	wait_until 50 sh -c "ip netns exec $NS_A ip -o link show | grep -q divert"
	kill -9 "$IPID"
	exec 7>&-
	wait_gone "$IPID"
	wait_until 50 sh -c "! ip netns exec $NS_A ip -o link show | grep -q divert"
}

@test "inject: bad command lines exit 64; not root exits 1 with what to do" {
	run inA divert-inject --in nosuch0
	[ "$status" -eq 64 ]
	[[ "$output" == "divert-inject: --in nosuch0: no such interface here"* ]]
	run inA divert-inject --in vA --out
	[ "$status" -eq 64 ]
	run divert-inject stray
	[ "$status" -eq 64 ]
	run divert-inject --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--in=IFACE"* ]]
	run divert-inject --version
	[[ "$output" == "divert-inject (divert) "* ]]
	run inA setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all divert-inject </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"run as root"* ]]
	run inA divert-inject -r /nonexistent.pcap
	[ "$status" -eq 1 ]
	[[ "$output" == "divert-inject: /nonexistent.pcap: No such file or directory"* ]]
}

# sent_in SECONDS CMD...: run CMD, true when it ended within SECONDS.
ended_within() {
	local limit=$1 t0 t1
	shift
	t0=$(date +%s%N)
	"$@"
	t1=$(date +%s%N)
	echo "took $(((t1 - t0) / 1000000)) ms"
	[ $(((t1 - t0) / 1000000)) -lt $((limit * 1000)) ]
}

# b_counts: an nft counter in B of UDP to port 7777 from A (what B's kernel
# received, whether or not a socket kept up with it); b_count prints it.
b_counts() {
	inB nft -f - <<-EOF
	table inet probe {
		chain in {
			type filter hook input priority 0;
			ip saddr $A4 udp dport 7777 counter
		}
	}
	EOF
}
b_has() { [ "$(b_count)" -ge "$1" ]; }
b_count() { inB nft list table inet probe | sed -n 's/.*udp dport 7777 counter packets \([0-9]*\) .*/\1/p'; }

@test "inject: a dead neighbour cannot stall a live flow: the live flow is delivered, the rest refused and counted" {
	# 10.77.0.99 is on the link but nobody answers ARP for it.  Three
	# datagrams to it for each one to B, 16000 in all.
	$MKPCAP "$TMP/mix.pcap" --src $A4 --dst 10.77.0.99,10.77.0.99,10.77.0.99,$B4 --count 16000
	inA ping -c 1 -W 1 $B4 >/dev/null		# B's neighbour entry is resolved, as in a live flow
	b_counts
	run ended_within 3 inA divert-inject -r "$TMP/mix.pcap"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_until 30 b_has 4000	# every live datagram arrived
	sleep 0.3
	[ "$(b_count)" -eq 4000 ]
	# Exact accounting: read = injected + refused, and the refusals say why.
	line=$(echo "$output" | grep '16000 read')
	inj=$(echo "$line" | sed -n 's/.* \([0-9]*\) injected.*/\1/p')
	ref=$(echo "$line" | sed -n 's/.* \([0-9]*\) refused.*/\1/p')
	[ "$ref" -gt 0 ]
	[ $((inj + ref)) -eq 16000 ]
	[[ "$line" == *"$ref send buffer full (neighbour unreachable?)"* ]]
	[[ "$output" == *"refused 10.77.0.1:40000 > 10.77.0.99:7777 UDP 60: "* ]]
}

@test "inject: a capture replayed onto a link slower than the file is paced, not refused" {
	# vA shaped to 20 Mbit/s: 3000 datagrams of 1400 bytes take about 1.7 s
	# to leave, far longer than divert-inject takes to read them.
	inA tc qdisc add dev vA root tbf rate 20mbit burst 32kbit latency 2s
	$MKPCAP "$TMP/big.pcap" --src $A4 --dst $B4 --count 3000 --size 1400
	inA ping -c 1 -W 1 $B4 >/dev/null
	b_counts
	run inA divert-inject -r "$TMP/big.pcap"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"3000 read, 3000 injected"* ]]
	wait_until 50 b_has 3000
	[ "$(b_count)" -eq 3000 ]
}

@test "inject: -w onto the file being read is refused, however it is spelt" {
	$MKPCAP "$TMP/in.pcap" --src $A4 --dst $B4 --count 3
	sum=$(sha256sum <"$TMP/in.pcap")
	cd "$TMP"
	run inA divert-inject -r in.pcap -w ./in.pcap
	echo "$output"
	[ "$status" -eq 64 ]
	[[ "$output" == "divert-inject: -w ./in.pcap would overwrite the stream being read"* ]]
	run inA divert-inject -w "$TMP/../$(basename "$TMP")/in.pcap" <in.pcap
	[ "$status" -eq 64 ]
	ln in.pcap hard.pcap
	run inA divert-inject -r in.pcap -w hard.pcap
	[ "$status" -eq 64 ]
	[ "$(sha256sum <"$TMP/in.pcap")" = "$sum" ]
	run inA divert-inject -r in.pcap -w other.pcap		# another file is fine
	[ "$status" -eq 0 ]
}

@test "inject: a record whose interface index is not here is refused with a hint to use --in" {
	$MKPCAP "$TMP/far.pcap" --link sll2 --dir in --ifindex 999 --src $B4 --dst $A4 --count 2
	run inA divert-inject -r "$TMP/far.pcap"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"refused 10.77.0.2:40000 > 10.77.0.1:7777 UDP 60: no interface with index 999 here"*"--in IFACE"* ]]
	[[ "$output" == *"2 read, 0 injected (0 out, 0 in), 0 fragmented into 0, 2 refused (2 no interface to arrive on)"* ]]
	udp_receiver A 7777 "$TMP/a.out"
	run inA divert-inject --in vA -r "$TMP/far.pcap"		# and --in does it
	[[ "$output" == *"2 read, 2 injected (0 out, 2 in)"* ]]
	n_of 2 "$TMP/a.out" dgram
}

@test "inject: reinjected broadcasts (subnet and limited; output rule, listener, injector) reach B" {
	udp_receiver B 7777 "$TMP/b.out"
	inA divert-rule add output udp 4321 --dport 7777
	interceptor 4321 -v
	inA /usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for i in range(3):
    s.sendto(b'bcast %d\n' % i, ('10.77.0.255', 7777))"
	n_of 3 "$TMP/b.out" bcast
	# The limited broadcast, sent by a socket bound to vA (no route to it
	# here): it must leave by the record's interface.
	inA /usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'vA')
for i in range(3):
    s.sendto(b'lbcast %d\n' % i, ('255.255.255.255', 7777))"
	n_of 3 "$TMP/b.out" lbcast
	stop_interceptor
	grep -q '6 read, 6 injected (6 out, 0 in), 0 fragmented into 0, 0 refused' "$TMP/i.err"
	[ "$(grep -c " out vA $A4:[0-9]* > 10.77.0.255:7777 UDP" "$TMP/i.err")" -eq 3 ]
	[ "$(grep -c " out vA $A4:[0-9]* > 255.255.255.255:7777 UDP" "$TMP/i.err")" -eq 3 ]
}

@test "inject: live, a flood to a dead neighbour beside a flow to B: B gets the whole flow" {
	inA ping -c 1 -W 1 $B4 >/dev/null
	b_counts
	inA divert-rule add output udp 4321 --dport 7777
	interceptor 4321
	# 12000 datagrams to 10.77.0.99 (no ARP answer) and 4000 to B, interleaved.
	inA /usr/bin/python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(16000):
    s.sendto(b'x %d' % i, ('$B4' if i % 4 == 3 else '10.77.0.99', 7777))
    if i % 200 == 199:
        time.sleep(0.002)	# below the listener's rate: no queue drops of its own"
	wait_until 50 b_has 4000 || true
	sleep 0.3
	stop_interceptor
	[ "$(b_count)" -eq 4000 ]
	grep -q '16000 received, 16000 written, 0 let through, 0 dropped by kernel' "$TMP/l.err"
	line=$(grep '16000 read' "$TMP/i.err")
	inj=$(echo "$line" | sed -n 's/.* \([0-9]*\) injected.*/\1/p')
	ref=$(echo "$line" | sed -n 's/.* \([0-9]*\) refused.*/\1/p')
	[ "$ref" -gt 0 ]
	[ $((inj + ref)) -eq 16000 ]
	[[ "$line" == *"$ref send buffer full (neighbour unreachable?)"* ]]
}

# feed_phase FD PCAP: write PCAP's records (not its file header) to the stream on FD.
feed_phase() { tail -c +25 "$2" >&"$1"; }
# shown N: wait for divert-inject -v to have shown N packets to 10.88.0.1.
shown() { wait_until 50 sh -c "[ \$(grep -c ' > 10.88.0.1:7777 UDP' '$TMP/i.err') -ge $1 ]"; }
dm_is() { [ "$(dm_count)" -eq "$1" ]; }
dm_has() { [ "$(dm_count)" -ge "$1" ]; }
n_refused() { [ "$(grep -cF "refused: $1" "$TMP/i.err")" -ge "$2" ]; }
dm_count() { inA nft list table inet probe | sed -n 's/.*udp dport 7777 counter packets \([0-9]*\) .*/\1/p'; }
dm_up() {	# dm0: one end of a veth pair inside A (this kernel has no dummy devices)
	inA ip link add dm0 type veth peer name dm0p
	inA ip addr add 10.88.0.1/24 dev dm0
	inA ip link set dm0p up
	inA ip link set dm0 up
}

# count_on_dm0: an nft counter in A of UDP to port 7777 that arrived on dm0.
count_on_dm0() {
	inA nft -f - <<-EOF
	table inet probe {
		chain in {
			type filter hook input priority 0;
			iifname "dm0" udp dport 7777 counter
		}
	}
	EOF
}

# vanishing [INJECT-ARGS...]: inbound packets to 10.88.0.1 on dm0 while dm0 is
# downed, brought up, deleted and made again; what arrives is counted by an
# nft rule on iifname dm0 in A.
vanishing() {
	dm_up
	local idx
	idx=$(inA cat /sys/class/net/dm0/ifindex)
	count_on_dm0
	$MKPCAP "$TMP/p.pcap" --link sll2 --dir in --ifindex "$idx" --src 10.88.0.2 --dst 10.88.0.1 --count 50
	mkfifo "$TMP/s"
	bg_A /dev/null "$TMP/i.err" divert-inject -v -r "$TMP/s" "$@"
	IPID=$BG
	exec 7>"$TMP/s"
	head -c 24 "$TMP/p.pcap" >&7			# the file header
	feed_phase 7 "$TMP/p.pcap"; shown 50
	wait_until 30 dm_is 50
	inA ip link set dm0 down
	feed_phase 7 "$TMP/p.pcap"; shown 100		# refused: down
	inA ip link set dm0 up
	feed_phase 7 "$TMP/p.pcap"; shown 150
	wait_until 30 dm_is 100
	inA ip link del dm0
	feed_phase 7 "$TMP/p.pcap"; shown 200		# refused: gone
	dm_up						# back under its name, with a new index
	[ "$(inA cat /sys/class/net/dm0/ifindex)" -ne "$idx" ]
	feed_phase 7 "$TMP/p.pcap"; shown 250
	wait_until 30 dm_is 150
	exec 7>&-
	wait_gone "$IPID"
	cat "$TMP/i.err" | grep -v ' UDP 60$'
	sleep 0.2
	[ "$(dm_count)" -eq 150 ]
	# Nothing counted injected that was not received; every refusal counted, with its reason.
	grep -q '250 read, 150 injected (0 out, 150 in), 0 fragmented into 0, 100 refused (50 no interface to arrive on, 50 interface down)' "$TMP/i.err"
	grep -q 'refused: dm0 is down' "$TMP/i.err"
	grep -q "refused: dm0 (index $idx) is gone; refused until an interface of that name comes back" "$TMP/i.err"
}

@test "inject: an inbound target that goes down or is deleted: refused and counted, picked up again by name" {
	vanishing
}

@test "inject: the same with --in: the interface is found again under its name" {
	vanishing --in dm0
}

@test "inject: pinging link-local addresses (A's own and B's) through an output interceptor is answered" {
	inA sysctl -qw net.ipv6.conf.vA.addr_gen_mode=0 2>/dev/null || true
	wait_until 50 sh -c "ip netns exec $NS_A ip -6 addr show dev vA scope link | grep -q fe80"
	wait_until 50 sh -c "ip netns exec $NS_B ip -6 addr show dev vB scope link | grep -q fe80"
	llA=$(inA ip -6 addr show dev vA scope link | sed -n 's/.*inet6 \(fe80::[0-9a-f:]*\)\/64.*/\1/p')
	llB=$(inB ip -6 addr show dev vB scope link | sed -n 's/.*inet6 \(fe80::[0-9a-f:]*\)\/64.*/\1/p')
	# B's link-local is usable once DAD is done: wait for a direct answer first.
	wait_until 50 inA ping -6 -c 1 -W 1 "$llB%vA"
	inA divert-rule add output icmpv6 4321
	interceptor 4321 -v
	run inA ping -6 -c 2 -W 2 "$llA%vA"
	echo "$output"
	cat "$TMP/i.err" "$TMP/l.err"
	[ "$status" -eq 0 ]
	run inA ping -6 -c 2 -W 2 "$llB%vA"
	echo "$output"
	[ "$status" -eq 0 ]
	stop_interceptor
	grep -q ' 0 refused' "$TMP/i.err"
	grep -q "$llB ICMP6" "$TMP/i.err"
}

captured() { [ "$(pcap_count "$2")" -ge "$1" ]; }

@test "inject: IPv4 and IPv6 packets alternating in the stream arrive at B in the stream's order" {
	inA ping -c 1 -W 1 $B4 >/dev/null			# both neighbours resolved: the
	inA ping -6 -c 1 -W 1 $B6 >/dev/null			# kernel holds nothing back
	$MKPCAP "$TMP/alt.pcap" --src $A4,$A6 --dst $B4,$B6 --count 400
	bg_B /dev/null "$TMP/td.err" tcpdump -i vB -n -U -w "$TMP/b.pcap" udp port 7777
	TDPID=$BG
	wait_until 50 grep -q listening "$TMP/td.err"
	run inA divert-inject -r "$TMP/alt.pcap"
	echo "$output"
	[[ "$output" == *"400 read, 400 injected (400 out, 0 in)"* ]]
	wait_until 50 captured 400 "$TMP/b.pcap"
	kill "$TDPID"
	wait_gone "$TDPID"
	# The datagram numbers, in the order B's interface saw them.
	seq=$(tshark -r "$TMP/b.pcap" -T fields -e data.data 2>/dev/null | cut -c1-24 | xxd -r -p | tr -c '0-9a-z \n' ' ' | grep -o 'dgram [0-9]*' | tr -d 'dgram ' | tr '\n' ' ')
	[ "$seq" = "$(seq 0 399 | tr '\n' ' ')" ]
}

@test "inject: -w holds what went on the wire: an IPv4 ID of 0 (DF clear) is filled in before sending" {
	inA ping -c 1 -W 1 $B4 >/dev/null
	$MKPCAP "$TMP/id0.pcap" --src $A4 --dst $B4 --count 5 --id 0
	bg_B /dev/null "$TMP/td.err" tcpdump -i vB -n -U -w "$TMP/b.pcap" udp port 7777
	TDPID=$BG
	wait_until 50 grep -q listening "$TMP/td.err"
	run inA divert-inject -r "$TMP/id0.pcap" -w "$TMP/w.pcap"
	[[ "$output" == *"5 read, 5 injected"* ]]
	wait_until 50 captured 5 "$TMP/b.pcap"
	kill "$TDPID"
	wait_gone "$TDPID"
	sent=$(tshark_fields "$TMP/w.pcap" ip.id ip.checksum ip.ttl udp.checksum)
	got=$(tshark_fields "$TMP/b.pcap" ip.id ip.checksum ip.ttl udp.checksum)
	echo "$sent"; echo "$got"
	[ "$sent" = "$got" ]
	[ "$(tshark_fields "$TMP/w.pcap" ip.id | grep -c '^0x0000$')" -eq 0 ]
	run sh -c "tshark -r $TMP/w.pcap -o ip.check_checksum:TRUE -T fields -e ip.checksum.status 2>/dev/null | sort -u"
	[ "$output" = 1 ]
}

@test "inject: -v marks fragments and checksums left partial by the capturing host's offload" {
	$MKPCAP "$TMP/partial.pcap" --src $A4,$A6 --dst $B4,$B6 --count 2 --partial-csum
	$MKPCAP "$TMP/frag.pcap" --src $A4,$A6 --dst $B4,$B6 --count 2 --frag
	$MKPCAP "$TMP/fine.pcap" --src $A4,$A6 --dst $B4,$B6 --count 2
	run inA divert-inject -v -r "$TMP/partial.pcap"
	echo "$output"
	[[ "${lines[0]}" == *" out - $A4:40000 > $B4:7777 UDP 60 csum?" ]]
	[[ "${lines[1]}" == *" out - [$A6]:40000 > [$B6]:7777 UDP 80 csum?" ]]
	run inA divert-inject -v -r "$TMP/frag.pcap"
	echo "$output"
	[[ "${lines[0]}" == *" out - $A4:40000 > $B4:7777 UDP 60 frag" ]]
	[[ "${lines[1]}" == *" out - [$A6]:40000 > [$B6]:7777 UDP 88 frag" ]]
	run inA divert-inject -v -r "$TMP/fine.pcap"
	echo "$output"
	[[ "${lines[0]}" == *" out - $A4:40000 > $B4:7777 UDP 60" ]]
	[[ "${lines[1]}" == *" out - [$A6]:40000 > [$B6]:7777 UDP 80" ]]
}

@test "inject: the target goes down, away and back while packets stream in: injected = received" {
	dm_up
	idx=$(inA cat /sys/class/net/dm0/ifindex)
	count_on_dm0
	$MKPCAP "$TMP/p.pcap" --link sll2 --dir in --ifindex "$idx" --src 10.88.0.2 --dst 10.88.0.1 --count 30000
	# The records, paced at about 20000 a second, through a pipe.
	bgsh "$NS_A" "/usr/bin/python3 -c \"
import sys, time
d = open('$TMP/p.pcap', 'rb').read()
out = sys.stdout.buffer
out.write(d[:24])
rec, off = 16 + 20 + 60, 24
while off < len(d):
    out.write(d[off:off + 100 * rec]); out.flush()
    off += 100 * rec
    time.sleep(0.005)
\" | divert-inject -v 2>$TMP/i.err"
	wait_until 50 dm_has 3000
	inA ip link set dm0 down
	wait_until 50 n_refused 'dm0 is down' 500
	inA ip link set dm0 up
	n=$(dm_count)
	wait_until 50 dm_has $((n + 1000))
	inA ip link del dm0
	wait_until 50 n_refused 'dm0 (index' 500
	dm_up
	wait_until 100 grep -q ' read, ' "$TMP/i.err"
	line=$(grep '30000 read' "$TMP/i.err")
	echo "$line"
	inj=$(echo "$line" | sed -n 's/.* \([0-9]*\) injected.*/\1/p')
	wait_until 30 dm_is "$inj" || true
	echo "received $(dm_count)"
	grep -E 'as the packet was written|dropped by the kernel' "$TMP/i.err" || true	# the races caught
	[ "$(dm_count)" -eq "$inj" ]
	[[ "$line" == *" no interface to arrive on, "*" interface down)" ]]
	[ "$inj" -gt 10000 ]
}
