/*
 * mangle_fuzz - libFuzzer harness for divert-mangle's edit engine (common/edit.c).
 *
 * Input: byte 0 picks IPv4 (even) or IPv6 (odd) and forces the version
 * nibble; byte 1 is the "cut" (wire bytes the capture left out, 0..3); the
 * rest is the packet, copied to a buffer of exactly its size so that ASan
 * sees any read past its end.
 *
 * Properties checked besides "no crash, no UB":
 *   - with no edits, mangle() changes nothing;
 *   - with only --fix-checksums, a second run changes nothing (idempotent);
 *   - on a packet whose checksums were just fixed, every edit applied
 *     incrementally leaves checksums that a full recompute agrees with
 *     (up to 0x0000 / 0xffff, the two zeros of one's complement; the SCTP
 *     CRC32c, updated through its linearity, must agree exactly).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "bytes.h"
#include "edit.h"
#include "l4sum.h"
#include "ipwalk.h"

static struct edits none, fix, all, all_fix;

static void
setup(void)
{
	edits_init(&none);
	edits_ready(&none);

	edits_init(&fix);
	fix.fix_checksums = 1;
	edits_ready(&fix);

	edits_init(&all);
	edits_parse_ttl(&all, "-3");
	all.tos = 0x10, all.tclass = 0x20, all.dscp = 46, all.ecn = 1;
	all.flowlabel = 0x12345, all.ipid = 7, all.df = 1, all.mss = 536;
	edits_add_addr_map(all.src, &all.nsrc, "10.0.0.0/8:192.168.0.0/16");
	edits_add_addr_map(all.src, &all.nsrc, "0.0.0.0/0:172.16.0.0/12");
	edits_add_addr_map(all.src, &all.nsrc, "[fd00::/8]:[2001:db8::/33]");
	edits_add_addr_map(all.src, &all.nsrc, "::/0:fe80::/10");
	edits_add_addr_map(all.dst, &all.ndst, "10.0.0.5/32:10.1.2.3/31");
	edits_add_addr_map(all.dst, &all.ndst, "0.0.0.0/1:128.0.0.0/3");
	edits_add_addr_map(all.dst, &all.ndst, "2001:db8::/32:fd00::/7");
	edits_add_addr_map(all.dst, &all.ndst, "::/1:[8000::/128]");
	edits_add_port_map(all.sport, &all.nsport, "0-1023:40000");
	edits_add_port_map(all.sport, &all.nsport, "1024-65535:7");
	edits_add_port_map(all.dport, &all.ndport, "80:8080");
	edits_add_port_map(all.dport, &all.ndport, "0-65535:53");
	edits_ready(&all);

	all_fix = all;
	all_fix.fix_checksums = 1;
	edits_ready(&all_fix);
}

/* Is byte i inside a checksum field of ip (as walked)?  *field: its start. */
static int
in_csum_field(const struct ipwalk *in, size_t i, size_t *field)
{
	int off = in->l4off != 0 ? l4sum_off(in->proto) : -1;

	if (in->version == 4 && i >= 10 && i < 12)
		return *field = 10, 1;
	if (off >= 0 && in->proto != IPPROTO_SCTP && i >= in->l4off + (size_t)off &&
	    i < in->l4off + (size_t)off + 2)
		return *field = in->l4off + (size_t)off, 1;
	return 0;
}

/* a and b differ at most by 0x0000 / 0xffff in their checksum fields. */
static int
same_sums(const uint8_t *a, const uint8_t *b, size_t len, size_t cut)
{
	struct ipwalk in;
	size_t i, f;
	uint16_t x, y;

	if (memcmp(a, b, len) == 0)
		return 1;
	if (ipwalk(a, len, cut, IPW_L4, &in) < 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (a[i] == b[i])
			continue;
		if (!in_csum_field(&in, i, &f))
			return 0;
		x = get16(a + f), y = get16(b + f);
		if (x != y && !((x == 0 && y == 0xffff) || (x == 0xffff && y == 0)))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	uint8_t *p, *q;
	size_t len, cut;
	int rc;

	if (!ready)
		setup(), ready = 1;
	if (size < 2)
		return 0;
	len = size - 2;
	cut = data[1] & 3;
	p = malloc(len ? len : 1);
	q = malloc(len ? len : 1);
	if (p == NULL || q == NULL)
		abort();
	memcpy(p, data + 2, len);
	if (len > 0)
		p[0] = (uint8_t)((data[0] & 1 ? 0x60 : 0x40) | (p[0] & 0x0f));

	/* No edits: the packet is left alone. */
	memcpy(q, p, len);
	rc = mangle(&none, q, len, cut, NULL);
	if (rc == MANGLE_EDITED || memcmp(p, q, len) != 0)
		abort();

	/* Fixing checksums twice is fixing them once. */
	rc = mangle(&fix, q, len, cut, NULL);
	memcpy(p, q, len);
	mangle(&fix, q, len, cut, NULL);
	if (rc != MANGLE_BAD && memcmp(p, q, len) != 0)
		abort();

	/* Incremental updates agree with a full recompute afterwards. */
	if (rc != MANGLE_BAD) {
		mangle(&all, q, len, cut, NULL);
		memcpy(p, q, len);
		mangle(&fix, q, len, cut, NULL);
		if (!same_sums(p, q, len, cut))
			abort();
	}

	/* Every edit and --fix-checksums together, on the raw input. */
	memcpy(q, data + 2, len);
	if (len > 0)
		q[0] = (uint8_t)((data[0] & 1 ? 0x60 : 0x40) | (q[0] & 0x0f));
	mangle(&all_fix, q, len, cut, NULL);

	free(p);
	free(q);
	return 0;
}
