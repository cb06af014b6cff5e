#!/usr/bin/env bats
# The test harness itself: tests/run (and so make check-unit and make check)
# must fail when a test program crashes, exits non-zero, or prints fewer
# results than it planned -- even when every line it printed said "ok".

TOP="$BATS_TEST_DIRNAME/../.."

setup() {
	TMP=$(mktemp -d)
	mkdir "$TMP/unit"
}

teardown() {
	rm -rf "$TMP"
}

# units FAKE...: a build directory whose unit tests are the named fakes.
units() {
	for f in "$@"; do
		cp "$TOP/tests/harness/$f" "$TMP/unit/"
	done
	run sh "$TOP/tests/run" --units "$TMP"
	echo "$output"
}

@test "harness: a well-behaved unit test passes and is counted" {
	units good
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "2 passed, 0 failed" ]
}

@test "harness: a unit test that dies after its last ok fails the run, by name" {
	units good crash_after_ok
	[ "$status" -ne 0 ]
	[[ "$output" == *"not ok - unit crash_after_ok ["*"]: died on signal 11"* ]]
	[ "${lines[-1]}" = "4 passed, 1 failed" ]
}

@test "harness: a unit test that prints fewer results than its plan fails the run" {
	units short_plan
	[ "$status" -ne 0 ]
	[[ "$output" == *"not ok - unit short_plan ["*"]: planned 3 results, printed 2"* ]]
	[ "${lines[-1]}" = "2 passed, 1 failed" ]
}

@test "harness: a unit test that exits non-zero with every result ok fails the run" {
	units bad_exit
	[ "$status" -ne 0 ]
	[[ "$output" == *"not ok - unit bad_exit ["*"]: exited with status 2 and no failed test"* ]]
}

@test "harness: make check-unit fails when a unit test crashes after printing ok" {
	# A copy of this build (up to date, so make rebuilds nothing) plus the fake.
	# One time stamp for every file, newer than any source: touch's own "now"
	# differs from file to file, and an archive a nanosecond older than its
	# objects would be linked again, without the build's sanitizer flags.
	cp -a "$DIVERT_BUILD/." "$TMP/"
	find "$TMP" -type f -exec touch -d "@$(date +%s)" {} +
	cp "$TOP/tests/harness/crash_after_ok" "$TMP/unit/"
	run make -s -C "$TOP" check-unit BUILD="$TMP"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"not ok - unit crash_after_ok"*"died on signal 11"* ]]
	[[ "${lines[-2]}" == *" passed, 1 failed" ]] || [[ "$output" == *" passed, 1 failed"* ]]
}

@test "build: the project's warning flags survive a CFLAGS given on the command line" {
	run make -s -n -C "$TOP" BUILD="$TMP/b" CFLAGS=-O0 "$TMP/b/common/csum.o"
	echo "$output"
	[[ "$output" == *"-std=gnu11 -Wall -Wextra -Werror -O0"* ]]
}

@test "build: each tool links only the libraries it uses" {
	# The packet libraries a tool needs at run time (sanitizer runtimes aside).
	needed() {
		readelf -d "$DIVERT_BUILD/$1" | sed -n 's/.*(NEEDED).*\[\(lib[a-z_]*\).*/\1/p' |
		    grep -E '^lib(pcap|mnl|nftnl|netfilter_queue|nfnetlink)$' | tr '\n' ' '
	}
	# mangle and defrag join a holding listener to drop what they remove in
	# place: libdivert's verdicts are built with libnetfilter_queue.
	[ "$(needed divert-mangle)" = "libnetfilter_queue libmnl libpcap " ]
	[ "$(needed divert-defrag)" = "libnetfilter_queue libmnl libpcap " ]
	# divert-inject sends through a libdivert handle, whose port binding
	# (unused by inject, linked with divert_open) builds its messages with
	# libnetfilter_queue.
	[ "$(needed divert-inject)" = "libnetfilter_queue libmnl libpcap " ]
	[ "$(needed divert-rule)" = "libnftnl libmnl " ]
	[ "$(needed divert-listen)" = "libnetfilter_queue libnftnl libmnl libpcap " ]
}

@test "harness: no bats test uses a bare '! cmd' (errexit ignores it)" {
	# Only a test's last command would fail it; a line added after would not:
	# use run ! or an explicit check everywhere.
	run awk '
		/^@test/ { intest = 1; next }
		intest && /^}/ { intest = 0; next }
		intest && /^[ \t]*! / { print FILENAME ":" FNR ": " $0 }
		' "$TOP"/tests/bats/*.bats
	echo "$output"
	[ -z "$output" ]
}
