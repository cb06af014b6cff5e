#!/usr/bin/env bats
# Fail-safe listening (issue 13): --fail-open and --queue-len against the
# real kernel, and loopback traffic diverted and given back, in namespaces.

load helpers

setup() { hosts_up; }
teardown() { [ -n "${LPID:-}" ] && kill -CONT "$LPID" 2>/dev/null; hosts_down; }

# listen_bg ARGS...: divert-listen ARGS in A, stream to $TMP/s.pcap, stderr to $TMP/l.err
listen_bg() {
	bg_A "$TMP/s.pcap" "$TMP/l.err" divert-listen "$@"
	LPID=$BG
}

stopped() { [ "$(awk '{ print $3 }' /proc/"$1"/stat 2>/dev/null)" = T ]; }	# PID
queue_holds() { [ "$(queue_waiting "$1" "$2")" = "$3" ]; }		# NS PORT N

# stalled_listener ARGS...: a listener of port 4321 in A with a queue of 4,
# its own rule for A's pings, stopped (SIGSTOP) once bound, then 4 pings that
# fill its queue (lost: they wait there).
stalled_listener() {
	listen_bg --rule 'output icmp' --queue-len 4 "$@" 4321
	wait_queue "$NS_A" 4321
	wait_until 50 has_divert_table "$NS_A"
	kill -STOP "$LPID"
	wait_until 50 stopped "$LPID"
	inA ping -c 4 -i 0.2 -W 1 $B4 >/dev/null 2>&1 || true
	wait_until 50 queue_holds "$NS_A" 4321 4
}

# stop_listener: stop (SIGTERM, pending while stopped), then go on (SIGCONT):
# it reads nothing more before it stops.  Its exit line is shown.
stop_listener() {
	kill -TERM "$LPID"
	kill -CONT "$LPID"
	wait_gone "$LPID"
	cat "$TMP/l.err"
}

@test "failsafe: --fail-open: a stopped listener with a full queue lets pings through, counted" {
	stalled_listener --fail-open
	run inA ping -c 5 -i 0.2 -W 1 $B4
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *" 5 received"* ]]
	queue_holds "$NS_A" 4321 4			# still full: the kernel went past it
	stop_listener
	grep -q ': 4 received, 0 written, 4 let through, 0 dropped by kernel, 5 let through by the kernel (queue full)$' "$TMP/l.err"
	[ -z "$(divert_table "$NS_A")" ]
}

@test "failsafe: without --fail-open the same pings are lost, dropped by the kernel" {
	stalled_listener
	run inA ping -c 5 -i 0.2 -W 1 $B4
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *" 0 received"* ]]
	stop_listener
	grep -q ': 4 received, 0 written, 4 let through, 5 dropped by kernel$' "$TMP/l.err"
}

@test "failsafe: --fail-open with a rule not its own: pings go on, the figure is not given" {
	inA divert-rule add output icmp 4321
	listen_bg --fail-open --queue-len 2 4321
	wait_queue "$NS_A" 4321
	kill -STOP "$LPID"
	wait_until 50 stopped "$LPID"
	inA ping -c 2 -i 0.2 -W 1 $B4 >/dev/null 2>&1 || true
	wait_until 50 queue_holds "$NS_A" 4321 2
	inA ping -c 3 -i 0.2 -W 1 $B4
	stop_listener
	grep -q ': 2 received, 0 written, 2 let through, 0 dropped by kernel$' "$TMP/l.err"
}

# rcvbuf NS: the receive buffer (ss: rb, as the kernel doubled it) of divert-listen's socket in NS.
rcvbuf() {
	ip netns exec "$1" ss -f netlink -a -m | sed -En 's|.*:divert-listen/.*,rb([0-9]+),.*|\1|p'
}

@test "failsafe: --queue-len sizes the socket's receive buffer: N largest packets fit" {
	listen_bg --queue-len 4 4321
	wait_queue "$NS_A" 4321
	small=$(rcvbuf "$NS_A")
	kill "$LPID"
	wait_gone "$LPID"
	listen_bg 4321
	wait_queue "$NS_A" 4321
	default=$(rcvbuf "$NS_A")
	echo "--queue-len 4: $small; default: $default"
	[ "$small" -ge $((2 * 4 * 65536)) ]
	[ "$small" -lt $((2 * 8 * 65536)) ]
	[ "$default" -ge $((2 * 16 << 20)) ]		# no smaller than before
}

@test "failsafe: bad --queue-len and --fail-open with a value exit 64 with a message" {
	run divert-listen --queue-len 0 4321
	[ "$status" -eq 64 ]
	[[ "$output" == "divert-listen: bad --queue-len '0'"* ]]
	run divert-listen --fail-open=yes 4321
	[ "$status" -eq 64 ]
	[[ "$output" == *"--fail-open"*"doesn't allow an argument"* ]]
}

@test "failsafe: loopback: a TCP transfer over 127.0.0.1 diverted and given back arrives intact" {
	head -c 4000000 /dev/urandom >"$TMP/4mb"
	inA divert-rule add output tcp 4321 -o lo
	bgsh "$NS_A" "divert-listen 4321 2>$TMP/l.err | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4321
	wait_joined "$NS_A" 4321
	bg_A /dev/null "$TMP/recv.err" socat -u TCP4-LISTEN:5001,bind=127.0.0.1 OPEN:"$TMP/got",creat
	rpid=$BG
	wait_until 50 sh -c "ip netns exec $NS_A ss -tln | grep -q '127.0.0.1:5001 '"
	timeout 60 ip netns exec "$NS_A" socat -u OPEN:"$TMP/4mb" TCP4:127.0.0.1:5001
	wait_gone "$rpid" 300
	[ "$(sha256sum <"$TMP/4mb")" = "$(sha256sum <"$TMP/got")" ]
	signal_comm "$NS_A" divert-listen
	wait_until 50 sh -c "! ip netns exec $NS_A awk '\$1 == 4321 {f=1} END {exit !f}' /proc/net/netfilter/nfnetlink_queue"
	wait_until 50 grep -q received "$TMP/l.err"
	cat "$TMP/l.err" "$TMP/i.err"
	# Both ways went through the port (data one way, acks the other), every
	# packet given back in place: none lost on the way, none sent twice.
	read -r got wrote passed < <(sed -En 's/.* ([0-9]+) received, ([0-9]+) written, ([0-9]+) let through.*/\1 \2 \3/p' "$TMP/l.err")
	[ "$wrote" -gt 100 ]
	[ "$got" -eq "$wrote" ]
	[ "$passed" -eq 0 ]
	grep -q "; $wrote held ($wrote in place, 0 dropped in place, 0 timed out)" "$TMP/l.err"
}

@test "failsafe: kill -KILL of divert-listen --rule: its rule is gone at once, pings go on" {
	listen_bg --rule 'output icmp' 4321
	wait_queue "$NS_A" 4321
	wait_until 50 has_divert_table "$NS_A"
	run inA ping -c 1 -W 1 $B4
	[ "$status" -ne 0 ]				# taken: the rule is in force
	kill -KILL "$LPID"
	wait_gone "$LPID"
	# No cleanup ran: the kernel removed the table with the listener's socket.
	[ -z "$(divert_tables "$NS_A")" ]
	[ -z "$(inA divert-rule list)" ]
	run inA ping -c 3 -i 0.2 -W 1 $B4
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *" 3 received"* ]]
}

@test "failsafe: kill -KILL of divert-run: the rules it added for its program are gone at once" {
	bg_A /dev/null "$TMP/r.err" divert-run --rule 'output icmp' -- \
	    /usr/bin/python3 -c "$(cat <<'PY'
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 258)
s.bind(('0.0.0.0', 4321))
time.sleep(60)
PY
)"
	rpid=$BG
	wait_queue "$NS_A" 4321
	wait_until 50 has_divert_table "$NS_A"
	run inA divert-rule list
	echo "$output"
	[[ "$output" == "output icmp 4321 # packets 0 bytes 0 listener yes owner divert-run[$rpid]" ]]
	kill -KILL "$rpid"
	wait_gone "$rpid"
	[ -z "$(divert_tables "$NS_A")" ]
	run inA ping -c 1 -W 1 $B4			# the program, orphaned, still holds the port: no rule feeds it
	[ "$status" -eq 0 ]
}
