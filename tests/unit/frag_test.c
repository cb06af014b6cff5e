/* frag_test - IPv4 and IPv6 fragments fit the MTU, carry the right headers and reassemble. */
#include <string.h>

#include "csum.h"
#include "frag.h"
#include "tap.h"

#define MAXF 64

/* Every fragment handed over, copied, with the metadata it came with. */
static struct {
	int	n;
	size_t	len[MAXF];
	uint8_t	data[MAXF][3072];
	int	stop_after;
} got;

static int
collect(const uint8_t *f, size_t len, void *arg)
{
	(void)arg;
	if (got.n < MAXF && len <= sizeof(got.data[0])) {
		memcpy(got.data[got.n], f, len);
		got.len[got.n] = len;
	}
	got.n++;
	return got.stop_after != 0 && got.n >= got.stop_after;
}

static uint8_t work[FRAG_MAX];		/* where frag_split builds fragments */

static int
split(uint8_t *data, size_t len, size_t mtu, uint32_t ident)
{
	memset(&got, 0, sizeof(got));
	return frag_split(data, len, mtu, ident, work, sizeof(work), collect, NULL);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* An IPv4 UDP-ish packet of len bytes, header hl bytes (options after 20), payload i & 0xff. */
static size_t
make4(uint8_t *b, size_t len, size_t hl, uint16_t id, uint16_t fo)
{
	size_t i;

	memset(b, 0, hl);
	b[0] = (uint8_t)(0x40 | hl / 4);
	b[2] = (uint8_t)(len >> 8), b[3] = (uint8_t)len;
	b[4] = (uint8_t)(id >> 8), b[5] = (uint8_t)id;
	b[6] = (uint8_t)(fo >> 8), b[7] = (uint8_t)fo;
	b[8] = 64, b[9] = 17;
	b[12] = 10, b[15] = 1, b[16] = 10, b[19] = 2;
	for (i = hl; i < len; i++)
		b[i] = (uint8_t)(i * 7);
	return len;
}

/* Check IPv4 fragments and rebuild the payload into out; bytes rebuilt or -1. */
static long
reassemble4(size_t hl_first, uint16_t id, size_t mtu, int last_mf, size_t base,
    uint8_t *out, const char *what)
{
	size_t expect = base, hl, flen;
	int i, bad = 0;

	for (i = 0; i < got.n; i++) {
		const uint8_t *f = got.data[i];
		uint16_t fo = get16(f + 6);

		hl = (size_t)(f[0] & 15) * 4;
		flen = got.len[i];
		if (flen > mtu || get16(f + 2) != flen || csum(f, hl) != 0 ||
		    get16(f + 4) != id || (fo & 0x1fff) * 8 != expect ||
		    (i == 0 && hl != hl_first) ||
		    ((fo & 0x2000) != 0) != (i < got.n - 1 || last_mf) ||
		    (i < got.n - 1 && (flen - hl) % 8 != 0)) {
			printf("# %s: fragment %d bad (len %zu hl %zu fo %#x)\n", what, i,
			    flen, hl, fo);
			bad = 1;
		}
		memcpy(out + expect - base, f + hl, flen - hl);
		expect += flen - hl;
	}
	return bad ? -1 : (long)(expect - base);
}

static void
test_ipv4(void)
{
	static uint8_t pkt[3000], out[4000];
	size_t len = make4(pkt, 3000, 20, 0x1234, 0);
	long n;

	ok(split(pkt, len, 1500, 99) == 3 && got.n == 3, "IPv4 3000 bytes at MTU 1500: 3 fragments");
	n = reassemble4(20, 0x1234, 1500, 0, 0, out, "ipv4");
	ok(n == 2980 && memcmp(out, pkt + 20, 2980) == 0,
	    "lengths, offsets, MF, ID, checksums right; payload reassembles");
	ok(got.len[0] == 1500 && got.len[1] == 1500 && got.len[2] == 40,
	    "fragments fill the MTU (1480 bytes of data, a multiple of 8)");

	ok(split(pkt, len, 3000, 99) == 1 && got.len[0] == 3000 &&
	    memcmp(got.data[0], pkt, 3000) == 0, "a packet that fits is handed over once, unchanged");

	make4(pkt, 3000, 20, 0, 0);
	ok(split(pkt, len, 1000, 0xabcd5678) == 4 && get16(got.data[0] + 4) == 0x5678 &&
	    get16(got.data[3] + 4) == 0x5678, "ID 0 becomes ident's low 16 bits in every fragment");

	make4(pkt, 3000, 20, 7, 0x4000);
	ok(split(pkt, len, 1500, 1) == FRAG_E_DF && got.n == 0, "DF set: refused, nothing handed over");
	ok(split(pkt, len, 3000, 1) == 1, "DF set but it fits: handed over");

	make4(pkt, 3000, 20, 7, 0);
	ok(split(pkt, len, 27, 1) == FRAG_E_MTU, "MTU without room for 8 bytes: refused");
	ok(split(pkt, len, 28, 1) == 373, "MTU 28: 8 bytes a fragment, 373 fragments");

	/* A middle fragment (offset 800, MF) split again keeps offset and MF. */
	make4(pkt, 1020, 20, 5, 0x2000 | 100);
	ok(split(pkt, 1020, 600, 1) == 2, "refragmenting a fragment");
	n = reassemble4(20, 5, 600, 1, 800, out, "refrag");
	ok(n == 1000 && memcmp(out, pkt + 20, 1000) == 0, "offsets added to 800, MF kept on the last");

	/* Options: a copied one (0x94 router alert, 4 bytes) and a not-copied one (0x07 RR, 7 bytes). */
	make4(pkt, 3000, 36, 9, 0);
	memcpy(pkt + 20, "\x07\x07\x04\0\0\0\0\x01\x94\x04\0\0\0\0\0\0", 16);
	ok(split(pkt, 3000, 1500, 1) == 3, "IPv4 with options: 3 fragments");
	n = reassemble4(36, 9, 1500, 0, 0, out, "options");
	ok(n == 2964 && memcmp(out, pkt + 36, 2964) == 0, "options packet reassembles");
	ok((got.data[1][0] & 15) == 6 && memcmp(got.data[1] + 20, "\x94\x04\0\0", 4) == 0 &&
	    (got.data[2][0] & 15) == 6, "later fragments carry only the copied option");
	ok(memcmp(got.data[0] + 20, pkt + 20, 16) == 0, "the first carries all options");

	pkt[20] = 0x07, pkt[21] = 40;	/* option longer than the header */
	ok(split(pkt, 3000, 1500, 1) == FRAG_E_PARSE, "malformed options: refused");

	make4(pkt, 3000, 20, 1, 0);
	got.stop_after = 0;
	{
		memset(&got, 0, sizeof(got));
		got.stop_after = 2;
		ok(frag_split(pkt, 3000, 1500, 1, work, sizeof(work), collect, NULL) ==
		    FRAG_E_STOP && got.n == 2,
		    "the callback can stop the split");
	}
	make4(pkt, 3000, 20, 1, 0);
	memset(&got, 0, sizeof(got));
	ok(frag_split(pkt, 3000, 1500, 1, work, 1000, collect, NULL) == 4 &&
	    got.len[0] == 996 && got.len[3] == 3000 - 3 * 976,
	    "a buffer smaller than the MTU: fragments fit the buffer");
	memset(&got, 0, sizeof(got));
	ok(frag_split(pkt, 1200, 1500, 1, work, 1000, collect, NULL) == 1 &&
	    got.len[0] == 1200, "a packet that fits the MTU goes whole, whatever the buffer");
	ok(split(pkt, 10, 1500, 1) == FRAG_E_PARSE, "10 bytes: not a packet");
	pkt[0] = 0x45;
	ok(split((uint8_t *)"\x20garbage", 8, 1500, 1) == FRAG_E_PARSE, "version 2: refused");
}

/* An IPv6 packet: 40-byte header, ext (elen bytes, already laid out), then payload. */
static size_t
make6(uint8_t *b, size_t len, uint8_t nh, const uint8_t *ext, size_t elen)
{
	size_t i;

	memset(b, 0, 40);
	b[0] = 0x60;
	b[4] = (uint8_t)((len - 40) >> 8), b[5] = (uint8_t)(len - 40);
	b[6] = nh, b[7] = 64;
	b[8] = 0xfd, b[23] = 1, b[24] = 0xfd, b[39] = 2;
	if (elen > 0)
		memcpy(b + 40, ext, elen);
	for (i = 40 + elen; i < len; i++)
		b[i] = (uint8_t)(i * 13);
	return len;
}

/* Check IPv6 fragments (unfragmentable part unf bytes) and rebuild the rest. */
static long
reassemble6(size_t unf, uint8_t nh_after, uint32_t ident, size_t mtu, uint8_t *out)
{
	size_t expect = 0, flen;
	int i, bad = 0;

	for (i = 0; i < got.n; i++) {
		const uint8_t *f = got.data[i], *fh = f + unf;
		uint16_t fo = get16(fh + 2);
		uint32_t id = (uint32_t)fh[4] << 24 | (uint32_t)fh[5] << 16 | fh[6] << 8 | fh[7];

		flen = got.len[i];
		if (flen > mtu || get16(f + 4) != flen - 40 || fh[0] != nh_after ||
		    id != ident || (size_t)(fo & ~7) != expect ||
		    (fo & 1) != (i < got.n - 1) || (i < got.n - 1 && (flen - unf - 8) % 8)) {
			printf("# ipv6 fragment %d bad (len %zu fo %#x nh %d)\n", i, flen, fo, fh[0]);
			bad = 1;
		}
		memcpy(out + expect, fh + 8, flen - unf - 8);
		expect += flen - unf - 8;
	}
	return bad ? -1 : (long)expect;
}

static void
test_ipv6(void)
{
	static uint8_t pkt[3000], out[4000];
	/* hop-by-hop (8 bytes, next: dest opts), dest opts (8 bytes, next: UDP) */
	static const uint8_t ext[16] = { 60, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0 };
	static const uint8_t rt[24] = { 60, 0, 1, 4, 0, 0, 0, 0,	/* hop-by-hop -> dst */
		43, 0, 1, 4, 0, 0, 0, 0,				/* dst -> routing */
		6, 0, 0, 0, 0, 0, 0, 0 };				/* routing -> TCP */
	long n;

	make6(pkt, 3000, 17, NULL, 0);
	ok(split(pkt, 3000, 1500, 0xdeadbeef) == 3, "IPv6 3000 bytes at MTU 1500: 3 fragments");
	n = reassemble6(40, 17, 0xdeadbeef, 1500, out);
	ok(n == 2960 && memcmp(out, pkt + 40, 2960) == 0,
	    "fragment header (next header, offset, M, id) and payload lengths right; reassembles");
	ok(pkt[6] == 17 && got.data[0][6] == 44, "base header points at the fragment header");
	ok(got.len[0] == 1496 && got.len[1] == 1496, "fragments fill the MTU to a multiple of 8");

	make6(pkt, 3000, 0, ext, 16);
	ok(split(pkt, 3000, 1280, 1) == 3, "with hop-by-hop and final destination options");
	n = reassemble6(48, 60, 1, 1280, out);
	ok(n == 2952 && memcmp(out, pkt + 48, 2952) == 0 && got.data[1][40] == 44 &&
	    got.data[1][6] == 0, "hop-by-hop stays in front, final dest options are fragmented");

	make6(pkt, 3000, 0, rt, 24);
	ok(split(pkt, 3000, 1280, 1) == 3, "with hop-by-hop, dest options and routing");
	n = reassemble6(64, 6, 1, 1280, out);
	ok(n == 2936 && got.data[0][56] == 44 && memcmp(got.data[2] + 6, pkt + 6, 50) == 0,
	    "dest options before a routing header travel in every fragment");

	make6(pkt, 3000, 44, NULL, 0);
	ok(split(pkt, 3000, 1500, 1) == FRAG_E_FRAGMENT, "a fragment is not fragmented again");
	make6(pkt, 1600, 0, NULL, 0);
	pkt[41] = 255;				/* hop-by-hop longer than the packet */
	ok(split(pkt, 1600, 1500, 1) == FRAG_E_PARSE, "cut extension header: refused");
	make6(pkt, 3000, 17, NULL, 0);
	ok(split(pkt, 3000, 55, 1) == FRAG_E_MTU, "MTU below header + fragment header + 8");
	ok(split(pkt, 39, 1500, 1) == FRAG_E_PARSE, "39 bytes: not an IPv6 packet");
	ok(split(pkt, 3000, 3000, 1) == 1, "an IPv6 packet that fits is handed over once");
}

int
main(void)
{
	test_ipv4();
	test_ipv6();
	ok(strcmp(frag_strerror(FRAG_E_DF), "Don't Fragment is set") == 0, "errors have words");
	return tap_done();
}
