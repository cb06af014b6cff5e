#!/usr/bin/env bats
# divert-rule against the real kernel, in namespaces A and B (and C, behind
# B, for forwarding).  With nobody listening on a divert port and no
# --pass-through, a diverted packet is dropped: that is how these tests see
# which packets a rule takes, together with the rule's counter.

load helpers

setup() { hosts_up; }
teardown() {
	[ -n "${NS_C:-}" ] && ip netns del "$NS_C" 2>/dev/null
	hosts_down
}

ruleA() { inA divert-rule "$@"; }
ruleB() { inB divert-rule "$@"; }

# diverted NS: packets the rules of table inet divert in NS have taken.
diverted() {
	ip netns exec "$1" nft list table inet divert 2>/dev/null |
	    sed -n 's/.*counter packets \([0-9]*\).*/\1/p' |
	    awk '{ n += $1 } END { print n + 0 }'
}

# pings FROM TO...: one ping from host FROM (A, B or C) gets an answer.
pings() {
	local from=$1
	shift
	"in$from" ping -c 1 -W 1 "$@" >/dev/null 2>&1
}
# reaches FROM TO...: pings, allowing a few tries for neighbour discovery.
reaches() {
	local n
	for n in 1 2 3; do
		pings "$@" && return 0
	done
	return 1
}

# fails CMD...: CMD must fail ("! CMD" would not stop a bats test).
fails() { if "$@"; then return 1; fi; }

# handle_of SPEC: the handle `list' shows for the rule SPEC in A.
handle_of() {
	ruleA list | sed -n "s/^$1 --handle \([0-9]*\) # .*/\1/p"
}

udp_bound() { [ -n "$(ip netns exec "$1" ss -Hlun "sport = :$2")" ]; }

# udp_listen NS PORT: collect what arrives on UDP PORT in $TMP/udp-PORT.
udp_listen() {
	: >"$TMP/udp-$2"
	bg "$1" "$TMP/udp-$2" /dev/null socat -u "UDP4-RECV:$2" STDOUT
	wait_until 50 udp_bound "$1" "$2"
}

# udp_send NS ADDR PORT TEXT [SPORT]: one datagram.
udp_send() {
	local opt=""
	[ -z "${5:-}" ] || opt=",sourceport=$5"
	echo "$4" | ip netns exec "$1" socat -u - "UDP4-SENDTO:$2:$3$opt"
}

got() { grep -q "^$2\$" "$TMP/udp-$1"; }	# got PORT TEXT
# wait_got PORT TEXT: wait (up to 5 s) for TEXT on PORT.
wait_got() { wait_until 50 got "$1" "$2"; }


@test "rule: --help, --usage and --version exit 0" {
	run divert-rule --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"add CHAIN [PROTO] PORT"* ]]
	run divert-rule --usage
	[ "$status" -eq 0 ]
	[[ "$output" == *"Usage: divert-rule"* ]]
	run divert-rule --version
	[ "$status" -eq 0 ]
	[[ "$output" == "divert-rule (divert) "* ]]
}

@test "rule: output icmp drops pings (no listener) but not UDP; del restores" {
	reaches A $B4
	udp_listen "$NS_B" 5001
	ruleA add output icmp 4321
	fails pings A $B4
	[ "$(diverted "$NS_A")" -ge 1 ]
	udp_send "$NS_A" $B4 5001 through
	wait_got 5001 through
	ruleA del output icmp 4321
	reaches A $B4
}

@test "rule: postrouting udp --dport takes only that port" {
	udp_listen "$NS_B" 5001
	udp_listen "$NS_B" 5002
	ruleA add postrouting udp 1 --dport 5001
	udp_send "$NS_A" $B4 5001 taken
	udp_send "$NS_A" $B4 5002 through
	wait_got 5002 through
	[ "$(diverted "$NS_A")" -eq 1 ]
	fails got 5001 taken
	reaches A $B4
}

@test "rule: prerouting icmp on the receiver drops pings to it, not UDP" {
	udp_listen "$NS_B" 5001
	reaches A $B4
	ruleB add prerouting icmp 7
	fails pings A $B4
	[ "$(diverted "$NS_B")" -ge 1 ]
	udp_send "$NS_A" $B4 5001 through
	wait_got 5001 through
}

@test "rule: input udp --dport on the receiver drops that port only" {
	udp_listen "$NS_B" 5001
	udp_listen "$NS_B" 5002
	ruleB add input udp 7 --dport 5001
	udp_send "$NS_A" $B4 5001 taken
	udp_send "$NS_A" $B4 5002 through
	wait_got 5002 through
	[ "$(diverted "$NS_B")" -eq 1 ]
	fails got 5001 taken
	reaches A $B4
}

@test "rule: forward drops what a router forwards, not what it receives" {
	router_up
	reaches A 10.78.0.2
	ruleB add forward icmp 9
	run inB nft list chain inet divert forward
	[[ "$output" == *"hook forward priority filter"* ]]
	fails pings A 10.78.0.2
	[ "$(diverted "$NS_B")" -ge 1 ]
	reaches A $B4			# B's own input: not forwarded
	run ruleB list
	[[ "$output" == "forward icmp 9 --handle "* ]]
}

@test "rule: forward -i/-o match the interfaces the packet crosses" {
	router_up
	ruleB add forward icmp 9 -i vB -o vBC
	fails pings A 10.78.0.2
	[ "$(diverted "$NS_B")" -ge 1 ]
	ruleB flush
	ruleB add forward icmp 9 -i vBC -o vBC	# no packet goes back out
	reaches A 10.78.0.2
	[ "$(diverted "$NS_B")" -eq 0 ]
}

@test "rule: -6 takes IPv6 only, -4 IPv4 only" {
	reaches A $B4
	reaches A $B6
	ruleA add output 1 -6
	fails pings A $B6
	reaches A $B4
	ruleA del output 1 -6
	ruleA add output 1 -4
	fails pings A $B4
	reaches A $B6
}

@test "rule: -d takes one address or prefix, not the others" {
	inB ip addr add 10.77.0.9/24 dev vB
	inB ip addr add fd77::9/64 dev vB nodad
	reaches A $B4
	reaches A fd77::2
	ruleA add output 1 -d 10.77.0.0/29
	fails pings A $B4
	reaches A 10.77.0.9
	ruleA flush
	ruleA add output icmpv6 1 -d fd77::2
	fails pings A fd77::2
	reaches A fd77::9
	run ruleA list
	[[ "$output" == "output icmpv6 1 -d fd77::2 --handle "* ]]
}

@test "rule: -s takes one source address, not the others" {
	inA ip addr add 10.77.0.11/24 dev vA
	reaches A $B4
	ruleA add output icmp 1 -s 10.77.0.11
	fails pings A -I 10.77.0.11 $B4
	[ "$(diverted "$NS_A")" -ge 1 ]
	reaches A -I $A4 $B4
}

@test "rule: --dport range and --sport pick ports exactly" {
	udp_listen "$NS_B" 5001
	udp_listen "$NS_B" 5002
	udp_listen "$NS_B" 5003
	ruleA add output udp 1 --dport 5001-5002
	udp_send "$NS_A" $B4 5001 taken1
	udp_send "$NS_A" $B4 5002 taken2
	udp_send "$NS_A" $B4 5003 through
	wait_got 5003 through
	[ "$(diverted "$NS_A")" -eq 2 ]
	fails got 5001 taken1
	fails got 5002 taken2
	ruleA flush
	# One receiving socket: the control arrives after the taken one would have.
	ruleA add output udp 1 --sport 6000-6001
	udp_send "$NS_A" $B4 5003 sport6001 6001
	udp_send "$NS_A" $B4 5003 sport6002 6002
	wait_got 5003 sport6002
	fails got 5003 sport6001
	[ "$(diverted "$NS_A")" -eq 1 ]
}

@test "rule: -i and -o match the interface by exact name" {
	reaches A $B4
	ruleB add input icmp 1 -i lo
	reaches A $B4			# came in on vB, not lo
	ruleB add input icmp 1 -i vB
	fails pings A $B4
	ruleA add output icmp 1 -o v		# no prefix match: vA is not v
	ruleB flush
	reaches A $B4
	ruleA add output icmp 1 -o vA
	fails pings A $B4
}

@test "rule: a protocol number works and lists by name" {
	udp_listen "$NS_B" 5001
	ruleA add output 17 1
	udp_send "$NS_A" $B4 5001 taken
	reaches A $B4
	[ "$(diverted "$NS_A")" -eq 1 ]
	fails got 5001 taken
	run ruleA list
	[[ "$output" == "output udp 1 --handle "* ]]
}

@test "rule: --pass-through lets packets go on while nobody listens" {
	ruleA add output icmp 4321 --pass-through
	reaches A $B4
	[ "$(diverted "$NS_A")" -ge 1 ]		# taken, then let through
	ruleA del output icmp 4321 --pass-through
	ruleA add output icmp 4321
	fails pings A $B4
}

@test "rule: packets carrying the DIVERT_MARK bit are left alone" {
	ruleA add output icmp 1
	fails pings A $B4
	reaches A -m 268435456 $B4	# 0x10000000: ping wants decimal
	ruleA flush
	inA env DIVERT_MARK=0x1 divert-rule add output icmp 1
	fails pings A -m 268435456 $B4
	reaches A -m 1 $B4
	run inA nft list table inet divert
	[[ "$output" == *"meta mark & 0x00000001 == 0x00000000"* ]]
}

@test "rule: --priority picks the chain's priority, named after it" {
	ruleA add prerouting udp 4321-4324 -s 10.0.0.0/8 --dport 53 --priority -450 --fanout
	run inA nft list chain inet divert prerouting_-450
	[ "$status" -eq 0 ]
	[[ "$output" == *"hook prerouting priority -450"* ]]
	run ruleA list
	[[ "$output" == "prerouting udp 4321-4324 -s 10.0.0.0/8 --dport 53 --priority -450 --fanout --handle "* ]]
}

@test "rule: list prints add syntax; del LINE removes, add LINE re-adds" {
	ruleA add output icmp 4321
	ruleA add prerouting udp 4321-4324 -s 10.1.2.3/8 --dport 53 --pass-through --priority -450 --fanout
	ruleA add forward tcp 7 --dst fd00::1/64 --sport 1000-2000 -i vA -o vA
	ruleA add input 9 -6
	ruleA add postrouting sctp 65535 -4 --dport 9
	run ruleA list
	[ "$status" -eq 0 ]
	cat >"$TMP/want" <<-EOF
	output icmp 4321
	prerouting udp 4321-4324 -s 10.0.0.0/8 --dport 53 --pass-through --priority -450 --fanout
	forward tcp 7 -d fd00::/64 --sport 1000-2000 -i vA -o vA
	input 9 -6
	postrouting sctp 65535 -4 --dport 9
	EOF
	echo "$output" >"$TMP/list"
	sed 's/ --handle [0-9]* # .*$//' "$TMP/list" | diff -u "$TMP/want" -
	[ "$(grep -c -- ' --handle [0-9][0-9]* # packets 0 bytes 0 listener no$' "$TMP/list")" -eq 5 ]

	while read -r line; do
		ruleA del $line
		run ruleA list
		[[ "$output" != *"$line"* ]]
		ruleA add $line
	done <"$TMP/list"
	run ruleA list
	echo "$output" | sed 's/ --handle [0-9]* # .*$//' | diff -u "$TMP/want" -

	while read -r line; do			# by spec alone, no handle
		ruleA del ${line% --handle *}
	done < <(ruleA list)
	[ -z "$(divert_table "$NS_A")" ]
}

@test "rule: del --handle takes the rule with that handle only" {
	ruleA add output icmp 1
	ruleA add output icmp 2
	h=$(handle_of "output icmp 2")
	[ -n "$h" ]
	ruleA del --handle "$h"
	run ruleA list
	[[ "$output" == "output icmp 1 --handle "* ]]
	[ "${#lines[@]}" -eq 1 ]
	run ruleA del --handle "$h"
	[ "$status" -eq 64 ]
	[ "$output" = "divert-rule: no such rule: --handle $h" ]
}

@test "rule: the last del removes the table; other tables are never touched" {
	inA nft add table inet other
	inA nft add chain inet other out '{ type filter hook output priority 0; }'
	inA nft add rule inet other out counter
	before=$(inA nft list table inet other | grep -v packets)
	ruleA add output icmp 1
	ruleA add input udp 2 --dport 53
	ruleA del output icmp 1
	run inA nft list table inet divert
	[[ "$output" != *"chain output"* ]]	# the emptied chain is gone
	[[ "$output" == *"chain input"* ]]
	ruleA del input udp 2 --dport 53
	run inA nft list tables
	[ "$output" = "table inet other" ]
	ruleA add output icmp 1
	ruleA flush
	run inA nft list tables
	[ "$output" = "table inet other" ]
	[ "$(inA nft list table inet other | grep -v packets)" = "$before" ]
}

@test "rule: flush removes the table; list and flush of no table succeed quietly" {
	run ruleA list
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run ruleA flush
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	ruleA add output icmp 1
	ruleA add prerouting 2 --priority -450
	ruleA flush
	run inA nft list tables
	[[ "$output" != *divert* ]]
	reaches A $B4
}

@test "rule: a rule in our table that is not ours is listed as such, left alone" {
	ruleA add output icmp 1
	inA nft add rule inet divert output counter
	run ruleA list
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "output icmp 1 --handle "* ]]
	[[ "${lines[1]}" == "# handle "*": not a divert rule"* ]]
	ruleA del output icmp 1
	run inA nft list table inet divert
	[ "$status" -eq 0 ]			# still holds the foreign rule
	[[ "$output" == *"counter packets"* ]]
}

@test "rule: bad input exits 64 with a message naming the tool" {
	bad() {
		run ruleA "$@"
		echo "$output"
		[ "$status" -eq 64 ]
		[[ "$output" == "divert-rule: "* ]]
	}
	bad add nowhere icmp 1
	[[ "$output" == *"unknown chain 'nowhere'"* ]]
	bad add output icmp 70000
	[[ "$output" == *"bad PORT '70000'"* ]]
	bad add output icmp 1 -d 10.0.0.300
	[[ "$output" == *"bad address '10.0.0.300'"* ]]
	bad add output icmp 1 -d 10.0.0.0/33
	[[ "$output" == *"prefix"* ]]
	bad add output icmp 1 --dport 53
	[[ "$output" == *"need PROTO tcp, udp, sctp or udplite"* ]]
	bad add output 1 --sport 53
	bad add output udp --dport 53
	[[ "$output" == *"missing PORT"* ]]
	bad add output
	[[ "$output" == *"missing PORT"* ]]
	bad add output gre 1
	[[ "$output" == *"unknown protocol 'gre'"* ]]
	bad add output 1 -4 -d fd00::1
	bad add output 1 -4 -6
	bad add output 1 -i vA
	bad add input 1 -o vA
	bad add output 1 --fanout
	bad add output 1 --priority high
	bad add output 1 --frobnicate
	bad frob
	bad
	bad list extra
	bad del
	bad del output icmp 4321
	[ "$output" = "divert-rule: no such rule: output icmp 4321" ]
	[ -z "$(divert_table "$NS_A")" ]	# nothing was made on the way
}

@test "rule: not root exits 1 and says to run as root" {
	run inA setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$(command -v divert-rule)" add output icmp 1
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == "divert-rule: "*"run as root"* ]]
	run inA setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$(command -v divert-rule)" list
	[ "$status" -eq 1 ]
	[[ "$output" == *"run as root"* ]]
	[ -z "$(divert_table "$NS_A")" ]
}

@test "rule: list shows each rule's packets, bytes and whether its port has a listener" {
	ruleA add output icmp 4321
	ruleA add output udp 4320-4323
	run inA ping -c 7 -i 0.2 -W 1 $B4	# all seven taken: no replies
	[ "$status" -ne 0 ]
	run ruleA list
	echo "$output"
	# 7 echo requests of 84 bytes (20 IP + 8 ICMP + 56 data).
	[[ "${lines[0]}" =~ ^output\ icmp\ 4321\ --handle\ [0-9]+\ #\ packets\ 7\ bytes\ 588\ listener\ no$ ]]
	[[ "${lines[1]}" =~ ^output\ udp\ 4320-4323\ --handle\ [0-9]+\ #\ packets\ 0\ bytes\ 0\ listener\ no$ ]]

	bg_A /dev/null "$TMP/l.err" divert-listen 4321
	lp=$BG
	bg_A /dev/null "$TMP/l2.err" divert-listen 4322	# inside the range
	wait_queue "$NS_A" 4321
	wait_queue "$NS_A" 4322
	run ruleA list
	[[ "${lines[0]}" == *" # packets 7 bytes 588 listener yes" ]]
	[[ "${lines[1]}" == *" listener yes" ]]
	kill "$lp"
	wait_gone "$lp"
	run ruleA list
	[[ "${lines[0]}" == *" # packets 7 bytes 588 listener no" ]]
	[[ "${lines[1]}" == *" listener yes" ]]
	while read -r line; do		# the comment is skipped by del and add
		ruleA del $line
		ruleA add $line
	done < <(ruleA list)
	[ "$(ruleA list | wc -l)" -eq 2 ]
}

@test "rule: a --rule listener's rule is its own: listed with its owner, untouched by flush, add and del, gone with it" {
	bg_A /dev/null "$TMP/l.err" divert-listen --rule 'output icmp' 4321
	lp=$BG
	wait_queue "$NS_A" 4321
	wait_until 50 has_divert_table "$NS_A"
	run ruleA list
	echo "$output"
	[ "$output" = "output icmp 4321 # packets 0 bytes 0 listener yes owner divert-listen[$lp]" ]
	# Its table is the kernel's to remove: an owner table.
	[[ "$(divert_tables "$NS_A")" =~ ^divert-[0-9]+$ ]]
	divert_table "$NS_A" | grep -q 'flags owner'
	ruleA flush
	run ruleA add output icmp 4321		# a copy would take each packet twice
	echo "$output"
	[ "$status" -eq 64 ]
	[ "$output" = "divert-rule: add: that rule exists already, for the lifetime of process divert-listen[$lp]" ]
	run ruleA del output icmp 4321
	[ "$status" -eq 64 ]
	ruleA add output udp 4322
	run ruleA list
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == "output udp 4322 --handle "* ]]	# the shared table first, made later or not
	[[ "${lines[1]}" == "output icmp 4321 # "*" owner divert-listen[$lp]" ]]
	fails pings A $B4				# taken by the listener, never given back
	kill -TERM "$lp"
	wait_gone "$lp"
	grep -q received "$TMP/l.err"
	run ruleA list
	[[ "$output" == "output udp 4322 --handle "*" # "* ]]
	[ "${#lines[@]}" -eq 1 ]
	reaches A $B4
}

@test "rule: adding the same rule twice is refused, naming the rule there" {
	ruleA add output icmp 4321 -d 10.77.0.2
	h=$(handle_of "output icmp 4321 -d 10.77.0.2")
	[ -n "$h" ]
	run ruleA add OUTPUT icmp 0x10e1 -d 10.77.0.2/32 -4	# the same, spelt otherwise
	[ "$status" -eq 64 ]
	[ "$output" = "divert-rule: add: that rule exists already (handle $h)" ]
	run ruleA add output icmp 4321 -d 10.77.0.2 --priority -150
	[ "$status" -eq 64 ]
	[ "$(ruleA list | wc -l)" -eq 1 ]
	# Rules that differ in anything are not the same.
	ruleA add output icmp 4321 -d 10.77.0.2 --pass-through
	ruleA add output icmp 4321 -d 10.77.0.2 --priority 0
	ruleA add output icmp 4322 -d 10.77.0.2
	[ "$(ruleA list | wc -l)" -eq 4 ]
	# A --rule listener for a rule that is there says so and exits 1.
	run inA sh -c "divert-listen --rule 'output icmp -d 10.77.0.2' 4321 2>&1 >/dev/null"
	[ "$status" -eq 1 ]
	[[ "$output" == "divert-listen: cannot add rule"* ]]
	[ "$(ruleA list | wc -l)" -eq 4 ]
}

@test "rule: names in any case, numbers in 0x hex" {
	ruleA add OUTPUT ICMP 0x10e1
	ruleA ADD Prerouting Udp 0x10e1-0x10e4 --dport 0x35 --priority -0x1c2
	ruleA add input 0x11 0 -4
	run ruleA LIST
	[ "$status" -eq 0 ]
	echo "$output" | sed 's/ --handle [0-9]* # .*$//' >"$TMP/list"
	cat >"$TMP/want" <<-EOF
	output icmp 4321
	prerouting udp 4321-4324 --dport 53 --priority -450
	input udp 0 -4
	EOF
	diff -u "$TMP/want" "$TMP/list"
	h=$(handle_of "output icmp 4321")
	ruleA Del --handle "$(printf '0x%x' "$h")"
	[ "$(ruleA list | wc -l)" -eq 2 ]
	ruleA FLUSH
	[ -z "$(divert_table "$NS_A")" ]
	run ruleA add output icmp 0x
	[ "$status" -eq 64 ]
	run ruleA add output icmp 1 --priority 0x80000000
	[ "$status" -eq 64 ]
	run ruleA add output icmp 1 --priority -0x80000001
	[ "$status" -eq 64 ]
}

@test "rule: default priorities: prerouting and output -150 (before NAT), others 0" {
	ruleA add prerouting icmp 1
	ruleA add output icmp 1
	ruleA add input icmp 1
	ruleA add forward icmp 1
	ruleA add postrouting icmp 1
	for c in prerouting output; do
		run inA nft list chain inet divert $c
		[[ "$output" == *"hook $c priority mangle;"* ]]	# mangle is -150
	done
	for c in input forward postrouting; do
		run inA nft list chain inet divert $c
		[[ "$output" == *"hook $c priority filter;"* ]]	# filter is 0
	done
	# The default is not spelt out; another priority is, in a chain of its own.
	ruleA add output icmp 2 --priority 0
	run inA nft list chain inet divert output_0
	[[ "$output" == *"hook output priority filter;"* ]]
	run ruleA list
	[[ "${lines[1]}" == "output icmp 1 --handle "* ]]
	[[ "${lines[5]}" == "output icmp 2 --priority 0 --handle "* ]]
	ruleA del output icmp 2 --priority 0
	ruleA del output icmp 1 --priority -150
	run inA nft list table inet divert
	[[ "$output" != *"chain output"* ]]
}

@test "rule: the default output priority diverts before local DNAT: a NATed TCP connection completes" {
	# A reaches 10.77.0.99:80 only through DNAT to B's 8080.
	inA nft add table ip nat
	inA nft add chain ip nat out '{ type nat hook output priority -100; }'
	inA nft add rule ip nat out ip daddr 10.77.0.99 tcp dport 80 dnat to $B4:8080
	bg_B /dev/null /dev/null socat TCP-LISTEN:8080,reuseaddr,fork SYSTEM:'echo hello'
	wait_until 50 sh -c "ip netns exec $NS_B ss -Hltn 'sport = :8080' | grep -q ."
	[ "$(inA socat -T 3 - TCP:10.77.0.99:80,connect-timeout=3 </dev/null)" = hello ]

	ruleA add output tcp 4321
	bgsh "$NS_A" "divert-listen 4321 2>$TMP/l.err | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4321
	run inA socat -T 3 - TCP:10.77.0.99:80,connect-timeout=3 </dev/null
	[ "$output" = hello ]
	[ "$(diverted "$NS_A")" -ge 3 ]		# SYN, ACK, FIN at least went through us

	# After DNAT (priority 0) the packet goes back in place: still the same flow.
	ruleA flush
	ruleA add output tcp 4321 --priority 0
	run inA socat -T 3 - TCP:10.77.0.99:80,connect-timeout=3 </dev/null
	[ "$output" = hello ]

	# Control: there a copy (--copy) is a new flow, and times out.
	ruleA flush
	ruleA add output tcp 4322 --priority 0
	bgsh "$NS_A" "divert-listen 4322 2>$TMP/l2.err | divert-inject --copy 2>$TMP/i2.err"
	wait_queue "$NS_A" 4322
	run inA socat -T 3 - TCP:10.77.0.99:80,connect-timeout=3 </dev/null
	[ "$status" -ne 0 ]
	[ "$output" != hello ]
	[ "$(diverted "$NS_A")" -ge 1 ]
}

@test "rule: a table made under the old default (output at 0) keeps working" {
	inA nft add table inet divert
	inA nft add chain inet divert output '{ type filter hook output priority 0; }'
	ruleA add output icmp 1			# -150: a chain of its own
	ruleA add output icmp 2 --priority 0	# into the old chain
	run inA nft list chain inet divert output
	[[ "$output" == *"priority filter;"* ]]
	[[ "$output" == *"l4proto icmp"* ]]
	run inA nft list chain inet divert output_-150
	[[ "$output" == *"priority mangle;"* ]]
	run ruleA list
	[[ "${lines[0]}" == "output icmp 2 --priority 0 --handle "* ]]
	[[ "${lines[1]}" == "output icmp 1 --handle "* ]]
	ruleA del output icmp 2 --priority 0
	ruleA del output icmp 1
	[ -z "$(divert_table "$NS_A")" ]
}

@test "rule: another table's rule that uses the mark bit is reported at add (divert-rule, listen --rule); other bits are not" {
	inA nft add table ip other
	inA nft add chain ip other out '{ type filter hook output priority -150; }'
	inA nft add rule ip other out meta mark set meta mark or 0x10000000
	inA nft add rule ip other out meta mark and 0x00000001 == 0x00000001 counter
	inA nft add rule ip other out ct mark and 0x10000000 == 0x10000000 counter
	h=$(inA nft -a list chain ip other out | sed -n 's/.*meta mark | 0x10000000 # handle \([0-9]*\)$/\1/p')
	h2=$(inA nft -a list chain ip other out | sed -n 's/.*ct mark & 0x10000000 == 0x10000000 counter .* # handle \([0-9]*\)$/\1/p')
	[ -n "$h" ]
	[ -n "$h2" ]
	run ruleA add output icmp 4321
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[0]}" = "divert-rule: warning: rule $h of chain out in table ip other also uses mark bit 0x10000000: packets it marks are not diverted (set DIVERT_MARK to a bit nobody uses)" ]
	[[ "${lines[1]}" == "divert-rule: warning: rule $h2 of chain out in table ip other also uses mark bit 0x10000000: "* ]]
	[ "$(ruleA list | wc -l)" -eq 1 ]		# added all the same
	run inA env DIVERT_MARK=0x08000000 divert-rule add output udp 4322
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	bg_A /dev/null "$TMP/l.err" divert-listen --rule 'output tcp' 4323
	wait_queue "$NS_A" 4323
	wait_until 50 grep -q "warning: rule $h of chain out in table ip other" "$TMP/l.err"
	inA nft delete table ip other
}
