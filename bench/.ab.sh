#!/bin/bash
# make bench: measure the toolkit against the stack alone and against plain
# libnetfilter_queue loops, in throwaway namespaces A and B (veth).  Prints one
# table: median of $RUNS runs with min and max, then the target ratios.
# Usage: bench/run.sh BUILD_DIR      (RUNS=3 DUR=2 by default)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
PATH="$build:$build/bench:$PATH"
RUNS=${RUNS:-3}
DUR=${DUR:-2}
export BATS_TEST_NUMBER=bench
. "$top/tests/bats/helpers.bash"
hosts_up
trap hosts_down EXIT
RES=$TMP/results		# lines: NAME VALUE [NOTE]
PORT=9000 Q=4321

have() { command -v "$1" >/dev/null 2>&1; }
note() { printf '%s\n' "$*" >&2; }

# consumer MODE: start what takes packets from queue Q in A; pid in $CPID.
consumer() {
	case $1 in
	S) CPID= ; return ;;
	R1) bg_A /dev/null "$TMP/c.err" nfqref $Q 1 ;;
	R64) bg_A /dev/null "$TMP/c.err" nfqref $Q 64 ;;
	L) bg_A /dev/null "$TMP/c.err" divert-listen $Q ;;
	Ltee) bg_A /dev/null "$TMP/c.err" divert-listen --tee $Q ;;
	LI) bgsh "$NS_A" "divert-listen $Q 2>$TMP/c.err | divert-inject 2>$TMP/i.err" ;;
	LMI) bgsh "$NS_A" "divert-listen $Q 2>$TMP/c.err | divert-mangle --ttl 5 2>/dev/null | divert-inject 2>$TMP/i.err" ;;
	esac
	CPID=$BG
	wait_queue "$NS_A" $Q || note "bench: queue $Q did not appear for $1"
}

stop_consumer() {
	[ -n "$CPID" ] || return 0
	pkill -TERM -P "$CPID" 2>/dev/null	# the pipeline's members
	kill -TERM "$CPID" 2>/dev/null
	wait_gone "$CPID" 100
	wait "$CPID" 2>/dev/null
	CPID=
}

queue_drops() {
	inA awk -v q=$Q '$1 == q { print $6 + $7 }' /proc/net/netfilter/nfnetlink_queue
}

# flood_run MODE: one run; appends "MODE pps sent received drops" to $RES.raw
flood_run() {
	local mode=$1 sent got drops=0 rate
	rm -f "$TMP/sink.err" "$TMP/c.err"
	bg_B "$TMP/sink.out" "$TMP/sink.err" sink $PORT
	local spid=$BG
	wait_until 50 grep -q ready "$TMP/sink.err"
	consumer "$mode"
	sent=$(inA flood $B4 $PORT "$DUR")
	wait_gone "$spid" 100 || kill "$spid"
	got=$(cat "$TMP/sink.out")
	[ -n "$CPID" ] && drops=$(queue_drops)
	stop_consumer
	if [ "$mode" = L ]; then	# stolen: nothing reaches the sink
		got=$(sed -n 's/.* \([0-9]*\) written.*/\1/p' "$TMP/c.err")
	fi
	rate=$(( ${got:-0} / DUR ))
	echo "$mode $rate $sent ${got:-0} ${drops:-0}" >>"$TMP/raw"
}

# median/min/max of the pps column for MODE
stats() {
	awk -v m="$1" '$1 == m { print $2 }' "$TMP/raw" | sort -n |
	    awk '{ v[NR] = $1 } END { if (NR) printf "%d %d %d", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

loss() {
	awk -v m="$1" '$1 == m { s += $3; g += $4; d += $5 } END {
	    printf "sent %d, received %d, queue drops %d%s", s, g, d,
	    (m != "L" && m != "S" && g < s) ? " (LOST " s - g ")" : "" }' "$TMP/raw"
}

add_rule() { inA divert-rule add output udp $Q --dport $PORT >/dev/null; }

note "bench: UDP flood, $DUR s a run, $RUNS runs a mode"
for mode in L LI; do
	case $mode in
	LI) have divert-inject || { echo "$mode n/a" >>"$TMP/raw"; continue; } ;;
	LMI) { have divert-inject && have divert-mangle; } || { echo "$mode n/a" >>"$TMP/raw"; continue; } ;;
	esac
	inA divert-rule flush
	[ $mode = S ] || add_rule
	for r in $(seq "$RUNS"); do flood_run $mode; done
	note "bench: $mode $(stats $mode)"
done
inA divert-rule flush

inA divert-rule flush
