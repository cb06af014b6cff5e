/* frag.c - split IPv4 and IPv6 packets to fit an MTU (RFC 791, RFC 8200 4.5). */
#include <string.h>

#include <netinet/in.h>
#include <netinet/ip.h>

#include "bytes.h"
#include "csum.h"
#include "frag.h"
#include "ipwalk.h"

/* Hand one fragment to fn. */
static int
emit(const uint8_t *data, size_t len, frag_fn fn, void *arg)
{
	return fn(data, len, arg) != 0 ? FRAG_E_STOP : 0;
}

/*
 * The options a non-first IPv4 fragment carries: those with the "copied"
 * flag, padded with End of Options to a 4-byte boundary.  Their length, or
 * FRAG_E_PARSE when the option list is malformed.
 */
static int
copied_options(const uint8_t *opt, size_t len, uint8_t *out)
{
	size_t i = 0, n = 0, olen;

	while (i < len && opt[i] != 0) {		/* 0: End of Options */
		if (opt[i] == 1) {			/* No Operation: one byte */
			i++;
			continue;
		}
		if (i + 1 >= len || (olen = opt[i + 1]) < 2 || i + olen > len)
			return FRAG_E_PARSE;
		if (opt[i] & 0x80) {
			memcpy(out + n, opt + i, olen);
			n += olen;
		}
		i += olen;
	}
	while (n % 4 != 0)
		out[n++] = 0;
	return (int)n;
}

static int
split4(const uint8_t *ip, size_t len, size_t mtu, uint32_t ident, frag_fn fn, void *arg,
    const struct ipwalk *w, uint8_t *buf)
{
	uint8_t later[60];
	size_t hl = w->hlen, hl2, plen, base, off, n, step, h;
	uint16_t id;
	int optlen, count = 0, mf, rc;

	if (len > 65535)
		return FRAG_E_SIZE;
	if (len <= mtu)
		return emit(ip, len, fn, arg) < 0 ? FRAG_E_STOP : 1;
	if (w->df)
		return FRAG_E_DF;
	base = w->fragoff;
	mf = w->more;
	plen = len - hl;
	if (base + plen > 65535)
		return FRAG_E_SIZE;
	/* A fragment keeps its ID, even 0: its siblings carry the same one. */
	id = (uint16_t)w->id;
	/* Never 0: a raw socket gives each fragment with ID 0 an ID of its own. */
	if (id == 0 && base == 0 && !mf)
		id = (uint16_t)ident ? (uint16_t)ident : 1;

	memcpy(later, ip, 20);
	if ((optlen = copied_options(ip + 20, hl - 20, later + 20)) < 0)
		return optlen;
	hl2 = 20 + (size_t)optlen;
	later[0] = (uint8_t)(0x40 | hl2 / 4);
	if (mtu < hl + 8)
		return FRAG_E_MTU;

	for (off = 0; off < plen; off += n) {
		h = off == 0 ? hl : hl2;
		step = (mtu - h) & ~(size_t)7;
		n = plen - off < step ? plen - off : step;
		memcpy(buf, off == 0 ? ip : later, h);
		memcpy(buf + h, ip + hl + off, n);
		put16(buf + 2, (uint16_t)(h + n));
		put16(buf + 4, id);
		put16(buf + 6, (uint16_t)((base + off) / 8 |
		    (off + n < plen || mf ? IP_MF : 0)));
		put16(buf + 10, 0);
		put16(buf + 10, csum(buf, h));
		if ((rc = emit(buf, h + n, fn, arg)) < 0)
			return rc;
		count++;
	}
	return count;
}

static int
split6(const uint8_t *ip, size_t len, size_t mtu, uint32_t ident, frag_fn fn, void *arg,
    const struct ipwalk *w, uint8_t *buf)
{
	size_t unfrag = w->unfrag, nhoff = w->unfrag_nh, plen, off, n, step;
	int rc, count = 0;

	if (len - 40 > 65535)
		return FRAG_E_SIZE;
	if (len <= mtu)
		return emit(ip, len, fn, arg) < 0 ? FRAG_E_STOP : 1;
	if (w->frag || w->proto == IPPROTO_FRAGMENT)	/* the latter: cut short */
		return FRAG_E_FRAGMENT;
	if (unfrag == 0)
		return FRAG_E_PARSE;
	plen = len - unfrag;
	if (mtu < unfrag + 8 + 8 || plen == 0)
		return FRAG_E_MTU;
	step = (mtu - unfrag - 8) & ~(size_t)7;

	for (off = 0; off < plen; off += n) {
		n = plen - off < step ? plen - off : step;
		memcpy(buf, ip, unfrag);
		buf[unfrag] = ip[nhoff];		/* fragment header: next header */
		buf[nhoff] = IPPROTO_FRAGMENT;
		buf[unfrag + 1] = 0;
		put16(buf + unfrag + 2, (uint16_t)(off | (off + n < plen)));
		buf[unfrag + 4] = (uint8_t)(ident >> 24);
		buf[unfrag + 5] = (uint8_t)(ident >> 16);
		buf[unfrag + 6] = (uint8_t)(ident >> 8);
		buf[unfrag + 7] = (uint8_t)ident;
		memcpy(buf + unfrag + 8, ip + unfrag + off, n);
		put16(buf + 4, (uint16_t)(unfrag - 40 + 8 + n));
		if ((rc = emit(buf, unfrag + 8 + n, fn, arg)) < 0)
			return rc;
		count++;
	}
	return count;
}

int
frag_split(const uint8_t *ip, size_t len, size_t mtu, uint32_t ident, uint8_t *buf,
    size_t size, frag_fn fn, void *arg)
{
	struct ipwalk w;

	/* The length fields are rewritten, not trusted: the packet is len bytes. */
	if (ipwalk(ip, len, 0, IPW_FRAG | IPW_EXACT, &w) < 0)
		return FRAG_E_PARSE;
	/* Each fragment is built in buf: none is longer (a packet that fits goes as it is). */
	if (len > mtu && mtu > size)
		mtu = size;
	if (w.version == 4)
		return split4(ip, len, mtu, ident, fn, arg, &w, buf);
	return split6(ip, len, mtu, ident, fn, arg, &w, buf);
}

const char *
frag_strerror(int err)
{
	switch (err) {
	case FRAG_E_DF:
		return "Don't Fragment is set";
	case FRAG_E_MTU:
		return "the MTU is too small to fragment to";
	case FRAG_E_PARSE:
		return "not an IPv4 or IPv6 packet, or its headers are cut";
	case FRAG_E_FRAGMENT:
		return "an IPv6 fragment cannot be fragmented again";
	case FRAG_E_SIZE:
		return "longer than IP allows";
	case FRAG_E_STOP:
		return "stopped";
	default:
		return err >= 0 ? "no error" : "unknown fragmentation error";
	}
}
