/*
 * edit.h - divert-mangle's header edits: what the command line asked for,
 * and the one call that applies them (the packet is read by ipwalk.h).
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
#ifndef DIVERT_EDIT_H
#define DIVERT_EDIT_H

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
 * Apply e to the IP packet at ip (len bytes captured, cut more on the wire)
 * in place: MANGLE_EDITED, MANGLE_SAME or MANGLE_BAD (not a well-formed
 * IPv4/IPv6 header).
 * *skipped (may be NULL) is set when a port edit was left out: the first
 * fragment of an SCTP datagram, whose CRC32c covers fragments not here.
 */
int mangle(const struct edits *e, uint8_t *ip, size_t len, size_t cut, int *skipped);

#endif
