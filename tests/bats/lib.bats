#!/usr/bin/env bats
# libdivert as a program meets it: installed by make install, found by
# pkg-config, linked static or shared, and run in two namespaces A and B
# (helpers.bash).  The programs are examples/interceptor.c (divert(3)'s
# example) and tests/lib/*.c.

load helpers

TOP="$BATS_TEST_DIRNAME/../.."
: "${DIVERT_BUILD:=$TOP/build}"

setup() {
	unset DIVERT_MARK	# the programs and the rules use the default bit
	hosts_up
	ROOT=$TMP/root
}
teardown() { hosts_down; }

# install_lib: make install DESTDIR=$ROOT PREFIX=/usr from a copy of the build
# under test, every file given one time stamp newer than the sources, so that
# nothing is rebuilt (with flags other than the build's own).
install_lib() {
	local now
	now=$(date +%s)
	mkdir -p "$TMP/b"
	cp -a "$DIVERT_BUILD/." "$TMP/b/"
	find "$TMP/b" -type f -exec touch -d "@$now" {} +
	make -s -C "$TOP" install BUILD="$TMP/b" DESTDIR="$ROOT" PREFIX=/usr >/dev/null
}

# pc ARGS...: pkg-config reading the installed divert.pc, its paths under $ROOT.
pc() {
	PKG_CONFIG_PATH="$ROOT/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$ROOT" \
	    pkg-config "$@"
}

# build OUT CC-ARGS...: compile a test program as strictly as the project's code.
build() {
	local out=$1
	shift
	${CC:-cc} -std=gnu11 -Wall -Wextra -Werror $(san_flags) -o "$out" "$@"
}

# The functions lib/divert.h declares, one a line, sorted.
declared() {
	sed -n 's/^[a-z].*[ *]\(divert_[a-z_]*\)(.*/\1/p' "$TOP/lib/divert.h" | sort -u
}

@test "lib: make install puts tools, library, header, divert.pc and man pages; uninstall takes exactly them" {
	install_lib
	{
		for t in "$TOP"/bin/*/; do
			t=${t%/}
			echo "usr/bin/${t##*/}"
			echo "usr/share/man/man1/${t##*/}.1"	# every tool has its page
		done
		for m in "$TOP"/man/*.[0-9]; do echo "usr/share/man/man${m##*.}/${m##*/}"; done
		printf '%s\n' usr/include/divert.h usr/lib/pkgconfig/divert.pc \
		    usr/include/divert-compat.h usr/lib/pkgconfig/divert-compat.pc \
		    usr/lib/libdivert-socket.so \
		    usr/lib/libdivert.a usr/lib/libdivert.so usr/lib/libdivert.so.2 \
		    usr/lib/libdivert.so.2.1.0 usr/share/man/man3/divert.3 \
		    usr/share/man/man7/divert.7
	} | sort -u >"$TMP/want"
	listing() { (cd "$ROOT" && find . ! -type d | sed 's|^\./||' | sort); }
	listing >"$TMP/got"
	diff -u "$TMP/want" "$TMP/got"

	# The shared object: the versioned file, its soname link, its link-time link.
	lib=$ROOT/usr/lib
	[ -f "$lib/libdivert.so.2.1.0" ]
	[ ! -L "$lib/libdivert.so.2.1.0" ]
	readelf -d "$lib/libdivert.so.2.1.0" | grep -q 'SONAME.*\[libdivert\.so\.2\]'
	[ "$(readlink "$lib/libdivert.so.2")" = libdivert.so.2.1.0 ]
	[ "$(readlink "$lib/libdivert.so")" = libdivert.so.2 ]
	[ "$(ar t "$lib/libdivert.a")" = libdivert.o ]
	cmp "$TOP/lib/divert.h" "$ROOT/usr/include/divert.h"
	grep -qx 'prefix=/usr' "$lib/pkgconfig/divert.pc"
	grep -qx 'libdir=/usr/lib' "$lib/pkgconfig/divert.pc"
	grep -qx 'includedir=/usr/include' "$lib/pkgconfig/divert.pc"
	[ "$(pc --modversion divert)" = 2.1.0 ]
	# divert-compat: the header pulled in by -include, from the install's include dir.
	cmp "$TOP/lib/divert-compat.h" "$ROOT/usr/include/divert-compat.h"
	[ "$(pc --cflags divert-compat | sed 's/ *$//')" = "-I$ROOT/usr/include -include divert-compat.h" ]
	# The preloaded library finds libdivert beside itself.
	readelf -d "$lib/libdivert-socket.so" | grep -q 'NEEDED.*\[libdivert\.so\.2\]'
	readelf -d "$lib/libdivert-socket.so" | grep -q 'RUNPATH.*\[\$ORIGIN\]'
	for f in usr/bin/divert-rule usr/lib/libdivert.so.2.1.0 usr/lib/libdivert-socket.so; do
		[ "$(stat -c %a "$ROOT/$f")" = 755 ]
	done
	for f in usr/lib/libdivert.a usr/include/divert.h usr/lib/pkgconfig/divert.pc \
	    usr/share/man/man3/divert.3 usr/share/man/man1/divert-rule.1; do
		[ "$(stat -c %a "$ROOT/$f")" = 644 ]
	done

	# Installing again over it changes nothing.
	make -s -C "$TOP" install BUILD="$TMP/b" DESTDIR="$ROOT" PREFIX=/usr >/dev/null
	listing | diff -u "$TMP/want" -

	# Others' files in the same directories stay, whatever their names.
	touch "$ROOT/usr/bin/divert-other" "$lib/libother.so.1" "$lib/libdivert.so.9" \
	    "$ROOT/usr/include/other.h" "$ROOT/usr/share/man/man3/other.3"
	ln -s libother.so.1 "$lib/libother.so"
	make -s -C "$TOP" uninstall BUILD="$TMP/b" DESTDIR="$ROOT" PREFIX=/usr
	run listing
	echo "$output"
	[ "$output" = "$(printf '%s\n' usr/bin/divert-other usr/include/other.h \
	    usr/lib/libdivert.so.9 usr/lib/libother.so usr/lib/libother.so.1 \
	    usr/share/man/man3/other.3)" ]
}

@test "lib: divert(3) shows examples/interceptor.c as it is, and documents every function of divert.h" {
	# The first literal display of EXAMPLES, its roff escapes undone.
	awk '/^\.Sh EXAMPLES/ { ex = 1 } ex && /^\.Bd -literal/ { on = 1; next }
	    on && /^\.Ed/ { exit } on' "$TOP/man/divert.3" |
	    sed -e 's/\\e/\\/g' -e 's/^\\&//' >"$TMP/from-man.c"
	diff -u "$TOP/examples/interceptor.c" "$TMP/from-man.c"
	[ "$(wc -l <"$TOP/examples/interceptor.c")" -lt 60 ]

	# Named in NAME and declared in SYNOPSIS, and nothing else.
	[ "$(declared | wc -l)" -ge 20 ]
	[ "$(sed -n 's/^\.Nm \(divert_[a-z_]*\).*/\1/p' "$TOP/man/divert.3" | sort -u)" = \
	    "$(declared)" ]
	[ "$(sed -En 's/^\.(Fn|Fo) (divert_[a-z_]*).*/\2/p' "$TOP/man/divert.3" | sort -u)" = \
	    "$(declared)" ]
	run mandoc -Tlint -Wwarning "$TOP/man/divert.3"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "lib: the HOWTO's interceptor, built with pkg-config against the installed library, shows and reinjects pings" {
	install_lib
	cp "$TOP/examples/interceptor.c" "$TMP/ex.c"
	(cd "$TMP" && build ex ex.c $(pc --cflags --libs divert))
	# It is linked with the installed shared library, and finds it there.
	readelf -d "$TMP/ex" | grep -q 'NEEDED.*\[libdivert\.so\.2\]'
	LD_LIBRARY_PATH="$ROOT/usr/lib" ldd "$TMP/ex" |
	    grep -q "libdivert\.so\.2 => $ROOT/usr/lib/libdivert\.so\.2 "

	inA divert-rule add output icmp 4321
	bg_A "$TMP/ex.out" "$TMP/ex.err" env LD_LIBRARY_PATH="$ROOT/usr/lib" "$TMP/ex" 4321
	EX=$BG
	wait_queue "$NS_A" 4321
	run inA ping -c 3 -i 0.2 -W 2 $B4
	echo "$output"
	[ "$status" -eq 0 ]				# reinjected, answered
	[[ "$output" == *"3 packets transmitted, 3 received"* ]]
	[[ "$output" != *"DUP!"* ]]			# sent once, not also let go on
	cat "$TMP/ex.out" "$TMP/ex.err"
	# A line a diverted packet: the three echo requests, going out by vA.
	[ "$(cat "$TMP/ex.out")" = "$(printf 'out vA %s > %s 84\n' $A4 $B4 $A4 $B4 $A4 $B4)" ]
	[ "$(file_size "$TMP/ex.err")" -eq 0 ]
	kill -0 "$EX"					# still intercepting
}

@test "lib: two handles in one process receive from two ports, verdict in place and copy sent back" {
	install_lib
	# Static this time: the installed archive, with the libraries --static lists.
	build "$TMP/two_ports" $(pc --cflags divert) "$TOP/tests/lib/two_ports.c" \
	    $(pc --static --libs divert | sed 's/-ldivert\b/-l:libdivert.a/')
	run readelf -d "$TMP/two_ports"
	[[ "$output" != *libdivert* ]]

	inA divert-rule add output icmp 4301 -d $B4
	inA divert-rule add output udp 4302 -d $B4
	bg_B "$TMP/udp.out" /dev/null socat -u UDP-RECV:7777 -
	wait_until 50 sh -c "ip netns exec $NS_B ss -Hlun 'sport = :7777' | grep -q ."
	bg_A "$TMP/tp.out" "$TMP/tp.err" timeout 30 "$TMP/two_ports" 4301 3 4302 3
	TP=$BG
	wait_queue "$NS_A" 4301
	wait_queue "$NS_A" 4302

	run inA ping -c 3 -i 0.2 -W 2 $B4		# port 4301: accepted in place
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *"DUP!"* ]]
	for i in 1 2 3; do					# port 4302: copied, sent back
		echo "udp $i" | inA socat -u - UDP-SENDTO:$B4:7777
	done
	wait_until 50 sh -c "[ \$(wc -l <'$TMP/udp.out') -ge 3 ]"
	[ "$(cat "$TMP/udp.out")" = "$(printf 'udp %s\n' 1 2 3)" ]

	st=0
	wait "$TP" || st=$?					# it stops once both had 3
	cat "$TMP/tp.out" "$TMP/tp.err"
	[ "$st" -eq 0 ]
	[ "$(cat "$TMP/tp.out")" = "$(
	    printf 'handle 4301 port 4301 out vA proto 1 len 84\n%.0s' 1 2 3
	    printf 'handle 4302 port 4302 out vA proto 17 len 34\n%.0s' 1 2 3)" ]
	[ "$(file_size "$TMP/tp.err")" -eq 0 ]
}

@test "lib: a process that joins an offered port answers its held packets in place, with new contents" {
	install_lib
	build "$TMP/join" $(pc --cflags divert) "$TOP/tests/lib/join.c" $(pc --libs divert)
	inA divert-rule add output icmp 4400
	bg_B /dev/null "$TMP/td.err" tcpdump -i vB -n --immediate-mode -U -w "$TMP/b.pcap" icmp
	TD=$BG
	wait_until 50 grep -q listening "$TMP/td.err"
	bg_A "$TMP/join.out" "$TMP/join.err" env LD_LIBRARY_PATH="$ROOT/usr/lib" "$TMP/join" 4400 5 1000
	JP=$BG
	wait_queue "$NS_A" 4400
	wait_joined "$NS_A" 4400
	run inA ping -c 5 -i 0.2 -W 2 $B4
	echo "$output"
	[[ "$output" == *"5 packets transmitted, 5 received"* ]]
	wait_gone "$JP"
	wait_until 50 sh -c "[ \$(tcpdump -r $TMP/b.pcap 2>/dev/null | wc -l) -ge 10 ]"
	kill -INT "$TD"
	wait_gone "$TD"
	cat "$TMP/join.out" "$TMP/join.err"
	[ "$(cat "$TMP/join.out")" = "$(printf 'child in place 5 refused 0\nheld 5 stolen 0 accepted 5 dropped 0 joins 1')" ]
	[ "$(file_size "$TMP/join.err")" -eq 0 ]
	# The requests B got are the ones the joined process gave back: TTL 7 (tshark).
	[ "$(tshark_fields "$TMP/b.pcap" ip.ttl icmp.type | grep -c "^7	8\$")" -eq 5 ]
}

@test "lib: libdivert.a and libdivert.so export the functions of divert.h and nothing else, versioned" {
	declared >"$TMP/want"
	nm -g --defined-only "$DIVERT_BUILD/libdivert.a" | awk 'NF == 3 { print $3 }' |
	    sort >"$TMP/a"
	diff -u "$TMP/want" "$TMP/a"
	nm -D --defined-only "$DIVERT_BUILD/libdivert.so.2.1.0" | awk '{ print $2, $3 }' |
	    sort >"$TMP/so"
	# 2.1 added divert_set_gso; everything else is as 2.0 had it.
	{
		echo "A DIVERT_2.0"
		echo "A DIVERT_2.1"
		grep -vx divert_set_gso "$TMP/want" | sed 's/.*/T &@@DIVERT_2.0/'
		grep -x divert_set_gso "$TMP/want" | sed 's/.*/T &@@DIVERT_2.1/'
	} | sort | diff -u - "$TMP/so"
}

@test "lib: a program may define the library's internal names and still link libdivert.a" {
	# The library's objects as the tools link them, internal names global:
	# a program defines each again, and an archive that leaked one would
	# define it twice.
	nm -g --defined-only "$DIVERT_BUILD/libdivert-objs.a" | awk 'NF == 3 { print $3 }' |
	    grep -v '^divert_' | grep -E '^[A-Za-z_][A-Za-z0-9_]*$' | sort -u >"$TMP/internal"
	grep -qx nl_talk "$TMP/internal"
	sed 's/.*/void &(void) {}/' "$TMP/internal" >"$TMP/clash.c"
	cat >"$TMP/main.c" <<-'EOF'
	#include <divert.h>
	int
	main(void)
	{
		char errbuf[DIVERT_ERRBUF_SIZE];

		return divert_open(70000, DIVERT_MARK_DEFAULT, 0, errbuf) != NULL;
	}
	EOF
	run build "$TMP/clash" -I"$TOP/lib" "$TMP/main.c" "$TMP/clash.c" \
	    "$DIVERT_BUILD/libdivert.a" $(PKG_CONFIG_PATH="$DIVERT_BUILD" pkg-config --static \
	    --libs-only-l divert | sed 's/-ldivert\b//')
	echo "$output"
	[ "$status" -eq 0 ]
	"$TMP/clash"
}

@test "lib: errors are returned with errno and words, never printed" {
	install_lib
	build "$TMP/errors" -I"$TOP/tests/unit" "$TOP/tests/lib/errors.c" \
	    $(pc --cflags --libs divert)
	st=0
	inA env LD_LIBRARY_PATH="$ROOT/usr/lib" "$TMP/errors" 4321 >"$TMP/out" 2>"$TMP/err" ||
	    st=$?
	cat "$TMP/out" "$TMP/err"
	[ "$st" -eq 0 ]
	[ "$(file_size "$TMP/err")" -eq 0 ]		# the library printed nothing
	run grep -c '^ok ' "$TMP/out"
	[ "$output" -ge 14 ]
	[ "$(grep -c '^not ok' "$TMP/out")" -eq 0 ]
	[ "$(tail -1 "$TMP/out")" = "1..$output" ]	# it ran to the end
}
