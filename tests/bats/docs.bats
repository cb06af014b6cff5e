#!/usr/bin/env bats
# The manual pages against the tools they describe: lint-clean, every option
# divert(7) names is one its tool takes (so the overview cannot drift from
# the tools), and what divert(7) says of the stream holds for a live one read
# by tshark and by divert(7)'s own Python.

load helpers

TOP="$BATS_TEST_DIRNAME/../.."
MAN7="$TOP/man/divert.7"

# The tools that write a stream: divert(7) says each takes -F pcap|pcapng.
WRITERS="divert-listen divert-mangle divert-defrag divert-impair divert-inject"

teardown() { hosts_down; }	# the live test's namespaces; nothing for the others

# man7_commands: divert(7)'s command lines, one a line: the literal displays
# and the .Ql quotes, roff escapes undone.
man7_commands() {
	awk '/^\.Bd -literal/ { on = 1; next } /^\.Ed/ { on = 0; next }
	    on { print; next }
	    /^\.Ql / { sub(/^\.Ql /, ""); print }' "$MAN7" |
	    sed -e 's/\\e/\\/g' -e 's/\\&//g' -e 's/\\-/-/g'
}

# man7_options: "TOOL OPTION" for every option divert(7) gives a toolkit
# program in a command line (a pipeline is split at | ; &), quoted --rule
# specs checked as divert-rule's; then "any OPTION" for every Fl macro of the
# running text, which must belong to one of the tools.
man7_options() {
	man7_commands | tr '|;&' '\n\n\n' | awk '
	{
		tool = ""
		line = $0
		# a quoted rule spec is divert-rule words and options
		while (match(line, /--rule[ =]\047[^\047]*\047/)) {
			spec = substr(line, RSTART, RLENGTH)
			sub(/^--rule[ =]\047/, "", spec)
			sub(/\047$/, "", spec)
			n = split(spec, w, " ")
			for (i = 1; i <= n; i++)
				if (w[i] ~ /^-[-a-zA-Z?]/) { o = w[i]; sub(/=.*/, "", o); print "divert-rule", o }
			line = substr(line, 1, RSTART + 5) " " substr(line, RSTART + RLENGTH)
		}
		gsub(/\047[^\047]*\047/, "", line)
		n = split(line, w, " ")
		for (i = 1; i <= n; i++) {
			if (tool == "" && w[i] ~ /^divert-[a-z]+$/) { tool = w[i]; continue }
			if (tool != "" && w[i] ~ /^-[-a-zA-Z?]/) { o = w[i]; sub(/=.*/, "", o); print tool, o }
		}
	}'
	# A macro line that names a tool (.It Cm divert-listen Fl ...) gives
	# its Fl options to that tool; other Fl options to any tool.
	grep '^\..*Fl ' "$MAN7" | awk '{
		sub(/^\./, "")
		tool = "any"
		for (i = 1; i < NF; i++) {
			if ($i == "Cm" && $(i + 1) ~ /^divert-[a-z]+$/) tool = $(i + 1)
			if ($i == "Fl") print tool, "-" $(i + 1)
		}
	}'
}

# has_option TOOL OPTION: TOOL --help lists OPTION in its option column.
has_option() {
	local help
	help=$("$1" --help 2>&1) || return 1
	case $2 in
	--*) grep -Eq -- "(^|[ ,])$2([=[ ,]|\$)" <<<"$help" ;;
	*) grep -Eq -- "^ +$2([, ]|\$)" <<<"$help" ;;
	esac
}

@test "docs: every man page is mandoc -Tlint clean" {
	run mandoc -Tlint -Wwarning "$TOP"/man/*.[0-9]
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "docs: every option divert(7) names is one its tool takes (--help)" {
	named=$(man7_options | sort -u)
	echo "$named"
	# The extraction itself: it sees the options it must see.
	for want in "divert-listen --hold-timeout" "divert-listen -F" "divert-rule --priority" \
	    "divert-mangle --ttl" "divert-rule --dport" "any --queue-len" "any -F"; do
		grep -qxF -- "$want" <<<"$named" || { echo "not extracted: $want"; false; }
	done
	missing=
	while read -r tool opt; do
		if [ "$tool" = any ]; then
			found=
			for t in divert-rule $WRITERS; do
				has_option "$t" "$opt" && { found=1; break; }
			done
			[ -n "$found" ] || missing="$missing
divert(7) names $opt, which no tool's --help lists"
		else
			has_option "$tool" "$opt" || missing="$missing
divert(7) gives $tool $opt, which its --help does not list"
		fi
	done <<<"$named"
	# Every writing tool takes -F, as divert(7) says.
	for t in $WRITERS; do
		has_option "$t" -F || missing="$missing
divert(7) says $t takes -F pcap|pcapng; its --help does not list -F"
	done
	echo "$missing"
	[ -z "$missing" ]
}

# A live stream of pings leaving A through port 4321, --tee so they still go.
live_stream() {
	hosts_up
	bg_A "$TMP/s.out" "$TMP/s.err" divert-listen --tee -c "$1" --rule 'output icmp' 4321
	LPID=$BG
	wait_queue "$NS_A" 4321
	inA ping -c "$1" -i 0.2 -m 7 -W 1 $B4 >/dev/null
	wait_gone "$LPID" 50
}

@test "docs: a live stream holds what divert(7)'s table says: tshark fields, and the custom option read by its Python" {
	live_stream 3
	[ "$(head -c 4 "$TMP/s.out" | od -An -tx1 | tr -d ' ')" = 0a0d0d0a ] ||
	    skip "divert-listen does not write pcapng yet"
	# The standard places, as tshark decodes them.
	run tshark_fields "$TMP/s.out" frame.interface_name frame.interface_queue frame.packet_id \
	    frame.packet_flags_direction sll.pkttype sll.ifindex sll.etype
	echo "$output"
	[ "${#lines[@]}" -eq 3 ]
	for l in "${lines[@]}"; do
		IFS=$'\t' read -r name queue id dir pkttype ifindex etype <<<"$l"
		[ "$name" = vA ]
		[ "$queue" = 4321 ]
		[ -n "$id" ]
		[ $((dir)) -eq 2 ]
		[ "$pkttype" = 4 ]
		[ "$ifindex" = "$IDX_A" ]
		[ "$etype" = 0x0800 ] || [ "$etype" = 0x00000800 ]
	done
	# divert(7)'s Python, as printed in the page, reads the custom option.
	awk '/^\.Bd -literal/ { on = 1; next } /^\.Ed/ { on = 0; next }
	    on && /^import struct/ { py = 1 } on && py { print } !on && py { exit }' "$MAN7" |
	    sed -e 's/\\e/\\/g' -e 's/\\&//g' >"$TMP/ctx.py"
	[ -s "$TMP/ctx.py" ]
	run /usr/bin/python3 "$TMP/ctx.py" <"$TMP/s.out"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"interface {'ifindex': $IDX_A}"* ]]
	for n in 1 2 3; do
		grep -q "^packet $n {.*'hook': 3[,}]" <<<"$output"	# output
		grep -q "^packet $n {.*'mark': 7[,}]" <<<"$output"	# ping -m 7
	done
}
