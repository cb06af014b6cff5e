/* pcapng.c - stream v2's blocks: encode (host order), decode (either order). */
#include <string.h>

#include <pcap/dlt.h>

#include "pcapng.h"

/*
 * Files carry LINKTYPE_ values, programs DLT_ ones: they differ, among the
 * link types the stream reads, only for RAW (libpcap maps them the same
 * way when it writes and reads classic pcap).
 */
#define LINKTYPE_RAW	101

static uint16_t
linktype_of(int dlt)
{
	return dlt == DLT_RAW ? LINKTYPE_RAW : (uint16_t)dlt;
}

static int
dlt_of(uint16_t linktype)
{
	return linktype == LINKTYPE_RAW ? DLT_RAW : linktype;
}

/* ---- writing ---------------------------------------------------------- */

static inline size_t
pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static inline void
st16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static inline void
st32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline void
st64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* One option: code, length, value, zero padding; bytes taken. */
static size_t
put_opt(uint8_t *b, uint16_t code, const void *v, size_t len)
{
	size_t padded = pad4(len);

	st16(b, code);
	st16(b + 2, (uint16_t)len);
	memcpy(b + 4, v, len);
	memset(b + 4 + len, 0, padded - len);
	return 4 + padded;
}

/* The custom option: PEN, then the TLVs already in tlv (n bytes). */
static size_t
put_custom(uint8_t *b, const uint8_t *tlv, size_t n)
{
	uint8_t v[4 + 64];
	uint32_t pen = PCAPNG_PEN;

	memcpy(v, &pen, 4);
	memcpy(v + 4, tlv, n);
	return put_opt(b, PCAPNG_OPT_CUSTOM, v, 4 + n);
}

static size_t
tlv(uint8_t *t, uint8_t type, const void *v, size_t len)
{
	t[0] = type;
	t[1] = (uint8_t)len;
	if (len > 0)
		memcpy(t + 2, v, len);
	return 2 + len;
}

/* A block's frame: type and length at the start, length again at the end. */
static size_t
close_block(uint8_t *b, uint32_t type, size_t len)
{
	st32(b, type);
	st32(b + 4, (uint32_t)(len + 4));
	st32(b + len, (uint32_t)(len + 4));
	return len + 4;
}

/* The end-of-options marker, only after options. */
static size_t
end_opts(uint8_t *b, size_t at, size_t start)
{
	if (at == start)
		return at;
	st32(b + at, 0);
	return at + 4;
}

size_t
pcapng_put_shb(uint8_t *b, const char *appl)
{
	size_t n = 24;

	st32(b + 8, PCAPNG_MAGIC);
	st16(b + 12, 1);		/* version 1.0 */
	st16(b + 14, 0);
	st64(b + 16, UINT64_MAX);	/* section length: not given */
	if (appl != NULL && *appl != '\0')
		n += put_opt(b + n, PCAPNG_OPT_SHB_USERAPPL, appl, strnlen(appl, 64));
	return close_block(b, PCAPNG_SHB, end_opts(b, n, 24));
}

size_t
pcapng_put_idb(uint8_t *b, int dlt, const char *name, uint32_t ifindex)
{
	uint8_t t[8];
	size_t n = 16, len = name != NULL ? strnlen(name, DIVERT_IFNAMSIZ - 1) : 0;

	st16(b + 8, linktype_of(dlt));
	st16(b + 10, 0);
	st32(b + 12, 0);		/* snaplen: no limit */
	if (len > 0)
		n += put_opt(b + n, PCAPNG_OPT_IF_NAME, name, len);
	if (ifindex != 0)
		n += put_custom(b + n, t, tlv(t, PCAPNG_TLV_IFINDEX, &ifindex, 4));
	return close_block(b, PCAPNG_IDB, end_opts(b, n, 16));
}

/* The custom option's TLVs for what a holds beyond the standard options. */
static size_t
context_tlvs(uint8_t *t, const struct divert_addr *a)
{
	size_t n = 0, len;

	if (a->hook != DIVERT_HOOK_UNKNOWN)
		n += tlv(t + n, PCAPNG_TLV_HOOK, &a->hook, 1);
	if (a->mark != 0)
		n += tlv(t + n, PCAPNG_TLV_MARK, &a->mark, 4);
	if (a->other_ifindex != 0)
		n += tlv(t + n, PCAPNG_TLV_OTHER_IFINDEX, &a->other_ifindex, 4);
	if ((len = strnlen(a->other_ifname, DIVERT_IFNAMSIZ)) > 0 && len < DIVERT_IFNAMSIZ)
		n += tlv(t + n, PCAPNG_TLV_OTHER_IFNAME, a->other_ifname, len);
	if (a->holder != 0)
		n += tlv(t + n, PCAPNG_TLV_HOLDER, &a->holder, 8);
	if (a->flags & DIVERT_ADDR_UID)
		n += tlv(t + n, PCAPNG_TLV_UID, &a->uid, 4);
	if (a->flags & DIVERT_ADDR_GID)
		n += tlv(t + n, PCAPNG_TLV_GID, &a->gid, 4);
	if (a->flags & DIVERT_ADDR_GSO)
		n += tlv(t + n, PCAPNG_TLV_GSO, NULL, 0);
	return n;
}

size_t
pcapng_put_epb(uint8_t *b, uint32_t ifid, const struct divert_addr *a,
    const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t len)
{
	uint64_t ts = (uint64_t)a->ts.tv_sec * 1000000 + (uint64_t)a->ts.tv_usec;
	uint32_t caplen = (uint32_t)(hlen + len), flags;
	uint64_t id = a->id;
	uint32_t port = a->port;
	uint8_t t[64];
	size_t n, start, nt;

	st32(b + 8, ifid);
	st32(b + 12, (uint32_t)(ts >> 32));
	st32(b + 16, (uint32_t)ts);
	st32(b + 20, caplen);
	st32(b + 24, caplen + a->cut);
	if (hlen > 0)
		memcpy(b + 28, hdr, hlen);
	memcpy(b + 28 + hlen, data, len);
	n = 28 + caplen;
	memset(b + n, 0, pad4(n) - n);
	start = n = pad4(n);
	if (a->dir == DIVERT_IN || a->dir == DIVERT_OUT) {
		flags = a->dir == DIVERT_IN ? 1 : 2;
		n += put_opt(b + n, PCAPNG_OPT_EPB_FLAGS, &flags, 4);
	}
	if (a->flags & DIVERT_ADDR_QUEUE) {
		n += put_opt(b + n, PCAPNG_OPT_EPB_PACKETID, &id, 8);
		n += put_opt(b + n, PCAPNG_OPT_EPB_QUEUE, &port, 4);
	}
	if ((nt = context_tlvs(t, a)) > 0)
		n += put_custom(b + n, t, nt);
	return close_block(b, PCAPNG_EPB, end_opts(b, n, start));
}

/* ---- reading ---------------------------------------------------------- */

static inline uint16_t
ld16(const uint8_t *p, int swap)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return swap ? __builtin_bswap16(v) : v;
}

static inline uint64_t
ld64(const uint8_t *p, int swap)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return swap ? __builtin_bswap64(v) : v;
}

#define ld32 pcapng_u32

/*
 * Walk the options in [opts, opts + len): fn gets each one's code, value
 * and length.  A malformed one (longer than what is left) ends the walk:
 * what came before stands.
 */
typedef void (*opt_fn)(uint16_t code, const uint8_t *v, size_t len, int swap, void *arg);

static void
walk_opts(const uint8_t *opts, size_t len, int swap, opt_fn fn, void *arg)
{
	uint16_t code;
	size_t olen;

	while (len >= 4) {
		code = ld16(opts, swap);
		olen = ld16(opts + 2, swap);
		if (code == PCAPNG_OPT_END || pad4(olen) > len - 4)
			return;
		fn(code, opts + 4, olen, swap, arg);
		opts += 4 + pad4(olen);
		len -= 4 + pad4(olen);
	}
}

/* A custom option's TLVs, if it is ours: fn gets each one. */
typedef void (*tlv_fn)(uint8_t type, const uint8_t *v, size_t len, int swap, void *arg);

static void
walk_custom(uint16_t code, const uint8_t *v, size_t len, int swap, tlv_fn fn, void *arg)
{
	size_t tl;

	if ((code != PCAPNG_OPT_CUSTOM && code != PCAPNG_OPT_CUSTOM_NOCOPY) || len < 4 ||
	    ld32(v, swap) != PCAPNG_PEN)
		return;
	for (v += 4, len -= 4; len >= 2; v += 2 + tl, len -= 2 + tl) {
		tl = v[1];
		if (tl > len - 2)
			return;
		fn(v[0], v + 2, tl, swap, arg);
	}
}

int
pcapng_read_shb(const uint8_t *b, size_t len, int *swap, const char **why)
{
	uint32_t magic;

	if (len < 28)
		return *why = "section header block too short", -1;
	memcpy(&magic, b + 8, 4);
	if (magic == PCAPNG_MAGIC)
		*swap = 0;
	else if (magic == __builtin_bswap32(PCAPNG_MAGIC))
		*swap = 1;
	else
		return *why = "bad byte-order magic in a section header", -1;
	if (ld16(b + 12, *swap) != 1)
		return *why = "pcapng version other than 1.x", -1;
	return 0;
}

/* A name Linux could give an interface, or "". */
static void
copy_name(char *dst, const uint8_t *v, size_t len)
{
	size_t n = strnlen((const char *)v, len);

	memset(dst, 0, DIVERT_IFNAMSIZ);
	if (n < DIVERT_IFNAMSIZ)
		memcpy(dst, v, n);
}

static void
idb_tlv(uint8_t type, const uint8_t *v, size_t len, int swap, void *arg)
{
	struct pcapng_if *ifc = arg;

	if (type == PCAPNG_TLV_IFINDEX && len == 4) {
		ifc->ifindex = ld32(v, swap);
		ifc->has_ifindex = 1;
	}
}

/* if_tsresol: 10^-n (bit 7 clear) or 2^-n seconds; a resolution beyond 64 bits is ignored. */
static void
set_resolution(struct pcapng_if *ifc, uint8_t r)
{
	uint64_t u = 1;
	int i;

	if (r & 0x80) {
		if ((r & 0x7f) <= 63)
			ifc->units = (uint64_t)1 << (r & 0x7f);
		return;
	}
	if (r > 19)
		return;
	for (i = 0; i < r; i++)
		u *= 10;
	ifc->units = u;
}

static void
idb_opt(uint16_t code, const uint8_t *v, size_t len, int swap, void *arg)
{
	struct pcapng_if *ifc = arg;

	switch (code) {
	case PCAPNG_OPT_IF_NAME:
		copy_name(ifc->name, v, len);
		break;
	case PCAPNG_OPT_IF_TSRESOL:
		if (len == 1)
			set_resolution(ifc, v[0]);
		break;
	case PCAPNG_OPT_IF_TSOFFSET:
		if (len == 8)
			ifc->offset = (int64_t)ld64(v, swap);
		break;
	default:
		walk_custom(code, v, len, swap, idb_tlv, ifc);
	}
}

int
pcapng_read_idb(const uint8_t *b, size_t len, int swap, struct pcapng_if *ifc,
    const char **why)
{
	if (len < 20)
		return *why = "interface description block too short", -1;
	memset(ifc, 0, sizeof(*ifc));
	ifc->dlt = dlt_of(ld16(b + 8, swap));
	ifc->snaplen = ld32(b + 12, swap);
	ifc->units = 1000000;
	walk_opts(b + 16, len - 20, swap, idb_opt, ifc);
	return 0;
}

int
pcapng_read_epb(const uint8_t *b, size_t len, int swap, struct pcapng_pkt *pk,
    const char **why)
{
	if (len < 32)
		return *why = "enhanced packet block too short", -1;
	pk->ifid = ld32(b + 8, swap);
	pk->ts = (uint64_t)ld32(b + 12, swap) << 32 | ld32(b + 16, swap);
	pk->caplen = ld32(b + 20, swap);
	pk->origlen = ld32(b + 24, swap);
	if (pk->caplen > len - 32 || pad4(pk->caplen) > len - 32)
		return *why = "packet longer than its block", -1;
	pk->data = 28;
	pk->opts = 28 + pad4(pk->caplen);
	pk->optlen = len - 4 - pk->opts;
	return 0;
}

int
pcapng_read_spb(const uint8_t *b, size_t len, int swap, uint32_t snaplen,
    struct pcapng_pkt *pk, const char **why)
{
	if (len < 16)
		return *why = "simple packet block too short", -1;
	memset(pk, 0, sizeof(*pk));
	pk->origlen = ld32(b + 8, swap);
	pk->caplen = pk->origlen;
	if (snaplen != 0 && pk->caplen > snaplen)
		pk->caplen = snaplen;
	if (pk->caplen > len - 16)
		pk->caplen = (uint32_t)(len - 16);
	pk->data = 12;
	return 0;
}

static void
epb_tlv(uint8_t type, const uint8_t *v, size_t len, int swap, void *arg)
{
	struct divert_addr *a = arg;

	switch (type) {
	case PCAPNG_TLV_HOOK:
		if (len == 1)
			a->hook = v[0];
		break;
	case PCAPNG_TLV_MARK:
		if (len == 4)
			a->mark = ld32(v, swap);
		break;
	case PCAPNG_TLV_OTHER_IFINDEX:
		if (len == 4)
			a->other_ifindex = ld32(v, swap);
		break;
	case PCAPNG_TLV_OTHER_IFNAME:
		copy_name(a->other_ifname, v, len);
		break;
	case PCAPNG_TLV_HOLDER:
		if (len == 8)
			a->holder = ld64(v, swap);
		break;
	case PCAPNG_TLV_UID:
		if (len == 4)
			a->uid = ld32(v, swap), a->flags |= DIVERT_ADDR_UID;
		break;
	case PCAPNG_TLV_GID:
		if (len == 4)
			a->gid = ld32(v, swap), a->flags |= DIVERT_ADDR_GID;
		break;
	case PCAPNG_TLV_GSO:
		if (len == 0)
			a->flags |= DIVERT_ADDR_GSO;
		break;
	}
}

/* What the options say, before it is put into the divert address. */
struct epb_seen {
	struct divert_addr *a;
	uint64_t	id;
	uint32_t	port;
	int		has_id, has_port;
};

static void
epb_opt(uint16_t code, const uint8_t *v, size_t len, int swap, void *arg)
{
	struct epb_seen *s = arg;
	uint32_t dir;

	switch (code) {
	case PCAPNG_OPT_EPB_FLAGS:
		if (len != 4)
			break;
		dir = ld32(v, swap) & 3;
		if (dir == 1 || dir == 2)
			s->a->dir = dir == 1 ? DIVERT_IN : DIVERT_OUT;
		break;
	case PCAPNG_OPT_EPB_PACKETID:
		if (len == 8)
			s->id = ld64(v, swap), s->has_id = 1;
		break;
	case PCAPNG_OPT_EPB_QUEUE:
		if (len == 4)
			s->port = ld32(v, swap), s->has_port = 1;
		break;
	default:
		walk_custom(code, v, len, swap, epb_tlv, s->a);
	}
}

void
pcapng_epb_options(const uint8_t *opts, size_t len, int swap, struct divert_addr *a)
{
	struct epb_seen s = { .a = a };

	walk_opts(opts, len, swap, epb_opt, &s);
	/* A port and id out of range are no divert port's: not taken. */
	if (s.has_id && s.has_port && s.id <= UINT32_MAX && s.port <= UINT16_MAX) {
		a->id = (uint32_t)s.id;
		a->port = (uint16_t)s.port;
		a->flags |= DIVERT_ADDR_QUEUE;
	}
}

void
pcapng_time(const struct pcapng_if *ifc, uint64_t ts, struct timeval *tv)
{
	uint64_t sec, frac, usec;

	if (ifc->units == 1000000) {		/* the default, and ours */
		sec = ts / 1000000;
		usec = ts % 1000000;
	} else {
		sec = ts / ifc->units;
		frac = ts % ifc->units;
		usec = (uint64_t)((unsigned __int128)frac * 1000000 / ifc->units);
	}
	tv->tv_sec = (time_t)(sec + (uint64_t)ifc->offset);
	tv->tv_usec = (suseconds_t)usec;
}
