/*
 * ipwalk.h - the one walk over an IPv4 or IPv6 header chain: version,
 * lengths, fragment fields, IPv6 extension headers, the upper layer.
 *
 * Every reader of IP headers in divert goes through it: fragmentation
 * (frag.c, in the library too), reassembly (reasm.c), divert-mangle's edits
 * (edit.c) and divert-inject's -v (describe.c).  No allocation, no copy;
 * the caller says how deep to go, so that a per-packet user that needs no
 * L4 header pays for the fixed header only.
 *
 * IPv6 extension headers walked: hop-by-hop (0), routing (43), fragment
 * (44), destination options (60), AH (51, in 4-byte units), Mobility (135),
 * HIP (139), Shim6 (140).  ESP (50) is opaque: the walk stops there, as at
 * No Next Header (59) and at any other protocol.
 */
#ifndef DIVERT_IPWALK_H
#define DIVERT_IPWALK_H

#include <stddef.h>
#include <stdint.h>

/* How far ipwalk goes (flags; none: the fixed header only). */
enum {
	IPW_FRAG  = 1,	/* IPv6: on to the fragment header, or to the chain's end when
			   there is none; the unfragmentable part */
	IPW_L4	  = 2,	/* on to the upper layer (implies IPW_FRAG): its protocol and
			   offset, routing headers, the IPv4 source route */
	IPW_EXACT = 4,	/* the datagram is exactly len bytes: its length field is not
			   read (a packet being built, whose lengths are rewritten) */
};

/*
 * What the walk found.  The fixed header gives version, lengths and, for
 * IPv4, the fragment fields and proto.  IPW_FRAG adds IPv6's fragment
 * fields, fh and unfrag, and stops at the fragment header: what lies after
 * it (IPv6's proto, rh_segleft) is complete only with IPW_L4, which also
 * gives l4off and srr_dst.  Without a fragment header, first is 1.
 */
struct ipwalk {
	uint8_t		version;	/* 4 or 6 */
	uint8_t		proto;		/* upper-layer protocol: IPv4's; IPv6: where the walk
					   stopped (ESP, No Next Header, any unknown one); a
					   later fragment: its fragment header's next header;
					   a chain cut short: the header that could not be passed */
	uint8_t		frag;		/* a fragment (IPv4 MF or offset; an IPv6 fragment header) */
	uint8_t		first;		/* offset 0 (or no fragment): the upper layer is here;
					   IPv6: in every fragment header walked */
	uint8_t		more;		/* more fragments follow (MF, M) */
	uint8_t		df;		/* IPv4 Don't Fragment */
	uint8_t		sized;		/* tot is the length field's (not 0: TSO, jumbogram) */
	uint8_t		whole;		/* tot <= len: all of the datagram is here */
	uint8_t		chain_cut;	/* IPv6 headers run past tot or the bytes present */
	uint8_t		rh_segleft;	/* an IPv6 routing header has segments left */
	uint16_t	hlen;		/* IPv4 header, options included; 40 for IPv6 */
	uint32_t	id;		/* IPv4 identification, or the fragment header's */
	uint32_t	fragoff;	/* fragment offset in bytes */
	size_t		tot;		/* datagram length: its length field; 0 there: len + cut */
	size_t		iplen;		/* datagram bytes present: the less of tot and len */
	size_t		fh;		/* IPv6: offset of the (first) fragment header; 0: none */
	size_t		fh_nh;		/* ...of the next-header byte that names it */
	size_t		unfrag;		/* IPv6: length of the unfragmentable part (RFC 8200
					   4.5: hop-by-hop, routing, destination options before
					   a routing header); 0: the chain is cut inside it */
	size_t		unfrag_nh;	/* ...offset of the next-header byte that ends it:
					   where a fragment header would be named */
	size_t		l4off;		/* upper-layer header offset; 0: not in this packet */
	size_t		srr_dst;	/* IPv4 loose/strict source route with hops left: offset
					   of its final destination (the L4 pseudo-header's);
					   0: none, done, or a malformed option list */
};

/*
 * Walk the IP packet at ip: len bytes captured, cut more on the wire; how is
 * IPW_* flags.  0, or -1 when it is not an IPv4 or IPv6 packet whose fixed
 * header is here (shorter than 20/40 bytes, IHL under 5 or past len, an
 * IPv4 total length shorter than its header).  An IPv4 header refused for
 * its lengths still has version, proto and the fragment fields filled.
 */
int ipwalk(const uint8_t *ip, size_t len, size_t cut, unsigned how, struct ipwalk *w);

#endif
