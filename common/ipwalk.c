/* ipwalk.c - walk IPv4 and IPv6 headers (RFC 791, RFC 8200, RFC 7045). */
#include <netinet/in.h>
#include <netinet/ip.h>

#include "bytes.h"
#include "ipwalk.h"

#define PROTO_HIP	139		/* IPv6 extension headers <netinet/in.h> lacks */
#define PROTO_SHIM6	140

/*
 * The final destination of an IPv4 loose or strict source route (RFC 791)
 * that still has hops to go: the last address of the option, which is what
 * the TCP/UDP pseudo-header holds (Linux sums it so when it sends, Wireshark
 * checks it so).  Once the pointer is past the end the route is done and the
 * header's destination is the final one (there tcpdump and scapy still take
 * the last address; Wireshark does not).  0: none, or a malformed option
 * list (then the header's destination is used).
 */
static size_t
srr_final_dst(const uint8_t *ip, size_t hlen)
{
	size_t off = 20, olen, found = 0;

	while (off < hlen) {
		if (ip[off] == IPOPT_EOL)
			break;
		if (ip[off] == IPOPT_NOP) {
			off++;
			continue;
		}
		if (off + 2 > hlen || (olen = ip[off + 1]) < 2 || off + olen > hlen)
			return 0;
		if (ip[off] == IPOPT_LSRR || ip[off] == IPOPT_SSRR) {
			if (found != 0 || olen < 7 || (olen - 3) % 4 != 0)
				return 0;	/* two routes (Linux refuses them), or a bad one */
			if ((size_t)ip[off + 2] + 3 <= olen)
				found = off + olen - 4;
			else
				found = 1;	/* done: remember one was seen */
		}
		off += olen;
	}
	return found > 1 ? found : 0;
}

/* Bytes of the datagram present, and whether that is all of it. */
static void
set_present(size_t len, struct ipwalk *w)
{
	w->iplen = w->tot < len ? w->tot : len;
	w->whole = w->tot <= len;
}

static int
walk4(const uint8_t *ip, size_t len, size_t cut, unsigned how, struct ipwalk *w)
{
	uint16_t fo = get16(ip + 6);

	/* The 20 fixed bytes are here: their fields even when the lengths are wrong. */
	w->proto = ip[9];
	w->frag = (fo & (IP_MF | IP_OFFMASK)) != 0;
	w->more = (fo & IP_MF) != 0;
	w->df = (fo & IP_DF) != 0;
	w->fragoff = (uint32_t)(fo & IP_OFFMASK) * 8;
	w->first = w->fragoff == 0;
	w->id = get16(ip + 4);
	w->hlen = (uint16_t)((ip[0] & 0x0f) * 4);
	if (w->hlen < 20 || w->hlen > len)
		return -1;
	w->tot = how & IPW_EXACT ? len : get16(ip + 2);
	w->sized = w->tot != 0;
	if (!w->sized)				/* TSO capture: the length is the record's */
		w->tot = len + cut;
	if (w->tot < w->hlen)
		return -1;
	set_present(len, w);
	if (how & IPW_L4) {
		if (w->first && w->hlen < w->iplen)
			w->l4off = w->hlen;
		w->srr_dst = srr_final_dst(ip, w->hlen);
	}
	return 0;
}

/* Whether IPv6 next header nh is an extension header the walk goes through. */
static int
is_ext6(uint8_t nh)
{
	switch (nh) {
	case IPPROTO_HOPOPTS: case IPPROTO_ROUTING: case IPPROTO_FRAGMENT:
	case IPPROTO_DSTOPTS: case IPPROTO_AH: case IPPROTO_MH:
	case PROTO_HIP: case PROTO_SHIM6:
		return 1;
	default:
		return 0;
	}
}

/*
 * Whether the extension header nh at off belongs to the unfragmentable
 * part: hop-by-hop and routing headers do, destination options only before
 * a routing header (they are for its hops).  -1: that cannot be read yet.
 */
static int
in_unfrag(const uint8_t *ip, size_t off, uint8_t nh, const struct ipwalk *w)
{
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING)
		return 1;
	if (nh != IPPROTO_DSTOPTS)
		return 0;
	return off + 8 > w->iplen ? -1 : ip[off] == IPPROTO_ROUTING;
}

/* The unfragmentable part ends before the header at off, named at nhoff. */
static void
end_unfrag(struct ipwalk *w, size_t off, size_t nhoff)
{
	if (w->unfrag == 0) {
		w->unfrag = off;
		w->unfrag_nh = nhoff;
	}
}

/* A fragment header at off (8 bytes present), named at nhoff. */
static void
fragment6(const uint8_t *ip, size_t off, size_t nhoff, struct ipwalk *w)
{
	uint16_t fo = get16(ip + off + 2);

	w->frag = 1;
	w->fh = off;
	w->fh_nh = nhoff;
	w->fragoff = fo & 0xfff8;
	w->more = fo & 1;
	w->first = w->fragoff == 0;
	w->id = get32(ip + off + 4);
}

/* Length of the extension header nh at off (its first 8 bytes present). */
static size_t
ext_len(const uint8_t *ip, size_t off, uint8_t nh)
{
	if (nh == IPPROTO_FRAGMENT)
		return 8;
	if (nh == IPPROTO_AH)			/* RFC 4302: 4-byte units, minus 2 */
		return ((size_t)ip[off + 1] + 2) * 4;
	return ((size_t)ip[off + 1] + 1) * 8;	/* RFC 8200 and RFC 6275, 7401, 5533 */
}

/*
 * Through the extension headers from the fixed header on.  Each one's first
 * 8 bytes must be present to be passed; one reaching past tot ends the walk
 * (chain_cut), as does a later fragment (the rest is not headers: any
 * fragment header with an offset makes it one) and, but for IPW_L4, the
 * first fragment header.
 */
static void
walk_ext6(const uint8_t *ip, unsigned how, struct ipwalk *w)
{
	size_t off = 40, nhoff = 6;
	uint8_t nh = ip[6];
	int member;

	for (;;) {
		if (!is_ext6(nh)) {
			end_unfrag(w, off, nhoff);
			if (w->first && off < w->iplen)
				w->l4off = off;
			break;
		}
		if (w->unfrag == 0 && (member = in_unfrag(ip, off, nh, w)) <= 0) {
			if (member < 0) {
				w->chain_cut = 1;
				break;
			}
			end_unfrag(w, off, nhoff);
		}
		if (off + 8 > w->iplen) {
			w->chain_cut = 1;
			break;
		}
		if (nh == IPPROTO_FRAGMENT) {
			if (!w->frag)
				fragment6(ip, off, nhoff, w);
			else if ((get16(ip + off + 2) & 0xfff8) != 0)
				w->first = 0;		/* a fragment inside the first one */
			if (!w->first || !(how & IPW_L4)) {
				nh = ip[off];		/* what the fragments carry */
				break;
			}
		}
		if (nh == IPPROTO_ROUTING && ip[off + 3] != 0)
			w->rh_segleft = 1;
		nhoff = off;
		off += ext_len(ip, off, nh);
		nh = ip[nhoff];
		if (off > w->tot) {
			w->chain_cut = 1;
			break;
		}
	}
	w->proto = nh;
}

static int
walk6(const uint8_t *ip, size_t len, size_t cut, unsigned how, struct ipwalk *w)
{
	if (len < 40)
		return -1;
	w->hlen = 40;
	w->tot = how & IPW_EXACT ? len : 40 + (size_t)get16(ip + 4);
	/* Length 0 with something after the header: a jumbogram or a TSO capture. */
	w->sized = w->tot != 40 || ip[6] == IPPROTO_NONE || (how & IPW_EXACT);
	if (!w->sized)
		w->tot = len + cut;
	set_present(len, w);
	w->first = 1;
	if (how & (IPW_FRAG | IPW_L4))
		walk_ext6(ip, how, w);
	return 0;
}

int
ipwalk(const uint8_t *ip, size_t len, size_t cut, unsigned how, struct ipwalk *w)
{
	/*
	 * Per packet: a copy is a few vector stores where memset of *w becomes
	 * "rep stos", whose start-up costs more than divert-mangle's whole edit.
	 */
	static const struct ipwalk zero;

	*w = zero;
	if (len < 20)
		return -1;
	w->version = ip[0] >> 4;
	switch (w->version) {
	case 4:
		return walk4(ip, len, cut, how, w);
	case 6:
		return walk6(ip, len, cut, how, w);
	default:
		return -1;
	}
}
