#!/usr/bin/env bats
# Copies (divert_send) restore their record's mark, in namespaces A and B
# (helpers.bash): outbound, routing sees exactly the record's mark and the
# loop tag chain of table inet divert adds the bit after routing; inbound,
# the TUN path marks the packet with the record's mark and the bit.  The
# interface a record names is found by its name first, through a cache.
# nft counters in the namespaces are the independent judge of marks,
# interfaces and how often a divert rule took a packet.

load helpers

TOP="$BATS_TEST_DIRNAME/../.."
: "${DIVERT_BUILD:=$TOP/build}"
BIT=0x10000000

setup() {
	unset DIVERT_MARK	# the programs and the rules use the default bit
	hosts_up
}
teardown() { hosts_down; }

# prog NAME SOURCE: build a test program against the library under test into $TMP/NAME.
prog() {
	${CC:-cc} -std=gnu11 -Wall -Wextra -Werror $(san_flags) -I"$TOP/lib" -o "$TMP/$1" "$2" \
	    "$DIVERT_BUILD/libdivert.a" $(PKG_CONFIG_PATH="$DIVERT_BUILD" pkg-config --static \
	    --libs-only-l divert | sed 's/-ldivert\b//')
}

# packets NAME=SCAPY-EXPR...: each packet's raw bytes into $TMP/NAME (scapy builds them).
packets() {
	/usr/bin/python3 - "$TMP" "$@" <<-'EOF'
	import sys
	from scapy.all import IP, IPv6, ICMP, ICMPv6EchoRequest, Raw, raw
	for arg in sys.argv[2:]:
	    name, expr = arg.split("=", 1)
	    with open(sys.argv[1] + "/" + name, "wb") as f:
	        f.write(raw(eval(expr)))
	EOF
}

# fwmark_routing: in A, the routes to B live in table 100 alone, which
# `ip rule fwmark 1` chooses: only packets marked exactly 1 reach B.
fwmark_routing() {
	inA ip route del 10.77.0.0/24 dev vA
	inA ip route add 10.77.0.0/24 dev vA table 100
	inA ip -6 route del fd77::/64 dev vA
	inA ip -6 route add fd77::/64 dev vA table 100
	inA ip rule add fwmark 1 lookup 100
	inA ip -6 rule add fwmark 1 lookup 100
}

# counters NS HOOK RULE...: a chain at HOOK (priority 0) in table inet check
# of NS, one counting rule a line, each ending in a comment that names it.
counters() {
	local ns=$1 hook=$2 r
	shift 2
	ip netns exec "$ns" nft add table inet check
	ip netns exec "$ns" nft add chain inet check "$hook" "{ type filter hook $hook priority 0; }"
	for r in "$@"; do
		ip netns exec "$ns" nft add rule inet check "$hook" $r
	done
}

# counted NS NAME: the packets the counting rule NAME of NS has seen.
counted() {
	ip netns exec "$1" nft list table inet check |
	    sed -n "s/.*counter packets \([0-9]*\) bytes [0-9]* comment \"$2\".*/\1/p"
}
# counted_is NS NAME N: wait (up to 5 s) for NAME's count to be N.
counted_is() { wait_until 50 sh -c "[ \"\$(ip netns exec $1 nft list table inet check |
    sed -n 's/.*counter packets \([0-9]*\) bytes [0-9]* comment \"$2\".*/\1/p')\" = $3 ]"; }

# taken NS: the packets every divert rule of NS has taken, from divert-rule list.
taken() {
	ip netns exec "$1" divert-rule list | sed -n 's/.* # packets \([0-9]*\) .*/\1/p' |
	    awk '{ n += $1 } END { print n + 0 }'
}

@test "copies: a record's mark 1 is restored: routed by ip rule fwmark 1, the bit added after routing, never diverted again (IPv4, IPv6, fragments)" {
	prog send_one "$TOP/tests/lib/send_one.c"
	packets echo4="IP(src='$A4', dst='$B4')/ICMP(id=7)" \
	    echo6="IPv6(src='$A6', dst='$B6')/ICMPv6EchoRequest(id=7)" \
	    big4="IP(src='$A4', dst='$B4')/ICMP(id=8)/Raw(b'x' * 3000)"
	fwmark_routing
	# Routing as the kernel does it: mark 1 reaches B, no mark does not.
	reach() { inA ping -c 1 -W 1 "$@" >/dev/null 2>&1; }
	wait_until 30 reach -m 1 $B4
	run inA ping -c 1 -W 1 $B4
	[ "$status" -ne 0 ]

	inA divert-rule add output 4500 -d $B4		# nobody listens: what they take is dropped
	inA divert-rule add output 4500 -d $B6
	counters "$NS_A" postrouting \
	    "ip daddr $B4 meta mark 0x10000001 counter comment \"v4 1|bit\"" \
	    "ip daddr $B4 meta mark 0x00000001 counter comment \"v4 1\"" \
	    "ip6 daddr $B6 meta mark 0x10000001 counter comment \"v6 1|bit\"" \
	    "ip6 daddr $B6 meta mark 0x00000001 counter comment \"v6 1\""
	counters "$NS_B" input \
	    "icmp type echo-request counter comment \"v4 echo\"" \
	    "icmpv6 type echo-request counter comment \"v6 echo\""

	run inA "$TMP/send_one" -m 1 out <"$TMP/echo4"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "sent 1 refused 0 lookups 0" ]
	counted_is "$NS_B" "v4 echo" 1
	[ "$(counted "$NS_A" "v4 1|bit")" -eq 1 ]	# tagged after routing
	[ "$(counted "$NS_A" "v4 1")" -eq 0 ]

	run inA "$TMP/send_one" -m 1 out <"$TMP/echo6"
	echo "$output"
	[ "$status" -eq 0 ]
	counted_is "$NS_B" "v6 echo" 1
	[ "$(counted "$NS_A" "v6 1|bit")" -eq 1 ]
	[ "$(counted "$NS_A" "v6 1")" -eq 0 ]

	# Over the MTU: the route MTU is asked for under the packet's mark too.
	run inA "$TMP/send_one" -m 1 out <"$TMP/big4"
	echo "$output"
	[ "$status" -eq 0 ]
	counted_is "$NS_B" "v4 echo" 2			# reassembled at B
	[ "$(counted "$NS_A" "v4 1|bit")" -eq 4 ]	# 1 + 3 fragments

	# No mark of its own (0): routed by the bit, as before: no route here.
	run inA "$TMP/send_one" out <"$TMP/echo4"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Network is unreachable"* ]]
	# A mark that has the bit already is kept as it is (and routed by it).
	inA ip rule add fwmark 0x10000001 lookup 100
	run inA "$TMP/send_one" -m 0x10000001 out <"$TMP/echo4"
	[ "$status" -eq 0 ]
	counted_is "$NS_B" "v4 echo" 3
	[ "$(counted "$NS_A" "v4 1|bit")" -eq 5 ]

	[ "$(taken "$NS_A")" -eq 0 ]			# no copy was taken again
}

@test "copies: ping -m 1 through a divert_recv/divert_send interceptor is routed by ip rule fwmark 1, answered, each packet diverted once" {
	prog interceptor "$TOP/examples/interceptor.c"
	fwmark_routing
	inA divert-rule add output icmp 4501 -d $B4
	counters "$NS_A" postrouting \
	    "ip daddr $B4 meta mark 0x10000001 counter comment \"1|bit\"" \
	    "ip daddr $B4 counter comment \"all\""
	bg_A "$TMP/ex.out" "$TMP/ex.err" "$TMP/interceptor" 4501
	wait_queue "$NS_A" 4501
	run inA ping -c 3 -i 0.2 -W 2 -m 1 $B4
	echo "$output"
	cat "$TMP/ex.out" "$TMP/ex.err"
	[ "$status" -eq 0 ]
	[[ "$output" == *"3 packets transmitted, 3 received"* ]]
	[[ "$output" != *"DUP!"* ]]
	[ "$(taken "$NS_A")" -eq 3 ]			# the originals, not the copies
	[ "$(counted "$NS_A" "1|bit")" -eq 3 ]		# the copies left with 1 and the bit
	[ "$(counted "$NS_A" all)" -eq 3 ]
	[ "$(wc -l <"$TMP/ex.out")" -eq 3 ]
	[ "$(file_size "$TMP/ex.err")" -eq 0 ]
}

@test "copies: ping -m 1 saved by divert-listen -w, then divert-inject -r: the copies are routed by ip rule fwmark 1 (a stream that carries marks)" {
	fwmark_routing
	counters "$NS_A" postrouting \
	    "ip daddr $B4 meta mark 0x10000001 counter comment \"1|bit\""
	counters "$NS_B" input "icmp type echo-request counter comment \"echo\""
	bg_A /dev/null "$TMP/l.err" divert-listen -c 3 --rule "output icmp -d $B4" -w "$TMP/s" 4503
	LPID=$BG
	wait_queue "$NS_A" 4503
	run inA ping -c 3 -i 0.2 -W 1 -m 1 $B4		# taken out of the stack: no answer
	[ "$status" -ne 0 ]
	wait_gone "$LPID"
	cat "$TMP/l.err"
	[ "$(counted "$NS_B" echo)" -eq 0 ]
	# Classic pcap (0xa1b2c3d4, either byte order) says no mark; pcapng does.
	magic=$(od -An -tx1 -N4 "$TMP/s" | tr -d ' ')
	[ "$magic" = 0a0d0d0a ] || skip "the stream is classic pcap ($magic): no marks to restore"
	# A rule that nobody listens to would drop whatever it took again.
	inA divert-rule add output icmp 4504 -d $B4
	run inA divert-inject -r "$TMP/s"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"3 read, 3 injected (3 out, 0 in)"* ]]
	counted_is "$NS_B" echo 3
	[ "$(counted "$NS_A" "1|bit")" -eq 3 ]
	[ "$(taken "$NS_A")" -eq 0 ]
}

# tag_rules NS: the rules of the loop tag chain, one a line, as nft prints them.
tag_rules() {
	ip netns exec "$1" nft list chain inet divert loop_tag 2>/dev/null |
	    sed -n 's/^\t*\(socket .*\)/\1/p'
}

@test "copies: the loop tag chain comes with the table, one rule per mark, hidden from list, gone with the last rule and with flush" {
	inA divert-rule add output icmp 4321
	run inA nft list chain inet divert loop_tag
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n' 'table inet divert {' '	chain loop_tag {' \
	    '		type filter hook output priority -2147483648; policy accept;' \
	    '		socket mark & 0x10000000 == 0x10000000 meta mark set meta mark | 0x10000000' \
	    '	}' '}')" ]
	run inA divert-rule list
	echo "$output"
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" == "output icmp 4321 --handle "* ]]
	# Its rule is not one divert-rule names, by handle either.
	handle=$(inA nft -a list chain inet divert loop_tag | sed -n 's/^\t*socket .*# handle //p')
	[ -n "$handle" ]
	run inA divert-rule del --handle 99999
	nosuch=$status
	[[ "$output" == *"no such rule"* ]]
	run inA divert-rule del --handle "$handle"
	[ "$status" -eq "$nosuch" ]
	[[ "$output" == *"no such rule"* ]]
	[ -n "$(tag_rules "$NS_A")" ]

	# Another rule of the same mark: still one tag rule.  Another mark: its own.
	inA divert-rule add input udp 4322
	[ "$(tag_rules "$NS_A")" = "socket mark & 0x10000000 == 0x10000000 meta mark set meta mark | 0x10000000" ]
	inA env DIVERT_MARK=0x40000000 divert-rule add output tcp 4323
	[ "$(tag_rules "$NS_A")" = "$(printf '%s\n' \
	    "socket mark & 0x10000000 == 0x10000000 meta mark set meta mark | 0x10000000" \
	    "socket mark & 0x40000000 == 0x40000000 meta mark set meta mark | 0x40000000")" ]
	run inA env DIVERT_MARK=0x40000000 divert-rule list
	echo "$output"
	[[ "$output" != *"loop_tag"* ]]
	[ "$(grep -c '^# handle' <<<"$output")" -eq 2 ]	# the 0x10000000 ones, not the tag rules
	# Its last rule goes: its tag rule goes; the other mark's stays.
	inA env DIVERT_MARK=0x40000000 divert-rule del output tcp 4323
	[ "$(tag_rules "$NS_A")" = "socket mark & 0x10000000 == 0x10000000 meta mark set meta mark | 0x10000000" ]

	# The tag chain keeps nothing alive: the last divert rule takes the table.
	inA divert-rule del input udp 4322
	inA divert-rule del output icmp 4321
	run inA nft list tables
	[ -z "$output" ]
	inA divert-rule add output icmp 4321
	[ -n "$(tag_rules "$NS_A")" ]
	inA divert-rule flush
	run inA nft list tables
	[ -z "$output" ]

	# A table made without it (an older version, by hand) gets it on the next add.
	inA nft add table inet divert
	inA nft add chain inet divert output '{ type filter hook output priority -150; }'
	inA divert-rule add output icmp 4321
	[ -n "$(tag_rules "$NS_A")" ]

	# Its priority at output is the tag chain's alone.
	run inA divert-rule add output icmp 4324 --priority -2147483648
	echo "$output"
	[ "$status" -eq 64 ]
	[[ "$output" == *"loop tag chain"* ]]
}

@test "copies: inbound, a record is delivered on the interface it names, whatever its index here; names are looked up once, not a packet" {
	prog send_one "$TOP/tests/lib/send_one.c"
	packets echo4="IP(src='$A4', dst='$B4')/ICMP(id=9)"
	counters "$NS_B" prerouting \
	    "iifname \"vB\" icmp type echo-request counter comment \"on vB\"" \
	    "iifname \"lo\" icmp type echo-request counter comment \"on lo\""
	# Index 1 is lo here, 9999 nothing: the name wins over both.
	run inB "$TMP/send_one" -i vB -x 1 in <"$TMP/echo4"
	echo "$output"
	[ "$status" -eq 0 ]
	counted_is "$NS_B" "on vB" 1
	run inB "$TMP/send_one" -i vB -x 9999 in <"$TMP/echo4"
	[ "$status" -eq 0 ]
	counted_is "$NS_B" "on vB" 2
	# A name not here: the index, when there is one.
	run inB "$TMP/send_one" -i nosuch0 -x "$IDX_B" in <"$TMP/echo4"
	[ "$status" -eq 0 ]
	counted_is "$NS_B" "on vB" 3
	run inB "$TMP/send_one" -i nosuch0 in <"$TMP/echo4"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"no interface called nosuch0 here"* ]]
	[ "$(counted "$NS_B" "on lo")" -eq 0 ]

	# 300 packets naming vB: the library asks the kernel for the name once or twice.
	run inB "$TMP/send_one" -n 300 -i vB -x 1 in <"$TMP/echo4"
	echo "$output"
	[ "$status" -eq 0 ]
	lookups=$(sed -n 's/.* lookups \([0-9]*\)$/\1/p' <<<"$output")
	[[ "$output" == "sent 300 refused 0 lookups "* ]]
	[ "$lookups" -ge 1 ]
	[ "$lookups" -le 5 ]
	counted_is "$NS_B" "on vB" 303
	[ "$(counted "$NS_B" "on lo")" -eq 0 ]
}

@test "copies: inbound, the record's mark arrives with the bit added; past 32 marks the bit alone" {
	prog send_one "$TOP/tests/lib/send_one.c"
	packets echo4="IP(src='$A4', dst='$B4')/ICMP(id=10)"
	echo="iifname \"vB\" icmp type echo-request"
	counters "$NS_B" prerouting \
	    "$echo meta mark $BIT counter comment \"bit\"" \
	    "$echo meta mark 0x10000001 counter comment \"1|bit\"" \
	    "$echo meta mark 0x10000005 counter comment \"5|bit\"" \
	    "$echo meta mark & 0x0fffffff != 0 counter comment \"any|bit\"" \
	    "$echo meta mark & $BIT == 0 counter comment \"no bit\""
	inB divert-rule add input icmp 4502		# nobody listens: what it takes is dropped
	run inB "$TMP/send_one" -i vB in <"$TMP/echo4"
	[ "$status" -eq 0 ]
	counted_is "$NS_B" bit 1
	run inB "$TMP/send_one" -m 1 -i vB in <"$TMP/echo4"
	[ "$status" -eq 0 ]
	counted_is "$NS_B" "1|bit" 1
	# 40 packets, marks 1 to 40, in one handle: 32 TUNs of their own, then the plain one.
	run inB "$TMP/send_one" -n 40 -m 1 -c -i vB in <"$TMP/echo4"
	echo "$output"
	[ "$status" -eq 0 ]
	# The new TUNs' link notifications do not make it look vB up again.
	[[ "$output" == "sent 40 refused 0 lookups "[1-9] ]]
	counted_is "$NS_B" "any|bit" 33
	counted_is "$NS_B" "5|bit" 1
	counted_is "$NS_B" bit 9
	[ "$(counted "$NS_B" "no bit")" -eq 0 ]
	[ "$(taken "$NS_B")" -eq 0 ]
	# Every TUN went with the handle.
	[ -z "$(inB ip -o link show type tun)" ]
}
