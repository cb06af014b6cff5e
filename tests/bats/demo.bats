#!/usr/bin/env bats
# make demo's script works and leaves nothing behind.

@test "demo: pings are diverted and shown, then reinjected and answered, then by a BSD divert program; namespaces deleted" {
	run sh "$BATS_TEST_DIRNAME/../demo.sh" "$DIVERT_BUILD"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | grep -c 'Out IP 10.77.0.1 > 10.77.0.2: ICMP echo request')" -eq 3 ]
	[[ "$output" == *"3 packets transmitted, 3 received"* ]]
	[[ "$output" == *"3 injected (3 out, 0 in)"* ]]
	# The HOWTO's program under divert-run: 3 pings shown, its rule gone after it.
	[ "$(echo "$output" | grep -c '^10.77.0.1 10.77.0.2 proto 1 via 0.0.0.0$')" -eq 3 ]
	[[ "$output" == *"A# divert-rule list"$'\n'"(no rule left)"* ]]
	[ -z "$(ip netns list | grep divert-demo)" ]
}
