#!/bin/bash
# make bench: measure the toolkit against the stack alone and against plain
# libnetfilter_queue loops, in throwaway namespaces A and B (veth).  Prints one
# table: median of $RUNS runs with min and max, then the target ratios.
#
# The pipelines run twice: in place (LI, LMI: a pcapng stream, the listener
# holds while divert-inject is joined and the kernel gets its own packets
# back) and as copies (LIc, LMIc: a classic pcap stream, which carries no
# port nor holder, so the injector never joins, the listener steals and every
# packet is sent again as a copy, as before in-place reinjection).
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

# The option that makes a writer's stream classic pcap (copies); none from a
# build older than the pcapng stream, whose pipelines always copy.
PCAP=
divert-listen --help 2>/dev/null | grep -Eq '^ +-F[, ]' && PCAP="-F pcap"
# --gso (the kernel queues TCP super-packets, the listener completes their
# checksums): a TCP row of its own when this build's listener has it.
GSO=
divert-listen --help 2>/dev/null | grep -Eq -- '--gso([^-a-z]|$)' && GSO=y

# consumer MODE: start what takes packets from queue Q in A; pid in $CPID.
consumer() {
	case $1 in
	S) CPID= ; return ;;
	R1) bg_A /dev/null "$TMP/c.err" nfqref $Q 1 ;;
	R64) bg_A /dev/null "$TMP/c.err" nfqref $Q 64 ;;
	R1P) bg_A /dev/null "$TMP/c.err" nfqref $Q pipe ;;
	L) bg_A /dev/null "$TMP/c.err" divert-listen $Q ;;
	Ltee) bg_A /dev/null "$TMP/c.err" divert-listen --tee $Q ;;
	LI) bgsh "$NS_A" "divert-listen $Q 2>$TMP/c.err | divert-inject 2>$TMP/i.err" ;;
	LIg) bgsh "$NS_A" "divert-listen --gso $Q 2>$TMP/c.err | divert-inject 2>$TMP/i.err" ;;
	LMI) bgsh "$NS_A" "divert-listen $Q 2>$TMP/c.err | divert-mangle --ttl 5 2>/dev/null | divert-inject 2>$TMP/i.err" ;;
	LIc) bgsh "$NS_A" "divert-listen $PCAP $Q 2>$TMP/c.err | divert-inject 2>$TMP/i.err" ;;
	LMIc) bgsh "$NS_A" "divert-listen $PCAP $Q 2>$TMP/c.err | divert-mangle $PCAP --ttl 5 2>/dev/null | divert-inject 2>$TMP/i.err" ;;
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

# in_place: how many packets the last pipeline's injector gave back in place
# (its "N in place" at exit; 0 when it says nothing, as a copying one does).
in_place() {
	local n
	n=$(grep -o '[0-9][0-9]* in place' "$TMP/i.err" 2>/dev/null | head -n 1 | cut -d' ' -f1)
	echo "${n:-0}"
}

# flood_run MODE: one run; appends "MODE pps sent received drops in-place" to $TMP/raw
flood_run() {
	local mode=$1 sent got drops=0 rate
	rm -f "$TMP/sink.err" "$TMP/c.err" "$TMP/i.err"
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
	echo "$mode $rate $sent ${got:-0} ${drops:-0} $(in_place)" >>"$TMP/raw"
}

# median/min/max of the pps column for MODE
stats() {
	awk -v m="$1" '$1 == m { print $2 }' "$TMP/raw" | sort -n |
	    awk '{ v[NR] = $1 } END { if (NR) printf "%d %d %d", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

loss() {	# for the pipelines, how many went back in place too
	awk -v m="$1" '$1 == m { s += $3; g += $4; d += $5; p += $6 } END {
	    printf "sent %d, received %d, queue drops %d%s%s", s, g, d,
	    (m != "L" && m != "S" && g < s) ? " (LOST " s - g ")" : "",
	    (m ~ /^LM?Ic?$/) ? ", in place " p : "" }' "$TMP/raw"
}

add_rule() { inA divert-rule add output udp $Q --dport $PORT >/dev/null; }

note "bench: UDP flood, $DUR s a run, $RUNS runs a mode"
MODES="S R1 R64 L Ltee LI LMI LIc LMIc"
for mode in $MODES; do
	case $mode in
	LI|LIc) have divert-inject || { echo "$mode n/a" >>"$TMP/raw"; continue; } ;;
	LMI|LMIc) { have divert-inject && have divert-mangle; } || { echo "$mode n/a" >>"$TMP/raw"; continue; } ;;
	esac
	inA divert-rule flush
	[ $mode = S ] || add_rule
	for r in $(seq "$RUNS"); do flood_run $mode; done
	note "bench: $mode $(stats $mode)"
done
inA divert-rule flush

# RTT: 100 pings 10 ms apart, median: direct, through the R1 accept loop,
# through its two-process form (nfqref pipe: a reader writes each packet into
# a pipe, a second process gives the verdict, the floor of any two-stage
# pipeline), and through listen | inject in place and as copies.
rtt_median() {
	inA ping -c 100 -i 0.01 -q -W 1 $B4 >/dev/null 2>&1
	inA ping -c 100 -i 0.01 -W 1 $B4 2>/dev/null | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' |
	    sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%d", v[int((NR + 1) / 2)] * 1000 }'
}
RTT0= RTT1=
if have divert-inject; then
	for r in $(seq "$RUNS"); do echo "RTT0 $(rtt_median)" >>"$TMP/rtt"; done
	inA divert-rule add output icmp $Q >/dev/null
	CPID=; consumer R1	# the floor: any queue consumer's wake-up
	for r in $(seq "$RUNS"); do echo "RTTR $(rtt_median)" >>"$TMP/rtt"; done
	stop_consumer
	consumer R1P	# the floor of two processes: a second wake-up a packet
	for r in $(seq "$RUNS"); do echo "RTTRP $(rtt_median)" >>"$TMP/rtt"; done
	stop_consumer
	consumer LI
	for r in $(seq "$RUNS"); do echo "RTT1 $(rtt_median)" >>"$TMP/rtt"; done
	stop_consumer
	consumer LIc
	for r in $(seq "$RUNS"); do echo "RTT1c $(rtt_median)" >>"$TMP/rtt"; done
	stop_consumer
	inA divert-rule flush
fi

# TCP: 50 MB A -> B, direct and through listen | inject in place (and with
# listen --gso when the listener has it) and as copies.
tcp_time() {
	bg_B /dev/null /dev/null socat -u TCP-LISTEN:5001,reuseaddr OPEN:/dev/null
	wait_until 50 sh -c "ip netns exec $NS_B ss -tln | grep -q :5001"
	local t0 t1
	t0=$(date +%s%N)
	inA timeout 60 sh -c "head -c 50000000 /dev/zero | socat -u - TCP:$B4:5001"
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000000 ))
}
if have divert-inject; then
	for r in $(seq "$RUNS"); do echo "TCP0 $(tcp_time)" >>"$TMP/tcp"; done
	inA divert-rule add output tcp $Q >/dev/null
	inA divert-rule add input tcp $Q >/dev/null
	CPID=; consumer LI
	for r in $(seq "$RUNS"); do echo "TCP1 $(tcp_time)" >>"$TMP/tcp"; done
	stop_consumer
	if [ -n "$GSO" ]; then
		consumer LIg
		for r in $(seq "$RUNS"); do echo "TCP1g $(tcp_time)" >>"$TMP/tcp"; done
		stop_consumer
	fi
	consumer LIc
	for r in $(seq "$RUNS"); do echo "TCP1c $(tcp_time)" >>"$TMP/tcp"; done
	stop_consumer
	inA divert-rule flush
fi

# Offline: packets/s through divert-mangle and tcprewrite on the same capture.
mkpcap packets 1000000 "$TMP/p.pcap"
mkpcap fragments 1000000 "$TMP/f.pcap"
mkpcap shuffled 40 "$TMP/s.pcap"	# 40 x 8190 8-byte fragments, interleaved, shuffled
secs() {	# secs CMD...: wall time in ms, output discarded
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000000 ))
}
for r in $(seq "$RUNS"); do
	# Both write to /dev/null: the tools' own work, not the file system's.
	have divert-mangle && echo "MANGLE $(secs sh -c "divert-mangle --ttl 5 <$TMP/p.pcap >/dev/null")" >>"$TMP/off"
	echo "TCPREWRITE $(secs tcprewrite --ttl=5 --fixcsum -i "$TMP/p.pcap" -o /dev/null)" >>"$TMP/off"
	if have divert-defrag; then
		echo "DEFRAG $(secs sh -c "divert-defrag <$TMP/f.pcap >/dev/null")" >>"$TMP/off"
		/usr/bin/time -f '%M' -o "$TMP/rss" divert-defrag <"$TMP/f.pcap" >/dev/null 2>&1
		echo "DEFRAGRSS $(cat "$TMP/rss")" >>"$TMP/off"
		# 327600 fragments held at once: 42 MB of pool
		echo "DEFRAGSHUF $(secs sh -c "divert-defrag --overlap first --max-memory 64M <$TMP/s.pcap >/dev/null")" >>"$TMP/off"
	fi
	# Every impairment at once on the same 1M records (1 us apart: 576 Mbit/s
	# offered to a 1 Gbit/s rate, ~12,000 held by the delay at a time).
	if have divert-impair; then
		ms=$(secs sh -c "divert-impair --seed 1 --loss 1% --loss-burst 0.1%,30% \
		    --delay 10ms --jitter 2ms --reorder 1% --duplicate 1% --rate 1gbit \
		    --queue 20000 --corrupt 1% --truncate 64 <$TMP/p.pcap >/dev/null")
		echo "IMPAIR $(( 1000000 * 1000 / (ms > 0 ? ms : 1) ))" >>"$TMP/off"
	fi
done

med() {	# med FILE KEY: median of KEY's values
	awk -v k="$2" '$1 == k { print $2 }' "$1" 2>/dev/null | sort -n |
	    awk '{ v[NR] = $1 } END { if (NR) printf "%d %d %d", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

# ---- the table ----
printf '\n%-54s %12s %12s %12s\n' "divert bench ($(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r))" median min max
row() { printf '%-54s %12s %12s %12s\n' "$1" ${2:-n/a} ${3:-} ${4:-}; }
for mode in $MODES; do
	case $mode in
	S) label="S    stack alone (pps)" ;;
	R1) label="R1   libnetfilter_queue, verdict/packet" ;;
	R64) label="R64  libnetfilter_queue, batch of 64" ;;
	L) label="L    divert-listen >/dev/null (stolen)" ;;
	Ltee) label="Ltee divert-listen --tee" ;;
	LI) label="LI   listen | inject (in place)" ;;
	LMI) label="LMI  listen | mangle --ttl 5 | inject (in place)" ;;
	LIc) label="LIc  listen -F pcap | inject (copies)" ;;
	LMIc) label="LMIc listen -F pcap | mangle --ttl 5 | inject (copies)" ;;
	esac
	row "$label" $(stats $mode)
	grep -q "^$mode n/a" "$TMP/raw" || printf '     %s\n' "$(loss $mode)"
done
row "RTT  ping median, direct (us)" $(med "$TMP/rtt" RTT0)
row "RTT  ping median, R1 accept loop (us)" $(med "$TMP/rtt" RTTR)
row "RTT  ping median, R1 over a pipe, 2 processes (us)" $(med "$TMP/rtt" RTTRP)
row "RTT  ping median, listen | inject, in place (us)" $(med "$TMP/rtt" RTT1)
row "RTT  ping median, listen | inject, copies (us)" $(med "$TMP/rtt" RTT1c)
row "TCP  50 MB direct (ms)" $(med "$TMP/tcp" TCP0)
row "TCP  50 MB listen | inject, in place (ms)" $(med "$TMP/tcp" TCP1)
row "TCP  50 MB listen --gso | inject, in place (ms)" $(med "$TMP/tcp" TCP1g)
row "TCP  50 MB listen | inject, copies (ms)" $(med "$TMP/tcp" TCP1c)
row "OFF  divert-mangle --ttl 5, 1M pkts (ms)" $(med "$TMP/off" MANGLE)	# to /dev/null
row "OFF  tcprewrite --ttl=5 --fixcsum (ms)" $(med "$TMP/off" TCPREWRITE)
row "OFF  divert-defrag, 1M fragments (ms)" $(med "$TMP/off" DEFRAG)
row "OFF  divert-defrag, 40x8190 shuffled (ms)" $(med "$TMP/off" DEFRAGSHUF)
row "OFF  divert-defrag peak RSS (KiB)" $(med "$TMP/off" DEFRAGRSS)
row "OFF  divert-impair, all impairments, 1M (records/s)" $(med "$TMP/off" IMPAIR)

# ratio NAME A B TARGET OP: A/B against a target; OP info: A/B alone, a
# reference with no target.
ratio() {
	awk -v n="$1" -v a="$2" -v b="$3" -v t="$4" -v op="$5" 'BEGIN {
	    if (a == "" || b == "" || b == 0) { printf "%-34s %8s\n", n, "n/a"; exit }
	    r = a / b
	    if (op == "info") { printf "%-34s %8.2f   (reference)\n", n, r; exit }
	    ok = (op == ">=") ? r >= t : r <= t
	    printf "%-34s %8.2f   target %s %s  %s\n", n, r, op, t, ok ? "met" : "NOT MET" }'
}
m() { stats "$1" | cut -d' ' -f1; }
mo() { med "$1" "$2" | cut -d' ' -f1; }
echo
echo "Ratios"
ratio "L / S" "$(m L)" "$(m S)" 0.85 ">="
ratio "LI / S" "$(m LI)" "$(m S)" 0.50 ">="
ratio "LI / R1" "$(m LI)" "$(m R1)" 1.5 ">="
ratio "LI / R64 (in place)" "$(m LI)" "$(m R64)" 0.85 ">="
ratio "LMI / S" "$(m LMI)" "$(m S)" 0.45 ">="
ratio "LIc / S (copies)" "$(m LIc)" "$(m S)" 0.50 ">="
ratio "LMIc / S (copies)" "$(m LMIc)" "$(m S)" 0.45 ">="
r0=$(mo "$TMP/rtt" RTT0) r1=$(mo "$TMP/rtt" RTT1) rr=$(mo "$TMP/rtt" RTTR) rp=$(mo "$TMP/rtt" RTTRP)
[ -n "$r0" ] && [ -n "$r1" ] && ratio "RTT added (us, / 1)" "$((r1 - r0))" 1 100 "<="
# in place adds at most 1.5 times what any queue consumer's wake-up adds
[ -n "$r0" ] && [ -n "$r1" ] && [ -n "$rr" ] &&
    ratio "RTT added, in place / R1" "$((r1 - r0))" "$((rr - r0))" 1.5 "<="
# what a second process's wake-up costs on this machine: no target, the floor
# under the one above
[ -n "$r0" ] && [ -n "$rp" ] && [ -n "$rr" ] &&
    ratio "RTT added, 2-process floor / R1" "$((rp - r0))" "$((rr - r0))" "" info
ratio "TCP LI speed / direct" "$(mo "$TMP/tcp" TCP0)" "$(mo "$TMP/tcp" TCP1)" 0.8 ">="
ratio "TCP LI --gso speed / direct" "$(mo "$TMP/tcp" TCP0)" "$(mo "$TMP/tcp" TCP1g)" 0.8 ">="
ratio "TCP LIc speed / direct (copies)" "$(mo "$TMP/tcp" TCP0)" "$(mo "$TMP/tcp" TCP1c)" 0.5 ">="
ratio "mangle speed / tcprewrite" "$(mo "$TMP/off" TCPREWRITE)" "$(mo "$TMP/off" MANGLE)" 3 ">="
d=$(mo "$TMP/off" DEFRAG)
[ -n "$d" ] && ratio "defrag Mfragments/s" 1000 "$d" 1 ">="
d=$(mo "$TMP/off" DEFRAGSHUF)
[ -n "$d" ] && ratio "defrag shuffled Mfragments/s" 327.6 "$d" 1 ">="
