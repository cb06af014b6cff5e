#!/bin/sh
# make demo: divert pings in a throwaway network namespace and show them
# with tcpdump.  Only namespaces made here are touched; all are deleted.
set -eu
build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
PATH="$build:$PATH"
A="divert-demo-A-$$" B="divert-demo-B-$$"
tmp=$(mktemp -d)

cleanup() {
	[ -n "${lpid:-}" ] && wait "$lpid" 2>/dev/null
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# Wait (up to 10 s) for the listener to bind port 4321 in A.
wait_listener() {
	i=0
	until ip netns exec "$A" awk '$1 == 4321 { f = 1 } END { exit !f }' \
	    /proc/net/netfilter/nfnetlink_queue 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "listener did not start"; exit 1; }
		sleep 0.1
	done
}

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { echo "A# $*"; ip netns exec "$A" "$@"; }

ip netns add "$A"
ip netns add "$B"
ip link add vA netns "$A" type veth peer name vB netns "$B"
ip -n "$A" addr add 10.77.0.1/24 dev vA
ip -n "$B" addr add 10.77.0.2/24 dev vB
ip -n "$A" link set vA up
ip -n "$B" link set vB up
ip -n "$A" link set lo up

say "Two hosts: A (10.77.0.1) and B (10.77.0.2), in throwaway namespaces."
say "1. A divert rule: A's outgoing ICMP goes to divert port 4321."
run divert-rule add output icmp 4321
run divert-rule list

say "2. A listener on port 4321, its stream read by tcpdump; A pings B 3 times."
echo "A# divert-listen -c 3 4321 | tcpdump -n -r -"
ip netns exec "$A" sh -c 'timeout 10 divert-listen -c 3 4321 | tcpdump -n -r - 2>/dev/null' \
	>"$tmp/shown" 2>"$tmp/listen.err" &
lpid=$!
wait_listener
run ping -c 3 -i 0.2 -W 1 10.77.0.2 || echo "(no replies: the pings were diverted)"
wait "$lpid" || true
lpid=
say "tcpdump saw the diverted pings:"
cat "$tmp/shown"
cat "$tmp/listen.err"

say "3. The interceptor: read, show and reinject. The pings are answered now."
echo "A# divert-listen -c 3 4321 | divert-inject -v"
ip netns exec "$A" sh -c 'timeout 10 divert-listen -c 3 4321 2>/dev/null | divert-inject -v' \
	2>"$tmp/inject.err" &
lpid=$!
wait_listener
run ping -c 3 -i 0.2 -W 1 10.77.0.2
wait "$lpid" || true
lpid=
cat "$tmp/inject.err"

say "4. The rule goes away; pings flow as before."
run divert-rule flush
run ping -c 1 -W 1 10.77.0.2 | grep -E 'bytes from|transmitted'
say "5. A program written for BSD divert sockets, unchanged (the Linux divert
   HOWTO's, tests/compat/howto.c), built with divert-compat.h; divert-run adds
   its rule when it binds and removes it when it exits."
${CC:-cc} -I"$top/lib" -include divert-compat.h -o "$tmp/howto" "$top/tests/compat/howto.c"
echo "A# divert-run --rule 'output icmp' ./howto 4321 3"
ip netns exec "$A" timeout 10 divert-run --rule 'output icmp' "$tmp/howto" 4321 3 \
	>"$tmp/howto.out" 2>/dev/null &
lpid=$!
wait_listener
run ping -c 3 -i 0.2 -W 1 10.77.0.2
wait "$lpid" || true
lpid=
cat "$tmp/howto.out"
run divert-rule list
echo "(no rule left)"
say "Done: namespaces deleted."
