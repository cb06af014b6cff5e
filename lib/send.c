/*
 * send.c - divert_send: a whole IP packet back into the stack, outbound
 * through raw sockets (batched; fragmented to the route MTU when the
 * kernel says EMSGSIZE), inbound through a TUN whose ingress redirects it
 * to the interface it is to arrive on.  Each packet's fate goes to the
 * report function in the order the packets were given, and each packet
 * put into the stack (each fragment) to the tap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/if_ether.h>
#include <net/if.h>

#include "bytes.h"
#include "csum.h"
#include "frag.h"
#include "handle.h"
#include "raw.h"
#include "tun.h"

#define WHY_SIZE	512	/* words for one packet's refusal */

/* A packet's fate: to the report function, and kept for divert_send's answer. */
static void
tell(struct divert *h, const struct raw_pkt *p, int result, int error, unsigned pieces,
    const char *why)
{
	struct divert_report r = { .to = &p->a, .pkt = p->data, .len = p->len,
		.result = result, .error = error, .fragments = pieces, .why = why };

	h->result = result;
	h->error = error;
	if (result != DIVERT_SENT)
		snprintf(h->err, sizeof(h->err), "%s", why);
	if (h->report != NULL)
		h->report(&r, h->report_arg);
}

/* p is in the stack: whole (pieces 1) or in fragments that the tap has seen. */
static void
went(struct divert *h, const struct raw_pkt *p, unsigned pieces)
{
	if (pieces == 1 && h->tap != NULL)
		h->tap(&p->a, p->data, p->len, h->tap_arg);
	tell(h, p, DIVERT_SENT, 0, pieces, "");
}

/* Each fragment of an oversized packet goes out at once, and to the tap. */
static int
send_fragment(const uint8_t *frag, size_t len, void *arg)
{
	struct divert *h = arg;
	struct raw_pkt piece = *h->splitting;

	piece.data = (uint8_t *)frag;
	piece.len = len;
	piece.a.cut = 0;
	if ((h->frag_err = raw_send(h->raw, &piece)) != 0)
		return 1;
	if (h->tap != NULL)
		h->tap(&piece.a, piece.data, piece.len, h->tap_arg);
	return 0;
}

/* The kernel said EMSGSIZE: fragment to the route's MTU, unless DF forbids it. */
static void
too_big(struct divert *h, const struct raw_pkt *p)
{
	char why[128];
	int mtu, n, e;

	if ((mtu = raw_route_mtu(h->raw, p)) < 0) {
		snprintf(why, sizeof(why), "over the interface MTU, and the route MTU is "
		    "unknown: %s", strerror(-mtu));
		tell(h, p, DIVERT_E_KERNEL, -mtu, 0, why);
		return;
	}
	h->frag_err = 0;
	h->splitting = p;
	n = frag_split(p->data, p->len, (size_t)mtu, h->ident++, h->fragbuf, FRAG_MAX,
	    send_fragment, h);
	h->splitting = NULL;	/* p lives in a raw.c slot that the next batch reuses */
	if (n > 0) {
		/* One piece: it fit the probed MTU after all, and went whole. */
		tell(h, p, DIVERT_SENT, 0, (unsigned)n, "");
	} else if (n == FRAG_E_DF) {
		snprintf(why, sizeof(why), "Don't Fragment set, %zu bytes > route MTU %d",
		    p->len, mtu);
		tell(h, p, DIVERT_E_DF, EMSGSIZE, 0, why);
	} else if (n == FRAG_E_STOP) {
		e = h->frag_err ? h->frag_err : EMSGSIZE;
		snprintf(why, sizeof(why), "sending a fragment: %s", strerror(e));
		tell(h, p, e == EAGAIN ? DIVERT_E_SNDBUF : DIVERT_E_KERNEL, e, 0, why);
	} else {
		snprintf(why, sizeof(why), "%s (route MTU %d)", frag_strerror(n), mtu);
		tell(h, p, DIVERT_E_NOFRAG, EMSGSIZE, 0, why);
	}
}

/* raw.c's word on each outbound packet, in order. */
static void
sent(const struct raw_pkt *p, int err, void *arg)
{
	struct divert *h = arg;
	char why[128];

	if (err == 0) {
		went(h, p, 1);
	} else if (err == EMSGSIZE) {
		too_big(h, p);
	} else if (err == EAGAIN) {
		/*
		 * This destination's socket is full of packets the kernel
		 * holds: waiting would hold up every other destination.
		 */
		tell(h, p, DIVERT_E_SNDBUF, EAGAIN, 0, "its socket's send buffer is full (the "
		    "neighbour does not answer, or its device is slower than the stream)");
	} else {
		snprintf(why, sizeof(why), "%s%s", strerror(err), err == EPERM ?
		    " (a firewall rule dropped it)" : err == EAFNOSUPPORT ?
		    " (no IPv6 in this kernel)" : "");
		tell(h, p, DIVERT_E_KERNEL, err, 0, why);
	}
}

/*
 * Check p holds a whole IP packet and make its length fields right.  A
 * length field shorter than the packet trims it (link-layer padding, as
 * the kernel's receive path does); a zero, short or longer one is set to
 * the packet's length, as the raw socket does for IPv4.  The IPv4 header
 * checksum is recomputed (the TUN path does not).  DIVERT_SENT when fine,
 * else the reason, with words in why and its errno in *err.
 */
static int
fix(struct raw_pkt *p, char *why, size_t whylen, int *err)
{
	uint8_t *ip = p->data;
	int v = p->len > 0 ? ip[0] >> 4 : 0;
	size_t hl, n;

	*err = EINVAL;
	if (p->a.proto == 0)
		p->a.proto = v == 4 ? ETH_P_IP : v == 6 ? ETH_P_IPV6 : 0;
	if (p->a.proto != ETH_P_IP && p->a.proto != ETH_P_IPV6) {
		snprintf(why, whylen, "not an IPv4 or IPv6 packet (ethertype 0x%04x)", p->a.proto);
		*err = EPROTONOSUPPORT;
		return DIVERT_E_NOTIP;
	}
	if (v != (p->a.proto == ETH_P_IP ? 4 : 6)) {
		snprintf(why, whylen, "IP version %d in a record of ethertype 0x%04x", v, p->a.proto);
		return DIVERT_E_MALFORMED;
	}
	if (p->a.cut != 0) {
		snprintf(why, whylen, "the capture kept %zu of its %zu bytes", p->len,
		    p->len + p->a.cut);
		return DIVERT_E_CUT;
	}
	if (v == 4) {
		hl = p->len >= 20 ? (size_t)(ip[0] & 15) * 4 : 0;
		if (hl < 20 || hl > p->len) {
			snprintf(why, whylen, "a %zu-byte packet with an IPv4 header of %zu",
			    p->len, hl);
			return DIVERT_E_MALFORMED;
		}
		n = get16(ip + 2);
		if (n >= hl && n < p->len)
			p->len = n;
		if (p->len > 65535) {
			snprintf(why, whylen, "%zu bytes, more than IPv4's 65535", p->len);
			*err = EMSGSIZE;
			return DIVERT_E_TOOLONG;
		}
		put16(ip + 2, (uint16_t)p->len);
		put16(ip + 10, 0);
		put16(ip + 10, csum(ip, hl));
	} else {
		if (p->len < 40) {
			snprintf(why, whylen, "%zu bytes, shorter than an IPv6 header", p->len);
			return DIVERT_E_MALFORMED;
		}
		n = get16(ip + 4);
		if (n > 0 && 40 + n < p->len)
			p->len = 40 + n;
		if (p->len - 40 > 65535) {
			snprintf(why, whylen, "an IPv6 payload of %zu bytes (jumbograms are not "
			    "injected)", p->len - 40);
			*err = EMSGSIZE;
			return DIVERT_E_TOOLONG;
		}
		put16(ip + 4, (uint16_t)(p->len - 40));
	}
	return DIVERT_SENT;
}

/*
 * An outgoing IPv4 packet with ID 0 and DF clear would get its ID from the
 * kernel after the tap saw it: give it one here (with its header
 * checksum), so that the tap sees what goes on the wire.  ident is also
 * the fragments' counter.
 */
static void
fill_ipv4_id(struct divert *h, struct raw_pkt *p)
{
	uint8_t *ip = p->data;
	uint16_t id;

	if (ip[0] >> 4 != 4 || get16(ip + 4) != 0 || (get16(ip + 6) & 0x4000) != 0)
		return;
	if ((id = (uint16_t)h->ident++) == 0)
		id = (uint16_t)h->ident++;
	put16(ip + 4, id);
	put16(ip + 10, 0);
	put16(ip + 10, csum(ip, (size_t)(ip[0] & 15) * 4));
}

/* Into the stack as if p arrived on its interface. */
static void
inbound(struct divert *h, struct raw_pkt *p)
{
	char why[WHY_SIZE];
	unsigned index;

	/*
	 * The name first: a stream replayed in another namespace names the
	 * same interfaces by other indexes.  The caller's name need not end in
	 * a NUL: one that fills ifname is no interface's (IF_NAMESIZE counts
	 * the NUL), and is not read past.  A name not here falls back on the
	 * index, unless there is none.  (Looked up through tun.c's cache: an
	 * if_nametoindex a packet would cost a system call each.)
	 */
	if (p->a.ifname[0] != '\0' && memchr(p->a.ifname, '\0', sizeof(p->a.ifname)) != NULL &&
	    (index = tun_index_of(h->tun, p->a.ifname)) != 0)
		p->a.ifindex = index;
	else if (p->a.ifindex == 0 && p->a.ifname[0] != '\0') {
		snprintf(why, sizeof(why), "no interface called %.*s here", IF_NAMESIZE,
		    p->a.ifname);
		tell(h, p, DIVERT_E_NOIF, ENXIO, 0, why);
		return;
	}
	if (p->a.ifindex == 0) {
		tell(h, p, DIVERT_E_NOIF, EDESTADDRREQ, 0, "inbound, but no interface to arrive on");
		return;
	}
	/* The record's mark, with the bit (nothing skips the divert rules inbound). */
	switch (tun_inject(h->tun, &p->a.ifindex, p->a.mark, p->data, p->len, why, sizeof(why))) {
	case TUN_OK:
		went(h, p, 1);
		break;
	case TUN_E_NOIF:
		tell(h, p, DIVERT_E_NOIF, errno, 0, why);
		break;
	case TUN_E_DOWN:
		tell(h, p, DIVERT_E_IFDOWN, ENETDOWN, 0, why);
		break;
	case TUN_E_WRITE:
		tell(h, p, DIVERT_E_KERNEL, errno, 0, why);
		break;
	default:
		tell(h, p, DIVERT_E_SYSTEM, errno ? errno : EOPNOTSUPP, 0, why);
	}
}

/*
 * What divert_send answers for the packet just told: without a report
 * function its fate, with one only whether sending can go on.
 */
static int
answer(struct divert *h)
{
	if (h->result == DIVERT_SENT || (h->report != NULL && h->result != DIVERT_E_SYSTEM))
		return 0;
	errno = h->error;
	return -1;
}

int
divert_send(struct divert *h, uint8_t *pkt, size_t len, const struct divert_addr *to)
{
	struct raw_pkt p = { .data = pkt, .len = len };
	char why[WHY_SIZE];
	int result, err;

	if (h->raw == NULL && send_open(h) < 0)
		return -1;
	if (to != NULL)
		p.a = *to;
	p.a.dir = p.a.dir == DIVERT_IN ? DIVERT_IN : DIVERT_OUT;
	if ((result = fix(&p, why, sizeof(why), &err)) != DIVERT_SENT) {
		raw_flush(h->raw);		/* the queued ones are told first */
		tell(h, &p, result, err, 0, why);
		return answer(h);
	}
	if (p.a.dir == DIVERT_IN) {
		raw_flush(h->raw);		/* keep the order */
		inbound(h, &p);
		return answer(h);
	}
	fill_ipv4_id(h, &p);
	raw_queue(h->raw, &p);
	if (h->report != NULL)
		return 0;			/* told when its batch goes */
	raw_flush(h->raw);
	return answer(h);
}

void
divert_set_report(struct divert *h, divert_report_fn fn, void *arg)
{
	send_flush(h);		/* what is queued is told to the function it was queued under */
	h->report = fn;
	h->report_arg = arg;
}

void
divert_set_tap(struct divert *h, divert_tap_fn fn, void *arg)
{
	h->tap = fn;
	h->tap_arg = arg;
}

int
divert_prepare_in(struct divert *h, uint32_t ifindex)
{
	char why[WHY_SIZE];
	int rc;

	if (h->raw == NULL && send_open(h) < 0)
		return -1;
	send_flush(h);
	if ((rc = tun_prepare(h->tun, ifindex, why, sizeof(why))) == TUN_OK)
		return 0;
	return handle_fail(h, rc == TUN_E_NOIF ? errno : EOPNOTSUPP, "%s", why);
}

void
divert_inbound_losses(struct divert *h, int final, uint64_t *down, uint64_t *gone)
{
	*down = *gone = 0;
	if (h->tun != NULL)
		tun_losses(h->tun, final, down, gone);
}

int
send_open(struct divert *h)
{
	int e;

	if ((h->fragbuf = malloc(FRAG_MAX)) == NULL) {
		snprintf(h->err, sizeof(h->err), "out of memory");
		return -1;
	}
	if ((h->raw = raw_open(h->mark, sent, h, h->err, sizeof(h->err))) == NULL ||
	    (h->tun = tun_open(h->mark, h->err, sizeof(h->err))) == NULL) {
		e = errno;
		send_close(h);
		errno = e;
		return -1;
	}
	return 0;
}

void
send_flush(struct divert *h)
{
	if (h->raw != NULL)
		raw_flush(h->raw);
}

void
send_close(struct divert *h)
{
	send_flush(h);
	tun_close(h->tun);
	raw_close(h->raw);
	free(h->fragbuf);
	h->tun = NULL;
	h->raw = NULL;
	h->fragbuf = NULL;
}
