/*
 * frag.h - split an IPv4 or IPv6 packet into fragments that fit an MTU, as
 * a router (IPv4) or the source (IPv6, with a fragment header) would.
 * Shared by divert-inject (oversized packets) and divert-defrag --fragment.
 *
 * No allocation: each fragment is built in a buffer the caller lends (the
 * library runs on its caller's thread, whose stack may be small) and handed
 * to a callback, valid only during the call.
 */
#ifndef DIVERT_FRAG_H
#define DIVERT_FRAG_H

#include <stddef.h>
#include <stdint.h>

#define FRAG_MAX	(40 + 65535)	/* largest packet frag_split builds */

enum frag_err {
	FRAG_E_DF = -1,		/* IPv4 with Don't Fragment set */
	FRAG_E_MTU = -2,	/* MTU leaves no room for 8 bytes of data */
	FRAG_E_PARSE = -3,	/* not an IPv4/IPv6 packet, or its headers are cut */
	FRAG_E_FRAGMENT = -4,	/* IPv6 packet that already has a fragment header */
	FRAG_E_SIZE = -5,	/* longer than IPv4 (65535) or IPv6 without jumbograms allows */
	FRAG_E_STOP = -6,	/* the callback asked to stop */
};

/*
 * Called once per fragment, in order, with the fragment's len bytes (valid
 * only during the call).  Return 0 to go on, non-zero to stop.
 */
typedef int (*frag_fn)(const uint8_t *frag, size_t len, void *arg);

/*
 * Split the IP packet at ip (len bytes: the whole packet; its length fields
 * are rewritten, not trusted) into fragments of at most mtu bytes.  A packet
 * that fits is handed to fn once, unchanged.  IPv4 fragments keep the
 * packet's ID (ident's low 16 bits when the ID is 0), copy only the options
 * marked "copied" after the first, get correct total lengths and header
 * checksums; a fragment is split again keeping its offset and MF.  IPv6
 * fragments carry a fragment header with identification ident after the
 * unfragmentable part (hop-by-hop, routing, and destination options before
 * a routing header).
 *
 * Each fragment is built in buf (size bytes, FRAG_MAX for any MTU): a
 * packet that does not fit mtu is cut to fit size too, if that is less.
 *
 * Returns the number of fragments handed to fn (1: it fitted), or an
 * enum frag_err.
 */
int frag_split(const uint8_t *ip, size_t len, size_t mtu, uint32_t ident, uint8_t *buf,
    size_t size, frag_fn fn, void *arg);

/* Words for an enum frag_err ("Don't Fragment set", ...). */
const char *frag_strerror(int err);

#endif
