/* edit.c - parse an IP packet just as far as the edits need, edit it in place, fix checksums. */
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>

#include "bytes.h"
#include "csum.h"
#include "tool.h"
#include "edit.h"
#include "ipwalk.h"
#include "l4sum.h"

/* ---- the command line's values ---- */

void
edits_init(struct edits *e)
{
	memset(e, 0, sizeof(*e));
	e->ttl_mode = TTL_KEEP;
	e->tos = e->tclass = e->dscp = e->ecn = -1;
	e->flowlabel = e->ipid = -1;
	e->df = -1;
}

int
edits_parse_ttl(struct edits *e, const char *s)
{
	long v;

	if (*s == '+' || *s == '-') {
		if ((v = parse_ulong(s + 1, 0, 255)) < 0)
			return -1;
		e->ttl_mode = *s == '+' ? TTL_ADD : TTL_SUB;
	} else {
		if ((v = parse_ulong(s, 1, 255)) < 0)
			return -1;
		e->ttl_mode = TTL_SET;
	}
	e->ttl = (int)v;
	return 0;
}

/* "ADDR[/LEN]" of n bytes at s (brackets allowed) into a, *v6, *plen. */
static int
parse_prefix(const char *s, size_t n, uint8_t a[16], int *v6, int *plen)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *addr;
	long l;

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
		s++, n -= 2;
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	addr = buf;
	if (addr[0] == '[' && (n = strlen(addr)) >= 2 && addr[n - 1] == ']')
		addr[n - 1] = '\0', addr++;		/* "[A]/L" */
	memset(a, 0, 16);
	if (inet_pton(AF_INET, addr, a) == 1)
		*v6 = 0;
	else if (inet_pton(AF_INET6, addr, a) == 1)
		*v6 = 1;
	else
		return -1;
	l = *v6 ? 128 : 32;
	if (slash != NULL && (l = parse_ulong(slash, 0, l)) < 0)
		return -1;
	*plen = (int)l;
	return 0;
}

/*
 * Where "A/L:B/L" splits: the first colon after the first prefix length (which
 * may be hex: "/0x18") or after ']'.  A length holds no colon, so that is it.
 */
static const char *
map_split(const char *s)
{
	const char *p;

	if (s[0] == '[') {
		p = strchr(s, ']');
		if (p != NULL && p[1] == '/')		/* "[A]/L:..." */
			p = strchr(p, ':');
		else if (p != NULL)
			p++;
		return p != NULL && *p == ':' ? p : NULL;
	}
	if ((p = strchr(s, '/')) != NULL)
		return strchr(p, ':');
	/* No lengths: only "A:B" with IPv4 on the left is unambiguous. */
	p = strchr(s, ':');
	return p != NULL && strchr(p + 1, ':') == NULL ? p : NULL;
}

int
edits_add_addr_map(struct addr_map *maps, int *n, const char *s)
{
	struct addr_map m;
	const char *colon = map_split(s);
	int v6b;

	if (*n >= EDIT_MAX_MAPS || colon == NULL)
		return -1;
	if (parse_prefix(s, (size_t)(colon - s), m.from, &m.v6, &m.from_len) < 0 ||
	    parse_prefix(colon + 1, strlen(colon + 1), m.to, &v6b, &m.to_len) < 0 ||
	    v6b != m.v6)
		return -1;
	maps[(*n)++] = m;
	return 0;
}

int
edits_add_port_map(struct port_map *maps, int *n, const char *s)
{
	const char *colon = strchr(s, ':');
	char lhs[32];
	long lo, hi, to;

	if (*n >= EDIT_MAX_MAPS || colon == NULL || (size_t)(colon - s) >= sizeof(lhs))
		return -1;
	memcpy(lhs, s, (size_t)(colon - s));
	lhs[colon - s] = '\0';
	if (parse_range(lhs, 65535, &lo, &hi) < 0 || (to = parse_ulong(colon + 1, 0, 65535)) < 0)
		return -1;
	maps[*n].lo = (uint16_t)lo;
	maps[*n].hi = (uint16_t)hi;
	maps[*n].to = (uint16_t)to;
	(*n)++;
	return 0;
}

int
edits_ready(struct edits *e)
{
	e->need_l4 = e->nsrc || e->ndst || e->nsport || e->ndport || e->mss || e->fix_checksums;
	return e->need_l4 || e->ttl_mode != TTL_KEEP || e->tos >= 0 || e->tclass >= 0 ||
	    e->dscp >= 0 || e->ecn >= 0 || e->flowlabel >= 0 || e->ipid >= 0 || e->df >= 0;
}

/* ---- parsing ---- */

/* Bytes of L4 header needed before its fields (ports, checksum) are touched. */
static size_t
l4_minlen(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:	return 20;
	case IPPROTO_UDP:	return 8;
	case IPPROTO_UDPLITE:	return 8;
	case IPPROTO_SCTP:	return 12;
	case IPPROTO_ICMP:	return 4;
	case IPPROTO_IGMP:	return 4;
	case IPPROTO_ICMPV6:	return 4;
	default:		return 0;	/* not ours to edit */
	}
}

/*
 * Walk the packet (to the L4 header when the edits need it), keeping the L4
 * header only where the fields the edits touch are present.
 */
static int
parse(const uint8_t *ip, size_t len, size_t cut, int need_l4, struct ipwalk *in)
{
	size_t min;

	if (ipwalk(ip, len, cut, need_l4 ? IPW_L4 : 0, in) < 0)
		return -1;
	min = l4_minlen(in->proto);
	if (in->l4off != 0 && (min == 0 || in->l4off + min > in->iplen))
		in->l4off = 0;
	return 0;
}

/* ---- the edits ---- */

static uint8_t
new_ttl(const struct edits *e, uint8_t ttl)
{
	int v = ttl;

	switch (e->ttl_mode) {
	case TTL_SET: v = e->ttl; break;
	case TTL_ADD: v += e->ttl; break;
	case TTL_SUB: v -= e->ttl; break;
	default: return ttl;
	}
	return (uint8_t)(v < 1 ? 1 : v > 255 ? 255 : v);
}

/* TOS / traffic class byte: the whole byte, then its DSCP and ECN parts. */
static uint8_t
new_class(const struct edits *e, int whole, uint8_t c)
{
	if (whole >= 0)
		c = (uint8_t)whole;
	if (e->dscp >= 0)
		c = (uint8_t)(e->dscp << 2 | (c & 3));
	if (e->ecn >= 0)
		c = (uint8_t)((c & ~3) | e->ecn);
	return c;
}

static int
prefix_match(const uint8_t *a, const uint8_t *p, int len)
{
	int bytes = len / 8, bits = len % 8;

	if (memcmp(a, p, (size_t)bytes) != 0)
		return 0;
	return bits == 0 || ((a[bytes] ^ p[bytes]) & (0xff00 >> bits)) == 0;
}

/* The first map whose network holds a gets its network bits (host bits kept). */
static void
map_addr(const struct addr_map *maps, int n, int v6, uint8_t *a)
{
	int i, k, alen = v6 ? 16 : 4;
	uint8_t mask;

	for (i = 0; i < n; i++) {
		if (maps[i].v6 != v6 || !prefix_match(a, maps[i].from, maps[i].from_len))
			continue;
		for (k = 0; k < alen; k++) {
			int bits = maps[i].to_len - 8 * k;

			mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff00 >> bits);
			a[k] = (uint8_t)((maps[i].to[k] & mask) | (a[k] & ~mask));
		}
		return;
	}
}

static void
map_port(const struct port_map *maps, int n, uint8_t *p)
{
	uint16_t port = get16(p);
	int i;

	for (i = 0; i < n; i++) {
		if (port >= maps[i].lo && port <= maps[i].hi) {
			put16(p, maps[i].to);
			return;
		}
	}
}

/* Clamp the MSS option of a SYN (n bytes of TCP present); updates *check incrementally. */
static int
mss_clamp(uint8_t *tcp, size_t n, int mss, uint16_t *check)
{
	size_t doff = (size_t)(tcp[12] >> 4) * 4, i = 20, w, k;
	uint8_t old[4] = { 0 }, new[4] = { 0 };

	if (!(tcp[13] & 0x02) || doff < 20)
		return 0;
	if (doff > n)
		doff = n;
	while (i < doff) {
		if (tcp[i] == 0)
			break;
		if (tcp[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= doff || tcp[i + 1] < 2 || i + tcp[i + 1] > doff)
			break;
		if (tcp[i] == 2 && tcp[i + 1] == 4) {
			if (get16(tcp + i + 2) <= mss)
				return 0;
			/*
			 * The value may sit at an odd offset: then the sum's words
			 * are the 4 bytes from i + 1, the last one past the data
			 * counting as the zero that pads an odd length.
			 */
			w = (i + 2) & ~(size_t)1;
			k = (i + 2) % 2 ? 4 : 2;
			k = k < n - w ? k : n - w;
			memcpy(old, tcp + w, k);
			put16(tcp + i + 2, (uint16_t)mss);
			memcpy(new, tcp + w, k);
			*check = csum_update(*check, old, new, 4);
			return 1;
		}
		i += tcp[i + 1];
	}
	return 0;
}

/*
 * SCTP: port edits, then the CRC32c.  In the first fragment of a datagram the
 * CRC covers bytes that are not here and its length is unknown: a port edit
 * could never be made right again, so it is undone and *skipped set.
 */
static int
edit_sctp(const struct edits *e, uint8_t *ip, const struct ipwalk *in, int *skipped)
{
	uint8_t *l4 = ip + in->l4off, oldports[4];
	uint32_t orig = sctp_crc_get(l4 + 8);
	int moved;

	memcpy(oldports, l4, 4);
	map_port(e->sport, e->nsport, l4);
	map_port(e->dport, e->ndport, l4 + 2);
	moved = memcmp(oldports, l4, 4) != 0;
	if (moved && in->frag) {
		memcpy(l4, oldports, 4);
		if (skipped != NULL)
			*skipped = 1;
		return 0;
	}
	if (e->fix_checksums && l4sum_can_sctp(in))
		l4sum_recompute(ip, in);
	else if (moved)
		sctp_crc_put(l4 + 8, orig ^ sctp_crc32c_delta(oldports, l4, in->tot - in->l4off));
	return moved || sctp_crc_get(l4 + 8) != orig;
}

/*
 * L4 edits and the L4 checksum.  oldaddr/newaddr: the pseudo-header's
 * addresses before and after the L3 edits (alen bytes).  1 if anything changed.
 */
static int
edit_l4(const struct edits *e, uint8_t *ip, const struct ipwalk *in,
    const uint8_t *oldaddr, const uint8_t *newaddr, size_t alen, int *skipped)
{
	uint8_t *l4 = ip + in->l4off, oldports[4];
	uint8_t proto = in->proto;
	int coff = l4sum_off(proto), ports, moved, mss = 0;
	uint16_t check, orig;

	if (coff < 0)
		return 0;
	if (proto == IPPROTO_SCTP)
		return edit_sctp(e, ip, in, skipped);
	ports = proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE;
	if (ports) {
		memcpy(oldports, l4, 4);
		map_port(e->sport, e->nsport, l4);
		map_port(e->dport, e->ndport, l4 + 2);
	}
	orig = check = get16(l4 + coff);
	if (proto == IPPROTO_TCP && e->mss)
		mss = mss_clamp(l4, in->iplen - in->l4off, e->mss, &check);
	moved = (ports && memcmp(oldports, l4, 4) != 0) || mss;

	if (proto == IPPROTO_UDP && check == 0) {
		/* IPv4: no checksum, keep it so.  IPv6: 0 is invalid, compute one once edited. */
		if (in->version == 6 && (moved || e->fix_checksums || memcmp(oldaddr, newaddr, alen)) &&
		    l4sum_can(in))
			l4sum_recompute(ip, in);
	} else if (e->fix_checksums && l4sum_can(in)) {
		l4sum_recompute(ip, in);
	} else {
		if (l4sum_has_pseudo(proto) && alen != 0)
			check = csum_update(check, oldaddr, newaddr, alen);
		if (ports)
			check = csum_update(check, oldports, l4, 4);
		if (check == 0 && (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE))
			check = 0xffff;
		put16(l4 + coff, check);
	}
	return moved || get16(l4 + coff) != orig;
}

static int
mangle4(const struct edits *e, uint8_t *ip, const struct ipwalk *in, int *skipped)
{
	uint8_t old[20];
	uint16_t check;
	int l3, l4 = 0;

	memcpy(old, ip, 20);
	ip[8] = new_ttl(e, ip[8]);
	ip[1] = new_class(e, e->tos, ip[1]);
	if (e->df >= 0)
		ip[6] = (uint8_t)(e->df ? ip[6] | 0x40 : ip[6] & ~0x40);
	if (e->ipid >= 0)
		put16(ip + 4, (uint16_t)e->ipid);
	if (e->nsrc != 0 || e->ndst != 0) {	/* no maps: not two calls a packet */
		map_addr(e->src, e->nsrc, 0, ip + 12);
		map_addr(e->dst, e->ndst, 0, ip + 16);
	}
	l3 = memcmp(old, ip, 20) != 0;

	/*
	 * A map edits the header's destination only, never a source route's
	 * addresses: with hops left the pseudo-header's destination (the
	 * route's final one) stays, and only the source is folded in.
	 */
	if (in->l4off != 0)
		l4 = edit_l4(e, ip, in, old + 12, ip + 12, in->srr_dst ? 4 : 8, skipped);
	check = get16(ip + 10);
	if (e->fix_checksums) {
		put16(ip + 10, 0);
		put16(ip + 10, csum(ip, in->hlen));
	} else if (l3) {
		put16(ip + 10, csum_update(check, old, ip, 20));
	}
	return l3 || l4 || get16(ip + 10) != check;
}

static int
mangle6(const struct edits *e, uint8_t *ip, const struct ipwalk *in, int *skipped)
{
	uint8_t old[40];
	uint8_t tc = (uint8_t)((ip[0] & 0x0f) << 4 | ip[1] >> 4);
	int l3, l4 = 0;

	memcpy(old, ip, 40);
	ip[7] = new_ttl(e, ip[7]);
	tc = new_class(e, e->tclass, tc);
	ip[0] = (uint8_t)((ip[0] & 0xf0) | tc >> 4);
	ip[1] = (uint8_t)((tc << 4) | (ip[1] & 0x0f));
	if (e->flowlabel >= 0) {
		ip[1] = (uint8_t)((ip[1] & 0xf0) | (e->flowlabel >> 16));
		put16(ip + 2, (uint16_t)e->flowlabel);
	}
	if (e->nsrc != 0 || e->ndst != 0) {
		map_addr(e->src, e->nsrc, 1, ip + 8);
		map_addr(e->dst, e->ndst, 1, ip + 24);
	}
	l3 = memcmp(old, ip, 40) != 0;

	/* With hops left in a routing header, the pseudo-header's destination is not ip6_dst. */
	if (in->l4off != 0)
		l4 = edit_l4(e, ip, in, old + 8, ip + 8, in->rh_segleft ? 16 : 32, skipped);
	return l3 || l4;
}

int
mangle(const struct edits *e, uint8_t *ip, size_t len, size_t cut, int *skipped)
{
	struct ipwalk in;

	if (skipped != NULL)
		*skipped = 0;
	if (parse(ip, len, cut, e->need_l4, &in) < 0)
		return MANGLE_BAD;
	return (in.version == 6 ? mangle6(e, ip, &in, skipped) : mangle4(e, ip, &in, skipped)) ?
	    MANGLE_EDITED : MANGLE_SAME;
}
