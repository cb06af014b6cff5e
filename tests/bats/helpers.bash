# Test bench: two hosts, A and B, in network namespaces of their own, joined
# by a veth pair (vA in A, vB in B).  Nothing here touches the machine's own
# namespace.  Everything is deleted in teardown, whatever the test did.
#
#   A: 10.77.0.1/24  fd77::1/64  on vA
#   B: 10.77.0.2/24  fd77::2/64  on vB
#
# Background commands must be started with bg_A / bg_B (or have their
# stdout/stderr redirected and fd 3 closed), or bats waits for them.

A4=10.77.0.1 B4=10.77.0.2 A6=fd77::1 B6=fd77::2

hosts_up() {
	NS_A="dvA-$$-${BATS_TEST_NUMBER:-0}"
	NS_B="dvB-$$-${BATS_TEST_NUMBER:-0}"
	TMP=$(mktemp -d)
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	ip link add vA netns "$NS_A" type veth peer name vB netns "$NS_B"
	inA ip link set lo up
	inB ip link set lo up
	inA ip addr add $A4/24 dev vA
	inB ip addr add $B4/24 dev vB
	inA ip addr add $A6/64 dev vA nodad
	inB ip addr add $B6/64 dev vB nodad
	inA ip link set vA up
	inB ip link set vB up
	# The IPv6 prefix routes appear once the link is up: wait for them.
	wait_until 50 inA ip -6 route get $B6
	wait_until 50 inB ip -6 route get $A6
	IDX_A=$(inA cat /sys/class/net/vA/ifindex)
	IDX_B=$(inB cat /sys/class/net/vB/ifindex)
}

# Every process still running in our namespaces (pipelines included).
ns_pids() {
	local ns
	for ns in ${NS_A:-} ${NS_B:-} ${NS_C:-}; do
		ip netns pids "$ns" 2>/dev/null
	done
}

hosts_down() {
	local p
	for p in $(cat "$TMP"/pids 2>/dev/null) $(ns_pids); do
		kill "$p" 2>/dev/null
	done
	for p in $(cat "$TMP"/pids 2>/dev/null) $(ns_pids); do
		wait_gone "$p" 50 || kill -9 "$p" 2>/dev/null
	done
	[ -n "${NS_A:-}" ] && ip netns del "$NS_A" 2>/dev/null
	[ -n "${NS_B:-}" ] && ip netns del "$NS_B" 2>/dev/null
	[ -n "${NS_C:-}" ] && ip netns del "$NS_C" 2>/dev/null
	[ -n "${TMP:-}" ] && rm -rf "$TMP"
	return 0
}

# A masquerading router between two hosts: A - R - B, R (namespace NS_C)
# forwarding and masquerading on its outer interface; B has no route back
# to A's network, so only R's NAT lets A reach it.
#
#   A: 10.79.1.2/24 on vA, default via R
#   R: 10.79.1.1/24 on rA (inner), 10.79.2.1/24 on rB (outer)
#   B: 10.79.2.2/24 on vB
RA4=10.79.1.2 RI4=10.79.1.1 RO4=10.79.2.1 RB4=10.79.2.2
nat_up() {
	NS_A="dvA-$$-${BATS_TEST_NUMBER:-0}"
	NS_B="dvB-$$-${BATS_TEST_NUMBER:-0}"
	NS_C="dvR-$$-${BATS_TEST_NUMBER:-0}"
	TMP=$(mktemp -d)
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	ip netns add "$NS_C"
	ip link add vA netns "$NS_A" type veth peer name rA netns "$NS_C"
	ip link add vB netns "$NS_B" type veth peer name rB netns "$NS_C"
	inA ip link set lo up
	inB ip link set lo up
	inR ip link set lo up
	inA ip addr add $RA4/24 dev vA
	inR ip addr add $RI4/24 dev rA
	inR ip addr add $RO4/24 dev rB
	inB ip addr add $RB4/24 dev vB
	inA ip link set vA up
	inB ip link set vB up
	inR ip link set rA up
	inR ip link set rB up
	inA ip route add default via $RI4
	inR sysctl -qw net.ipv4.ip_forward=1
	inR nft -f - <<-EOF
	table ip masq {
		chain post {
			type nat hook postrouting priority srcnat;
			oifname "rB" masquerade
		}
	}
	EOF
}
inR() { ip netns exec "$NS_C" "$@"; }

# Host C, routed through B (A -> B forwards -> C), for rule.bats and stream.bats;
# hosts_down deletes it.
inC() { ip netns exec "$NS_C" "$@"; }
router_up() {
	NS_C="dvC-$$-${BATS_TEST_NUMBER:-0}"
	ip netns add "$NS_C"
	ip link add vBC netns "$NS_B" type veth peer name vC netns "$NS_C"
	inC ip link set lo up
	inB ip addr add 10.78.0.1/24 dev vBC
	inC ip addr add 10.78.0.2/24 dev vC
	inB ip link set vBC up
	inC ip link set vC up
	inB sysctl -qw net.ipv4.ip_forward=1
	inA ip route add 10.78.0.0/24 via $B4
	inC ip route add default via 10.78.0.1
	wait_until 50 inA ping -c 1 -W 1 10.78.0.2
}

# joiners NS PORT: processes joined to the listener of PORT in NS (its
# accepted connections share the name of its listening socket).
joiners() {
	ip netns exec "$1" awk -v p="@divert/$2" '$8 == p { n++ } END { print n ? n - 1 : 0 }' \
	    /proc/net/unix
}
has_joiners() { [ "$(joiners "$1" "$2")" -ge "${3:-1}" ]; }	# NS PORT [N]
# wait_joined NS PORT [N]: wait (up to 10 s) for N joiners (1) to PORT in NS.
wait_joined() { wait_until 100 has_joiners "$@"; }

# queue_waiting NS PORT: packets the kernel holds on PORT in NS (its queue_total).
queue_waiting() {
	ip netns exec "$1" awk -v q="$2" '$1 == q { print $3 }' /proc/net/netfilter/nfnetlink_queue
}
queue_empty() { [ "$(queue_waiting "$1" "$2")" = 0 ]; }

# signal_comm NS COMM [SIGNAL]: signal the processes of NS named COMM, by pid.
signal_comm() {
	local p
	for p in $(ip netns pids "$1"); do
		[ "$(cat /proc/$p/comm 2>/dev/null)" = "$2" ] && kill -"${3:-TERM}" "$p"
	done
	return 0
}

inA() { ip netns exec "$NS_A" "$@"; }
inB() { ip netns exec "$NS_B" "$@"; }

# bg NS OUT ERR CMD...: run CMD in NS in the background; its pid is in $BG.
bg() {
	local ns=$1 out=$2 err=$3
	shift 3
	ip netns exec "$ns" "$@" >"$out" 2>"$err" 3>&- </dev/null &
	BG=$!
	echo "$BG" >>"$TMP"/pids
}
bg_A() { bg "$NS_A" "$@"; }
bg_B() { bg "$NS_B" "$@"; }

# bgsh NS CMDLINE: a shell pipeline in NS in the background (pid in $BG).
bgsh() {
	ip netns exec "$1" sh -c "$2" </dev/null >/dev/null 2>&1 3>&- &
	BG=$!
	echo "$BG" >>"$TMP"/pids
}

# wait_until TENTHS CMD...: retry CMD every 0.1 s until it succeeds.
wait_until() {
	local n=$1
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}

queue_bound() {	# NS PORT: is queue PORT bound in NS?
	ip netns exec "$1" awk -v q="$2" '$1 == q { f = 1 } END { exit !f }' \
	    /proc/net/netfilter/nfnetlink_queue
}
# wait_queue NS PORT: wait (up to 10 s) for a listener to bind queue PORT.
wait_queue() { wait_until 100 queue_bound "$1" "$2"; }

wait_gone() {	# PID [TENTHS]: wait for a process to exit
	local n=${2:-100}
	while kill -0 "$1" 2>/dev/null; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# stream_header_len FILE: bytes of the stream's header at the start of FILE
# (pcapng: its section header block, whose length it gives; classic: 24).
stream_header_len() {
	if [ "$(od -An -tx1 -N4 "$1" | tr -d ' \n')" = 0a0d0d0a ]; then
		od -An -tu4 -j4 -N4 "$1" | tr -d ' \n'
	else
		echo 24
	fi
}
bigger_than() { [ "$(file_size "$1")" -gt "$2" ]; }

# pcap_show FILE [FILTER]: tcpdump's one line a packet, without its banner.
pcap_show() {
	local f=$1
	shift
	tcpdump -n -r "$f" "$@" 2>/dev/null
}

# pcap_count FILE [FILTER]: number of packets in a pcap file (tcpdump).
pcap_count() {
	local f=$1
	shift
	tcpdump -n -r "$f" "$@" 2>/dev/null | wc -l
}

# The tables our tools own, as nft sees them in NS ("" when none).
divert_table() {
	local t
	for t in $(divert_tables "$1"); do
		ip netns exec "$1" nft list table inet "$t" 2>/dev/null
	done
}
# divert_tables NS: the names of the toolkit's tables in NS: the shared one
# (divert) and those of processes' own rules (divert-<port id>).
divert_tables() {
	ip netns exec "$1" nft list tables 2>/dev/null |
	    awk '$2 == "inet" && $3 ~ /^divert(-[0-9]+)?$/ { print $3 }'
}
# True once a divert rule is in one of them (a table may come first).
has_divert_table() { divert_table "$1" | grep -q 'comment "divert tag '; }

# san_flags: the compiler flags a test program needs to load the library
# under test ($DIVERT_BUILD): a sanitizer build's wants its runtimes first.
san_flags() {
	if readelf -d "$DIVERT_BUILD/libdivert.so" | grep -q 'NEEDED.*libasan'; then
		echo -g -fsanitize=address,undefined -fno-sanitize-recover=all
	fi
}

# tshark_fields FILE FIELD...: one line a packet, the fields tab-separated.
tshark_fields() {
	local f=$1 arg=
	shift
	for x in "$@"; do arg="$arg -e $x"; done
	tshark -r "$f" -T fields $arg 2>/dev/null
}
