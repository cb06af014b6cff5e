#!/usr/bin/env bats
# What every tool shares (common/divert.c): the mark read once, before
# anything is bound or written, and numbers in decimal or C-style hex.

load helpers

setup() { hosts_up; }
teardown() { hosts_down; }

@test "common: a bad DIVERT_MARK is a usage error before anything is bound or written" {
	for tool in "divert-listen 4321" "divert-rule add output icmp 4321" "divert-inject -r /dev/null"; do
		run timeout 10 ip netns exec "$NS_A" env DIVERT_MARK=0x1zz $tool
		echo "$tool: $status $output"
		[ "$status" -eq 64 ]
		[[ "$output" == *"DIVERT_MARK=0x1zz: want a non-zero 32-bit mark"* ]]
		[[ "$output" != *"pcap"* ]]			# no stream header on the screen
	done
	# Nothing was left behind: no queue bound, no rule, no table.
	run queue_bound "$NS_A" 4321
	[ "$status" -ne 0 ]
	run has_divert_table "$NS_A"
	[ "$status" -ne 0 ]
	run inA ip -o link show
	[[ "$output" != *divert* ]]				# no injection device either
}

@test "common: numbers take C-style hex (0x) and decimal, never octal" {
	# Port 0x10e1 is 4321; a count of 010 is ten (octal would stop at eight).
	inA divert-rule add output icmp 4321
	bg_A "$TMP/s.pcap" "$TMP/l.err" divert-listen -c 010 -w "$TMP/w.pcap" 0x10e1
	wait_queue "$NS_A" 4321
	inA ping -c 12 -i 0.05 -W 1 $B4 || true
	wait_gone "$BG"
	[ "$(pcap_count "$TMP/w.pcap")" -eq 10 ]
	# "0x" alone, "0x1g", signs and exponents are not numbers.
	for bad in 0x 0x1g -1 +1 1e3; do
		run inA divert-listen -c "$bad" 4321
		echo "$bad: $status $output"
		[ "$status" -eq 64 ]
		[[ "$output" == *"bad count '$bad'"* ]]
	done
}
