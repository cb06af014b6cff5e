/* reasm_test - the reassembly engine of divert-defrag, packet by packet. */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <stdlib.h>
#include <string.h>

#include "../../bin/divert-defrag/reasm.c"	/* the engine is the unit under test */
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
		got.usec[got.n] = p->ts.tv_usec;
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
	struct pkt p = { .proto = ETH_P_IP, .dir = DIR_IN, .ifindex = 3 };

	memcpy(fbuf, orig, 20);
	memcpy(fbuf + 20, orig + 20 + off, n);
	put16(fbuf + 2, (uint16_t)(20 + n));
	put16(fbuf + 6, (uint16_t)(off / 8 | (off + n < total - 20 ? IP_MF : 0)));
	put16(fbuf + 10, 0);
	put16(fbuf + 10, csum(fbuf, 20));
	p.data = fbuf;
	p.len = 20 + n;
	p.ts.tv_usec = usec;
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
	struct reasm *r = fresh(REASM_OVERLAP_DROP, 1 << 20, 0);
	size_t off;

	for (off = 0; off < 3000; off += 1000)
		feed4(r, len, off, 1000, 0);
	ok(same_as_orig(0, len) && got.n == 1, "IPv4 in order: the original bytes, once");
	ok(csum(got.data[0], 20) == 0, "IPv4 header checksum verifies");
	for (off = 3000; off > 0; off -= 1000)
		feed4(r, len, off - 1000, 1000, 0);
	ok(same_as_orig(1, len), "IPv4 reversed: the original bytes");
	ok(got.usec[1] == 0, "the reassembled datagram has the completing fragment's time stamp");
	ok(reasm_in_use(r) == ((size_t)r->mask + 1) * 4, "nothing left held");
	reasm_free(r);
}

static void
test_pass_through(void)
{
	size_t len = make4(8, 100);
	struct reasm *r = fresh(REASM_OVERLAP_DROP, 1 << 20, 0);
	struct pkt p = { .proto = ETH_P_IP, .data = orig, .len = len };
	struct pkt junk = { .proto = ETH_P_IP, .data = orig, .len = 10 };
	struct pkt arp = { .proto = ETH_P_ARP, .data = orig, .len = 28 };

	reasm_input(r, &p, 0);
	ok(got.n == 1 && same_as_orig(0, len), "a whole packet goes out at once, unchanged");
	reasm_input(r, &junk, 0);
	reasm_input(r, &arp, 0);
	ok(got.n == 3 && r->st.unparsed == 1 && r->st.passed == 3,
	    "a cut packet and a non-IP record pass, the cut one counted");
	reasm_free(r);
}

static void
test_overlap_drop(void)
{
	size_t len = make4(9, 64);
	struct reasm *r = fresh(REASM_OVERLAP_DROP, 1 << 20, 0);

	feed4(r, len, 0, 48, 0);
	feed4(r, len, 24, 8, 0);		/* teardrop */
	feed4(r, len, 48, 16, 0);
	ok(got.n == 0 && r->st.overlaps == 1, "overlap drops the datagram (default)");
	ok(r->st.dropped == 3, "and its later fragments too (RFC 5722)");
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
	struct reasm *r = fresh(REASM_OVERLAP_DROP, 1 << 20, 0);

	feed4(r, len, 0, 32, 0);
	feed4(r, len, 0, 32, 0);
	feed4(r, len, 32, 32, 0);
	ok(got.n == 1 && same_as_orig(0, len) && r->st.duplicates == 1,
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
	struct reasm *r = fresh(REASM_OVERLAP_DROP, 1 << 20, 0);
	struct pkt p;
	int i;

	make4(12, 64);
	p = frag4(65535, 65528, 16, 0);		/* ping of death: ends past 65535 */
	put16(fbuf + 6, 65528 / 8);
	put16(fbuf + 10, 0);
	reasm_input(r, &p, 0);
	ok(r->st.oversize == 1 && got.n == 0, "a fragment past 65535 bytes refuses the datagram");
	p = frag4(1000, 0, 12, 0);		/* MF, not a multiple of 8 */
	reasm_input(r, &p, 0);
	ok(r->st.invalid == 1, "a middle fragment of 12 bytes is invalid");
	reasm_free(r);

	r = fresh(REASM_OVERLAP_LAST, 4 << 20, 0);
	make4(13, 64);
	for (i = 0; i < REASM_MAX_FRAGS + 10; i++)
		feed4(r, 64 + 20, 8, 8, 0);
	ok(r->st.too_many == 1, "too many fragments refuse the datagram");
	ok(reasm_in_use(r) == REASM_BLOCK + ((size_t)r->mask + 1) * 4,
	    "what is left of it is one block");
	reasm_free(r);
}

static void
test_memory(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_DROP, REASM_MIN_MEMORY, 0);
	size_t len;
	int i, over = 0;

	for (i = 0; i < 20000; i++) {
		make4((uint16_t)i, 2000);
		feed4(r, 2020, 0, 1000, 0);	/* never completed */
		if (reasm_in_use(r) > reasm_memory(r))
			over = 1;
	}
	ok(!over && reasm_memory(r) <= REASM_MIN_MEMORY, "memory stays within the cap");
	ok(r->st.evicted > 19000, "the oldest were evicted (%ju)", (uintmax_t)r->st.evicted);
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
	struct reasm *r = fresh(REASM_OVERLAP_DROP, 1 << 20, 1);
	size_t len = make4(15, 3000);

	r->nslots = r->nfree = 16;
	feed4(r, len, 0, 2000, 0);		/* 17 blocks and more: never fits */
	ok(got.n == 1 && r->st.evicted == 1 && r->st.kept == 1 && got.len[0] == 2020,
	    "a fragment larger than the pool is written through, not stored");
	feed4(r, len, 0, 1000, 0);		/* 10 blocks */
	feed4(r, len, 1000, 1000, 0);		/* 9 more: the datagram alone fills the pool */
	ok(got.n == 3 && r->st.evicted == 2 && r->st.kept == 3,
	    "a datagram that outgrows the pool is lost, its fragments written through");
	ok(reasm_in_use(r) == ((size_t)r->mask + 1) * 4, "nothing left held");
	reasm_free(r);
}

static void
test_timeout_keep(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_DROP, 1 << 20, 1);
	size_t len = make4(14, 2000);

	feed4(r, len, 0, 1000, 1000);
	reasm_expire(r, 30999);
	ok(got.n == 0, "not expired before the timeout");
	ok(reasm_next_expiry(r) == 31000, "the next expiry is first fragment + timeout");
	reasm_expire(r, 31000);
	ok(got.n == 1 && r->st.timed_out == 1 && got.len[0] == 1020,
	    "expired, and with keep_incomplete written through");
	frag4(len, 0, 1000, 0);
	ok(memcmp(got.data[0], fbuf, 1020) == 0, "unchanged");
	feed4(r, len, 1000, 1000, 40000);
	reasm_flush(r);
	ok(got.n == 2 && r->st.incomplete == 1, "end of input writes what is left");
	reasm_free(r);
}

/* IPv6: header, hop-by-hop options, fragment header, UDP */
static void
test_v6(void)
{
	struct reasm *r = fresh(REASM_OVERLAP_DROP, 1 << 20, 0);
	uint8_t whole[40 + 8 + 8 + 2000], f[40 + 8 + 8 + 1008];
	size_t off, n, i;
	struct pkt p = { .proto = ETH_P_IPV6 };

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
	    get16(got.data[1] + 4) == 16 && r->st.atomic == 1,
	    "an atomic fragment is a datagram of its own (RFC 6946)");
	reasm_free(r);
}

int
main(void)
{
	test_v4_orders();
	test_pass_through();
	test_overlap_drop();
	test_duplicates();
	test_first_last();
	test_limits();
	test_memory();
	test_tiny_pool();
	test_timeout_keep();
	test_v6();
	return tap_done();
}
