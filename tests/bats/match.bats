#!/usr/bin/env bats
# divert-rule's matches against the real kernel, in namespaces A and B (and
# C behind B): the sending socket's user, group and cgroup, connection
# state, the first N packets of each connection, the packet mark, and -s/-d
# prefix lists (an nftables set).  Either nobody listens (a taken packet is
# dropped: the rule's counter and what arrives tell what it took), or
# divert-listen --tee streams what a rule takes and lets it go on.

load helpers

setup() { hosts_up; }
teardown() {
	hosts_down
	[ -n "${CG:-}" ] && rmdir "$CG" 2>/dev/null
	return 0
}

ruleA() { inA divert-rule "$@"; }

# diverted NS: packets the rules of table inet divert in NS have taken.
diverted() {
	ip netns exec "$1" nft list table inet divert 2>/dev/null |
	    sed -n 's/.*counter packets \([0-9]*\).*/\1/p' |
	    awk '{ n += $1 } END { print n + 0 }'
}

udp_bound() { [ -n "$(ip netns exec "$1" ss -Hlun "sport = :$2")" ]; }

# udp_listen NS PORT: what arrives on UDP PORT, one line a datagram, in $TMP/udp-PORT.
udp_listen() {
	: >"$TMP/udp-$2"
	bg "$1" "$TMP/udp-$2" /dev/null socat -u "UDP4-RECV:$2" STDOUT
	wait_until 50 udp_bound "$1" "$2"
}
got() { grep -q "^$2\$" "$TMP/udp-$1"; }	# got PORT TEXT
wait_got() { wait_until 50 got "$1" "$2"; }

# send_as WHO TO PORT TEXT [SOCAT-OPTS]: one datagram from A, sent by a
# process of WHO ("root", or setpriv's options).
send_as() {
	local who=$1 to=$2 port=$3 text=$4 opts=${5:-}
	if [ "$who" = root ]; then
		echo "$text" | inA socat -u - "UDP4-SENDTO:$to:$port$opts"
	else
		echo "$text" | inA setpriv $who socat -u - "UDP4-SENDTO:$to:$port$opts"
	fi
}

# listen_tee NS PORT RULE: divert-listen --tee --rule RULE PORT in NS, to $TMP/s.pcap.
listen_tee() {
	bg "$1" "$TMP/s.pcap" "$TMP/l.err" divert-listen --tee -F pcap --rule "$3" "$2"
	LPID=$BG
	wait_queue "$1" "$2"
	wait_until 50 has_divert_table "$1"
}

# payloads FILE: the UDP payloads in FILE, text, one line each, joined by blanks.
payloads() {
	/usr/bin/python3 - "$1" <<-'EOF'
	import sys
	from scapy.all import UDP, rdpcap
	print(" ".join(bytes(p[UDP].payload).decode().strip() for p in rdpcap(sys.argv[1])), end=" ")
	EOF
}

taken() { pcap_count "$TMP/s.pcap" "$@"; }	# taken [FILTER]: packets in the stream
has_taken() { [ "$(taken "${@:2}")" -ge "$1" ]; }	# has_taken N [FILTER]

# stop_listener: SIGTERM, and its exit (the stream is whole then).
stop_listener() {
	kill "$LPID"
	wait_gone "$LPID"
}

@test "match: --uid (divert-listen --rule): a program run as nobody is taken, root's is not" {
	udp_listen "$NS_B" 5001
	listen_tee "$NS_A" 7 'output udp --uid nobody'
	run inA divert-rule list
	echo "$output"
	# A number, as elsewhere; in the listener's own table.
	[[ "$output" == "output udp 7 --uid 65534 # packets "*" owner divert-listen["* ]]
	for i in 1 2 3 4 5; do send_as "--reuid nobody --regid nogroup --clear-groups" $B4 5001 "n$i"; done
	for i in 1 2 3; do send_as root $B4 5001 "r$i"; done
	send_as "--reuid nobody --regid nogroup --clear-groups" $B4 5001 n6	# after root's
	wait_until 50 has_taken 6
	wait_got 5001 n6
	stop_listener
	[ "$(taken)" -eq 6 ]
	[ "$(payloads "$TMP/s.pcap")" = "n1 n2 n3 n4 n5 n6 " ]
	# --tee: every datagram arrived, root's too.
	[ "$(wc -l <"$TMP/udp-5001")" -eq 9 ]
	grep -q '6 received, 6 written' "$TMP/l.err"
	run has_divert_table "$NS_A"		# the --rule went with the listener
	[ "$status" -ne 0 ]
}

@test "match: a --rule with a prefix list: its set goes in the listener's own table, and with it" {
	udp_listen "$NS_B" 5001
	listen_tee "$NS_A" 7 'output udp -d 10.77.0.9,10.77.0.2,10.77.0.3'
	run inA divert-rule list
	echo "$output"
	[[ "$output" == "output udp 7 -d 10.77.0.2/31,10.77.0.9 # packets "*" owner divert-listen["* ]]
	echo one | inA socat -u - "UDP4-SENDTO:$B4:5001"
	wait_until 50 has_taken 1
	wait_got 5001 one
	stop_listener
	[ "$(taken "dst host $B4")" -eq 1 ]
	[ -z "$(inA nft list ruleset)" ]	# table, rule and set: all gone
}

@test "match: --gid takes a program of that group, and a uid range only its users" {
	udp_listen "$NS_B" 5001
	ruleA add postrouting udp 7 --gid 4242
	ruleA add output udp 8 --uid 1000-1999
	send_as "--regid 4242 --clear-groups" $B4 5001 g4242	# root, group 4242: taken
	send_as "--regid 4243 --clear-groups" $B4 5001 g4243
	send_as "--reuid 1500 --regid 4243 --clear-groups" $B4 5001 u1500	# taken
	send_as "--reuid 2000 --regid 4243 --clear-groups" $B4 5001 u2000
	send_as root $B4 5001 root
	wait_got 5001 root
	wait_got 5001 g4243
	wait_got 5001 u2000
	[ "$(diverted "$NS_A")" -eq 2 ]
	run got 5001 g4242
	[ "$status" -ne 0 ]
	run got 5001 u1500
	[ "$status" -ne 0 ]
	run ruleA list
	echo "$output"
	[[ "$output" == *"output udp 8 --uid 1000-1999 --handle "* ]]
	[[ "$output" == *"postrouting udp 7 --gid 4242 --handle "* ]]
}

# The cgroup2 mount, from mountinfo (the hybrid layout has it at /sys/fs/cgroup/unified).
cgroup2_root() { awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo; }

# inA_mnt CMD...: CMD in A's network namespace but our mount namespace
# (ip netns exec mounts a fresh /sys, which hides the cgroup2 mount).
inA_mnt() { nsenter --net="/run/netns/$NS_A" "$@"; }

@test "match: --cgroup takes what a process placed in a cgroup sends, not another's; list names it by path" {
	root=$(cgroup2_root)
	[ -n "$root" ]
	CG=$root/divert-test-$$-$BATS_TEST_NUMBER
	mkdir "$CG"
	udp_listen "$NS_B" 5001
	inA_mnt divert-rule add output udp 7 --cgroup "/${CG##*/}"
	run inA_mnt divert-rule list
	[[ "$output" == "output udp 7 --cgroup /${CG##*/} --handle "* ]]
	# A subshell moves itself into the cgroup, then sends; another does not.
	inA_mnt sh -c "echo \$\$ >'$CG/cgroup.procs' && echo inside | socat -u - UDP4-SENDTO:$B4:5001"
	inA_mnt sh -c "echo outside | socat -u - UDP4-SENDTO:$B4:5001"
	wait_got 5001 outside
	[ "$(diverted "$NS_A")" -eq 1 ]
	run got 5001 inside
	[ "$status" -ne 0 ]
	# The path under the mount names the same cgroup: the same rule.
	run inA_mnt divert-rule add output udp 7 --cgroup "$CG"
	[ "$status" -eq 64 ]
	[[ "$output" == *"exists already"* ]]
	# Gone while the rule stays: listed as such, plainly no path.
	rmdir "$CG"
	run inA_mnt divert-rule list
	[[ "$output" == "output udp 7 --cgroup gone:"[0-9]*" --handle "* ]]
	# Elsewhere than output: refused.
	run inA_mnt divert-rule add postrouting udp 7 --cgroup /
	[ "$status" -eq 64 ]
	[[ "$output" == *"--cgroup works on output only"* ]]
}

tcp_bound() { [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ]; }

# tcp_sink NS PORT: count what each connection to PORT brings, a line each, in $TMP/sink.
tcp_sink() {
	bgsh "$1" "socat TCP-LISTEN:$2,fork,reuseaddr SYSTEM:'wc -c >>$TMP/sink'"
	wait_until 50 tcp_bound "$1" "$2"
}

# tcp_bulk TO PORT BYTES: one connection from A sending BYTES.
tcp_bulk() { head -c "$3" /dev/zero | inA socat -u - "TCP:$1:$2"; }

sinks() { [ "$(wc -l <"$TMP/sink" 2>/dev/null || echo 0)" -ge "$1" ]; }

# per_stream FILE: for each TCP connection, its packets' flags (tshark).
per_stream() {
	tshark_fields "$1" tcp.stream tcp.flags tcp.len |
	    awk -F'\t' '{ n[$1]++; f[$1] = f[$1] " " $2 "/" $3 } END { for (s in n) print n[s] f[s] }' |
	    sort
}

@test "match: --first 3 on a router's forward chain brings each connection's first 3 packets, both ways, none of the bulk" {
	router_up
	: >"$TMP/sink"
	tcp_sink "$NS_C" 5555
	listen_tee "$NS_B" 9 'forward tcp --first 3'
	# The ct expression turned accounting on in B's namespace, by itself.
	[ "$(inB sysctl -n net.netfilter.nf_conntrack_acct)" = 1 ]
	for i in 1 2 3 4; do tcp_bulk 10.78.0.2 5555 300000; done
	wait_until 100 sinks 4
	wait_until 50 has_taken 12
	stop_listener
	# Every byte arrived (--tee), four connections of 300000 bytes.
	[ "$(sort -u "$TMP/sink")" = 300000 ]
	[ "$(wc -l <"$TMP/sink")" -eq 4 ]
	run per_stream "$TMP/s.pcap"
	echo "$output"
	[ "${#lines[@]}" -eq 4 ]
	for l in "${lines[@]}"; do
		# SYN, SYN-ACK, then the client's ACK: three packets, no payload.
		[ "$l" = "3 0x0002/0 0x0012/0 0x0010/0" ]
	done
	[ "$(taken 'tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack != 0')" -eq 4 ]
	[ "$(taken 'src host 10.78.0.2')" -eq 4 ]	# one a connection came back from C
	# No segment with data (the per-stream check says so too).
	[ "$(taken 'tcp and (ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2)) != 0')" -eq 0 ]
}

@test "match: --ct-state new takes each connection's first packet only" {
	: >"$TMP/sink"
	tcp_sink "$NS_B" 5555
	listen_tee "$NS_A" 7 'output tcp --ct-state new'
	for i in 1 2 3; do tcp_bulk $B4 5555 100000; done
	wait_until 100 sinks 3
	wait_until 50 has_taken 3
	stop_listener
	[ "$(sort -u "$TMP/sink")" = 100000 ]
	[ "$(taken)" -eq 3 ]
	[ "$(taken 'tcp[tcpflags] == tcp-syn')" -eq 3 ]
}

@test "match: --mark V/M takes packets whose mark matches under the mask only" {
	udp_listen "$NS_B" 5001
	ruleA add output udp 7 --mark 0x10/0xf0
	run ruleA list
	[[ "$output" == "output udp 7 --mark 0x10/0xf0 --handle "* ]]
	# SO_MARK (SOL_SOCKET 1, SO_MARK 36): 0x15 matches, 0x25 and none do not.
	send_as root $B4 5001 m15 ",setsockopt-int=1:36:21"
	send_as root $B4 5001 m25 ",setsockopt-int=1:36:37"
	send_as root $B4 5001 none
	wait_got 5001 none
	wait_got 5001 m25
	[ "$(diverted "$NS_A")" -eq 1 ]
	run got 5001 m15
	[ "$status" -ne 0 ]
}

# prefixes N FILE: N random IPv4 prefixes (duplicates and overlaps among
# them), B's address within them, none within 10.78.0.0/16 (C's).
prefixes() {
	/usr/bin/python3 - "$1" >"$2" <<-'EOF'
	import ipaddress, random, sys
	random.seed(13)
	n, c = int(sys.argv[1]), ipaddress.ip_network("10.78.0.0/16")
	out = ["10.77.0.0/30"]
	while len(out) < n:
	    net = ipaddress.ip_network((random.getrandbits(32), random.choice([12, 16, 20, 24, 28, 32, 32])), strict=False)
	    if not net.overlaps(c):
	        out.append(str(net))
	out += out[:100]			# duplicates
	out += [str(ipaddress.ip_network(p).supernet(2)) for p in out[200:300] if ipaddress.ip_network(p).prefixlen > 10 and not ipaddress.ip_network(p).supernet(2).overlaps(c)]
	random.shuffle(out)
	print("# prefixes for match.bats")
	for p in out:
	    print(p)
	    if random.random() < 0.01:
	        print("")
	EOF
}

# same_addresses FILE1 FILE2: the prefixes of two files (or "-d A,B,..."
# lines) cover the same addresses.
same_addresses() {
	/usr/bin/python3 - "$1" "$2" <<-'EOF'
	import ipaddress, re, sys
	def nets(path):
	    words = re.split(r"[\s,]+", re.sub(r"#.*", "", open(path).read()))
	    return list(ipaddress.collapse_addresses(ipaddress.ip_network(w) for w in words if w))
	a, b = nets(sys.argv[1]), nets(sys.argv[2])
	sys.exit(0 if a == b and a else 1)
	EOF
}

@test "match: -d @FILE with 5000 prefixes is one rule and one set; list round-trips; matching and not behave" {
	router_up
	prefixes 5000 "$TMP/p.txt"
	udp_listen "$NS_B" 5001
	udp_listen "$NS_C" 5001
	ruleA add output udp 7 -d @"$TMP/p.txt"
	run inA nft list chain inet divert output
	[ "$(echo "$output" | grep -c 'counter packets')" -eq 1 ]
	[ "$(echo "$output" | grep -c 'ip daddr {')" -eq 1 ]
	run inA nft list sets inet		# the set is anonymous: no named one
	[ "$(echo "$output" | grep -c 'set ')" -eq 0 ]
	# B's address is in the set: taken; C's is not: through.
	echo one | inA socat -u - "UDP4-SENDTO:$B4:5001"
	echo two | inA socat -u - "UDP4-SENDTO:10.78.0.2:5001"
	wait_got 5001 two
	[ "$(diverted "$NS_A")" -eq 1 ]
	run got 5001 one
	[ "$status" -ne 0 ]
	# list: one line, -d as one comma list covering the file's addresses.
	ruleA list >"$TMP/list"
	[ "$(wc -l <"$TMP/list")" -eq 1 ]
	sed 's/.* -d \([^ ]*\) .*/\1/' "$TMP/list" >"$TMP/listed"
	same_addresses "$TMP/p.txt" "$TMP/listed"
	# The line fed back is the same rule: add refuses it, del takes it.
	line=$(sed 's/ --handle.*//' "$TMP/list")
	run ruleA add $line
	[ "$status" -eq 64 ]
	[[ "$output" == *"exists already"* ]]
	ruleA del $line
	run has_divert_table "$NS_A"
	[ "$status" -ne 0 ]
	# Added from the listed text, it lists the same.
	ruleA add $line
	[ "$(ruleA list | sed 's/ --handle.*//')" = "$line" ]
	# The file's own spelling names the same rule too.
	ruleA del output udp 7 -d @"$TMP/p.txt"
	run has_divert_table "$NS_A"
	[ "$status" -ne 0 ]
}

@test "match: IPv6 source lists and several -d, repeated and comma separated, one set each side" {
	ruleA add output udp 7 -s fd77::1,fd77::1/128 -d fd77::2 -d fd00::/8,fd77::2/127
	run ruleA list
	# The source is one address: a plain match; the destination a set.
	[[ "$output" == "output udp 7 -s fd77::1 -d fd00::/8 --handle "* ]]
	ruleA add output udp 8 -d fd77::2,fd78::/64
	run inA nft list chain inet divert output
	[ "$(echo "$output" | grep -c 'ip6 daddr {')" -eq 1 ]
	inA ping -6 -c 1 -W 1 $B6 >/dev/null || true
	echo x | inA socat -u - "UDP6-SENDTO:[$B6]:5001"
	[ "$(diverted "$NS_A")" -eq 1 ]	# the first rule took it
}

@test "match: bad input exits 64 with one line naming the tool and what to do" {
	bad() {
		run ruleA "$@"
		echo "$output"
		[ "$status" -eq 64 ]
		[[ "${lines[0]}" == "divert-rule: "* ]]
		# One line, and argp's pointer to --help.
		[ "${#lines[@]}" -le 2 ]
	}
	bad add input udp 7 --uid 0
	[[ "${lines[0]}" == *"--uid works on output and postrouting only (the sending socket's owner), not on input"* ]]
	bad add forward udp 7 --gid 0
	[[ "${lines[0]}" == *"--gid works on output and postrouting only"* ]]
	bad add output udp 7 -d 10.0.0.1,fd00::1
	[[ "${lines[0]}" == *"-d mixes IPv4 and IPv6 prefixes (fd00::1): use two rules"* ]]
	printf '10.0.0.0/8\n\n# fine\n10.1.2.3/40\n' >"$TMP/bad.txt"
	bad add output udp 7 -d @"$TMP/bad.txt"
	[[ "${lines[0]}" == *"$TMP/bad.txt:4: -d: bad prefix length in '10.1.2.3/40'"* ]]
	bad add output udp 7 --uid no-such-user
	bad add output udp 7 --ct-state new,gone
	bad add output udp 7 --first 0
	bad add output udp 7 --mark 0x10000000
	[[ "${lines[0]}" == *"DIVERT_MARK"* ]]
	bad add output udp 7 --first 3 --priority -300
	[[ "${lines[0]}" == *"--first needs a priority after conntrack's (-200)"* ]]
	run inA divert-listen --rule 'input udp --uid nobody' 7
	[ "$status" -eq 64 ]
	[[ "${lines[0]}" == *"--uid works on output and postrouting only"* ]]
	[ -z "$(divert_table "$NS_A")" ]	# nothing was made on the way
}
