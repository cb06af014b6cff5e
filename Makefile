# divert - BSD divert sockets for Linux, as small Unix tools.
#
#   make            build every tool into build/
#   make check      install test dependencies, build, run all tests (plain and ASan/UBSan)
#   make check-unit the unit tests only: no root, no network, seconds
#   make demo       install dependencies, build, run the demo in a throwaway netns
#   make bench      measure speed against the stack alone (bench/run.sh)
#   make install    PREFIX=/usr/local DESTDIR=     (make uninstall undoes it)
#
# libdivert (lib/, divert(3)) is built static and shared; the tools link its
# objects as any program would link the library, through lib/divert.h only.
#
# CFLAGS, CPPFLAGS, LDFLAGS and LDLIBS are the user's: the project's own flags
# live in DV_* variables that they add to and never replace.

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
LIBDIR	?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BUILD	?= build
PKG_CONFIG ?= pkg-config
OBJCOPY ?= objcopy

CFLAGS	?= -O2 -g
DV_CFLAGS   = -std=gnu11 -Wall -Wextra -Werror
DV_CPPFLAGS = -D_GNU_SOURCE -Ilib -Icommon -MMD -MP
DV_LDFLAGS  = -Wl,--as-needed
SAN_CFLAGS  = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# pkg-config modules, the Debian package of each, and which tool links which.
PKGS	= libnetfilter_queue libnftnl libmnl libpcap
DEB_libnetfilter_queue = libnetfilter-queue-dev
DEB_libnftnl	= libnftnl-dev
DEB_libmnl	= libmnl-dev
DEB_libpcap	= libpcap-dev
USES_divert-rule   = libnftnl libmnl
USES_divert-listen = libnetfilter_queue libnftnl libmnl libpcap
USES_divert-inject = libnetfilter_queue libmnl libpcap
USES_divert-mangle = libnetfilter_queue libmnl libpcap
USES_divert-defrag = libnetfilter_queue libmnl libpcap
USES_divert-impair = libnetfilter_queue libmnl libpcap libm
USES_divert-run    = libnftnl libmnl
USES_libdivert	   = libnetfilter_queue libnftnl libmnl

# pkg-config runs once per module, when this file is read; a module it does
# not know is reported when something is built (see pkgs-present).
PKG_MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell $(PKG_CONFIG) --exists $(p) 2>/dev/null && echo y),,$(p))))
PKG_CFLAGS  := $(if $(PKG_MISSING),,$(shell $(PKG_CONFIG) --cflags $(PKGS)))
$(foreach p,$(PKGS),$(eval LIBS_$(p) := $(if $(PKG_MISSING),,$(shell $(PKG_CONFIG) --libs $(p)))))
LIBS_libm   := -lm		# glibc's, no pkg-config module: divert-impair's distributions
libs_of = $(foreach p,$(1),$(LIBS_$(p)))

ALL_CFLAGS   = $(DV_CPPFLAGS) $(PKG_CFLAGS) $(CPPFLAGS) $(DV_CFLAGS) $(CFLAGS)
ALL_LDFLAGS  = $(DV_LDFLAGS) $(LDFLAGS)

TOOLS	:= $(notdir $(wildcard bin/*))

# libdivert: lib/*.c, and the pure packet code of common/ it shares with the
# tools.  Built position-independent with hidden symbols; only what
# lib/divert.h declares is exported (lib/divert.map versions it).
LIB_VERSION = 2.1.0
LIB_SONAME  = libdivert.so.2
LIB_COMMON  = common/csum.c common/frag.c common/ipwalk.c common/l4sum.c common/num.c
LIB_OBJS   := $(patsubst %.c,$(BUILD)/pic/%.o,$(wildcard lib/*.c) $(LIB_COMMON))
LIBDIVERT_A  = $(BUILD)/libdivert.a
LIBDIVERT_SO = $(BUILD)/libdivert.so.$(LIB_VERSION)
LIBOBJS	     = $(BUILD)/libdivert-objs.a	# the same objects, for the tools

# libdivert-socket.so: divert(4) sockets for programs that know nothing of
# libdivert (LD_PRELOAD, divert-run(1)); a client of libdivert.so, found
# beside it ($ORIGIN), exporting only the calls it stands in for.
PRELOAD_SO   = $(BUILD)/libdivert-socket.so
PRELOAD_OBJS = $(BUILD)/pic/preload/divert-socket.o $(BUILD)/pic/common/csum.o

LIBCOMMON = $(BUILD)/libcommon.a
COMMON_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(LIB_COMMON),$(wildcard common/*.c)))
UNITS	:= $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(wildcard tests/unit/*.c))
BENCH	:= $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
MANS	:= $(wildcard man/*.[0-9])

# Debian packages: to build, and to run the tests and the demo.
BUILD_DEPS = gcc make pkg-config $(foreach p,$(PKGS),$(DEB_$(p)))
RUN_DEPS   = nftables iproute2 tcpdump iputils-ping
TEST_DEPS  = bats tshark tcpreplay python3-scapy socat mandoc procps util-linux time binutils

all: $(addprefix $(BUILD)/,$(TOOLS)) lib

lib: $(LIBDIVERT_A) $(LIBDIVERT_SO) $(BUILD)/divert.pc $(BUILD)/divert-compat.pc $(PRELOAD_SO)

pkgs-present:
	@if [ -n "$(PKG_MISSING)" ]; then \
		echo "make: $(PKG_CONFIG) does not find $(PKG_MISSING): install the Debian" \
		    "packages pkg-config $(foreach p,$(PKG_MISSING),$(DEB_$(p))) (make deps does)" >&2; \
		exit 1; \
	fi

$(BUILD)/%.o: %.c | pkgs-present
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -I$(<D) -c -o $@ $<

$(BUILD)/pic/%.o: %.c | pkgs-present
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -I$(<D) -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(LIBOBJS): $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

# The installed archive is one object whose hidden symbols are made local:
# a program linking it sees divert_* and nothing else, as with the .so.
$(LIBDIVERT_A): $(LIB_OBJS)
	$(LD) -r -o $(BUILD)/pic/libdivert.o $^
	$(OBJCOPY) --localize-hidden $(BUILD)/pic/libdivert.o
	rm -f $@
	$(AR) rcs $@ $(BUILD)/pic/libdivert.o

$(LIBDIVERT_SO): $(LIB_OBJS) lib/divert.map
	$(CC) $(DV_CFLAGS) $(CFLAGS) $(ALL_LDFLAGS) -shared -Wl,-soname,$(LIB_SONAME) \
	    -Wl,--version-script=lib/divert.map -o $@ $(LIB_OBJS) \
	    $(call libs_of,$(USES_libdivert)) $(LDLIBS)
	ln -sf $(@F) $(BUILD)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(BUILD)/libdivert.so

$(PRELOAD_SO): $(PRELOAD_OBJS) $(LIBDIVERT_SO)
	$(CC) $(DV_CFLAGS) $(CFLAGS) $(ALL_LDFLAGS) -shared -Wl,-rpath,'$$ORIGIN' \
	    -o $@ $(PRELOAD_OBJS) -L$(BUILD) -ldivert -ldl $(LDLIBS)

# divert.pc names the directories of the install: it is made again whenever
# PREFIX, LIBDIR or INCLUDEDIR differ from the last make's (`make && make
# install PREFIX=/usr` installs a .pc that says /usr), and left alone otherwise.
$(BUILD)/divert.pc: lib/divert.pc.in Makefile FORCE
	@mkdir -p $(@D)
	@sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(LIB_VERSION)|' lib/divert.pc.in > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; \
	else mv $@.new $@ && echo "divert.pc: prefix $(PREFIX)"; fi

$(BUILD)/divert-compat.pc: lib/divert-compat.pc.in Makefile FORCE
	@mkdir -p $(@D)
	@sed -e 's|@PREFIX@|$(PREFIX)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(LIB_VERSION)|' lib/divert-compat.pc.in > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; fi

# divert-run finds the preloaded library beside itself, else where install puts it.
$(BUILD)/bin/divert-run/divert-run.o: DV_CPPFLAGS += -DPRELOAD_DIR='"$(LIBDIR)"'

# A tool is every .c file in bin/<tool>/, the common archive, libdivert's
# objects (only those it calls are linked in), and its libraries.
tool_objs = $(patsubst %.c,$(BUILD)/%.o,$(wildcard bin/$(1)/*.c))
.SECONDARY:
.SECONDEXPANSION:
$(addprefix $(BUILD)/,$(TOOLS)): $(BUILD)/%: $$(call tool_objs,$$*) $(LIBCOMMON) $(LIBOBJS)
	$(CC) $(DV_CFLAGS) $(CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(call libs_of,$(USES_$*)) $(LDLIBS)

# Unit tests and the bench programs link everything: the engines they test
# (common/edit.c, reasm.c, ipwalk.c ...) are in the archives.
$(BUILD)/unit/%: $(BUILD)/tests/unit/%.o $(LIBCOMMON) $(LIBOBJS)
	@mkdir -p $(@D)
	$(CC) $(DV_CFLAGS) $(CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(call libs_of,$(PKGS) libm) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBCOMMON) $(LIBOBJS)
	$(CC) $(DV_CFLAGS) $(CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(call libs_of,$(PKGS) libm) $(LDLIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

units: $(UNITS)

deps:
	@sh tests/install-deps.sh $(BUILD_DEPS) $(RUN_DEPS)

test-deps:
	@sh tests/install-deps.sh $(BUILD_DEPS) $(RUN_DEPS) $(TEST_DEPS)

# The suite runs twice: the optimised build, then the same tests under
# AddressSanitizer and UndefinedBehaviorSanitizer.
check: test-deps
	$(MAKE) all units $(BENCH)
	$(MAKE) BUILD=build-asan CFLAGS='$(SAN_CFLAGS)' all units
	sh tests/run build build-asan

check-plain: test-deps
	$(MAKE) all units $(BENCH)
	sh tests/run $(BUILD)

check-asan: test-deps
	$(MAKE) BUILD=build-asan CFLAGS='$(SAN_CFLAGS)' all units
	sh tests/run build-asan

check-unit: units
	sh tests/run --units $(BUILD)

# Throughput, latency and offline speed, in throwaway namespaces (bench/run.sh).
bench: test-deps
	$(MAKE) all $(BENCH)
	bash bench/run.sh $(BUILD)

demo: deps
	$(MAKE) all
	sh tests/demo.sh $(BUILD)

lint-man:
	mandoc -Tlint -Wwarning $(MANS)

# What install puts, relative to DESTDIR: the tools, the library (the
# versioned .so, its soname and link-time symlinks, the archive), the header,
# divert.pc and the man pages of every section in man/.  uninstall removes
# exactly these, and leaves the directories (they may hold others' files).
MANSECTS     = $(sort $(subst .,,$(suffix $(MANS))))
INST_TOOLS   = $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOLS))
INST_LIBS    = $(addprefix $(DESTDIR)$(LIBDIR)/,libdivert.so.$(LIB_VERSION) $(LIB_SONAME) \
	       libdivert.so libdivert.a)
INST_HEADER  = $(DESTDIR)$(INCLUDEDIR)/divert.h $(DESTDIR)$(INCLUDEDIR)/divert-compat.h
INST_PC      = $(DESTDIR)$(PKGCONFIGDIR)/divert.pc $(DESTDIR)$(PKGCONFIGDIR)/divert-compat.pc
INST_PRELOAD = $(DESTDIR)$(LIBDIR)/libdivert-socket.so
INST_MANS    = $(foreach m,$(MANS),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(PKGCONFIGDIR) $(foreach s,$(MANSECTS),$(DESTDIR)$(MANDIR)/man$(s))
	install -m 755 $(addprefix $(BUILD)/,$(TOOLS)) $(DESTDIR)$(BINDIR)/
	install -m 755 $(LIBDIVERT_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libdivert.so.$(LIB_VERSION) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libdivert.so
	install -m 644 $(LIBDIVERT_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(PRELOAD_SO) $(INST_PRELOAD)
	install -m 644 lib/divert.h lib/divert-compat.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(BUILD)/divert.pc $(BUILD)/divert-compat.pc $(DESTDIR)$(PKGCONFIGDIR)/
	for m in $(MANS); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/; done

uninstall:
	rm -f $(INST_TOOLS) $(INST_LIBS) $(INST_PRELOAD) $(INST_HEADER) $(INST_PC) $(INST_MANS)

clean:
	rm -rf $(BUILD) build build-asan build-fuzz

FORCE:

.PHONY: all lib units bench deps test-deps check check-plain check-asan check-unit demo \
	lint-man install uninstall clean pkgs-present FORCE

# Fuzzing with clang's libFuzzer (tests/fuzz/README): not part of check.
# Each harness is built into build-fuzz/ and run FUZZ_SECONDS, one at a time.
FUZZ_CC		?= clang
FUZZ_SECONDS	?= 60
FUZZ_OPTS	?= -max_len=8192
FUZZ_CFLAGS	= $(DV_CFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZERS		:= $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/*_fuzz.c))

build-fuzz/%_fuzz: tests/fuzz/%_fuzz.c $(wildcard common/*.[ch] lib/*.[ch])
	@mkdir -p $(@D)
	$(FUZZ_CC) -D_GNU_SOURCE -Ilib -Icommon $(PKG_CFLAGS) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< \
	    $(wildcard common/*.c lib/*.c) $(call libs_of,$(PKGS) libm) $(LDLIBS)

fuzzers: $(FUZZERS)

fuzz: $(FUZZERS)
	for f in $(FUZZERS); do \
		n=$${f#build-fuzz/}; mkdir -p build-fuzz/corpus/$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) $(FUZZ_OPTS) -artifact_prefix=build-fuzz/$$n- \
		    build-fuzz/corpus/$$n tests/fuzz/seeds/$$n || exit 1; \
	done

.PHONY: fuzz fuzzers
