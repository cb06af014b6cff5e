#!/usr/bin/env bats
# make bench's harness runs end to end (one short run a mode) and prints
# every row and ratio.  Speed itself is judged by `make bench`, not here.

@test "bench: one short run prints the whole table and every ratio" {
	case "$DIVERT_BUILD" in
	*asan*) skip "the harness measures speed: run it on the optimised build only" ;;
	esac
	[ -x "$DIVERT_BUILD/bench/flood" ] || skip "bench programs not built (make check builds them)"
	run env RUNS=1 DUR=1 bash "$BATS_TEST_DIRNAME/../../bench/run.sh" "$DIVERT_BUILD"
	echo "$output"
	[ "$status" -eq 0 ]
	for row in "S    stack alone" "R1   " "R64  " "L    divert-listen" "Ltee " "LI   " "LMI  " \
	    "LIc  " "LMIc " "RTT  ping median, direct" "RTT  ping median, listen | inject, in place" \
	    "RTT  ping median, listen | inject, copies" "RTT  ping median, R1 over a pipe" \
	    "TCP  50 MB direct" "TCP  50 MB listen --gso | inject, in place" \
	    "TCP  50 MB listen | inject, in place" "TCP  50 MB listen | inject, copies" \
	    "OFF  divert-mangle" "OFF  tcprewrite" "OFF  divert-defrag, 1M" "OFF  divert-impair"; do
		echo "$output" | grep -q "^$row.* [0-9][0-9]*  *[0-9]"
	done
	for ratio in "L / S" "LI / S" "LI / R1" "LI / R64" "LMI / S" "LIc / S" "LMIc / S" \
	    "RTT added" "RTT added, in place / R1" "TCP LI speed / direct" \
	    "TCP LI --gso speed / direct" "TCP LIc speed / direct" \
	    "mangle speed / tcprewrite" "defrag Mfragments/s"; do
		echo "$output" | grep -Eq "^$ratio .* [0-9]+\.[0-9]+   target"
	done
	echo "$output" | grep -Eq "^RTT added, 2-process floor / R1 +[0-9]+\.[0-9]+   \(reference\)"
	# The in-place rows are in place, the copy rows copies: divert-inject's
	# own count of what went back in place.
	for mode in LI LMI; do
		echo "$output" | grep -A1 "^$mode " | grep -Eq ', in place [1-9][0-9]*$'
	done
	for mode in LIc LMIc; do
		echo "$output" | grep -A1 "^$mode " | grep -Eq ', in place 0$'
	done
	[ -z "$(ip netns list | grep -- -bench)" ]
}
