/*
 * frag_fuzz - libFuzzer harness for frag_split (common/frag.c).
 *
 * Input: byte 0 bit 0 picks IPv4 (0) or IPv6 (1) and forces the version
 * nibble, bit 1 pads the packet with zeros to 65400 + 4 * (byte 0 >> 2)
 * bytes (around the largest IP allows); bytes 1-2 are the MTU
 * (big-endian); bytes 3-6 the ident; the rest is the packet, in a buffer of
 * exactly its size.
 *
 * Every fragment handed over must fit the MTU and have length fields that
 * agree with its size; IPv4 ones a right header checksum; offsets must
 * follow each other and the payload must add up to the packet's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <netinet/ip.h>

#include "bytes.h"
#include "csum.h"
#include "frag.h"

struct seen {
	const uint8_t	*in;		/* the packet split, inlen bytes */
	size_t		inlen;
	size_t		mtu;
	int		n;
	size_t		next_off;	/* fragment offset the next one must have */
	size_t		payload;	/* fragment payload bytes so far */
	size_t		unfrag;		/* header bytes before the payload (first fragment) */
};

/* Length of the IPv6 headers before a fragment header, or 0 if none. */
/* Where every byte handed over is read, so ASan checks it is there. */
static volatile uint8_t sink;
static uint8_t work[FRAG_MAX];		/* where frag_split builds fragments */

static size_t
frag6_at(const uint8_t *d, size_t len)
{
	size_t off = 40;
	uint8_t nh = d[6];

	while (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
		if (off + 8 > len)
			return 0;
		nh = d[off];
		off += ((size_t)d[off + 1] + 1) * 8;
	}
	return nh == IPPROTO_FRAGMENT && off + 8 <= len ? off : 0;
}

static void
check4(struct seen *s, const uint8_t *d, size_t len)
{
	size_t hl = (size_t)(d[0] & 0x0f) * 4;
	uint16_t fo;

	if (len < 20 || hl < 20 || hl > len || get16(d + 2) != len || csum(d, hl) != 0)
		abort();
	fo = get16(d + 6);
	if ((size_t)(fo & IP_OFFMASK) * 8 != s->next_off)
		abort();
	if (s->n == 0)
		s->unfrag = hl;
	s->next_off = (size_t)(fo & IP_OFFMASK) * 8 + (len - hl);
	s->payload += len - hl;
}

static void
check6(struct seen *s, const uint8_t *d, size_t len)
{
	size_t fh;

	if (len < 40 || 40 + (size_t)get16(d + 4) != len || (fh = frag6_at(d, len)) == 0)
		abort();
	if ((size_t)(get16(d + fh + 2) & 0xfff8) != s->next_off)
		abort();
	if (s->n == 0)
		s->unfrag = fh;
	s->next_off += len - fh - 8;
	s->payload += len - fh - 8;
}

static int
frag_cb(const uint8_t *f, size_t len, void *arg)
{
	struct seen *s = arg;
	size_t i;

	for (i = 0; i < len; i++)		/* every byte readable */
		sink ^= f[i];
	if (f == s->in) {			/* it fitted: handed over unchanged */
		if (s->n != 0 || len != s->inlen || len > s->mtu)
			abort();
	} else if (len > s->mtu || len > FRAG_MAX) {
		abort();
	} else if ((f[0] >> 4) == 4) {
		check4(s, f, len);
	} else {
		check6(s, f, len);
	}
	s->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = { 0 };
	size_t len;
	uint8_t *buf;
	int rc, v6;

	if (size < 7)
		return 0;
	v6 = data[0] & 1;
	s.mtu = get16(data + 1);
	len = size - 7;
	if ((data[0] & 2) && len < 65400 + 4 * (size_t)(data[0] >> 2))
		len = 65400 + 4 * (size_t)(data[0] >> 2);
	if ((buf = calloc(1, len ? len : 1)) == NULL)
		abort();
	memcpy(buf, data + 7, size - 7);
	if (len > 0)
		buf[0] = (uint8_t)((v6 ? 0x60 : 0x40) | (buf[0] & 0x0f));
	s.in = buf;
	s.inlen = len;
	if (!v6 && len >= 20)			/* a fragment split again keeps its offset */
		s.next_off = (size_t)(get16(buf + 6) & IP_OFFMASK) * 8;
	rc = frag_split(buf, len, s.mtu, get32(data + 3), work, sizeof(work), frag_cb, &s);
	if (rc >= 0 && rc != s.n)
		abort();
	/* Split (not just handed over): the payload adds up. */
	if (rc > 0 && s.payload != 0 && s.payload != len - s.unfrag)
		abort();
	free(buf);
	return 0;
}
