/* l4sum.c - L4 checksums recomputed over the whole segment, and CRC32c for SCTP. */
#include <netinet/in.h>

#include "bytes.h"
#include "csum.h"
#include "l4sum.h"

int
l4sum_off(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:	return 16;
	case IPPROTO_UDP:	return 6;
	case IPPROTO_UDPLITE:	return 6;
	case IPPROTO_SCTP:	return 8;
	case IPPROTO_ICMP:	return 2;
	case IPPROTO_IGMP:	return 2;
	case IPPROTO_ICMPV6:	return 2;
	default:		return -1;
	}
}

/* ICMP and IGMP sum their own message only; the others add a pseudo-header. */
int
l4sum_has_pseudo(uint8_t proto)
{
	return proto != IPPROTO_ICMP && proto != IPPROTO_IGMP;
}

/* ---- CRC32c ---- */

static const uint32_t *
crc32c_table(void)
{
	static uint32_t table[256];
	uint32_t c;
	int i, k;

	if (table[1] == 0) {
		for (i = 0; i < 256; i++) {
			for (c = (uint32_t)i, k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
			table[i] = c;
		}
	}
	return table;
}

/* The CRC register after n more bytes from data (NULL: n zero bytes). */
static uint32_t
crc32c_run(uint32_t crc, const uint8_t *data, size_t n)
{
	const uint32_t *table = crc32c_table();

	while (n--)
		crc = table[(crc ^ (data != NULL ? *data++ : 0)) & 0xff] ^ (crc >> 8);
	return crc;
}

uint32_t
sctp_crc32c(const uint8_t *data, size_t len)
{
	return ~crc32c_run(0xffffffff, data, len);
}

/*
 * crc(M) = R(M) ^ k(len) where R is linear: so crc(M') = crc(M) ^ R(M ^ M'),
 * and M ^ M' is the changed bytes followed by zeros (the CRC field is zero
 * in both sums).  Needs the length of the packet, not the rest of it.
 */
uint32_t
sctp_crc32c_delta(const uint8_t old[4], const uint8_t new[4], size_t len)
{
	uint8_t d[4];
	int i;

	for (i = 0; i < 4; i++)
		d[i] = old[i] ^ new[i];
	return crc32c_run(crc32c_run(0, d, 4), NULL, len > 4 ? len - 4 : 0);
}

uint32_t
sctp_crc_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

void
sctp_crc_put(uint8_t *p, uint32_t crc)
{
	p[0] = (uint8_t)crc, p[1] = (uint8_t)(crc >> 8);
	p[2] = (uint8_t)(crc >> 16), p[3] = (uint8_t)(crc >> 24);
}

/* ---- whole-segment sums ---- */

/*
 * The IPv6 pseudo-header's destination is the final one, not the next hop:
 * with hops left in a routing header we cannot sum it.  (IPv4 source routes
 * are read by ipwalk: srr_dst; SCTP has no pseudo-header: l4sum_can_sctp.)
 */
int
l4sum_can(const struct ipwalk *in)
{
	return in->l4off != 0 && in->whole && !in->frag && !in->rh_segleft;
}

/* SCTP's CRC32c covers the SCTP packet alone: all of it must be here. */
int
l4sum_can_sctp(const struct ipwalk *in)
{
	return in->l4off != 0 && in->whole && !in->frag;
}

/* The running sum of the walked segment's pseudo-header (its final destination). */
static uint32_t
pseudo_sum(const uint8_t *ip, const struct ipwalk *in)
{
	uint32_t n = (uint32_t)(in->iplen - in->l4off);

	return in->version == 6 ? csum_pseudo6(ip + 8, ip + 24, in->proto, n) :
	    csum_pseudo4(ip + 12, ip + (in->srr_dst ? in->srr_dst : 16), in->proto, n);
}

void
l4sum_recompute(uint8_t *ip, const struct ipwalk *in)
{
	uint8_t *l4 = ip + in->l4off;
	size_t n = in->iplen - in->l4off, cover = n;
	uint8_t proto = in->proto;
	int off = l4sum_off(proto);
	uint32_t sum;
	uint16_t c;

	if (off < 0)
		return;
	if (proto == IPPROTO_UDP && in->version == 4 && get16(l4 + 6) == 0)
		return;				/* IPv4 UDP without a checksum stays so */
	if (proto == IPPROTO_UDPLITE && get16(l4 + 4) != 0) {
		cover = get16(l4 + 4);
		if (cover < 8 || cover > n)
			return;			/* invalid coverage: not ours to guess */
	}
	put16(l4 + off, 0);
	if (proto == IPPROTO_SCTP) {
		put16(l4 + off + 2, 0);		/* a 32-bit field */
		sctp_crc_put(l4 + 8, sctp_crc32c(l4, n));
		return;
	}
	sum = l4sum_has_pseudo(proto) ? pseudo_sum(ip, in) : 0;
	c = csum_fold(csum_add(sum, l4, cover));
	if (c == 0 && (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE))
		c = 0xffff;			/* 0 would mean "no checksum" */
	put16(l4 + off, c);
}

/* The partial sum a device finishes: the pseudo-header's, folded, uncomplemented. */
static uint16_t
pseudo_seed(const uint8_t *ip, const struct ipwalk *in)
{
	return (uint16_t)~csum_fold(pseudo_sum(ip, in));
}

/* Equal as one's complement numbers: 0 and 0xffff are both zero. */
static int
same_sum(uint16_t a, uint16_t b)
{
	return a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0);
}

/*
 * A partial sum is only ever left in TCP, UDP, UDP-Lite, ICMPv6 and SCTP
 * (the protocols that offload theirs), and only ever holds the pseudo-
 * header's sum (SCTP: 0).  A field that holds anything else is not the
 * partial one: in a tunnelled packet the kernel left the inner header's,
 * and the outer one is left alone.
 */
int
l4sum_complete(uint8_t *ip, size_t len)
{
	struct ipwalk in;
	size_t off;

	if (ipwalk(ip, len, 0, IPW_L4, &in) < 0 || in.l4off == 0)
		return -1;
	switch (in.proto) {
	case IPPROTO_TCP: case IPPROTO_UDP: case IPPROTO_UDPLITE: case IPPROTO_ICMPV6:
		off = in.l4off + (size_t)l4sum_off(in.proto);
		if (!l4sum_can(&in) || off + 2 > in.iplen ||
		    !same_sum(get16(ip + off), pseudo_seed(ip, &in)))
			return -1;
		break;
	case IPPROTO_SCTP:
		off = in.l4off + (size_t)l4sum_off(in.proto);
		if (!l4sum_can_sctp(&in) || off + 4 > in.iplen || sctp_crc_get(ip + off) != 0)
			return -1;
		break;
	default:
		return -1;
	}
	l4sum_recompute(ip, &in);
	return 0;
}

/* A UDP field of 0 is no checksum (a tunnel's outer header): it stays 0. */
int
l4sum_udp_seed(const uint8_t *ip, size_t len, size_t *off, uint16_t *seed)
{
	struct ipwalk in;

	if (ipwalk(ip, len, 0, IPW_L4, &in) < 0 || in.proto != IPPROTO_UDP ||
	    !l4sum_can(&in) || in.l4off + 8 > in.iplen || get16(ip + in.l4off + 6) == 0)
		return -1;
	*off = in.l4off + 6;
	*seed = pseudo_seed(ip, &in);
	return 0;
}
