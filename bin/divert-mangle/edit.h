/*
 * edit.h - divert-mangle's header edits: what the command line asked for,
 * how a packet is parsed for them, and the one call that applies them.
 *
 * Order of the edits on one packet (the man page documents it):
 *   1. IP header: TTL / hop limit, TOS or traffic class, DSCP, ECN, flow
 *      label, DF, IP ID, source map, destination map;
 *   2. L4 header, only where it is present (first fragment): source port
 *      map, destination port map, MSS clamp;
 *   3. checksums: incremental for every field changed (RFC 1624; for the
 *      SCTP CRC32c, its linearity); a full recompute where no incremental
 *      one exists (a zero UDP checksum over IPv6) or everywhere with
 *      --fix-checksums.
 */
#ifndef MANGLE_EDIT_H
#define MANGLE_EDIT_H

#include <stddef.h>
#include <stdint.h>

#define EDIT_MAX_MAPS	64		/* per list: --src, --dst, --sport, --dport */

enum ttl_mode { TTL_KEEP, TTL_SET, TTL_ADD, TTL_SUB };

/* One CIDR map: addresses in from/from_len become to/to_len, host bits kept. */
struct addr_map {
	int		v6;
	uint8_t		from[16], to[16];
	int		from_len, to_len;
};

/* One port map: lo..hi become to. */
struct port_map {
	uint16_t	lo, hi, to;
};

struct edits {
	int		ttl_mode;	/* enum ttl_mode */
	int		ttl;
	int		tos, tclass, dscp, ecn;	/* -1: keep */
	long		flowlabel, ipid;	/* -1: keep */
	int		df;		/* -1 keep, 0 clear, 1 set */
	int		mss;		/* 0: no clamp */
	int		fix_checksums;
	struct addr_map	src[EDIT_MAX_MAPS], dst[EDIT_MAX_MAPS];
	int		nsrc, ndst;
	struct port_map	sport[EDIT_MAX_MAPS], dport[EDIT_MAX_MAPS];
	int		nsport, ndport;
	int		need_l4;	/* set by edits_ready(): find the L4 header */
};

/* Where the headers of one IP packet are (offsets from the IP header). */
struct ipinfo {
	int		v6;
	size_t		hlen;		/* IPv4 header (options included) or 40 */
	size_t		iplen;		/* datagram bytes present (padding excluded) */
	int		whole;		/* all of the datagram is present */
	int		frag;		/* a fragment of a larger datagram */
	int		first;		/* carries the L4 header (offset 0) */
	uint8_t		l4proto;	/* after IPv6 extension headers; 0: unknown */
	size_t		l4off;		/* 0: no L4 header present */
	uint32_t	l4wire;		/* L4 length on the wire (pseudo-header) */
	int		rh_segleft;	/* IPv6 routing header still has hops */
	size_t		srr_dst;	/* IPv4 source route with hops left: offset of
					   its final destination (the pseudo-header's) */
};

enum { MANGLE_BAD = -1, MANGLE_SAME = 0, MANGLE_EDITED = 1 };

/* No edits at all: every field "keep". */
void edits_init(struct edits *e);

/*
 * Option values; 0, or -1 when malformed.  TTL "N", "+N", "-N";
 * maps "A/L:B/L" (IPv6 may be bracketed: "[A/L]:[B/L]"); ports "A[-B]:C".
 */
int edits_parse_ttl(struct edits *e, const char *s);
int edits_add_addr_map(struct addr_map *maps, int *n, const char *s);
int edits_add_port_map(struct port_map *maps, int *n, const char *s);

/* After all options: derive what parsing the edits need.  1 if any edit. */
int edits_ready(struct edits *e);

/*
 * Parse the IP packet at ip (len bytes captured, cut more on the wire).
 * need_l4: also walk IPv6 extension headers and find the L4 header.
 * 0, or -1 when the packet is not a well-formed IPv4/IPv6 header.
 */
int ip_parse(uint8_t *ip, size_t len, size_t cut, int need_l4, struct ipinfo *in);

/*
 * Apply e to the packet in place: MANGLE_EDITED, MANGLE_SAME or MANGLE_BAD.
 * *skipped (may be NULL) is set when a port edit was left out: the first
 * fragment of an SCTP datagram, whose CRC32c covers fragments not here.
 */
int mangle(const struct edits *e, uint8_t *ip, size_t len, size_t cut, int *skipped);

/* CRC32c (Castagnoli) as SCTP uses it: the value for the checksum field. */
uint32_t sctp_crc32c(const uint8_t *data, size_t len);

/*
 * What changing the first 4 bytes of an SCTP packet of len bytes from old to
 * new does to its CRC32c: XOR it into the stored value.  CRC32c is linear
 * over GF(2), so a CRC that was wrong stays wrong by the same error.
 */
uint32_t sctp_crc32c_delta(const uint8_t old[4], const uint8_t new[4], size_t len);

#endif
