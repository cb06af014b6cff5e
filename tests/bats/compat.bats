#!/usr/bin/env bats
# divert(4) programs run unchanged on Linux (issue 12): programs written in
# plain BSD style, knowing nothing of libdivert (tests/compat/), built with
# $(pkg-config --cflags divert-compat) only, run under divert-run or with
# libdivert-socket.so preloaded, in two namespaces A and B (helpers.bash).

load helpers

TOP="$BATS_TEST_DIRNAME/../.."
: "${DIVERT_BUILD:=$TOP/build}"
PY=/usr/bin/python3		# Debian's, as the other suites (DESIGN.md)
COMPAT="$BATS_TEST_DIRNAME/../compat"

# shim_preload: what LD_PRELOAD takes to load the shim straight into one of
# our programs: under ASan its runtime has to come first in the list.
shim_preload() {
	local asan
	asan=$(ldd "$DIVERT_BUILD/libdivert-socket.so" | awk '/libasan/ { print $3 }')
	echo "${asan:+$asan:}$DIVERT_BUILD/libdivert-socket.so"
}

# pc ARGS...: pkg-config reading the .pc files installed under $BIN/root.
pc() {
	PKG_CONFIG_PATH="$BIN/root/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$BIN/root" \
	    pkg-config "$@"
}

# Once for the file: make install into $BIN/root from a copy of the build
# under test (time stamps newer than the sources: nothing is rebuilt), then
# the C programs, built with the installed divert-compat.pc's flags and
# nothing else but warnings (and the sanitizers a sanitizer build needs).
# $BIN is readable by all: one test runs them as nobody.
setup_file() {
	local now p
	BIN=$(mktemp -d)
	export BIN
	chmod 755 "$BIN"
	now=$(date +%s)
	mkdir -p "$BIN/b"
	cp -a "$DIVERT_BUILD/." "$BIN/b/"
	find "$BIN/b" -type f -exec touch -d "@$now" {} +
	make -s -C "$TOP" install BUILD="$BIN/b" DESTDIR="$BIN/root" PREFIX=/usr >/dev/null
	for p in howto fbsd14 others; do
		${CC:-cc} -std=gnu11 -Wall -Wextra -Werror $(san_flags) $(pc --cflags divert-compat) \
		    -o "$BIN/$p" "$COMPAT/$p.c"
	done
	# As distributions build programs (dpkg-buildflags' hardening).
	${CC:-cc} -std=gnu11 -O2 -D_FORTIFY_SOURCE=2 -Wall -Wextra -Werror $(san_flags) \
	    $(pc --cflags divert-compat) -o "$BIN/fortify" "$COMPAT/fortify.c"
	cp "$COMPAT/craft.py" "$BIN/"
	chmod -R a+rX "$BIN"
}
teardown_file() { [ -n "${BIN:-}" ] && rm -rf "$BIN"; return 0; }

setup() {
	unset DIVERT_MARK DIVERT_PRELOAD	# the default bit, the shim beside divert-run
	hosts_up
}
teardown() { hosts_down; }

# no_rules NS: no divert rule left in NS (the table gone, or without a rule).
no_rules() {
	[ -z "$(ip netns exec "$1" divert-rule list)" ] &&
	    [ "$(divert_table "$1" | grep -ciE 'queue|NFQUEUE')" -eq 0 ]
}

# ended_with PID STATUS FILE...: the background job PID exited with STATUS (FILEs shown).
ended_with() {
	local pid=$1 want=$2 st=0
	shift 2
	wait "$pid" || st=$?
	cat "$@"
	[ "$st" -eq "$want" ]
}

# started FILE WORD: wait (up to 10 s) for a program's stderr to say it is bound.
started() { wait_until 100 grep -q "$2" "$1"; }

# udp_up NS PORT OUT: a UDP echo server in NS on PORT that logs "DATA SOURCE"
# a datagram to OUT and answers "echo DATA".
udp_up() {
	bg "$1" "$3" /dev/null $PY -u -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(2048)
    print(d.decode(), a[0])
    s.sendto(b"echo " + d, a)' "$2"
	wait_until 50 sh -c "ip netns exec $1 ss -Hlun 'sport = :$2' | grep -q ."
}

# udp_ask NS ADDR PORT DATA: send one datagram from NS, print the answer.
udp_ask() {
	ip netns exec "$1" $PY -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(2048)[0].decode())' "$2" "$3" "$4"
}

# counter NS NAME: packets counted by the named counter of table inet cnt.
counter() {
	ip netns exec "$1" nft list counter inet cnt "$2" | awk '$1 == "packets" { print $2 }'
}
counted() { [ "$(counter "$1" "$2")" = "$3" ]; }	# NS NAME N

@test "compat: divert-compat.pc pulls the header in with -include; its numbers are none of Linux's" {
	[ "$(pc --cflags divert-compat | sed 's/ *$//')" = \
	    "-I$BIN/root/usr/include -include divert-compat.h" ]
	cmp "$TOP/lib/divert-compat.h" "$BIN/root/usr/include/divert-compat.h"
	# A BSD program's names, and its own IPPROTO_DIVERT winning without a word.
	cat >"$TMP/names.c" <<-'EOF'
	#include <sys/socket.h>
	#include <netinet/in.h>
	#include <stdio.h>
	_Static_assert(IPPROTO_DIVERT == 258, "FreeBSD's number");
	_Static_assert(PF_DIVERT == AF_DIVERT, "one family");
	_Static_assert(AF_DIVERT != 44 && AF_DIVERT >= AF_MAX, "no Linux family");
	int
	main(void)
	{
		char b[4];
		size_t n = strlcpy(b, "vBC1", sizeof(b));

		n += strlcat(b, "x", sizeof(b));
		printf("%zu %s\n", n, b);
		return 0;
	}
	EOF
	cat >"$TMP/own.c" <<-'EOF'
	#define IPPROTO_DIVERT 254
	_Static_assert(IPPROTO_DIVERT == 254, "the program's own number");
	int main(void) { return 0; }
	EOF
	run ${CC:-cc} -std=gnu11 -Wall -Wextra -Werror $(san_flags) $(pc --cflags divert-compat) \
	    -o "$TMP/names" "$TMP/names.c"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$("$TMP/names")" = "8 vBC" ]
	run ${CC:-cc} -std=gnu11 -Wall -Wextra -Werror $(pc --cflags divert-compat) \
	    -o "$TMP/own" "$TMP/own.c"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# Without the shim, PF_DIVERT opens nothing (it is not AF_XDP's 44).
	run inA "$BIN/fbsd14" 4321 1 1
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "fbsd14: socket: Address family not supported by protocol" ]
}

@test "compat: the HOWTO's program under divert-run --rule 'output icmp' prints and reinjects pings; its rule goes with it" {
	# A counts the requests leaving by vA with ping's mark: given back in
	# place they keep it (a copy would not).
	inA nft -f - <<-EOF
	table inet cnt {
		counter marked {}
		chain post {
			type filter hook postrouting priority 0;
			oifname "vA" icmp type echo-request meta mark 0x42 counter name marked
		}
	}
	EOF
	bg_A "$TMP/h.out" "$TMP/h.err" divert-run --rule 'output icmp' "$BIN/howto" 4321 3
	H=$BG
	started "$TMP/h.err" "waiting for data on port 4321"
	queue_bound "$NS_A" 4321
	run inA divert-rule list
	echo "$output"
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" == "output icmp 4321 "* ]]

	run inA ping -c 3 -i 0.2 -W 2 -m 66 $B4
	echo "$output"
	[ "$status" -eq 0 ]				# reinjected, answered
	[[ "$output" == *"3 packets transmitted, 3 received"* ]]
	[[ "$output" != *"DUP!"* ]]			# taken, not copied

	wait_gone "$H"
	ended_with "$H" 0 "$TMP/h.out" "$TMP/h.err"		# it stops after 3: its status
	[ "$(cat "$TMP/h.out")" = "$(printf '%s %s proto 1 via 0.0.0.0\n%.0s' \
	    $A4 $B4 1 $A4 $B4 2 $A4 $B4 3)" ]
	[ "$(cat "$TMP/h.err")" = "$BIN/howto: waiting for data on port 4321" ]
	[ "$(counter "$NS_A" marked)" = 3 ]		# in place
	no_rules "$NS_A"
	inA ping -c 1 -W 2 $B4				# nothing takes them any more
}

@test "compat: a program killed by SIGKILL takes its rules along; divert-run exits as it did" {
	bg_A "$TMP/h.out" "$TMP/h.err" divert-run --rule 'output icmp' --rule 'output udp' \
	    "$BIN/howto" 4321
	H=$BG
	started "$TMP/h.err" "waiting for data"
	run inA divert-rule list
	echo "$output"
	[ "${#lines[@]}" -eq 2 ]
	inA ping -c 1 -W 2 $B4
	wait_until 50 grep -q "proto 1" "$TMP/h.out"
	signal_comm "$NS_A" howto KILL
	wait_gone "$H"
	st=0
	wait "$H" || st=$?
	[ "$st" -eq 137 ]				# 128 + SIGKILL
	wait_until 50 no_rules "$NS_A"
	no_rules "$NS_A"
	inA ping -c 1 -W 2 $B4

	# Its status, 127 for a program not found, 64 for a bad rule.
	run inA divert-run sh -c 'exit 7'
	[ "$status" -eq 7 ]
	st=0
	inA divert-run "$TMP/nowhere" 2>"$TMP/nf.err" || st=$?
	cat "$TMP/nf.err"
	[ "$st" -eq 127 ]
	grep -q nowhere "$TMP/nf.err"
	run inA timeout 10 divert-run --rule 'sideways icmp' "$BIN/howto" 4321
	echo "$output"
	[ "$status" -eq 64 ]
	[[ "$output" == "divert-run: "* ]]
	no_rules "$NS_A"
}

@test "compat: a program built with -D_FORTIFY_SOURCE=2 (glibc's checked reads) is served the same" {
	# What makes this program different: its reads are the checked ones.
	run nm -D "$BIN/fortify"
	for f in __recvfrom_chk __recv_chk __read_chk; do
		[[ "$output" == *" $f@"* ]]
	done
	bg_A "$TMP/f.out" "$TMP/f.err" divert-run --rule 'output icmp' "$BIN/fortify" 4321 3
	F=$BG
	started "$TMP/f.err" "fortify: bound"
	run inA ping -c 3 -i 0.2 -W 2 $B4
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"3 packets transmitted, 3 received"* ]]
	[[ "$output" != *"DUP!"* ]]
	wait_gone "$F"
	ended_with "$F" 0 "$TMP/f.out" "$TMP/f.err"
	[ "$(cat "$TMP/f.out")" = "$(printf 'recvfrom 84\nrecv 84\nread 84')" ]
	[ "$(cat "$TMP/f.err")" = "fortify: bound" ]
	no_rules "$NS_A"
}

@test "compat: the FreeBSD 14 program takes a forwarded datagram once, sends it on, and the peer answers" {
	router_up
	# B marks the datagram as it comes in and counts it going out by vBC:
	# given back in place, it keeps its mark (a copy would not).
	inB nft -f - <<-EOF
	table inet cnt {
		counter out {}
		counter marked {}
		chain pre {
			type filter hook prerouting priority -300;
			udp dport 7777 meta mark set 0x42
		}
		chain post {
			type filter hook postrouting priority 0;
			oifname "vBC" udp dport 7777 counter name out
			oifname "vBC" udp dport 7777 meta mark 0x42 counter name marked
		}
	}
	EOF
	udp_up "$NS_C" 7777 "$TMP/c.out"
	bg "$NS_B" "$TMP/f.out" "$TMP/f.err" divert-run --rule 'forward udp --dport 7777' \
	    "$BIN/fbsd14" 4321 10 2
	F=$BG
	started "$TMP/f.err" "bound to port 4321"
	run udp_ask "$NS_A" 10.78.0.2 7777 one
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "echo one" ]			# reinjected, answered
	wait_gone "$F"
	ended_with "$F" 0 "$TMP/f.out" "$TMP/f.err"		# 2 s without packets
	# One copy, its in-interface in sin_zero; C got it once (no loop, no tee).
	[ "$(wc -l <"$TMP/f.out")" -eq 2 ]
	[[ "$(sed -n 1p "$TMP/f.out")" == "1 $A4 > 10.78.0.2 proto 17 len 31 addr "*" if vB" ]]
	[ "$(sed -n 2p "$TMP/f.out")" = "count 1" ]
	[ "$(cat "$TMP/f.err")" = "fbsd14: bound to port 4321" ]
	[ "$(cat "$TMP/c.out")" = "one $A4" ]
	[ "$(counter "$NS_B" out)" = 1 ]
	[ "$(counter "$NS_B" marked)" = 1 ]		# in place
	no_rules "$NS_B"
}

@test "compat: the FreeBSD 14 program takes one inbound ping with its interface's address and name; B answers" {
	# B counts the echo replies it sends: one, for one request given back once.
	inB nft -f - <<-EOF
	table inet cnt {
		counter replies {}
		chain out {
			type filter hook output priority 0;
			oifname "vB" icmp type echo-reply counter name replies
		}
	}
	EOF
	bg_B "$TMP/f.out" "$TMP/f.err" divert-run --rule 'input icmp' "$BIN/fbsd14" 4321 10 2
	F=$BG
	started "$TMP/f.err" "bound to port 4321"
	run inA ping -c 1 -W 3 $B4
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"1 packets transmitted, 1 received"* ]]
	[[ "$output" != *"DUP!"* ]]
	wait_gone "$F"
	ended_with "$F" 0 "$TMP/f.out" "$TMP/f.err"
	[ "$(cat "$TMP/f.out")" = "$(printf '1 %s > %s proto 1 len 84 addr %s if vB\ncount 1' \
	    $A4 $B4 $B4)" ]
	[ "$(cat "$TMP/f.err")" = "fbsd14: bound to port 4321" ]
	[ "$(counter "$NS_B" replies)" = 1 ]		# 2 s after: no second copy
}

@test "compat: a Python program's crafted echo goes out with 0.0.0.0 and in with A's address" {
	# B counts the request A sends out (id 0x1111) and A's answer to the one
	# injected inbound (0x2222); A counts that one arriving on vA, its answer
	# leaving by vA, and B's answer to the first.
	inB nft -f - <<-EOF
	table inet cnt {
		counter out_req {}
		counter in_reply {}
		chain in {
			type filter hook input priority 0;
			iifname "vB" ip saddr $A4 ip daddr $B4 icmp type echo-request icmp id 0x1111 counter name out_req
			iifname "vB" ip saddr $A4 ip daddr $B4 icmp type echo-reply icmp id 0x2222 counter name in_reply
		}
	}
	EOF
	inA nft -f - <<-EOF
	table inet cnt {
		counter in_req {}
		counter in_reply {}
		counter out_reply {}
		chain in {
			type filter hook input priority 0;
			iifname "vA" ip saddr $B4 ip daddr $A4 icmp type echo-request icmp id 0x2222 counter name in_req
			iifname "vA" ip saddr $B4 ip daddr $A4 icmp type echo-reply icmp id 0x1111 counter name out_reply
		}
		chain out {
			type filter hook output priority 0;
			oifname "vA" ip saddr $A4 ip daddr $B4 icmp type echo-reply icmp id 0x2222 counter name in_reply
		}
	}
	EOF
	run inA timeout 10 divert-run $PY "$BIN/craft.py" $A4 $B4
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'out 83\nin 83')" ]
	wait_until 50 counted "$NS_B" out_req 1	# out: arrived at B
	wait_until 50 counted "$NS_A" out_reply 1	# and B's answer came back
	wait_until 50 counted "$NS_A" in_req 1		# in: arrived at A on vA
	wait_until 50 counted "$NS_A" in_reply 1	# A answered it, by vA
	wait_until 50 counted "$NS_B" in_reply 1
	for c in "$NS_B out_req" "$NS_B in_reply" "$NS_A in_req" "$NS_A in_reply" "$NS_A out_reply"; do
		echo "$c: $(counter $c)"
		[ "$(counter $c)" = 1 ]			# once each
	done
}

@test "compat: in one program, the sockets that are not divert sockets are libc's" {
	# The reference: without the shim (the divert socket is then a raw socket).
	run inA timeout 20 "$BIN/others" 4321
	echo "$output"
	[ "$status" -eq 0 ]
	grep -v '^divert' <<<"$output" >"$TMP/plain"
	[ "$(grep -c . "$TMP/plain")" -ge 30 ]
	grep -qx "udp recvfrom: 5 'hello' from 127.0.0.1" "$TMP/plain"
	grep -qx "icmp reply: 84 bytes from 127.0.0.1 seq 7" "$TMP/plain"
	grep -qx "raw253 recvfrom: 29 proto 253 'proto 253' from 127.0.0.1" "$TMP/plain"

	for how in divert-run "env LD_PRELOAD=$(shim_preload)"; do
		echo "== $how"
		run inA timeout 20 $how "$BIN/others" 4321
		echo "$output"
		[ "$status" -eq 0 ]
		grep -v '^divert' <<<"$output" | diff -u "$TMP/plain" -
		# The divert socket is one: bound to its port (and the queue with it).
		[ "$(grep '^divert' <<<"$output")" = "$(printf '%s\n' 'divert socket: ok' \
		    'divert bind: ok' 'divert getsockname: ok family 2 port 4321' 'divert close: ok')" ]
	done
}

@test "compat: errors: port 0 EINVAL, a bound port EADDRINUSE, EPERM at socket() when not root" {
	run inA timeout 10 divert-run "$BIN/howto" 0
	echo "$output"
	[ "$status" -eq 2 ]
	[ "$output" = "$BIN/howto: bind: Invalid argument" ]

	bg_A "$TMP/h.out" "$TMP/h.err" divert-run --rule 'output icmp' "$BIN/howto" 4321
	started "$TMP/h.err" "waiting for data"
	run inA divert-run --rule 'output udp' "$BIN/fbsd14" 4321 1 1
	echo "$output"
	[ "$status" -eq 2 ]
	[ "$output" = "fbsd14: bind: Address already in use" ]
	# The first program's rule is there, the second one's is not.
	run inA divert-rule list
	echo "$output"
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" == "output icmp 4321 "* ]]
	run inA ping -c 1 -W 2 $B4			# still served by the first
	[ "$status" -eq 0 ]
	grep -q "proto 1" "$TMP/h.out"

	# Not root: refused at socket(), both kinds (fbsd14's without the shim
	# would be EAFNOSUPPORT, so the shim says it).
	nobody() { inA setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
	run nobody divert-run "$BIN/fbsd14" 4322 1 1
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "fbsd14: socket: Operation not permitted" ]
	run nobody timeout 10 divert-run "$BIN/howto" 4322
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "$BIN/howto: socket: Operation not permitted" ]
	run nobody env LD_PRELOAD="$(shim_preload)" "$BIN/fbsd14" 4322 1 1
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "fbsd14: socket: Operation not permitted" ]
}

@test "compat: root without CAP_NET_ADMIN (a container's root) is refused at socket() with EPERM too" {
	# Root by uid, but without the capability a divert port needs.
	capless() { inA setpriv --bounding-set=-net_admin --inh-caps=-net_admin "$@"; }
	run capless sh -c 'grep CapEff /proc/self/status'
	echo "$output"
	(( (0x${output##*[[:space:]]} >> 12 & 1) == 0 ))	# CAP_NET_ADMIN is bit 12
	run capless timeout 10 divert-run "$BIN/fbsd14" 4321 1 1
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "fbsd14: socket: Operation not permitted" ]
}

@test "compat: a program that binds again, then forks into the background, keeps its port and rules until the daemon exits" {
	# natd's pattern: bind, then daemon(); the first process closes and exits at once.
	cat >"$TMP/daemon.py" <<-'EOF2'
	import os, socket, sys
	s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 258)
	s.bind(("0.0.0.0", 4321))
	s.close()			# bound again: its rules are there already
	s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 258)
	s.bind(("0.0.0.0", 4321))
	if os.fork() > 0:
	    s.close()			# the parent's close leaves the child's port bound
	    sys.exit(0)
	os.setsid()
	for i in range(2):
	    pkt, addr = s.recvfrom(65535)
	    s.sendto(pkt, addr)
	print("daemon done", flush=True)
	EOF2
	bg_A "$TMP/d.out" "$TMP/d.err" divert-run --rule 'output icmp' $PY "$TMP/daemon.py"
	D=$BG
	wait_queue "$NS_A" 4321
	# The first process is gone; divert-run is not, nor the rule.
	wait_until 50 sh -c "[ \$(ip netns pids $NS_A | xargs -r ps -o comm= -p | grep -c python) -eq 1 ]"
	kill -0 "$D"
	run inA divert-rule list
	echo "$output"
	[[ "$output" == "output icmp 4321 "* ]]
	run inA ping -c 2 -i 0.2 -W 2 $B4		# served by the daemon
	echo "$output"
	[[ "$output" == *"2 packets transmitted, 2 received"* ]]
	wait_gone "$D" 100				# the daemon's exit ends divert-run
	ended_with "$D" 0 "$TMP/d.out" "$TMP/d.err"		# the first process's status
	[ "$(cat "$TMP/d.out")" = "daemon done" ]
	no_rules "$NS_A"
}
