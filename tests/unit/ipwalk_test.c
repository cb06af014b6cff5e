/* ipwalk_test - the one IPv4/IPv6 header walker: lengths, fragments, extension headers, L4. */
#include <string.h>

#include <netinet/in.h>
#include <netinet/ip.h>

#include "bytes.h"
#include "ipwalk.h"
#include "tap.h"

static uint8_t pkt[2048];

/* An IPv4 header of hl bytes (options zero) and total length tot, protocol proto. */
static void
ip4(size_t hl, size_t tot, uint8_t proto, uint16_t fo)
{
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = (uint8_t)(0x40 | hl / 4);
	put16(pkt + 2, (uint16_t)tot);
	put16(pkt + 4, 0x1234);
	put16(pkt + 6, fo);
	pkt[8] = 64;
	pkt[9] = proto;
}

/* An IPv6 header with next header nh and payload length plen. */
static void
ip6(uint8_t nh, size_t plen)
{
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x60;
	put16(pkt + 4, (uint16_t)plen);
	pkt[6] = nh;
	pkt[7] = 64;
}

/* An extension header at off: next header nh, length field lenfield. */
static void
ext(size_t off, uint8_t nh, uint8_t lenfield)
{
	pkt[off] = nh;
	pkt[off + 1] = lenfield;
}

/* A fragment header at off: next header nh, offset (bytes), M, identification. */
static void
fraghdr(size_t off, uint8_t nh, uint16_t offset, int more, uint32_t id)
{
	pkt[off] = nh;
	put16(pkt + off + 2, (uint16_t)(offset | (more ? 1 : 0)));
	put32(pkt + off + 4, id);
}

static void
test_v4(void)
{
	struct ipwalk w;

	ip4(20, 60, IPPROTO_TCP, 0x4000);
	ok(ipwalk(pkt, 60, 0, IPW_L4, &w) == 0 && w.version == 4 && w.hlen == 20 &&
	    w.tot == 60 && w.iplen == 60 && w.whole && w.sized && w.proto == IPPROTO_TCP &&
	    w.l4off == 20 && !w.frag && w.first && w.df && w.id == 0x1234,
	    "IPv4 TCP, DF: header 20, L4 at 20, not a fragment");
	ok(ipwalk(pkt, 60, 0, 0, &w) == 0 && w.l4off == 0 && w.proto == IPPROTO_TCP,
	    "without IPW_L4: no L4 offset, the protocol still");
	ok(ipwalk(pkt, 70, 0, IPW_L4, &w) == 0 && w.iplen == 60 && w.whole,
	    "padding after the datagram is not counted");
	ok(ipwalk(pkt, 40, 20, IPW_L4, &w) == 0 && w.iplen == 40 && !w.whole,
	    "cut by the capture: 40 of 60 present");
	ip4(24, 1500, IPPROTO_UDP, IP_MF | 185);
	ok(ipwalk(pkt, 1500, 0, IPW_L4, &w) == 0 && w.frag && w.more && !w.first &&
	    w.fragoff == 1480 && w.l4off == 0 && w.hlen == 24,
	    "a middle fragment: offset 1480, MF, no L4 header");
	ip4(20, 1500, IPPROTO_UDP, IP_MF);
	ok(ipwalk(pkt, 1500, 0, IPW_L4, &w) == 0 && w.frag && w.first && w.l4off == 20,
	    "the first fragment carries the L4 header");
	ip4(20, 0, IPPROTO_TCP, 0);
	ok(ipwalk(pkt, 100, 900, 0, &w) == 0 && !w.sized && w.tot == 1000 && w.iplen == 100,
	    "total length 0 (TSO capture): the record's length, cut included");
	ip4(20, 10, IPPROTO_TCP, IP_MF);
	ok(ipwalk(pkt, 60, 0, 0, &w) < 0 && w.proto == IPPROTO_TCP && w.frag && w.more,
	    "a total length below the header: refused, protocol and fragment fields read");
	ok(ipwalk(pkt, 60, 0, IPW_EXACT, &w) == 0 && w.tot == 60,
	    "IPW_EXACT: the length field is not read");
	ip4(60, 60, IPPROTO_TCP, 0);
	ok(ipwalk(pkt, 40, 0, 0, &w) < 0, "IHL 15 on 40 bytes: refused");
	pkt[0] = 0x44;
	ok(ipwalk(pkt, 60, 0, 0, &w) < 0, "IHL 4: refused");
	ok(ipwalk(pkt, 19, 0, 0, &w) < 0, "19 bytes: refused");
	pkt[0] = 0x55;
	ok(ipwalk(pkt, 60, 0, 0, &w) < 0, "version 5: refused");
}

/* The final destination of a source route: where it is, for a 32-byte header. */
static size_t
srr(const uint8_t *opts, size_t n, size_t hl)
{
	struct ipwalk w;

	ip4(hl, hl, IPPROTO_TCP, 0);
	memcpy(pkt + 20, opts, n);
	return ipwalk(pkt, hl, 0, IPW_L4, &w) == 0 ? w.srr_dst : 99;
}

static void
test_srr(void)
{
	uint8_t o[16] = { IPOPT_LSRR, 11, 4, 10, 0, 0, 8, 10, 0, 0, 5, IPOPT_EOL };

	ok(srr(o, 12, 32) == 27, "LSRR, pointer 4: final destination at 27");
	o[2] = 8;
	ok(srr(o, 12, 32) == 27, "LSRR, pointer 8: still");
	o[2] = 12;
	ok(srr(o, 12, 32) == 0, "LSRR, pointer 12 (done): the header's destination");
	o[2] = 4, o[0] = IPOPT_SSRR;
	ok(srr(o, 12, 32) == 27, "SSRR too");
	memmove(o + 1, o, 11);
	o[0] = IPOPT_NOP;
	ok(srr(o, 12, 32) == 28, "after a NOP");
	o[1] = IPOPT_EOL;
	ok(srr(o, 12, 32) == 0, "after EOL: no option");
	ok(srr((const uint8_t *)"\x83\x07\x04\x0a\x00\x00\x05\x83\x07\x04\x0a\x00\x00\x06", 14,
	    36) == 0, "two source routes: the header's destination");
	ok(srr((const uint8_t *)"\x83\x09\x04\x0a\x00\x00\x05\x00\x00", 9, 32) == 0,
	    "length 9 (not 3 + 4n): the header's destination");
	ok(srr((const uint8_t *)"\x83\x0f\x04", 3, 32) == 0,
	    "option past the header: the header's destination");
}

static void
test_v6_chain(void)
{
	struct ipwalk w;

	/* hop-by-hop 8, dstopts 8 (before routing), routing 24 (1 left), fragment,
	 * AH 24 (length field 4: 4-byte units), dstopts 16, UDP 8 + 8 bytes */
	ip6(IPPROTO_HOPOPTS, 8 + 8 + 24 + 8 + 24 + 16 + 16);
	ext(40, IPPROTO_DSTOPTS, 0);
	ext(48, IPPROTO_ROUTING, 0);
	ext(56, IPPROTO_FRAGMENT, 2);
	pkt[59] = 1;				/* segments left */
	fraghdr(80, IPPROTO_AH, 0, 1, 0xa1b2c3d4);
	ext(88, IPPROTO_DSTOPTS, 4);
	ext(112, IPPROTO_UDP, 1);
	ok(ipwalk(pkt, 144, 0, IPW_L4, &w) == 0 && w.proto == IPPROTO_UDP && w.l4off == 128 &&
	    !w.chain_cut, "hop-by-hop, dstopts, routing, fragment, AH, dstopts: UDP at 128");
	ok(w.unfrag == 80 && w.unfrag_nh == 56,
	    "unfragmentable part: to the routing header's end, named by the routing header");
	ok(w.frag && w.first && w.more && w.fh == 80 && w.fh_nh == 56 && w.id == 0xa1b2c3d4,
	    "first fragment: header at 80, named at 56, M, identification");
	ok(w.rh_segleft, "routing header with a segment left");
	ok(ipwalk(pkt, 144, 0, IPW_FRAG, &w) == 0 && w.fh == 80 && w.l4off == 0 &&
	    w.proto == IPPROTO_AH, "IPW_FRAG stops at the fragment header");
	ok(ipwalk(pkt, 144, 0, 0, &w) == 0 && !w.frag && w.unfrag == 0 && w.tot == 144,
	    "no flags: the fixed header only");

	/* a fragment header with an offset inside the first fragment: a later fragment after all */
	fraghdr(80, IPPROTO_FRAGMENT, 0, 1, 1);
	fraghdr(88, IPPROTO_UDP, 64, 0, 2);
	ok(ipwalk(pkt, 144, 0, IPW_L4, &w) == 0 && !w.first && w.l4off == 0 && w.fh == 80 &&
	    w.id == 1 && w.proto == IPPROTO_UDP, "a second fragment header with an offset: no L4");
	fraghdr(80, IPPROTO_AH, 0, 1, 0xa1b2c3d4);
	ext(88, IPPROTO_DSTOPTS, 4);

	put16(pkt + 82, 1448 | 1);		/* a later fragment: no headers after it */
	ok(ipwalk(pkt, 144, 0, IPW_L4, &w) == 0 && w.frag && !w.first && w.fragoff == 1448 &&
	    w.l4off == 0 && w.proto == IPPROTO_AH, "a later fragment: its next header, no L4");

	/* destination options not before a routing header end the unfragmentable part */
	ip6(IPPROTO_HOPOPTS, 8 + 8 + 8);
	ext(40, IPPROTO_DSTOPTS, 0);
	ext(48, IPPROTO_UDP, 0);
	ok(ipwalk(pkt, 64, 0, IPW_FRAG, &w) == 0 && w.unfrag == 48 && w.unfrag_nh == 40 &&
	    !w.frag, "hop-by-hop, dstopts, UDP: unfragmentable part is the hop-by-hop header");
}

static void
test_v6_others(void)
{
	struct ipwalk w;

	/* Mobility (135), HIP (139) and Shim6 (140) are extension headers: walked through. */
	ip6(IPPROTO_MH, 8 + 16 + 8 + 20);
	ext(40, 139, 0);
	ext(48, 140, 1);
	ext(64, IPPROTO_TCP, 0);
	ok(ipwalk(pkt, 92, 0, IPW_L4, &w) == 0 && w.proto == IPPROTO_TCP && w.l4off == 72,
	    "MH, HIP, Shim6 walked through: TCP at 72");
	ok(w.unfrag == 40 && w.unfrag_nh == 6, "none of them is unfragmentable");

	/* ESP is opaque: the walk stops there. */
	ip6(IPPROTO_HOPOPTS, 8 + 16);
	ext(40, IPPROTO_ESP, 0);
	ok(ipwalk(pkt, 64, 0, IPW_L4, &w) == 0 && w.proto == IPPROTO_ESP && w.l4off == 48,
	    "ESP: the walk stops at it");

	/* A chain that runs past the datagram, or past the capture. */
	ip6(IPPROTO_HOPOPTS, 8 + 8);
	ext(40, IPPROTO_TCP, 200);
	ok(ipwalk(pkt, 56, 0, IPW_L4, &w) == 0 && w.chain_cut && w.l4off == 0 && w.unfrag == 0,
	    "hop-by-hop claiming 1608 bytes: cut, no L4, no unfragmentable part");
	ip6(IPPROTO_DSTOPTS, 8 + 8 + 20);
	ext(40, IPPROTO_DSTOPTS, 0);
	ok(ipwalk(pkt, 52, 24, IPW_L4, &w) == 0 && w.chain_cut && w.iplen == 52 &&
	    w.proto == IPPROTO_DSTOPTS, "a header the capture cut: the walk stops before it");
	ip6(IPPROTO_HOPOPTS, 8 + 8);
	ext(40, IPPROTO_FRAGMENT, 0);
	ok(ipwalk(pkt, 52, 0, IPW_EXACT | IPW_FRAG, &w) == 0 && w.chain_cut && !w.frag &&
	    w.proto == IPPROTO_FRAGMENT && w.unfrag == 48, "a fragment header cut short");

	/* Payload length 0: a jumbogram or a TSO capture, unless nothing follows. */
	ip6(IPPROTO_TCP, 0);
	ok(ipwalk(pkt, 100, 20, IPW_L4, &w) == 0 && !w.sized && w.tot == 120 && w.l4off == 40,
	    "payload length 0 before TCP: the record's length");
	ip6(IPPROTO_NONE, 0);
	ok(ipwalk(pkt, 40, 0, IPW_L4, &w) == 0 && w.sized && w.tot == 40 &&
	    w.proto == IPPROTO_NONE, "payload length 0, no next header: 40 bytes");
	ok(ipwalk(pkt, 39, 0, 0, &w) < 0, "39 bytes of IPv6: refused");
}

int
main(void)
{
	test_v4();
	test_srr();
	test_v6_chain();
	test_v6_others();
	return tap_done();
}
