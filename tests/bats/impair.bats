#!/usr/bin/env bats
# divert-impair: the models offline, on 100,000-packet captures whose
# statistics an independent reader checks (tests/impair/flows.py: its own
# pcap and pcapng readers), and live through the kernel in namespaces: ping
# RTTs, TCP transfers, per-flow loss.

load helpers

PY=/usr/bin/python3
HERE="$BATS_TEST_DIRNAME"
N=100000

setup() { TMP=$(mktemp -d); }
teardown() { hosts_down; }

flows() { $PY "$HERE/../impair/flows.py" "$@"; }
# val KEY "STATS LINE": one value of a flows.py stats line
val() { awk -v k="$1" '{ for (i = 1; i < NF; i += 2) if ($i == k) print $(i + 1) }' <<<"$2"; }
# within X LO HI: LO <= X <= HI (decimals)
within() {
	echo "within: $1 in [$2, $3]?"
	awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'
}
calc() { awk "BEGIN { print $* }"; }
# big: the 100,000-packet capture (1 ms apart, 100 bytes, every 10th to port 53)
big() { [ -f "$TMP/big.pcap" ] || flows gen "$TMP/big.pcap" $N --dns-every 10; }

# pipeline NS CMDLINE: a pipeline in NS in the background.
pipeline() { bgsh "$1" "$2"; PIPE=$BG; }
stop() {
	signal_comm "$1" divert-listen INT
	wait_gone "$PIPE" 100
}
# rtts FILE: the RTTs (ms) of a ping's output, one a line
rtts() { sed -n 's/.*time=\([0-9.]*\) ms/\1/p' "$1"; }
# pct P <NUMBERS: the P-th percentile (nearest rank)
pct() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] }'; }
# sd <NUMBERS: the standard deviation
sd() { awk '{ s += $1; q += $1 * $1; n++ } END { m = s / n; print sqrt(q / n - m * m) }'; }

# ---- offline ---------------------------------------------------------------

@test "impair offline: --loss 5% on 100,000 packets loses 5% (+-0.5 points), counted, the rest in order and intact" {
	big
	divert-impair -v --seed 1 --loss 5% <"$TMP/big.pcap" >"$TMP/o.pcapng" 2>"$TMP/e"
	cat "$TMP/e"
	grep -q 'offline, seed 1$' "$TMP/e"
	s=$(flows stats "$TMP/o.pcapng" --sent $N)
	echo "$s"
	lost=$(val lost "$s")
	within "$(calc "$lost / $N")" 0.045 0.055
	grep -q "$N read, $((N - lost)) written; 0 passed untouched" "$TMP/e"
	grep -q "$lost dropped: $lost lost, 0 lost in bursts, 0 queue full" "$TMP/e"
	[ "$(val duplicates "$s")" -eq 0 ]
	[ "$(val reordered "$s")" -eq 0 ]
	[ "$(val badsum "$s")" -eq 0 ]
	[ "$(val in_order "$s")" -eq 1 ]
	# tshark reads the same number of packets.
	[ "$(tshark -r "$TMP/o.pcapng" 2>/dev/null | wc -l)" -eq $((N - lost)) ]
}

@test "impair offline: --loss-burst 1%,25% (Gilbert-Elliott): mean burst 4 packets (1/R), loss 1/26 of the packets" {
	big
	divert-impair --seed 2 --loss-burst 1%,25% <"$TMP/big.pcap" >"$TMP/o.pcapng" 2>"$TMP/e"
	cat "$TMP/e"
	s=$(flows stats "$TMP/o.pcapng" --sent $N)
	echo "$s"
	within "$(val mean_burst "$s")" 3.6 4.4
	within "$(calc "$(val lost "$s") / $N")" 0.030 0.047	# P / (P + R) = 0.0385
	grep -q "$(val lost "$s") lost in bursts" "$TMP/e"
	# Independent loss makes bursts of 1/(1-p): the burst model is not that.
	divert-impair --seed 2 --loss 3.85% <"$TMP/big.pcap" >"$TMP/i.pcapng" 2>/dev/null
	within "$(val mean_burst "$(flows stats "$TMP/i.pcapng" --sent $N)")" 1 1.1
}

@test "impair offline: --duplicate 1% and --reorder 2% rates within tolerance; nothing lost" {
	big
	divert-impair --seed 3 --duplicate 1% <"$TMP/big.pcap" >"$TMP/d.pcapng" 2>"$TMP/e"
	cat "$TMP/e"
	s=$(flows stats "$TMP/d.pcapng" --sent $N)
	echo "$s"
	within "$(calc "$(val duplicates "$s") / $N")" 0.0085 0.0115
	[ "$(val lost "$s")" -eq 0 ]
	[ "$(val reordered "$s")" -eq 0 ]
	grep -q "$(val duplicates "$s") duplicated" "$TMP/e"

	divert-impair --seed 3 --reorder 2% <"$TMP/big.pcap" >"$TMP/r.pcapng" 2>"$TMP/e"
	cat "$TMP/e"
	s=$(flows stats "$TMP/r.pcapng" --sent $N)
	echo "$s"
	within "$(calc "$(val reordered "$s") / $N")" 0.0175 0.0225
	[ "$(val lost "$s")" -eq 0 ]
	[ "$(val duplicates "$s")" -eq 0 ]
	[ "$(val in_order "$s")" -eq 1 ]		# time stamps rewritten: still in time order
	# A gap of 3: a packet held back falls 3 behind (its number 3 below the one before it).
	divert-impair --seed 3 --reorder 1%,3 -F pcap <"$TMP/big.pcap" >"$TMP/r3.pcap" 2>/dev/null
	run tshark_fields "$TMP/r3.pcap" udp.srcport
	[ "$status" -eq 0 ]
	printf '%s\n' "${lines[@]}" | awk '{ p = $1 - 40000 } NR > 1 && p < prev { d[prev - p]++ } { prev = p }
	    END { for (k in d) print k, d[k] }' | sort -n >"$TMP/gaps"
	cat "$TMP/gaps"
	[ "$(awk '$1 == 3 { n = $2 } END { print n + 0 }' "$TMP/gaps")" -gt 800 ]
}

@test "impair offline: --rate 400kbit: never more than rate x 100 ms + the burst in any 100 ms window; tail drops counted; queue bound" {
	big
	# 800 kbit/s offered (100-byte packets each ms) to a 400 kbit/s link.
	divert-impair --seed 4 --rate 400kbit --queue 500 <"$TMP/big.pcap" >"$TMP/o.pcapng" 2>"$TMP/e"
	cat "$TMP/e"
	s=$(flows stats "$TMP/o.pcapng" --sent $N --window-us 100000)
	echo "$s"
	[ "$(val window_bytes "$s")" -le $((400000 / 8 / 10 + 1500)) ]
	[ "$(val in_order "$s")" -eq 1 ]
	# Over the whole run: the rate itself (within 1%).
	secs=$(calc "($(val last_us "$s") - $(val first_us "$s")) / 1e6")
	within "$(calc "$(val packets "$s") * 100 * 8 / $secs")" 396000 404000
	lost=$(val lost "$s")
	[ "$lost" -gt 45000 ]
	grep -q "$lost dropped: 0 lost, 0 lost in bursts, $lost queue full; at most 500 held at once" "$TMP/e"
	# In bytes: --queue 5000B holds 50 of these packets at most.
	divert-impair --seed 4 --rate 400kbit --queue 5000B <"$TMP/big.pcap" 2>"$TMP/e" >/dev/null
	grep -q 'at most 50 held at once' "$TMP/e"
}

@test "impair offline: the same input and seed give the same output byte for byte (every impairment); another seed does not" {
	big
	all="--loss 2% --loss-burst 0.5%,30% --delay 40ms --jitter 10ms --distribution normal
	    --reorder 2% --duplicate 1% --rate 1mbit --burst 3000 --queue 200 --corrupt 1%
	    --truncate 90"
	divert-impair --seed 7 $all <"$TMP/big.pcap" >"$TMP/a.pcapng" 2>"$TMP/ea"
	divert-impair --seed 7 $all -r "$TMP/big.pcap" -w "$TMP/b.pcapng" 2>"$TMP/eb"
	cat "$TMP/ea"
	cmp "$TMP/a.pcapng" "$TMP/b.pcapng"
	cmp "$TMP/ea" "$TMP/eb"
	divert-impair --seed 8 $all <"$TMP/big.pcap" >"$TMP/c.pcapng" 2>/dev/null
	run cmp -s "$TMP/a.pcapng" "$TMP/c.pcapng"
	[ "$status" -eq 1 ]
	# The choices of one impairment do not move when another is added.
	divert-impair --seed 7 --loss 5% -F pcap <"$TMP/big.pcap" >"$TMP/l1.pcap" 2>/dev/null
	divert-impair --seed 7 --loss 5% --duplicate 3% --delay 5ms -F pcap <"$TMP/big.pcap" \
	    >"$TMP/l2.pcap" 2>/dev/null
	[ "$(tshark_fields "$TMP/l1.pcap" ip.id | sort -u | md5sum)" = \
	    "$(tshark_fields "$TMP/l2.pcap" ip.id | sort -u | md5sum)" ]
}

@test "impair offline: time stamps are the departures: --delay 40ms adds 40 ms to each; jitter spread as asked (uniform, normal)" {
	flows gen "$TMP/in.pcap" 2000 --interval-us 100000
	divert-impair --delay 40ms -F pcap <"$TMP/in.pcap" >"$TMP/o.pcap" 2>/dev/null
	paste <(tshark_fields "$TMP/in.pcap" frame.time_epoch) <(tshark_fields "$TMP/o.pcap" frame.time_epoch) |
	    awk '{ d = $2 - $1; if (d < 0.039999 || d > 0.040001) bad++ } END { exit bad > 0 }'
	# 100 ms apart: jitter never has to wait for the packet before (in order).
	for dist in uniform normal; do
		divert-impair --seed 5 --delay 40ms --jitter 10ms --distribution $dist -F pcap \
		    <"$TMP/in.pcap" >"$TMP/o.pcap" 2>/dev/null
		paste <(tshark_fields "$TMP/in.pcap" frame.time_epoch) \
		    <(tshark_fields "$TMP/o.pcap" frame.time_epoch) | awk '{ print ($2 - $1) * 1000 }' >"$TMP/d"
		m=$(awk '{ s += $1 } END { print s / NR }' "$TMP/d")
		echo "$dist: mean $m, sd $(sd <"$TMP/d"), min $(pct 0 <"$TMP/d"), max $(pct 100 <"$TMP/d")"
		within "$m" 39.5 40.5
		if [ $dist = uniform ]; then
			within "$(sd <"$TMP/d")" 5.4 6.2		# 10 / sqrt(3) = 5.77
			within "$(pct 0 <"$TMP/d")" 30 31
			within "$(pct 100 <"$TMP/d")" 49 50
		else
			within "$(sd <"$TMP/d")" 9.3 10.7
		fi
	done
}

@test "impair offline: --corrupt flips one bit of the payload (checksum then wrong, or fixed); --truncate cuts to N with a right IP header" {
	flows gen "$TMP/in.pcap" 1000
	divert-impair --seed 6 --corrupt 100% -F pcap <"$TMP/in.pcap" >"$TMP/c.pcap" 2>"$TMP/e"
	cat "$TMP/e"
	grep -q '1000 corrupted' "$TMP/e"
	s=$(flows stats "$TMP/c.pcap")
	[ "$(val badsum "$s")" -eq 1000 ]
	# One bit each, never in the IP header (bytes 0-19).
	flows bitdiff "$TMP/in.pcap" "$TMP/c.pcap" >"$TMP/diff"
	cat "$TMP/diff"
	grep -q '^1000 packets, 1000 with one bit flipped, 0 otherwise, 0 in the IP header$' "$TMP/diff"
	divert-impair --seed 6 --corrupt 100% --fix-checksums -F pcap <"$TMP/in.pcap" >"$TMP/f.pcap" 2>/dev/null
	[ "$(val badsum "$(flows stats "$TMP/f.pcap")")" -eq 0 ]

	divert-impair --truncate 60 -F pcap <"$TMP/in.pcap" >"$TMP/t.pcap" 2>"$TMP/e"
	grep -q '1000 truncated' "$TMP/e"
	[ "$(tshark_fields "$TMP/t.pcap" ip.len frame.len | sort -u)" = "$(printf '60\t60')" ]
	[ "$(tshark -r "$TMP/t.pcap" -o ip.check_checksum:TRUE -T fields -e ip.checksum.status 2>/dev/null | sort -u)" = 1 ]	# good
}

@test "impair offline: -f 'udp port 53' --loss 100% drops DNS only; every other record passes byte for byte, its time kept" {
	big
	divert-impair -f 'udp port 53' --loss 100% -F pcap <"$TMP/big.pcap" >"$TMP/o.pcap" 2>"$TMP/e"
	cat "$TMP/e"
	grep -q "$N read, 90000 written; 90000 passed untouched" "$TMP/e"
	grep -q '10000 dropped: 10000 lost' "$TMP/e"
	[ "$(val dns "$(flows stats "$TMP/o.pcap")")" -eq 0 ]
	[ "$(tcpdump -nn -tt -x -r "$TMP/o.pcap" 2>/dev/null | md5sum)" = \
	    "$(tcpdump -nn -tt -x -r "$TMP/big.pcap" 'not udp port 53' 2>/dev/null | md5sum)" ]
	# Groups: the first match wins; the options before any -f are for the rest.
	divert-impair --delay 10ms -f 'udp port 53' --loss 100% -f udp --duplicate 100% -F pcap \
	    <"$TMP/big.pcap" >"$TMP/g.pcap" 2>"$TMP/e"
	cat "$TMP/e"
	grep -q "$N read, 180000 written; 0 passed untouched, 0 delayed, 0 reordered, 90000 duplicated" "$TMP/e"
	divert-impair --delay 10ms -f 'udp port 53' --loss 100% <"$TMP/big.pcap" >/dev/null 2>"$TMP/e"
	grep -q "$N read, 90000 written; 0 passed untouched, 90000 delayed" "$TMP/e"
}

@test "impair: bad command lines exit 64 with one line naming the tool; an empty stream is an empty stream" {
	flows gen "$TMP/one.pcap" 1
	for bad in "--loss 150%" "--loss x" "--jitter 5ms" "--delay 5ms --distribution normal" \
	    "--delay 2h" "--rate 8mbitt" "--burst 3000" "--loss-burst 5%" "--loss-burst 5%,0" \
	    "--reorder 2%,0" "--queue 0" "--truncate 0" "--seed -1" "-f udp" "-f 'udp port' --loss 1%" \
	    "--nonsense" "extra"; do
		run sh -c "divert-impair $bad <$TMP/one.pcap"
		echo "$bad -> $status: $output"
		[ "$status" -eq 64 ]
		[[ "${lines[0]}" == divert-impair:* ]]
	done
	flows gen "$TMP/none.pcap" 0
	run divert-impair --loss 50% -r "$TMP/none.pcap" -w "$TMP/o.pcapng"
	[ "$status" -eq 0 ]
	[ "$(tshark -r "$TMP/o.pcapng" 2>/dev/null | wc -l)" -eq 0 ]
}

# ---- live ------------------------------------------------------------------

@test "impair live: ping through listen | impair --delay 20ms | inject: median RTT 20 ms above the direct one (+-0.5 ms), p99 within 2 ms of that" {
	hosts_up
	inA ping -c 20 -i 0.01 -q $B4 >/dev/null		# neighbours known, caches warm
	inA ping -c 200 -i 0.02 $B4 >"$TMP/direct"
	pipeline "$NS_A" "divert-listen --rule 'output icmp -d $B4' 4400 2>$TMP/l.err |
	    divert-impair -v --delay 20ms 2>$TMP/m.err | divert-inject 2>$TMP/i.err"
	P1=$PIPE
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	inA ping -c 300 -i 0.03 $B4 >"$TMP/slow"
	stop "$NS_A"
	wait_gone "$P1" 100
	cat "$TMP/l.err" "$TMP/m.err" "$TMP/i.err"
	d50=$(rtts "$TMP/direct" | pct 50)
	echo "direct: median $d50 ms"
	echo "delayed: p1 $(rtts "$TMP/slow" | pct 1), median $(rtts "$TMP/slow" | pct 50), p90 $(rtts "$TMP/slow" | pct 90), p99 $(rtts "$TMP/slow" | pct 99)"
	[ "$(rtts "$TMP/slow" | wc -l)" -eq 300 ]
	grep -q 'live, seed' "$TMP/m.err"
	within "$(calc "$(rtts "$TMP/slow" | pct 50) - $d50")" 19.5 20.5
	within "$(calc "$(rtts "$TMP/slow" | pct 1) - $d50")" 19 21		# none early
	within "$(calc "$(rtts "$TMP/slow" | pct 99) - $d50")" 18 22
	grep -q '300 read, 300 written; 0 passed untouched, 300 delayed' "$TMP/m.err"
	grep -q '300 in place' "$TMP/i.err"		# the kernel's own packets, 20 ms later
}

@test "impair live: --delay 20ms --jitter 5ms: the RTTs spread as a uniform 15..25 ms (sd 2.9 ms, quartiles 5 ms apart)" {
	hosts_up
	inA ping -c 20 -i 0.01 -q $B4 >/dev/null
	inA ping -c 100 -i 0.02 $B4 >"$TMP/direct"
	pipeline "$NS_A" "divert-listen --rule 'output icmp' 4400 2>$TMP/l.err |
	    divert-impair --delay 20ms --jitter 5ms 2>$TMP/m.err | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	inA ping -c 300 -i 0.03 $B4 >"$TMP/slow"	# 30 ms apart: none waits for the one before
	stop "$NS_A"
	cat "$TMP/m.err"
	d50=$(rtts "$TMP/direct" | pct 50)
	rtts "$TMP/slow" >"$TMP/r"
	echo "p1 $(pct 1 <"$TMP/r") p25 $(pct 25 <"$TMP/r") p50 $(pct 50 <"$TMP/r") p75 $(pct 75 <"$TMP/r") p99 $(pct 99 <"$TMP/r") sd $(sd <"$TMP/r")"
	[ "$(wc -l <"$TMP/r")" -eq 300 ]
	within "$(sd <"$TMP/r")" 2.4 3.6
	within "$(calc "$(pct 75 <"$TMP/r") - $(pct 25 <"$TMP/r")")" 4 6
	within "$(calc "$(pct 50 <"$TMP/r") - $d50")" 19 21
	within "$(calc "$(pct 1 <"$TMP/r") - $d50")" 14.5 16.5
}

# serve NS FILE PORT: serve FILE once on TCP PORT in NS.
serve() {
	bg "$1" /dev/null "$TMP/serve.err" socat -u TCP-LISTEN:"$3",reuseaddr OPEN:"$2",creat
	wait_until 50 sh -c "ip netns exec $1 ss -Hltn 'sport = :$3' | grep -q ."
}

@test "impair live: a TCP transfer completes intact through --loss 1% --delay 10ms" {
	hosts_up
	head -c 3000000 /dev/urandom >"$TMP/data"
	pipeline "$NS_A" "divert-listen --rule 'output tcp' 4400 2>$TMP/l.err |
	    divert-impair --loss 1% --delay 10ms 2>$TMP/m.err | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	serve "$NS_B" "$TMP/got" 5001
	inA timeout 120 socat -u OPEN:"$TMP/data" TCP:$B4:5001
	wait_gone "$BG" 100
	stop "$NS_A"
	cat "$TMP/l.err" "$TMP/m.err" "$TMP/i.err"
	[ "$(sha256sum <"$TMP/data")" = "$(sha256sum <"$TMP/got")" ]
	lost=$(sed -En 's/.* dropped: ([0-9]+) lost,.*/\1/p' "$TMP/m.err")
	read=$(sed -En 's/.*: ([0-9]+) read,.*/\1/p' "$TMP/m.err")
	[ "$lost" -gt 0 ]
	within "$(calc "$lost / $read")" 0.002 0.03
	grep -q "$lost of them dropped in place" "$TMP/m.err"	# the kernel's packets, dropped there
}

@test "impair live: a TCP transfer through --rate 8mbit runs at 8 Mbit/s (+-10%)" {
	hosts_up
	head -c 4000000 /dev/urandom >"$TMP/data"
	pipeline "$NS_A" "divert-listen --rule 'output tcp' 4400 2>$TMP/l.err |
	    divert-impair --rate 8mbit --queue 100 2>$TMP/m.err | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	serve "$NS_B" "$TMP/got" 5001
	t0=$(date +%s%N)
	inA timeout 120 socat -u OPEN:"$TMP/data" TCP:$B4:5001
	wait_gone "$BG" 100
	t1=$(date +%s%N)
	stop "$NS_A"
	cat "$TMP/m.err" "$TMP/i.err"
	[ "$(sha256sum <"$TMP/data")" = "$(sha256sum <"$TMP/got")" ]
	mbit=$(calc "4000000 * 8 / (($t1 - $t0) / 1e9) / 1e6")
	echo "goodput $mbit Mbit/s"
	within "$mbit" 7.2 8.8
}

@test "impair live: -f 'udp port 53' --loss 100% drops DNS only: pings and other UDP pass untouched" {
	hosts_up
	bg_B "$TMP/dns" /dev/null socat -u UDP-RECV:53 OPEN:/dev/stdout
	bg_B "$TMP/other" /dev/null socat -u UDP-RECV:54 OPEN:/dev/stdout
	wait_until 50 sh -c "ip netns exec $NS_B ss -Hlun 'sport = :54' | grep -q ."
	wait_until 50 sh -c "ip netns exec $NS_B ss -Hlun 'sport = :53' | grep -q ."
	pipeline "$NS_A" "divert-listen --rule 'output' 4400 2>$TMP/l.err |
	    divert-impair -f 'udp port 53' --loss 100% 2>$TMP/m.err | divert-inject 2>$TMP/i.err"
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	for i in $(seq 10); do
		echo "query $i" | inA socat -u - UDP:$B4:53
		echo "datagram $i" | inA socat -u - UDP:$B4:54
	done
	run inA ping -c 5 -i 0.1 -W 1 $B4
	[[ "$output" == *"5 packets transmitted, 5 received"* ]]
	wait_until 50 sh -c "[ \$(wc -l <$TMP/other) -eq 10 ]"
	stop "$NS_A"
	cat "$TMP/m.err" "$TMP/other"
	[ ! -s "$TMP/dns" ]
	[ "$(cat "$TMP/other")" = "$(for i in $(seq 10); do echo "datagram $i"; done)" ]
	grep -q '10 dropped: 10 lost' "$TMP/m.err"
	grep -q '10 of them dropped in place' "$TMP/m.err"
	read=$(sed -En 's/.*: ([0-9]+) read,.*/\1/p' "$TMP/m.err")
	grep -q "$read read, $((read - 10)) written; $((read - 10)) passed untouched, 0 delayed" "$TMP/m.err"
}
