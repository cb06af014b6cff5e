#!/usr/bin/env bats
# Reinjection in place: divert-listen holds the packets while an injector
# downstream has joined it, and divert-inject hands the kernel back its own
# packet, which carries on with its conntrack/NAT state, mark, route and the
# rest of the chain.  In namespaces: A - B (helpers.bash hosts_up), or
# A - R - B with R masquerading (nat_up).

load helpers

setup() { :; }
teardown() { hosts_down; }

# serve NS FILE PORT: serve FILE once on TCP PORT in NS (the download's source).
serve() {
	bg "$1" /dev/null "$TMP/serve.err" socat -u OPEN:"$2" TCP-LISTEN:"$3",reuseaddr
	wait_until 50 sh -c "ip netns exec $1 ss -Hltn 'sport = :$3' | grep -q ."
}

# same_file A B: both files have the same SHA-256.
same_sha() { [ "$(sha256sum <"$1")" = "$(sha256sum <"$2")" ]; }

# pipeline NS CMDLINE: a pipeline in NS in the background, its stderr files in $TMP.
pipeline() { bgsh "$1" "$2"; PIPE=$BG; }

# stop NS: SIGINT to the listeners of NS (the pipeline ends behind them).
stop() {
	signal_comm "$1" divert-listen INT
	wait_gone "$PIPE" 100
}

# held_report FILE: "H I D T" from a listener's "H held (I in place, D dropped in place, T timed out)".
held_report() {
	sed -En 's/.* ([0-9]+) held \(([0-9]+) in place, ([0-9]+) dropped in place, ([0-9]+) timed out\).*/\1 \2 \3 \4/p' "$1"
}
received() { sed -En 's/.* ([0-9]+) received, .*/\1/p' "$1"; }

# router_download PIPELINE: 5 MB from B to A through PIPELINE on R (port
# 4400), compared; then the pipeline stopped and its stderr shown.
router_download() {
	head -c 5000000 /dev/urandom >"$TMP/5mb"
	pipeline "$NS_C" "$1"
	wait_queue "$NS_C" 4400
	wait_joined "$NS_C" 4400
	serve "$NS_B" "$TMP/5mb" 8080
	inA timeout 60 socat -u TCP:$RB4:8080 CREATE:"$TMP/got"
	same_sha "$TMP/5mb" "$TMP/got"
	stop "$NS_C"
	cat "$TMP"/[lmi].err
}

@test "inplace: a 5 MB download through a masquerading router, listen --rule 'forward tcp' | inject on R: intact, every packet in place" {
	nat_up
	router_download "divert-listen --rule 'forward tcp' 4400 2>$TMP/l.err |
	    divert-inject 2>$TMP/i.err"
	n=$(received "$TMP/l.err")
	[ "$n" -gt 3000 ]				# both ways, forwarded
	[ "$(held_report "$TMP/l.err")" = "$n $n 0 0" ]
	grep -q "$n read, $n injected ($n out, 0 in), 0 fragmented into 0, 0 refused, $n in place" \
	    "$TMP/i.err"
	[ -z "$(divert_table "$NS_C")" ]		# --rule's rule went with it
}

@test "inplace: the same with divert-mangle --ttl 5 between: intact, and A sees B's packets with TTL 5 (tshark)" {
	nat_up
	bg_A /dev/null "$TMP/td.err" tcpdump -i vA -n --immediate-mode -w "$TMP/a.pcap" -s 96 src $RB4
	TD=$BG
	wait_until 50 grep -q listening "$TMP/td.err"
	router_download "divert-listen --rule 'forward tcp' 4400 2>$TMP/l.err |
	    divert-mangle --ttl 5 2>$TMP/m.err | divert-inject 2>$TMP/i.err"
	kill -INT "$TD"
	wait_gone "$TD"
	n=$(received "$TMP/l.err")
	[ "$(held_report "$TMP/l.err")" = "$n $n 0 0" ]
	grep -q "$n read, $n edited" "$TMP/m.err"
	run tshark_fields "$TMP/a.pcap" ip.ttl
	[ "${#lines[@]}" -gt 3000 ]
	[ -z "$(printf '%s\n' "${lines[@]}" | grep -vx 5)" ]	# every one of them
}

@test "inplace: local DNAT (nat output to a virtual address) with listen --rule 'output tcp' | inject: 5 MB intact" {
	hosts_up
	head -c 5000000 /dev/urandom >"$TMP/5mb"
	inA ip route add 10.99.0.0/24 dev vA
	inA nft -f - <<-EOF
	table ip vip {
		chain out {
			type nat hook output priority -100;
			ip daddr 10.99.0.1 tcp dport 80 dnat to $B4:8080
		}
	}
	EOF
	bg_B /dev/null "$TMP/b.err" socat -u TCP-LISTEN:8080,reuseaddr CREATE:"$TMP/got"
	wait_until 50 sh -c "ip netns exec $NS_B ss -Hltn 'sport = :8080' | grep -q ."
	SB=$BG
	pipeline "$NS_A" "divert-listen --rule 'output tcp' 4400 2>$TMP/l.err |
	    divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	inA timeout 60 socat -u OPEN:"$TMP/5mb" TCP:10.99.0.1:80
	wait_gone "$SB" 100
	same_sha "$TMP/5mb" "$TMP/got"
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/i.err"
	n=$(received "$TMP/l.err")
	[ "$n" -gt 3000 ]
	[ "$(held_report "$TMP/l.err")" = "$n $n 0 0" ]
}

@test "inplace: SO_MARK=1 traffic routed by 'ip rule fwmark 1' (the main table has no route) keeps working" {
	hosts_up
	inB ip addr add 10.80.0.2/32 dev lo
	inA ip rule add fwmark 1 table 100
	inA ip route add 10.80.0.2 via $B4 dev vA table 100
	run inA ping -c 1 -W 1 10.80.0.2		# unmarked: no route
	[ "$status" -ne 0 ]
	pipeline "$NS_A" "divert-listen --rule 'output icmp' 4400 2>$TMP/l.err |
	    divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	run inA ping -m 1 -c 5 -i 0.2 -W 2 10.80.0.2
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"5 packets transmitted, 5 received"* ]]
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/i.err"
	[ "$(held_report "$TMP/l.err")" = "5 5 0 0" ]
	grep -q '5 read, 5 injected (5 out, 0 in), 0 fragmented into 0, 0 refused, 5 in place' \
	    "$TMP/i.err"
}

@test "inplace: two chained stages (priorities 0 and 10): one ping visits port 1, then port 2, once each, and is answered" {
	hosts_up
	pipeline "$NS_A" "divert-listen --rule 'output icmp --priority 0' 1 2>$TMP/l1.err |
	    divert-inject -w $TMP/i1.pcap 2>$TMP/i1.err"
	pipeline "$NS_A" "divert-listen --rule 'output icmp --priority 10' 2 2>$TMP/l2.err |
	    divert-inject -w $TMP/i2.pcap 2>$TMP/i2.err"
	wait_joined "$NS_A" 1
	wait_joined "$NS_A" 2
	run inA ping -c 1 -W 3 $B4
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"1 packets transmitted, 1 received"* ]]
	# Stopped once nothing is held: a chain that goes drops what is queued.
	signal_comm "$NS_A" divert-listen INT
	wait_until 100 sh -c "[ -z \"\$(ip netns pids $NS_A)\" ]"
	cat "$TMP"/l?.err "$TMP"/i?.err
	for p in 1 2; do
		grep -q '1 received, 1 written, 0 let through' "$TMP/l$p.err"
		[ "$(held_report "$TMP/l$p.err")" = "1 1 0 0" ]
		# What each gave back: the one echo request, from its own port (tshark).
		[ "$(tshark_fields "$TMP/i$p.pcap" frame.interface_queue icmp.type)" = "$(printf '%s\t8' $p)" ]
	done
	# Port 1 first: the kernel queued it there before it reached port 2.
	t1=$(tshark_fields "$TMP/i1.pcap" frame.time_epoch)
	t2=$(tshark_fields "$TMP/i2.pcap" frame.time_epoch)
	awk -v a="$t1" -v b="$t2" 'BEGIN { exit !(a < b) }'
}

@test "inplace: divert-mangle -f icmp --drop drops the pings in the kernel, counted; nothing stays queued" {
	hosts_up
	# A long hold timeout: only the drops in place can empty the queue soon.
	pipeline "$NS_A" "divert-listen --hold-timeout 60000 --rule 'output icmp' 4400 2>$TMP/l.err |
	    divert-mangle -f icmp --drop 2>$TMP/m.err | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	run inA ping -c 3 -i 0.2 -W 1 $B4
	echo "$output"
	[[ "$output" == *"3 packets transmitted, 0 received"* ]]
	wait_joined "$NS_A" 4400 2			# mangle too, once it dropped one
	wait_until 30 queue_empty "$NS_A" 4400
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/m.err" "$TMP/i.err"
	[ "$(held_report "$TMP/l.err")" = "3 0 3 0" ]
	grep -q '3 read, 0 edited, 3 dropped' "$TMP/m.err"
	grep -q '3 of them dropped in place' "$TMP/m.err"
	grep -q '0 read, 0 injected' "$TMP/i.err"
}

@test "inplace: with no injector (| tcpdump -r -, -w FILE) the listener takes the packets at once: nothing held" {
	hosts_up
	inA divert-rule add output icmp 4400
	pipeline "$NS_A" "divert-listen --hold-timeout 60000 4400 2>$TMP/l.err |
	    tcpdump -n -r - >$TMP/shown 2>/dev/null"
	wait_queue "$NS_A" 4400
	run inA ping -c 3 -i 0.2 -W 1 $B4
	[[ "$output" == *"3 packets transmitted, 0 received"* ]]	# taken
	queue_empty "$NS_A" 4400			# at once: none waits for a verdict
	[ "$(joiners "$NS_A" 4400)" -eq 0 ]
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/shown"
	[ "$(grep -c "Out IP $A4 > $B4: ICMP echo request" "$TMP/shown")" -eq 3 ]
	grep -q '3 received, 3 written, 0 let through, 0 dropped by kernel$' "$TMP/l.err"

	bg_A /dev/null "$TMP/l.err" divert-listen --hold-timeout 60000 -w "$TMP/s.pcapng" 4400
	LPID=$BG
	wait_queue "$NS_A" 4400
	run inA ping -c 2 -i 0.2 -W 1 $B4
	[[ "$output" == *"2 packets transmitted, 0 received"* ]]
	queue_empty "$NS_A" 4400
	kill -INT "$LPID"
	wait_gone "$LPID"
	grep -q '2 received, 2 written, 0 let through, 0 dropped by kernel$' "$TMP/l.err"
	# Such a stream says no packet is held: a later divert-inject sends copies.
	[ -z "$(tshark_fields "$TMP/s.pcapng" frame.interface_queue | grep -vx 4400)" ]
}

@test "inplace: a held packet nobody answers in time is dropped at --hold-timeout and counted; the late record goes as a copy" {
	hosts_up
	# Records reach the injector 2 s late: the listener has dropped their packets by then.
	pipeline "$NS_A" "divert-listen --hold-timeout 300 --rule 'output icmp' 4400 2>$TMP/l.err |
	    (sleep 2; exec cat) | divert-inject -v 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	bg_A "$TMP/ping.out" /dev/null ping -c 1 -W 10 $B4
	PING=$BG
	wait_until 10 sh -c "[ \"\$(awk -v q=4400 '\$1 == q { print \$3 }' /proc/net/netfilter/nfnetlink_queue 2>/dev/null)\" != 0 ] || true"
	# Held, then dropped by the listener long before the injector reads it.
	wait_until 15 queue_empty "$NS_A" 4400
	[ ! -s "$TMP/i.err" ]				# the injector has not seen it yet
	wait_gone "$PING" 150
	cat "$TMP/ping.out"
	grep -q '1 packets transmitted, 1 received' "$TMP/ping.out"	# answered: the copy
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/i.err"
	[ "$(held_report "$TMP/l.err")" = "1 0 0 1" ]
	grep -q '1 read, 1 injected (1 out, 0 in), 0 fragmented into 0, 0 refused$' "$TMP/i.err"
	run grep -c 'in place' "$TMP/i.err"
	[ "$output" -eq 0 ]
}

@test "inplace: a joiner whose listener dies lets go of the port at once, even with its input still open" {
	hosts_up
	inA divert-rule add output icmp 4400
	# The injector's input stays open after the listener is gone (sleep holds it).
	pipeline "$NS_A" "divert-listen 4400 2>$TMP/l.err | (cat; exec sleep 60) |
	    divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	inA ping -c 1 -W 2 $B4				# the stream has begun: answered in place
	signal_comm "$NS_A" divert-listen KILL
	wait_until 20 sh -c "! ip netns exec $NS_A awk '\$1 == 4400 { f = 1 } END { exit !f }' /proc/net/netfilter/nfnetlink_queue"
	# The port is free: a new listener binds it and streams.
	bg_A "$TMP/s2.pcap" "$TMP/l2.err" divert-listen -c 1 4400
	L2=$BG
	wait_queue "$NS_A" 4400
	inA ping -c 1 -W 1 $B4 || true
	wait_gone "$L2"
	cat "$TMP/l2.err"
	grep -q '1 received, 1 written' "$TMP/l2.err"
	[ "$(signal_comm "$NS_A" divert-inject; echo ok)" = ok ]
}

@test "inplace: divert-defrag between: the datagram goes back in place as its last fragment, the others are dropped in the kernel" {
	hosts_up
	# At -450 prerouting sees the fragments, before the kernel reassembles them.
	pipeline "$NS_B" "divert-listen --hold-timeout 60000 --rule 'prerouting udp --priority -450' 4400 \
	    2>$TMP/l.err | divert-defrag 2>$TMP/d.err | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_B" 4400
	wait_joined "$NS_B" 4400
	bg_B "$TMP/got" /dev/null socat -u UDP4-RECV:7777 -
	wait_until 50 sh -c "ip netns exec $NS_B ss -Hlun 'sport = :7777' | grep -q ."
	head -c 3000 /dev/urandom >"$TMP/dgram"
	inA socat -u OPEN:"$TMP/dgram" UDP4-SENDTO:$B4:7777
	wait_until 50 sh -c "[ \$(stat -c %s $TMP/got) -ge 3000 ]"
	cmp "$TMP/dgram" "$TMP/got"
	wait_joined "$NS_B" 4400 2			# defrag too, for its drops
	wait_until 30 queue_empty "$NS_B" 4400		# long before the hold timeout
	stop "$NS_B"
	cat "$TMP/l.err" "$TMP/d.err" "$TMP/i.err"
	[ "$(held_report "$TMP/l.err")" = "3 1 2 0" ]	# 3008 bytes of UDP: 3 fragments
	grep -q '2 dropped in place' "$TMP/d.err"
	grep -q '1 read, 1 injected (0 out, 1 in), 0 fragmented into 0, 0 refused, 1 in place' \
	    "$TMP/i.err"
}

@test "inplace: --queue-len bounds what waits: held packets beyond it are dropped by the kernel, counted" {
	hosts_up
	# An injector that reads late: what the listener holds waits for it.
	pipeline "$NS_A" "divert-listen --queue-len 2 --hold-timeout 60000 --rule 'output icmp' 4400 \
	    2>$TMP/l.err | (sleep 3; exec cat) | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	bg_A "$TMP/ping.out" /dev/null ping -c 5 -i 0.2 -W 6 $B4
	PING=$BG
	wait_until 30 sh -c "[ \$(ip netns exec $NS_A awk '\$1 == 4400 { print \$6 }' /proc/net/netfilter/nfnetlink_queue) -ge 3 ]"
	[ "$(queue_waiting "$NS_A" 4400)" -eq 2 ]	# the queue's length, no more
	wait_gone "$PING" 150
	cat "$TMP/ping.out"
	grep -q '5 packets transmitted, 2 received' "$TMP/ping.out"	# the two held, in place
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/i.err"
	grep -q '2 received, 2 written, 0 let through, 3 dropped by kernel; 2 held (2 in place, 0 dropped in place, 0 timed out)' "$TMP/l.err"
}

@test "inplace: --tee never holds: nothing offered, the originals go on at once; an injector downstream sends copies" {
	hosts_up
	pipeline "$NS_A" "divert-listen --tee --rule 'output icmp' 4400 2>$TMP/l.err |
	    divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	run inA ping -c 3 -i 0.2 -W 2 $B4
	echo "$output"
	[[ "$output" == *"3 packets transmitted, 3 received"* ]]
	[[ "$output" == *"DUP!"* ]]			# the original and the copy both went
	run inA grep -c '@divert/' /proc/net/unix
	[ "$output" -eq 0 ]				# no port offered
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/i.err"
	grep -q '3 received, 3 written, 0 let through, 0 dropped by kernel$' "$TMP/l.err"
	grep -q '3 read, 3 injected (3 out, 0 in), 0 fragmented into 0, 0 refused$' "$TMP/i.err"
}

@test "inplace: SIGTERM while holding with the injector stalled: nothing lost, nothing twice (a copy once the listener left)" {
	hosts_up
	inA divert-rule add output udp 4400 -d $B4
	mkfifo "$TMP/gate"
	# The injector has joined, but its input stalls until the gate opens.
	pipeline "$NS_A" "divert-listen 4400 2>$TMP/l.err | { cat $TMP/gate >/dev/null; exec cat; } |
	    divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	noports() { ip netns exec "$NS_B" awk '/^Udp:/ { if (n++) print $3 }' /proc/net/snmp; }
	before=$(noports)
	# Held packets keep the sender's socket buffer: it waits for them.
	bgsh "$NS_A" "head -c 4200000 /dev/zero | socat -u -b 1400 - UDP-SENDTO:$B4:9"
	sender=$BG
	wait_until 100 sh -c "[ \$(ip netns exec $NS_A awk '\$1 == 4400 { print \$3 }' /proc/net/netfilter/nfnetlink_queue) -gt 20 ]"
	signal_comm "$NS_A" divert-listen TERM
	wait_until 50 sh -c "! ip netns exec $NS_A awk '\$1 == 4400 { f = 1 } END { exit !f }' /proc/net/netfilter/nfnetlink_queue"
	echo open >"$TMP/gate"
	wait_gone "$PIPE" 100
	wait_gone "$sender" 100
	cat "$TMP/l.err" "$TMP/i.err"
	read -r got wrote passed < <(sed -En 's/.* ([0-9]+) received, ([0-9]+) written, ([0-9]+) let through.*/\1 \2 \3/p' "$TMP/l.err")
	[ "$((wrote + passed))" -eq "$got" ]
	[ "$wrote" -gt 20 ]
	# Written and held, but the injector had read none when the listener left,
	# nor left itself: what it answered is not known to the listener.
	grep -q "; $wrote held (0 in place, 0 dropped in place, $wrote not reported: 1 joiner did not leave in time)\$" "$TMP/l.err"
	grep -q "$wrote read, $wrote injected ($wrote out, 0 in), 0 fragmented into 0, 0 refused\$" "$TMP/i.err"
	# B got each exactly once: the let through as they were, the written as copies.
	wait_until 50 sh -c "[ \$(( \$(ip netns exec $NS_B awk '/^Udp:/ { if (n++) print \$3 }' /proc/net/snmp) - $before )) -ge $got ]" || true
	[ "$(( $(noports) - before ))" -eq "$got" ]
}

# peers.py: connections to the meeting point of port 4400 (python3 below).
# cpu PID: the process's user + system time in clock ticks.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

@test "inplace: the meeting point survives what cannot be accepted (EMFILE) and silent peers: no spin, joins still answered" {
	hosts_up
	cat >"$TMP/peers.py" <<'PY'
import socket, struct, sys, time, select
addr = "\0divert/4400"
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(addr)
    return s
def hung_up(s, until):	# a REFUSE may come first
    while select.select([s], [], [], max(0, until - time.time()))[0]:
        if s.recv(64) == b"":
            return True
    return False
mode = sys.argv[1]
if mode == "hold":		# connect N, keep them until stdin closes
    socks = [conn() for _ in range(int(sys.argv[2]))]
    print("connected", flush=True)
    sys.stdin.read()
elif mode == "silent":	# 20 silent peers: each is dropped (the 4 past 16 at once)
    socks = [conn() for _ in range(20)]
    time.sleep(1.2)
    j = conn()		# wakes the listener: the 16 are over a second silent now
    j.send(struct.pack("=IHHIIIiQQQ", 0x44565254, 1, 1, 0, 0, 0, 0, 0, 0, 0))
    msg, anc, _, _ = j.recvmsg(48, socket.CMSG_SPACE(4))
    assert struct.unpack("=IHH", msg[:8])[2] == 2, "no WELCOME"
    assert anc and anc[0][1] == socket.SCM_RIGHTS, "no port socket"
    end = time.time() + 3
    gone = sum(hung_up(s, end) for s in socks)
    print("dropped", gone)
    assert gone == 20
PY
	bg_A /dev/null "$TMP/l.err" divert-listen -w "$TMP/s.pcapng" 4400
	LPID=$BG
	wait_queue "$NS_A" 4400
	# Room for two more descriptors: the third connection cannot be accepted.
	nfd=$(ls "/proc/$LPID/fd" | wc -l)
	prlimit --pid "$LPID" --nofile=$((nfd + 2)):
	mkfifo "$TMP/hold"
	bgsh "$NS_A" "python3 $TMP/peers.py hold 6 <$TMP/hold >$TMP/hold.out"
	HOLD=$BG
	exec 4>"$TMP/hold"
	wait_until 50 grep -q connected "$TMP/hold.out"
	before=$(cpu "$LPID")
	sleep 1.5
	after=$(cpu "$LPID")
	echo "listener cpu: $before -> $after ticks"
	[ $((after - before)) -lt 30 ]			# not spinning on the backlog
	exec 4>&-
	wait_gone "$HOLD" 50
	prlimit --pid "$LPID" --nofile=1024:
	run inA timeout 10 python3 "$TMP/peers.py" silent
	echo "$output"
	[ "$status" -eq 0 ]
	kill -INT "$LPID"
	wait_gone "$LPID" 50
	cat "$TMP/l.err"
}

@test "inplace: an injector under steady load whose stream lost its context (tcpdump -w - between) leaves, and the listener stops holding" {
	hosts_up
	# Held packets expire at once (1 ms): the flood is never throttled by them.
	# The injector's input begins 2 s late, full, and never runs dry after:
	# it writes its records to a slow reader.
	cat >"$TMP/slow.py" <<'PY'
import sys, time
while sys.stdin.buffer.read1(4096):
    time.sleep(0.01)
PY
	pipeline "$NS_A" "divert-listen --hold-timeout 1 --rule 'output udp' 4400 2>$TMP/l.err |
	    tcpdump -U -r - -w - 2>/dev/null | { sleep 2; exec cat; } |
	    divert-inject -w - 2>$TMP/i.err | python3 $TMP/slow.py"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	bgsh "$NS_A" "timeout 25 socat -u -b 200 /dev/zero UDP-SENDTO:$B4:9"
	FLOOD=$BG
	wait_until 100 sh -c "[ \$(ip netns exec $NS_A awk '/^Udp:/ { if (n++) print \$5 }' /proc/net/snmp) -gt 10000 ]"
	# Its records say nothing of the listener's: it leaves while the flood goes on.
	no_joiner() { ! has_joiners "$NS_A" 4400; }
	wait_until 80 no_joiner || { kill "$FLOOD"; false; }
	kill -0 "$FLOOD"				# still flooding
	kill "$FLOOD"
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/i.err"
}

@test "inplace: a cut record is given back unchanged, counted and warned about once" {
	hosts_up
	# A stage that says each packet was longer than its record (origlen + 100).
	cat >"$TMP/cut.py" <<'PY'
import struct, sys
i, o = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = i.read(8)
    if len(head) < 8:
        break
    btype, blen = struct.unpack("=II", head)
    block = bytearray(head + i.read(blen - 8))
    if btype == 6:
        struct.pack_into("=I", block, 24, struct.unpack_from("=I", block, 24)[0] + 100)
    o.write(block)
    o.flush()
PY
	pipeline "$NS_A" "divert-listen --rule 'output icmp' 4400 2>$TMP/l.err |
	    python3 $TMP/cut.py | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	run inA ping -c 3 -i 0.2 -W 2 $B4
	[[ "$output" == *"3 packets transmitted, 3 received"* ]]
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/i.err"
	[ "$(grep -c 'cut record: given back unchanged' "$TMP/i.err")" -eq 1 ]
	grep -q ', 3 in place (3 cut: given back unchanged)$' "$TMP/i.err"
	[ "$(held_report "$TMP/l.err")" = "3 3 0 0" ]
}

# gso_checked FILE: the TCP records of FILE, after checking that more than ten
# are over the MTU and that tshark finds every TCP checksum good.
gso_checked() {
	local big bad
	big=$(tshark -r "$1" -Y 'tcp && frame.len > 1600' 2>/dev/null | wc -l)
	bad=$(tshark -r "$1" -o tcp.check_checksum:TRUE -Y 'tcp.checksum.status != 1' \
	    2>/dev/null | wc -l)
	echo "over the MTU $big, bad checksums $bad" >&2
	[ "$big" -gt 10 ] || return 1
	[ "$bad" -eq 0 ] || return 1
	tshark -r "$1" -Y tcp 2>/dev/null | wc -l
}

@test "inplace: --gso through the masquerading router: 5 MB intact, every packet in place, packets over the MTU with good TCP checksums (tshark)" {
	nat_up
	router_download "divert-listen --gso --rule 'forward tcp' 4400 2>$TMP/l.err |
	    divert-inject -w $TMP/inj.pcapng 2>$TMP/i.err"
	n=$(received "$TMP/l.err")
	[ "$(held_report "$TMP/l.err")" = "$n $n 0 0" ]
	grep -q "$n read, $n injected .* $n in place" "$TMP/i.err"
	tcp=$(gso_checked "$TMP/inj.pcapng")
	[ "$tcp" -eq "$n" ]
}

@test "inplace: --gso with divert-mangle --ttl 5 between (output): 5 MB intact, B receives every segment with TTL 5, the edited super-packets' checksums good" {
	hosts_up
	head -c 5000000 /dev/urandom >"$TMP/5mb"
	bg_B /dev/null "$TMP/td.err" tcpdump -i vB -n --immediate-mode -w "$TMP/b.pcap" -s 96 \
	    tcp and src $A4
	TD=$BG
	wait_until 50 grep -q listening "$TMP/td.err"
	pipeline "$NS_A" "divert-listen --gso --rule 'output tcp' 4400 2>$TMP/l.err |
	    divert-mangle --ttl 5 2>$TMP/m.err | divert-inject -w $TMP/inj.pcapng 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	bg_B "$TMP/got" "$TMP/recv.err" socat -u TCP-LISTEN:8080,reuseaddr -
	R=$BG
	wait_until 50 sh -c "ip netns exec $NS_B ss -Hltn 'sport = :8080' | grep -q ."
	inA timeout 60 socat -u OPEN:"$TMP/5mb" TCP:$B4:8080
	wait_gone "$R" 100
	same_sha "$TMP/5mb" "$TMP/got"
	stop "$NS_A"
	kill -INT "$TD"
	wait_gone "$TD"
	cat "$TMP/l.err" "$TMP/m.err" "$TMP/i.err"
	n=$(received "$TMP/l.err")
	[ "$(held_report "$TMP/l.err")" = "$n $n 0 0" ]
	grep -q "$n read, $n edited" "$TMP/m.err"
	tcp=$(gso_checked "$TMP/inj.pcapng")
	[ "$tcp" -eq "$n" ]
	run tshark_fields "$TMP/b.pcap" ip.ttl
	[ "${#lines[@]}" -gt 10 ]
	[ -z "$(printf '%s\n' "${lines[@]}" | grep -vx 5)" ]
}

# A UDP_SEGMENT sender (50 sends of 20,000 bytes cut into 1,000-byte
# datagrams by the kernel: a GSO packet each) and a receiver that prints how
# many datagrams came and their SHA-256, once 3 s pass without one.
udp_gso_scripts() {
	cat >"$TMP/send.py" <<-'PY'
	import socket, sys, hashlib
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.setsockopt(socket.SOL_UDP, 103, 1000)		# UDP_SEGMENT
	s.connect((sys.argv[1], 9000))
	h = hashlib.sha256()
	for i in range(50):
	    b = bytes((i * 31 + k) & 0xff for k in range(20000))
	    s.send(b)
	    for k in range(0, 20000, 1000):
	        h.update(b[k:k + 1000])
	print(1000, h.hexdigest())
	PY
	cat >"$TMP/recv.py" <<-'PY'
	import socket, hashlib
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
	s.bind(("0.0.0.0", 9000))
	s.settimeout(3)
	h, n = hashlib.sha256(), 0
	try:
	    while True:
	        h.update(s.recv(70000))
	        n += 1
	except socket.timeout:
	    pass
	print(n, h.hexdigest())
	PY
}

@test "inplace: --gso with a UDP_SEGMENT sender: 50 GSO packets given back in place, all 1000 datagrams arrive intact, with divert-mangle --ttl 5 between too" {
	hosts_up
	udp_gso_scripts
	for mangle in "" "divert-mangle --ttl 5 2>$TMP/m.err |"; do
		pipeline "$NS_A" "divert-listen --gso --rule 'output udp --dport 9000' 4400 \
		    2>$TMP/l.err | $mangle divert-inject 2>$TMP/i.err"
		wait_queue "$NS_A" 4400
		wait_joined "$NS_A" 4400
		bg_B "$TMP/r.out" /dev/null /usr/bin/python3 "$TMP/recv.py"
		R=$BG
		wait_until 50 sh -c "ip netns exec $NS_B ss -Huln 'sport = :9000' | grep -q ."
		sent=$(inA /usr/bin/python3 "$TMP/send.py" $B4)
		wait_gone "$R" 100
		stop "$NS_A"
		cat "$TMP/l.err" "$TMP/i.err" "$TMP/r.out"
		[ "$(cat "$TMP/r.out")" = "$sent" ]
		[ "$(held_report "$TMP/l.err")" = "50 50 0 0" ]
		grep -q "50 read, 50 injected .* 50 in place" "$TMP/i.err"
	done
}
