/*
 * reasm_fuzz - libFuzzer harness for divert-defrag's reassembly (common/reasm.c).
 *
 * Input: byte 0 is the configuration (bits 0-1: overlap policy (all four), bit 2:
 * keep_incomplete, bit 3: flush without expiring first, bits 4-7: pool
 * size, 4 to 244 blocks); then records, each
 *
 *	flags (1)  repeat (1)  length (2, big-endian)  packet (length bytes)
 *
 * flags: bit 0 IPv6 (else IPv4), bit 1 keep the version nibble as it is,
 * bits 2-3 link header (none, 14, 20, 300 bytes: too long to store),
 * bits 4-5 time to advance (0, 1 s, 10 s, 40 s) before the record, bit 6
 * run reasm_expire first, bit 7 another interface.  The record goes in
 * 1 + repeat times, each copy with another source address, so that a small
 * input fills the pool and evicts.  The pool is cut below --max-memory's
 * minimum after reasm_new (a few blocks instead of 2000) for the same
 * reason.  Every record is in a buffer of exactly its size.
 *
 * The output callback reads every byte it is given; records written
 * through must fit reasm's own buffer, reassembled datagrams must fit IP
 * and have length fields that agree with their size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/if_ether.h>
#include <netinet/in.h>
#include <netinet/ip.h>

#include "bytes.h"
#include "csum.h"
#include "reasm.h"

/* Where every byte handed over is read, so ASan checks it is there. */
static volatile uint8_t sink;

static struct reasm *cur;
static const uint8_t *fed;		/* the packet being fed */
static uint64_t reassembled;		/* datagrams written, seen */
static uint64_t badsums;		/* datagrams written with a bad checksum, seen */

/* reasm counts a datagram just before it writes it. */
static void
out_cb(const struct pkt *p, void *arg)
{
	const struct reasm_stats *st = reasm_stats(cur);
	size_t i;

	(void)arg;
	for (i = 0; i < p->len; i++)
		sink ^= p->data[i];
	if (p->rec != NULL)
		for (i = 0; i < p->l2len; i++)
			sink ^= p->rec[i];
	if (st->reassembled == reassembled) {
		/* As fed, or a stored fragment written through from reasm's buffer. */
		if (p->data != fed && p->l2len + p->len > REASM_MAX_L2 + REASM_MAX_V6)
			abort();
		return;
	}
	reassembled = st->reassembled;
	/* Reassembled: within IP's limits, headers say what it is. */
	if (p->len > REASM_MAX_V6 || p->len < 20)
		abort();
	if ((p->data[0] >> 4) == 4) {
		/* a fragment with a bad header checksum: the datagram keeps a bad one */
		int bad = st->badsum != badsums;

		badsums = st->badsum;
		if (get16(p->data + 2) != p->len || (get16(p->data + 6) & (IP_MF | IP_OFFMASK)) ||
		    (csum(p->data, (size_t)(p->data[0] & 0x0f) * 4) != 0) != bad)
			abort();
	} else if (p->len < 40 || (size_t)get16(p->data + 4) + 40 != p->len) {
		abort();
	}
}

static const size_t l2lens[4] = { 0, 14, 20, 300 };
static const uint64_t steps[4] = { 0, 1000, 10000, 40000 };

/* Feed one record (copy k of it) at time now. */
static void
feed(const uint8_t *d, size_t len, uint8_t flags, unsigned k, uint64_t now)
{
	size_t l2 = l2lens[(flags >> 2) & 3];
	struct pkt p = { .a.dir = DIVERT_IN, .a.ifindex = flags & 0x80 ? 2 : 1 };
	uint8_t *rec;
	int v6 = flags & 1;

	if ((rec = malloc(l2 + len ? l2 + len : 1)) == NULL)
		abort();
	memset(rec, 0xee, l2);
	memcpy(rec + l2, d, len);
	p.a.proto = v6 ? ETH_P_IPV6 : ETH_P_IP;
	p.rec = l2 ? rec : NULL;
	p.l2len = l2;
	p.data = rec + l2;
	p.len = len;
	p.dlt = l2 ? 1 : 0;
	if (len > 0 && !(flags & 2))
		p.data[0] = (uint8_t)((v6 ? 0x60 : 0x40) | (p.data[0] & 0x0f));
	if (k > 0 && len >= (v6 ? 24u : 16u)) {	/* another datagram: another source */
		p.data[v6 ? 22 : 14] ^= (uint8_t)(k >> 8);
		p.data[v6 ? 23 : 15] ^= (uint8_t)k;
	}
	fed = p.data;
	reasm_input(cur, &p, now);
	free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reasm_config c = { .max_memory = REASM_MIN_MEMORY, .timeout_ms = 30000,
	    .seed = 1 };
	uint64_t now = 0;
	size_t pos = 1, len;
	unsigned k;
	uint8_t flags;

	if (size < 1)
		return 0;
	c.overlap = data[0] % 4;
	c.keep_incomplete = (data[0] >> 2) & 1;
	if ((cur = reasm_new(&c, out_cb, NULL)) == NULL)
		abort();
	badsums = reassembled = 0;
	if (reasm_shrink_pool(cur, 4 + (size_t)(data[0] >> 4) * 16) < 0)
		abort();
	while (size - pos >= 4) {
		flags = data[pos];
		k = data[pos + 1];
		len = get16(data + pos + 2);
		pos += 4;
		if (len > size - pos)
			len = size - pos;
		now += steps[(flags >> 4) & 3];
		if (flags & 0x40)
			reasm_expire(cur, now);
		for (unsigned i = 0; i <= k; i++)
			feed(data + pos, len, flags, i, now);
		pos += len;
		if (reasm_in_use(cur) > reasm_memory(cur))
			abort();
	}
	if (!(data[0] & 8)) {
		reasm_expire(cur, now + 30000);
		if (reasm_next_expiry(cur) != UINT64_MAX)
			abort();
	}
	reasm_flush(cur);
	if (reasm_held(cur) != 0)
		abort();			/* nothing may stay held */
	reasm_free(cur);
	return 0;
}
