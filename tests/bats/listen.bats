#!/usr/bin/env bats
# divert-listen against the real kernel, in two namespaces A and B.

load helpers

setup() { hosts_up; }
teardown() { hosts_down; }

# listen_bg ARGS...: divert-listen ARGS in A, stream to $TMP/s.pcap, stderr to $TMP/l.err
listen_bg() {
	bg_A "$TMP/s.pcap" "$TMP/l.err" divert-listen "$@"
	LPID=$BG
}

@test "listen: diverted pings stream to tcpdump as outgoing, with the interface" {
	inA divert-rule add output icmp 4321
	bgsh "$NS_A" "divert-listen -c 3 4321 2>$TMP/l.err | tcpdump -n -r - >$TMP/shown 2>/dev/null"
	wait_queue "$NS_A" 4321
	run inA ping -c 3 -i 0.2 -W 1 $B4
	[ "$status" -ne 0 ]			# stolen: no replies
	wait_gone "$BG"
	cat "$TMP/shown"
	[ "$(grep -c "Out IP $A4 > $B4: ICMP echo request" "$TMP/shown")" -eq 3 ]
	[ "$(grep -c ' vA  *Out IP' "$TMP/shown")" -eq 3 ]	# the interface, by name
	grep -q '3 received, 3 written, 0 let through' "$TMP/l.err"
}

@test "listen: inbound packets are In, with in-interface, MAC and protocol in SLL2 (tshark)" {
	inA divert-rule add input icmp 4321
	listen_bg -c 2 4321
	wait_queue "$NS_A" 4321
	inB ping -c 2 -i 0.2 -W 1 $A4 || true
	inB ping -6 -c 1 -W 1 $A6 || true
	wait_gone "$LPID"
	run tshark_fields "$TMP/s.pcap" sll.pkttype sll.ifindex sll.etype sll.src.eth
	echo "$output"
	[ "${#lines[@]}" -eq 2 ]
	mac=$(inB cat /sys/class/net/vB/address)
	[ "${lines[0]}" = "$(printf '0\t%s\t0x0800\t%s' "$IDX_A" "$mac")" ]
	inA tcpdump -n -r "$TMP/s.pcap" 2>/dev/null | head -1 |	# names as A knows them
	    grep -Eq " vA +In +IP $B4 > $A4: ICMP echo request"
}

@test "listen: IPv6 is streamed with protocol 0x86dd" {
	inA divert-rule add output icmpv6 4321 -d $B6
	listen_bg -c 1 4321
	wait_queue "$NS_A" 4321
	inA ping -6 -c 1 -W 1 $B6 || true
	wait_gone "$LPID"
	run tshark_fields "$TMP/s.pcap" sll.pkttype sll.ifindex sll.etype ipv6.dst
	[ "$output" = "$(printf '4\t%s\t0x86dd\t%s' "$IDX_A" "$B6")" ]
}

@test "listen: stolen packets are gone; with --tee they go on and are streamed" {
	inA divert-rule add output icmp 4321
	listen_bg 4321
	wait_queue "$NS_A" 4321
	run inA ping -c 2 -i 0.2 -W 1 $B4
	[ "$status" -ne 0 ]
	[[ "$output" == *" 0 received"* ]]
	kill "$LPID"
	wait_gone "$LPID"
	[ "$(pcap_count "$TMP/s.pcap")" -eq 2 ]

	listen_bg --tee 4321
	wait_queue "$NS_A" 4321
	run inA ping -c 2 -i 0.2 -W 1 $B4
	[ "$status" -eq 0 ]
	[[ "$output" == *" 2 received"* ]]
	kill "$LPID"
	wait_gone "$LPID"
	[ "$(pcap_count "$TMP/s.pcap" icmp)" -eq 2 ]
	grep -q '2 received, 2 written, 0 let through' "$TMP/l.err"
}

@test "listen: one diverted packet reaches the reader at once, listener still running" {
	inA divert-rule add output udp 4321
	listen_bg 4321
	wait_queue "$NS_A" 4321
	wait_until 30 bigger_than "$TMP/s.pcap" 0
	hdr=$(stream_header_len "$TMP/s.pcap")
	[ "$(file_size "$TMP/s.pcap")" -eq "$hdr" ]	# header written at start-up, alone
	echo one | inA socat -u - UDP-SENDTO:$B4:9999
	wait_until 30 bigger_than "$TMP/s.pcap" "$hdr"
	kill -0 "$LPID"					# not waiting for exit
	[ "$(pcap_count "$TMP/s.pcap" 'udp port 9999')" -eq 1 ]
}

@test "listen: --rule adds the rule while listening and removes it after -c" {
	listen_bg --rule 'output icmp' -c 3 4321
	wait_queue "$NS_A" 4321
	wait_until 50 sh -c "ip netns exec $NS_A divert-rule list | grep -q '^output icmp 4321'"
	inA ping -c 3 -i 0.2 -W 1 $B4 || true
	wait_gone "$LPID"
	[ "$(pcap_count "$TMP/s.pcap")" -eq 3 ]
	[ -z "$(divert_table "$NS_A")" ]
	inA ping -c 1 -W 1 $B4
}

@test "listen: --rule is removed on SIGINT and on SIGTERM" {
	for sig in INT TERM; do
		listen_bg --rule 'output icmp' 4321
		wait_queue "$NS_A" 4321
		wait_until 50 has_divert_table "$NS_A"
		kill -$sig "$LPID"
		wait_gone "$LPID"
		[ -z "$(divert_table "$NS_A")" ]
		grep -q 'received' "$TMP/l.err"
	done
}

@test "listen: --rule is removed when the stream's reader goes away (SIGPIPE)" {
	# The reader takes the stream's header and leaves inside the first record.
	bgsh "$NS_A" "divert-listen --rule 'output icmp' 4321 2>$TMP/l.err | head -c 100 >/dev/null"
	wait_queue "$NS_A" 4321
	wait_until 50 has_divert_table "$NS_A"
	inA ping -c 1 -W 1 $B4 || true
	wait_until 50 sh -c "! ip netns exec $NS_A nft list tables | grep -q divert"
	wait_until 50 sh -c "! ip netns exec $NS_A awk '\$1 == 4321 {f=1} END {exit !f}' /proc/net/netfilter/nfnetlink_queue"
	inA ping -c 1 -W 1 $B4
}

@test "listen: -f streams matching packets and lets the others through untouched" {
	inA divert-rule add output 4321
	listen_bg -f icmp 4321
	wait_queue "$NS_A" 4321
	bg_B "$TMP/udp.out" /dev/null socat -u UDP-RECV:7777 -
	wait_until 50 sh -c "ip netns exec $NS_B ss -uln | grep -q :7777"
	echo hello | inA socat -u - UDP-SENDTO:$B4:7777
	wait_until 30 grep -q hello "$TMP/udp.out"
	run inA ping -c 1 -W 1 $B4
	[ "$status" -ne 0 ]
	kill "$LPID"
	wait_gone "$LPID"
	[ "$(pcap_count "$TMP/s.pcap" icmp)" -ge 1 ]
	[ "$(pcap_count "$TMP/s.pcap" udp)" -eq 0 ]
	grep -Eq '[1-9][0-9]* let through' "$TMP/l.err"
}

@test "listen: -w writes the stream to a file" {
	inA divert-rule add output icmp 4321
	bg_A "$TMP/stdout" "$TMP/l.err" divert-listen -c 1 -w "$TMP/w.pcap" 4321
	wait_queue "$NS_A" 4321
	inA ping -c 1 -W 1 $B4 || true
	wait_gone "$BG"
	[ "$(pcap_count "$TMP/w.pcap" icmp)" -eq 1 ]
	[ ! -s "$TMP/stdout" ]
}

@test "listen: bad command lines exit 64 with a message" {
	run divert-listen 70000
	[ "$status" -eq 64 ]
	[[ "$output" == "divert-listen: bad divert port '70000'"* ]]
	run divert-listen -f 'icmp and and' 4321
	[ "$status" -eq 64 ]
	[[ "$output" == "divert-listen: bad filter expression"* ]]
	run divert-listen -c 0 4321
	[ "$status" -eq 64 ]
	run divert-listen --rule 'sideways icmp' 4321
	[ "$status" -eq 64 ]
	[[ "$output" == "divert-listen: --rule"* ]]
	run divert-listen
	[ "$status" -eq 64 ]
	run divert-listen --help
	[ "$status" -eq 0 ]
	run divert-listen --version
	[[ "$output" == "divert-listen (divert) "* ]]
}

@test "listen: not root: exit 1, run as root" {
	run inA setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all divert-listen 4321
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"run as root"* ]]
}

@test "listen: a port already bound: exit 1, in use, by the first listener's pid" {
	inA divert-rule add output icmp 4321
	listen_bg 4321
	wait_queue "$NS_A" 4321
	run inA divert-listen 4321
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == "divert-listen: cannot bind divert port 4321: in use by process $LPID (divert-listen)"* ]]
	[[ "$output" != *"run as root"* ]]
	kill -0 "$LPID"				# the first one is unharmed
}

@test "listen: refuses to write pcap to a terminal, says how to read it" {
	# In A and under a timeout, so a broken build cannot bind or hang anything else.
	run timeout 10 script -qec "ip netns exec $NS_A divert-listen 4321" /dev/null
	echo "$output"
	[ "$status" -eq 64 ]
	[[ "$output" == *"divert-listen: will not write a binary pcap stream to a terminal"* ]]
	[[ "$output" == *"tcpdump -n -r -"* && "$output" == *"-w FILE"* ]]
	[[ "$output" != *$'\xd4\xc3\xb2\xa1'* ]]	# no pcap magic on the screen
}

@test "listen: warns once when no divert rule feeds its port; silent when one does" {
	listen_bg 4321
	wait_queue "$NS_A" 4321
	wait_until 30 grep -q 'no divert rule' "$TMP/l.err"
	grep -qx 'divert-listen: no divert rule feeds port 4321 (add one with: divert-rule add CHAIN 4321)' "$TMP/l.err"
	kill "$LPID"
	wait_gone "$LPID"
	[ "$(grep -c 'no divert rule' "$TMP/l.err")" -eq 1 ]

	inA divert-rule add output udp 4320-4322	# a range that covers the port
	inA divert-rule add output icmp 4000		# another port's rule
	listen_bg 4321
	wait_queue "$NS_A" 4321
	kill "$LPID"
	wait_gone "$LPID"
	grep -q received "$TMP/l.err"
	[ "$(grep -c 'no divert rule' "$TMP/l.err")" -eq 0 ]
	inA divert-rule flush

	listen_bg --rule 'output icmp' 4321
	wait_queue "$NS_A" 4321
	wait_until 50 has_divert_table "$NS_A"
	kill "$LPID"
	wait_gone "$LPID"
	grep -q received "$TMP/l.err"
	[ "$(grep -c 'no divert rule' "$TMP/l.err")" -eq 0 ]
}

# counters FILE: "received written passed" from a listener's exit line
counters() {
	sed -En 's/.* ([0-9]+) received, ([0-9]+) written, ([0-9]+) let through.*/\1 \2 \3/p' "$1"
}

# listener_pid NS: the divert-listen process running in NS
listener_pid() {
	local p
	for p in $(ip netns pids "$1"); do
		[ "$(cat /proc/$p/comm 2>/dev/null)" = divert-listen ] && echo "$p"
	done
	return 0
}

# queue_held NS PORT: packets the kernel holds for PORT (queued, not yet answered)
queue_held() {
	ip netns exec "$1" awk -v q="$2" '$1 == q { print $3 }' /proc/net/netfilter/nfnetlink_queue
}
backlog() { [ "$(queue_held "$1" "$2")" -gt 0 ]; }
# stalled NS PORT: packets held and none answered for 0.2 s: the listener is
# blocked (a slow one, under ASan, holds a few for a moment too)
stalled() {
	local n
	n=$(queue_held "$1" "$2")
	[ "$n" -gt 0 ] || return 1
	sleep 0.2
	[ "$(queue_held "$1" "$2")" = "$n" ]
}

# udp_noports NS: datagrams NS received for ports nobody listens on
udp_noports() {
	ip netns exec "$1" awk '/^Udp:/ { if (n++) print $3 }' /proc/net/snmp
}
# arrived NS BEFORE N: at least N more such datagrams than BEFORE
arrived() { [ "$(( $(udp_noports "$1") - $2 ))" -ge "$3" ]; }

@test "listen: SIGTERM ends it even while its reader has stopped reading; the rule goes" {
	bgsh "$NS_A" "divert-listen --rule 'output icmp' 4321 2>$TMP/l.err | sleep 60"
	wait_queue "$NS_A" 4321
	wait_until 50 has_divert_table "$NS_A"
	# 40 pings of 60000 bytes overfill the 1 MiB pipe: the listener waits.
	inA ping -c 40 -i 0.01 -s 60000 -W 1 $B4 >/dev/null 2>&1 || true
	lp=$(listener_pid "$NS_A")
	[ -n "$lp" ]
	wait_until 50 backlog "$NS_A" 4321
	kill -TERM "$lp"
	wait_gone "$lp" 50
	[ -z "$(divert_table "$NS_A")" ]
	read -r got wrote passed < <(counters "$TMP/l.err")
	[ "$((wrote + passed))" -eq "$got" ]
	[ "$passed" -gt 0 ]
}

@test "listen: SIGTERM under backlog: written + let through = received, no broken record" {
	inA divert-rule add output udp 4321 -d $B4
	mkfifo "$TMP/gate"
	# The reader stalls until the gate opens, then reads the pipe to its end.
	bgsh "$NS_A" "divert-listen 4321 2>$TMP/l.err | { cat $TMP/gate >/dev/null; cat >$TMP/s.pcap; }"
	reader=$BG
	wait_queue "$NS_A" 4321
	lp=$(listener_pid "$NS_A")
	[ -n "$lp" ]
	before=$(udp_noports "$NS_B")
	# 3000 datagrams of 1400 bytes: 4.2 MB, four times the pipe.  Packets
	# wait for their verdict while their records wait for the pipe, so the
	# sender's socket buffer fills and it waits too.
	bgsh "$NS_A" "head -c 4200000 /dev/zero | socat -u -b 1400 - UDP-SENDTO:$B4:9"
	sender=$BG
	wait_until 100 stalled "$NS_A" 4321
	kill -TERM "$lp"
	wait_gone "$lp" 50
	echo open >"$TMP/gate"
	wait_gone "$reader" 100
	wait_gone "$sender" 100
	cat "$TMP/l.err"
	read -r got wrote passed < <(counters "$TMP/l.err")
	[ "$((wrote + passed))" -eq "$got" ]
	[ "$wrote" -gt 0 ]
	[ "$passed" -gt 0 ]	# a real backlog, cut by the stop
	run tcpdump -n -r "$TMP/s.pcap"
	[ "$status" -eq 0 ]
	[[ "$output" != *truncated* ]]
	[ "$(pcap_count "$TMP/s.pcap" 'udp port 9')" -eq "$wrote" ]
	[ "$(tshark_fields "$TMP/s.pcap" frame.number | wc -l)" -eq "$wrote" ]
	run tshark -r "$TMP/s.pcap" -q
	[[ "$output" != *"cut short"* && "$output" != *"appears to be damaged"* ]]
	# What was let through went on to B, as B's kernel counts it.
	wait_until 50 arrived "$NS_B" "$before" "$passed" || true
	[ "$(( $(udp_noports "$NS_B") - before ))" -eq "$passed" ]
}

@test "listen: a udp --dport 53 rule brings exactly those packets to the listener" {
	inA divert-rule add output udp 4321 --dport 53
	listen_bg 4321
	wait_queue "$NS_A" 4321
	bg_B "$TMP/54.out" /dev/null socat -u UDP-RECV:54 -
	wait_until 50 sh -c "ip netns exec $NS_B ss -uln | grep -q ':54 '"
	for i in 1 2 3; do echo "dns $i" | inA socat -u - UDP-SENDTO:$B4:53; done
	echo other | inA socat -u - UDP-SENDTO:$B4:54
	inA ping -c 1 -W 1 $B4				# not diverted: answered
	wait_until 30 grep -q other "$TMP/54.out"	# port 54 went through
	wait_until 30 sh -c "[ \$(tcpdump -n -r $TMP/s.pcap 2>/dev/null | wc -l) -eq 3 ]"
	kill "$LPID"
	wait_gone "$LPID"
	[ "$(pcap_count "$TMP/s.pcap")" -eq 3 ]
	[ "$(pcap_count "$TMP/s.pcap" 'udp dst port 53')" -eq 3 ]
	grep -q '3 received, 3 written' "$TMP/l.err"
}
