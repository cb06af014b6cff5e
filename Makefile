# divert - BSD divert sockets for Linux, as small Unix tools.
#
#   make            build every tool into build/
#   make check      install test dependencies, build, run all tests (plain and ASan/UBSan)
#   make demo       install dependencies, build, run the demo in a throwaway netns
#   make bench      measure speed against the stack alone (bench/run.sh)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
BUILD	?= build

PKGS	= libnetfilter_queue libnftnl libmnl libpcap
CFLAGS	?= -O2 -g
CFLAGS	+= -std=gnu11 -Wall -Wextra -Werror
CPPFLAGS += -D_GNU_SOURCE -Icommon $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS	+= $(shell pkg-config --libs $(PKGS) 2>/dev/null)

TOOLS	:= $(notdir $(wildcard bin/*))
COMMON	:= $(patsubst %.c,$(BUILD)/%.o,$(wildcard common/*.c))
UNITS	:= $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(wildcard tests/unit/*.c))
BENCH	:= $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
MANS	:= $(wildcard man/*.[0-9])

# Debian packages: to build, and to run the tests and the demo.
BUILD_DEPS = gcc make pkg-config libnetfilter-queue-dev libnftnl-dev libmnl-dev libpcap-dev
RUN_DEPS   = nftables iproute2 tcpdump iputils-ping
TEST_DEPS  = bats tshark tcpreplay python3-scapy socat mandoc procps util-linux time

all: $(addprefix $(BUILD)/,$(TOOLS))

$(BUILD)/common/%.o: common/%.c common/*.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/bin/%.o: bin/%.c common/*.h $(wildcard bin/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Ibin/$(*D) $(CFLAGS) -c -o $@ $<

# A tool is every .c file in bin/<tool>/ plus the common objects.
tool_objs = $(patsubst %.c,$(BUILD)/%.o,$(wildcard bin/$(1)/*.c))
.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/%: $$(call tool_objs,$$*) $(COMMON)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests may include a tool's own .c file to test it; rebuild on any change.
$(BUILD)/unit/%: tests/unit/%.c $(COMMON) $(wildcard bin/*/*.[ch] tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(COMMON) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(COMMON)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

units: $(UNITS)

deps:
	@sh tests/install-deps.sh $(BUILD_DEPS) $(RUN_DEPS)

test-deps:
	@sh tests/install-deps.sh $(BUILD_DEPS) $(RUN_DEPS) $(TEST_DEPS)

# The suite runs twice: the optimised build, then the same tests under
# AddressSanitizer and UndefinedBehaviorSanitizer.
check: test-deps
	$(MAKE) all units $(BENCH)
	$(MAKE) BUILD=build-asan CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' all units
	sh tests/run build build-asan

check-plain: test-deps all units $(BENCH)
	sh tests/run build

check-asan: test-deps
	$(MAKE) BUILD=build-asan CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' all units
	sh tests/run build-asan

# Throughput, latency and offline speed, in throwaway namespaces (bench/run.sh).
bench: test-deps
	$(MAKE) all $(BENCH)
	bash bench/run.sh $(BUILD)

demo: deps
	$(MAKE) all
	sh tests/demo.sh $(BUILD)

lint-man:
	mandoc -Tlint -Wwarning $(MANS)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(addprefix $(BUILD)/,$(TOOLS)) $(DESTDIR)$(BINDIR)/
	for m in $(MANS); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/; done

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all units bench deps test-deps check check-plain check-asan demo lint-man install clean

# Fuzzing with clang's libFuzzer (tests/fuzz/README): not part of check.
# Each harness is built into build-fuzz/ and run FUZZ_SECONDS, one at a time.
FUZZ_CC		?= clang
FUZZ_SECONDS	?= 60
FUZZ_OPTS	?= -max_len=8192
FUZZ_CFLAGS	= -std=gnu11 -Wall -Wextra -Werror -g -O1 \
		  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZERS		:= $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/*_fuzz.c))

build-fuzz/%_fuzz: tests/fuzz/%_fuzz.c $(wildcard common/*.[ch] bin/*/*.[ch])
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(wildcard common/*.c) $(LDLIBS)

fuzzers: $(FUZZERS)

fuzz: $(FUZZERS)
	for f in $(FUZZERS); do \
		n=$${f#build-fuzz/}; mkdir -p build-fuzz/corpus/$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) $(FUZZ_OPTS) -artifact_prefix=build-fuzz/$$n- \
		    build-fuzz/corpus/$$n tests/fuzz/seeds/$$n || exit 1; \
	done

.PHONY: fuzz fuzzers
