/* reasm_test - the reassembly engine of divert-defrag, packet by packet. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <linux/if_ether.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <netinet/ip.h>

#include "bytes.h"
#include "csum.h"
#include "reasm.h"
#include "tap.h"

#define MAXOUT	64

/* What reasm wrote: copies of the IP bytes, and the time stamps. */
static struct {
	int		n;
	size_t		len[MAXOUT];
	uint8_t		data[MAXOUT][REASM_MAX_V6];
	long		usec[MAXOUT];
} got;

static void
collect(const struct pkt *p, void *arg)
{
	(void)arg;
	if (got.n < MAXOUT) {
		memcpy(got.data[got.n], p->data, p->len);
		got.len[got.n] = p->len;
		got.usec[got.n] = p->a.ts.tv_usec;
	}
	got.n++;
}

static uint8_t orig[REASM_MAX_V6];	/* the datagram before fragmenting */
static uint8_t fbuf[REASM_MAX_V6];

/* An IPv4/UDP datagram of plen payload bytes (UDP checksum left 0). */
static size_t
make4(uint16_t id, size_t plen)
{
	size_t i;

	memset(orig, 0, 28);
	orig[0] = 0x45;
	put16(orig + 2, (uint16_t)(20 + plen));
	put16(orig + 4, id);
	orig[8] = 64;
	orig[9] = 17;
	memcpy(orig + 12, (uint8_t[]){ 10, 0, 0, 1, 10, 0, 0, 2 }, 8);
	put16(orig + 10, csum(orig, 20));
	put16(orig + 20, 1234);
	put16(orig + 22, 4321);
	put16(orig + 24, (uint16_t)plen);
	for (i = 8; i < plen; i++)
		orig[20 + i] = (uint8_t)(i * 7 + id);
	return 20 + plen;
}

/* Fragment [off, off+n) of the IPv4 datagram in orig, as a struct pkt. */
static struct pkt
frag4(size_t total, size_t off, size_t n, long usec)
{
	struct pkt p = { .a.proto = ETH_P_IP, .a.dir = DIVERT_IN, .a.ifindex = 3 };

	memcpy(fbuf, orig, 20);
	memcpy(fbuf + 20, orig + 20 + off, n);
	put16(fbuf + 2, (uint16_t)(20 + n));
	put16(fbuf + 6, (uint16_t)(off / 8 | (off + n < total - 20 ? IP_MF : 0)));
	put16(fbuf + 10, 0);
	put16(fbuf + 10, csum(fbuf, 20));
	p.data = fbuf;
	p.len = 20 + n;
	p.a.ts.tv_usec = usec;
	return p;
}

static struct reasm *
fresh(int overlap, size_t mem, int keep)
{
	struct reasm_config c = { .max_memory = mem, .timeout_ms = 30000,
	    .overlap = overlap, .keep_incomplete = keep, .seed = 1 };

	memset(&got, 0, sizeof(got));
	return reasm_new(&c, collect, NULL);
}

static void
feed4(struct reasm *r, size_t total, size_t off, size_t n, uint64_t now)
{
	struct pkt p = frag4(total, off, n, (long)off);

	reasm_input(r, &p, now);
}

static int
same_as_orig(int k, size_t len)
{
	return got.n > k && got.len[k] == len && memcmp(got.data[k], orig, len) == 0;
}

static void
test_v4_orders(void)
{
	size_t len = make4(7, 3000);
	struct reasm *r = fresh(REASM_OVERLAP_RFC5722, 1 << 20, 0);
	size_t off;

	for (off = 0; off < 3000; off += 1000)
		feed4(r, len, off, 1000, 0);
	ok(same_as_orig(0, len) && got.n == 1, "IPv4 in order: the original bytes, once");
	ok(csum(got.data[0], 20) == 0, "IPv4 header checksum verifies");
	for (off = 3000; off > 0; off -= 1000)
		feed4(r, len, off - 1000, 1000, 0);
	ok(same_as_orig(1, len), "IPv4 reversed: the original bytes");
	ok(got.usec[1] == 0, "the reassembled datagram has the completing fragment's time stamp");
	ok(reasm_held(r) == 0, "nothing left held");
	reasm_free(r);
}

static void
test_pass_through(void)
{
	size_t len = make4(8, 100);
	struct reasm *r = fresh(REASM_OVERLAP_RFC5722, 1 << 20, 0);
	struct pkt p = { .a.proto = ETH_P_IP, .data = orig, .len = len };
	struct pkt junk = { .a.proto = ETH_P_IP, .data = orig, .len = 10 };
	struct pkt arp = { .a.proto = ETH_P_ARP, .data = orig, .len = 28 };

	reasm_input(r, &p, 0);
	ok(got.n == 1 && same_as_orig(0, len), "a whole packet goes out at once, unchanged");
	reasm_input(r, &junk, 0);
	reasm_input(r, &arp, 0);
	ok(got.n == 3 && reasm_stats(r)->unparsed == 1 && reasm_stats(r)->passed == 3,
	    "a cut packet and a non-IP record pass, the cut one counted");
	reasm_free(r);
}

static void
test_overlap_drop(void)
{
	size_t len = make4(9, 64);
	struct reasm *r = fresh(REASM_OVERLAP_RFC5722, 1 << 20, 0);

	feed4(r, len, 0, 48, 0);
	feed4(r, len, 24, 8, 0);		/* teardrop */
	feed4(r, len, 48, 16, 0);
	ok(got.n == 0 && reasm_stats(r)->overlaps == 1, "rfc5722: an overlap drops the datagram");
	ok(reasm_stats(r)->dropped == 3, "and its later fragments too (RFC 5722)");
	reasm_expire(r, 30000);
	feed4(r, len, 0, 48, 30001);
	feed4(r, len, 48, 16, 30002);
	ok(got.n == 1 && same_as_orig(0, len), "after the timeout the ID is usable again");
	reasm_free(r);
}

static void
test_duplicates(void)
{
	size_t len = make4(10, 64);
	struct reasm *r = fresh(REASM_OVERLAP_RFC5722, 1 << 20, 0);

	feed4(r, len, 0, 32, 0);
	feed4(r, len, 0, 32, 0);
	feed4(r, len, 32, 32, 0);
	ok(got.n == 1 && same_as_orig(0, len) && reasm_stats(r)->duplicates == 1,
	    "an exact duplicate is discarded, the datagram completes");
	reasm_free(r);
}

static void
test_first_last(void)
{
	size_t len = make4(11, 64);
	struct reasm *r = fresh(REASM_OVERLAP_FIRST, 1 << 20, 0);
	struct pkt p;

	feed4(r, len, 0, 32, 0);
	p = frag4(len, 24, 40, 0);
	memset(fbuf + 20, 'X', 8);		/* overlapping tail, other bytes */
	reasm_input(r, &p, 0);
	ok(same_as_orig(0, len), "--overlap first keeps the bytes that came first");
	reasm_free(r);
	r = fresh(REASM_OVERLAP_LAST, 1 << 20, 0);
	feed4(r, len, 0, 32, 0);
	p = frag4(len, 24, 40, 0);
	memset(fbuf + 20, 'X', 8);
	reasm_input(r, &p, 0);
	ok(got.n == 1 && memcmp(got.data[0] + 20 + 24, "XXXXXXXX", 8) == 0 &&
	    memcmp(got.data[0] + 20, orig + 20, 24) == 0,
	    "--overlap last takes the bytes that came last");
	reasm_free(r);
}

static void
test_limits(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);
	struct pkt p;
	size_t len;
	int i;

	make4(12, 64);
	feed4(r, 65556, 0, 65512, 0);		/* ping of death: 20 + 65536 bytes */
	p = frag4(65556, 65512, 24, 0);
	reasm_input(r, &p, 0);
	ok(reasm_stats(r)->oversize == 1 && got.n == 0, "a datagram past 65535 bytes is refused");
	make4(16, 64);
	p = frag4(84, 0, 12, 0);		/* MF, 12 bytes: cut to 8 as the kernel does */
	put16(fbuf + 6, IP_MF);
	put16(fbuf + 10, 0);
	put16(fbuf + 10, csum(fbuf, 20));
	reasm_input(r, &p, 0);
	feed4(r, 84, 8, 56, 0);
	ok(reasm_stats(r)->trimmed == 1 && got.n == 1 && same_as_orig(0, 84),
	    "a middle fragment off the 8-byte grid is cut to it (trimmed), the datagram completes");
	make4(17, 64);
	feed4(r, 84, 0, 32, 0);
	p = frag4(84, 32, 4, 0);		/* MF, 4 bytes: nothing left on the grid */
	put16(fbuf + 6, 32 / 8 | IP_MF);
	put16(fbuf + 10, 0);
	put16(fbuf + 10, csum(fbuf, 20));
	reasm_input(r, &p, 0);
	ok(reasm_stats(r)->invalid == 1 && reasm_held(r) == 0,
	    "a fragment with no data kills its datagram (linux: forgotten)");
	reasm_free(r);

	/* the size limit uses the first fragment's header length */
	r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);
	len = make4(18, 65515);			/* 65535 bytes */
	feed4(r, len, 0, 32768, 0);
	p = frag4(len, 32768, 65515 - 32768, 0);
	memmove(fbuf + 60, fbuf + 20, 65515 - 32768);	/* later fragment: 40 bytes of options */
	memset(fbuf + 20, IPOPT_NOP, 40);
	fbuf[0] = 0x4f;
	put16(fbuf + 2, (uint16_t)(60 + 65515 - 32768));
	put16(fbuf + 10, 0);
	put16(fbuf + 10, csum(fbuf, 60));
	p.len = 60 + 65515 - 32768;
	reasm_input(r, &p, 0);
	ok(got.n == 1 && same_as_orig(0, len),
	    "65535 bytes whose later fragment carries options are reassembled");
	reasm_free(r);

	r = fresh(REASM_OVERLAP_LAST, 4 << 20, 0);
	make4(13, 64);
	for (i = 0; i < REASM_MAX_FRAGS + 10; i++)
		feed4(r, 64 + 20, 8, 8, 0);
	ok(reasm_stats(r)->too_many == 1, "too many fragments refuse the datagram");
	ok(reasm_held(r) == REASM_BLOCK,
	    "what is left of it is one block");
	reasm_free(r);
}

/* Feed fragments [k*size, ...) of orig in the order given, IPv4. */
static void
feed_order(struct reasm *r, size_t len, size_t size, const uint32_t *order, size_t n)
{
	size_t k, off, plen = len - 20;

	for (k = 0; k < n; k++) {
		off = order[k] * size;
		feed4(r, len, off, off + size < plen ? size : plen - off, 0);
	}
}

/*
 * 8190 fragments of 8 bytes, shuffled: the same bytes as in order, under
 * every policy, and the work per fragment does not grow with the number
 * held (bitmap words looked at, not time: the old sorted list looked at
 * ~n/4 fragments each, 16 million here).
 */
static void
test_shuffled(void)
{
	static uint32_t order[8190];
	size_t len = make4(19, 65515), n = 8190, k, j;
	uint32_t seed = 12345, t;
	struct reasm *r;
	int pol, same = 1, cheap = 1;
	uint64_t visits[4];

	for (k = 0; k < n; k++)
		order[k] = (uint32_t)k;
	for (k = n - 1; k > 0; k--) {
		seed = seed * 1103515245 + 12345;
		j = (seed >> 8) % (k + 1);
		t = order[k], order[k] = order[j], order[j] = t;
	}
	for (pol = 0; pol < 4; pol++) {
		r = fresh(pol, 8 << 20, 0);
		feed_order(r, len, 8, order, n);
		same &= got.n == 1 && same_as_orig(0, len);
		visits[pol] = reasm_stats(r)->bitmap_words;
		cheap &= reasm_stats(r)->bitmap_words <= 8 * n;
		reasm_free(r);
	}
	ok(same, "shuffled 8-byte fragments: byte-identical to the original, every policy");
	ok(cheap, "bitmap words looked at per fragment stay few (%ju %ju %ju %ju for %zu)",
	    (uintmax_t)visits[0], (uintmax_t)visits[1], (uintmax_t)visits[2],
	    (uintmax_t)visits[3], n);
	for (k = 0; k < n; k++)
		order[k] = (uint32_t)k;
	r = fresh(REASM_OVERLAP_FIRST, 8 << 20, 0);
	feed_order(r, len, 8, order, n);
	ok(got.n == 1 && same_as_orig(0, len) && reasm_stats(r)->bitmap_words == 0,
	    "in order: the fast path, no bitmap at all");
	reasm_free(r);
}

/* A last fragment off the grid, held and then duplicated: its partial unit counts 5 bytes. */
static void
test_partial_unit(void)
{
	int pol, good = 1;
	size_t len = make4(21, 61);
	struct reasm *r;

	for (pol = 0; pol < 4; pol++) {
		r = fresh(pol, 1 << 20, 0);
		feed4(r, len, 56, 5, 0);
		feed4(r, len, 56, 5, 0);
		feed4(r, len, 0, 56, 0);
		good &= got.n == 1 && same_as_orig(0, len) && reasm_stats(r)->duplicates == 1 &&
		    reasm_stats(r)->overlaps == 0;
		reasm_free(r);
	}
	ok(good, "a duplicate last fragment off the grid is a duplicate, every policy");
}

/* An IPv4 fragment with its ECN bits (and checksum) set, fed at time 0. */
static void
feed4_tos(struct reasm *r, size_t total, size_t off, size_t n, uint8_t ecn)
{
	struct pkt p = frag4(total, off, n, 0);

	fbuf[1] = (uint8_t)((fbuf[1] & ~3) | ecn);
	put16(fbuf + 10, 0);
	put16(fbuf + 10, csum(fbuf, 20));
	reasm_input(r, &p, 0);
}

/* RFC 3168 5.3 as the kernel's ip_frag_ecn_table: first fragment's bits, CE wins, Not-ECT mixed drops. */
static void
test_ecn(void)
{
	static const struct { uint8_t a, b, want; const char *what; } c[] = {
		{ 0, 0, 0, "Not-ECT + Not-ECT: Not-ECT" },
		{ 1, 1, 1, "ECT(1) + ECT(1): ECT(1)" },
		{ 2, 1, 2, "ECT(0) + ECT(1): the first fragment's, ECT(0)" },
		{ 2, 3, 3, "ECT(0) + CE: CE" },
		{ 3, 1, 3, "CE + ECT(1): CE" },
		{ 3, 3, 3, "CE + CE: CE" },
		{ 0, 2, 0xff, "Not-ECT + ECT(0): dropped" },
		{ 3, 0, 0xff, "CE + Not-ECT: dropped" },
	};
	size_t k, len;
	struct reasm *r;

	for (k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);
		len = make4((uint16_t)(30 + k), 64);
		feed4_tos(r, len, 0, 32, c[k].a);
		feed4_tos(r, len, 32, 32, c[k].b);
		if (c[k].want == 0xff)
			ok(got.n == 0 && reasm_stats(r)->ecn == 1, "%s", c[k].what);
		else
			ok(got.n == 1 && (got.data[0][1] & 3) == c[k].want &&
			    csum(got.data[0], 20) == 0 &&
			    memcmp(got.data[0] + 20, orig + 20, 64) == 0, "%s", c[k].what);
		reasm_free(r);
	}
	r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);
	len = make4(40, 64);
	feed4_tos(r, len, 0, 32, 2);
	feed4_tos(r, len, 0, 32, 0);		/* a duplicate: its bits do not count */
	feed4_tos(r, len, 32, 32, 2);
	ok(got.n == 1 && (got.data[0][1] & 3) == 2, "a discarded duplicate's Not-ECT does not count");
	reasm_free(r);
}

/* linux: the kernel's overlap rules (inet_frag_queue_insert). */
static void
test_linux_overlaps(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);
	size_t len = make4(50, 64);
	struct pkt p;

	feed4(r, len, 0, 48, 0);
	p = frag4(len, 24, 8, 0);
	memset(fbuf + 20, 'X', 8);		/* wholly inside, other bytes */
	reasm_input(r, &p, 0);
	feed4(r, len, 48, 16, 0);
	ok(got.n == 1 && same_as_orig(0, len) && reasm_stats(r)->duplicates == 1 && reasm_stats(r)->overlaps == 0,
	    "linux: a fragment wholly inside held data is discarded, the datagram kept");
	reasm_free(r);

	r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);
	feed4(r, len, 0, 32, 0);
	feed4(r, len, 24, 16, 0);		/* partial overlap: the datagram goes */
	ok(reasm_stats(r)->overlaps == 1 && got.n == 0, "linux: a partial overlap drops the datagram");
	feed4(r, len, 0, 32, 0);		/* ...and is forgotten: a resend completes */
	feed4(r, len, 32, 32, 0);
	ok(got.n == 1 && same_as_orig(0, len), "linux: a new queue after the drop completes");
	reasm_free(r);

	/* runs: [16,24) first, then [0,8) and [8,16) each a run of its own */
	r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);
	feed4(r, len, 16, 8, 0);
	feed4(r, len, 0, 8, 0);
	feed4(r, len, 8, 8, 0);
	feed4(r, len, 0, 16, 0);		/* held, but across two runs */
	ok(reasm_stats(r)->overlaps == 1 && reasm_stats(r)->duplicates == 0,
	    "linux: a fragment over two runs is an overlap, as in the kernel");
	reasm_free(r);

	r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);
	feed4(r, len, 0, 8, 0);
	feed4(r, len, 8, 8, 0);			/* appended at the tail: one run [0,16) */
	feed4(r, len, 0, 16, 0);
	feed4(r, len, 16, 48, 0);
	ok(got.n == 1 && reasm_stats(r)->duplicates == 1, "linux: inside one run of appended fragments: a duplicate");
	reasm_free(r);

	r = fresh(REASM_OVERLAP_RFC5722, 1 << 20, 0);
	feed4(r, len, 0, 8, 0);
	feed4(r, len, 8, 8, 0);
	feed4(r, len, 8, 8, 0);			/* exact duplicate */
	feed4(r, len, 40, 24, 0);
	feed4(r, len, 0, 16, 0);		/* inside, not exact */
	ok(reasm_stats(r)->duplicates == 1 && reasm_stats(r)->overlaps == 1 && got.n == 0,
	    "rfc5722: only an exact duplicate is discarded");
	reasm_free(r);
}

/* A checksum that arrived wrong stays wrong. */
static void
test_badsum(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);
	size_t len = make4(60, 64);
	struct pkt p;

	feed4(r, len, 0, 32, 0);
	p = frag4(len, 32, 32, 0);
	fbuf[10] ^= 0x55;
	reasm_input(r, &p, 0);
	ok(got.n == 1 && csum(got.data[0], 20) != 0 && reasm_stats(r)->badsum == 1 &&
	    memcmp(got.data[0] + 20, orig + 20, 64) == 0,
	    "a fragment with a bad header checksum: reassembled, checksum still wrong");
	reasm_free(r);
}

static void
test_memory(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_RFC5722, REASM_MIN_MEMORY, 0);
	size_t len;
	int i, over = 0;

	for (i = 0; i < 20000; i++) {
		make4((uint16_t)i, 2000);
		feed4(r, 2020, 0, 1000, 0);	/* never completed */
		if (reasm_in_use(r) > reasm_memory(r))
			over = 1;
	}
	ok(!over && reasm_memory(r) <= REASM_MIN_MEMORY, "memory stays within the cap");
	ok(reasm_stats(r)->evicted > 19000, "the oldest were evicted (%ju)", (uintmax_t)reasm_stats(r)->evicted);
	len = make4(40000 & 0xffff, 2000);
	feed4(r, len, 0, 1000, 1);
	feed4(r, len, 1000, 1000, 2);
	ok(got.n == 1 && same_as_orig(0, len), "a new datagram still completes");
	reasm_free(r);
}

/*
 * A pool of a few blocks (below --max-memory's minimum, set by hand): a
 * fragment larger than the whole pool, with nothing held, used to make
 * make_room look at the datagram NIL (found by tests/fuzz/reasm_fuzz).
 */
static void
test_tiny_pool(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_RFC5722, 1 << 20, 1);
	size_t len = make4(15, 3000);

	ok(reasm_shrink_pool(r, 16) == 0, "the pool made 16 blocks");
	feed4(r, len, 0, 2000, 0);		/* 17 blocks and more: never fits */
	ok(got.n == 1 && reasm_stats(r)->evicted == 1 && reasm_stats(r)->kept == 1 && got.len[0] == 2020,
	    "a fragment larger than the pool is written through, not stored");
	feed4(r, len, 0, 1000, 0);		/* 10 blocks */
	feed4(r, len, 1000, 1000, 0);		/* 9 more: the datagram alone fills the pool */
	ok(got.n == 3 && reasm_stats(r)->evicted == 2 && reasm_stats(r)->kept == 3,
	    "a datagram that outgrows the pool is lost, its fragments written through");
	ok(reasm_held(r) == 0, "nothing left held");
	reasm_free(r);
}

static void
test_timeout_keep(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_RFC5722, 1 << 20, 1);
	size_t len = make4(14, 2000);

	feed4(r, len, 0, 1000, 1000);
	reasm_expire(r, 30999);
	ok(got.n == 0, "not expired before the timeout");
	ok(reasm_next_expiry(r) == 31000, "the next expiry is first fragment + timeout");
	reasm_expire(r, 31000);
	ok(got.n == 1 && reasm_stats(r)->timed_out == 1 && got.len[0] == 1020,
	    "expired, and with keep_incomplete written through");
	frag4(len, 0, 1000, 0);
	ok(memcmp(got.data[0], fbuf, 1020) == 0, "unchanged");
	feed4(r, len, 1000, 1000, 40000);
	reasm_flush(r);
	ok(got.n == 2 && reasm_stats(r)->incomplete == 1, "end of input writes what is left");
	reasm_free(r);
}

/* IPv6: header, hop-by-hop options, fragment header, UDP */
static void
test_v6(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_RFC5722, 1 << 20, 0);
	uint8_t whole[40 + 8 + 8 + 2000], f[40 + 8 + 8 + 1008];
	size_t off, n, i;
	struct pkt p = { .a.proto = ETH_P_IPV6 };

	memset(whole, 0, sizeof(whole));
	whole[0] = 0x60;
	put16(whole + 4, 8 + 8 + 2000);
	whole[6] = IPPROTO_HOPOPTS;
	whole[7] = 64;
	whole[8] = 0xfd;
	whole[39] = 2;
	whole[40] = 17;				/* hop-by-hop: next is UDP, 8 bytes */
	whole[42] = 1;				/* PadN of 4 */
	whole[43] = 4;
	for (i = 48; i < sizeof(whole); i++)
		whole[i] = (uint8_t)i;
	for (off = 0; off < 2008; off += n) {
		n = 2008 - off < 1008 ? 2008 - off : 1008;
		memcpy(f, whole, 48);
		f[40] = IPPROTO_FRAGMENT;
		f[48] = 17;
		f[49] = 0;
		put16(f + 50, (uint16_t)(off | (off + n < 2008)));
		memcpy(f + 52, "\x12\x34\x56\x78", 4);
		memcpy(f + 56, whole + 48 + off, n);
		put16(f + 4, (uint16_t)(8 + 8 + n));
		p.data = f;
		p.len = 56 + n;
		reasm_input(r, &p, 0);
	}
	ok(got.n == 1 && got.len[0] == sizeof(whole) &&
	    memcmp(got.data[0], whole, sizeof(whole)) == 0,
	    "IPv6: reassembled behind the hop-by-hop header, fragment header gone");
	put16(f + 50, 0);			/* atomic fragment */
	put16(f + 4, 8 + 8 + 8);
	p.len = 56 + 8;
	reasm_input(r, &p, 0);
	ok(got.n == 2 && got.len[1] == 56 && got.data[1][40] == 17 &&
	    get16(got.data[1] + 4) == 16 && reasm_stats(r)->atomic == 1,
	    "an atomic fragment is a datagram of its own (RFC 6946)");
	reasm_free(r);
}

/* The held records reasm says go nowhere (reasm_gone_fn): their ids, in order. */
static struct {
	int		n;
	uint32_t	id[MAXOUT];
} gone;

static void
went_nowhere(const struct divert_addr *a, void *arg)
{
	(void)arg;
	if (gone.n < MAXOUT)
		gone.id[gone.n] = a->id;
	gone.n++;
}

/* Fragment [off, off+n) as a held record: packet id, port 9, holder 77. */
static void
feed_held(struct reasm *r, size_t total, size_t off, size_t n, uint32_t id, uint64_t now)
{
	struct pkt p = frag4(total, off, n, (long)off);

	p.a.flags = DIVERT_ADDR_QUEUE;
	p.a.port = 9;
	p.a.id = id;
	p.a.holder = 77;
	reasm_input(r, &p, now);
}

/* Held fragments: the datagram goes as the completing one, every other is said to go nowhere. */
static void
test_held(void)
{
	size_t len = make4(9, 3000);
	struct reasm *r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 0);

	memset(&gone, 0, sizeof(gone));
	reasm_set_gone(r, went_nowhere, NULL);
	feed_held(r, len, 1000, 1000, 11, 0);
	feed_held(r, len, 1000, 1000, 12, 0);		/* a duplicate: nowhere at once */
	ok(gone.n == 1 && gone.id[0] == 12, "a duplicate fragment goes nowhere at once");
	feed_held(r, len, 0, 1000, 13, 0);
	feed_held(r, len, 2000, 1000, 14, 0);		/* completes */
	ok(same_as_orig(0, len), "the datagram is whole");
	ok(gone.n == 3 && gone.id[1] == 11 && gone.id[2] == 13,
	    "the fragments merged into it go nowhere, in arrival order (%d)", gone.n);
	ok(got.n == 1, "and it goes as one record");

	/* A datagram lost at the end: each of its held fragments goes nowhere. */
	make4(10, 3000);
	feed_held(r, len, 0, 1000, 21, 0);
	feed_held(r, len, 1000, 1000, 22, 0);
	reasm_flush(r);
	ok(gone.n == 5 && gone.id[3] == 21 && gone.id[4] == 22,
	    "an incomplete datagram's fragments go nowhere at the end");

	/* Not held (no holder): nobody is told. */
	gone.n = 0;
	feed4(r, len, 0, 1000, 0);
	reasm_flush(r);
	ok(gone.n == 0, "records not held are not reported");
	reasm_free(r);

	/* --keep-incomplete writes them through, with their context: nowhere is nothing. */
	r = fresh(REASM_OVERLAP_LINUX, 1 << 20, 1);
	reasm_set_gone(r, went_nowhere, NULL);
	gone.n = 0;
	feed_held(r, len, 0, 1000, 31, 0);
	reasm_flush(r);
	ok(gone.n == 0 && got.n == 1, "kept fragments are written, not gone");
	reasm_free(r);
}

int
main(void)
{
	test_v4_orders();
	test_held();
	test_pass_through();
	test_overlap_drop();
	test_duplicates();
	test_first_last();
	test_limits();
	test_shuffled();
	test_partial_unit();
	test_ecn();
	test_linux_overlaps();
	test_badsum();
	test_memory();
	test_tiny_pool();
	test_timeout_keep();
	test_v6();
	return tap_done();
}
