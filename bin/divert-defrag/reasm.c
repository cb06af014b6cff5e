/*
 * reasm.c - IPv4 (RFC 791/815) and IPv6 (RFC 8200, RFC 5722) reassembly.
 *
 * Memory: one pool of REASM_BLOCK-byte blocks and a hash table, sized from
 * max_memory at start.  A block is either a datagram's state or a piece of
 * a stored fragment (fragments are kept whole, link header and metadata
 * included, so they can be written through unchanged when their datagram is
 * lost).  Blocks come from a free list, or from the untouched end of the
 * pool (so the pool costs resident memory only as it is used); nothing is
 * allocated per packet.
 *
 * Datagrams sit in a hash table (chains of block indices) and in one list
 * by age: the oldest is at its head, which makes expiry and eviction O(1).
 * A datagram's fragments are linked twice: in arrival order (reassembly
 * copies in that order, so "last" wins; reversed for "first") and by offset
 * (to find overlaps and holes).
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <netinet/in.h>
#include <netinet/ip.h>
#include <linux/if_ether.h>

#include "bytes.h"
#include "csum.h"
#include "reasm.h"

#define NIL		UINT32_MAX

#define MAX_L2		256		/* longest link header a stored fragment may have */

/* What identifies a datagram: the kernel's key plus interface and direction. */
struct key {
	uint8_t		src[16], dst[16];
	uint32_t	id, ifindex;
	uint8_t		version, proto, dir, pad;	/* pad: zero, keys are memcmp'd */
};

struct dgram {
	uint32_t	hnext;		/* hash chain */
	uint32_t	older, newer;	/* age list */
	uint32_t	first, last;	/* fragments in arrival order */
	uint32_t	sorted, stail;	/* fragments by offset: head and tail */
	uint32_t	hdr;		/* fragment at offset 0 that gives the headers */
	uint32_t	total;		/* payload bytes; 0 until the last fragment came */
	uint32_t	have;		/* payload bytes covered */
	uint32_t	maxend;		/* highest payload end seen */
	uint32_t	nfrags;
	uint32_t	hash;
	uint32_t	dead;		/* dropped: absorbs its later fragments until timeout */
	struct key	key;
	uint64_t	born;		/* clock at the first fragment */
};

/* A stored fragment's own facts, at the start of its first block. */
struct frag_meta {
	uint32_t	next, prev;	/* arrival order */
	uint32_t	next_off;	/* offset order */
	uint32_t	off, end;	/* payload bytes [off, end) of the datagram */
	uint32_t	reclen;		/* record bytes stored: link header + packet */
	uint32_t	ifindex;
	int32_t		ts_usec;
	int64_t		ts_sec;
	uint16_t	l2len;		/* link header bytes in the record */
	uint16_t	unfrag;		/* IP header (v4) / bytes before the fragment header (v6) */
	uint16_t	hdrlen;		/* bytes before the payload */
	uint16_t	nhoff;		/* v6: next-header byte that named the fragment header */
	uint16_t	proto, hatype;
	int16_t		dlt;
	uint8_t		nexthdr;	/* v6: the fragment header's next header */
	uint8_t		dir, pkttype, halen;
	uint8_t		haddr[8];
};

struct block {				/* a fragment's later bytes */
	uint32_t	next;
	uint8_t		bytes[REASM_BLOCK - 4];
};

struct frag_block {			/* a fragment's first block */
	uint32_t	next;		/* same place as block.next */
	uint32_t	pad;
	struct frag_meta m;
	uint8_t		bytes[REASM_BLOCK - 8 - sizeof(struct frag_meta)];
};

union slot {
	struct block	 b;
	struct frag_block f;
	struct dgram	 d;
};

static_assert(sizeof(union slot) == REASM_BLOCK, "a pool slot is one block");

#define HEAD_ROOM	sizeof(((struct frag_block *)0)->bytes)
#define REST_ROOM	sizeof(((struct block *)0)->bytes)

struct reasm {
	struct reasm_config cfg;
	reasm_out_fn	 out;
	void		*arg;
	union slot	*pool;
	uint32_t	 nslots;
	uint32_t	 bump;		/* slots from here on were never used */
	uint32_t	 freelist;
	uint32_t	 nfree;
	uint32_t	*bucket;
	uint32_t	 mask;
	uint32_t	 oldest, newest;
	uint32_t	 peak_used;	/* slots */
	struct reasm_stats st;
	uint8_t		 buf[REASM_MAX_V6];		/* a reassembled datagram */
	uint8_t		 scratch[MAX_L2 + REASM_MAX_V6];	/* a fragment written through */
};

/* What one record is, as far as reassembly cares. */
enum kind { K_WHOLE, K_UNPARSED, K_INVALID, K_FRAGMENT, K_ATOMIC };

struct fraginfo {
	struct key	key;
	uint32_t	off, end;
	int		more;
	uint16_t	unfrag, hdrlen, nhoff;
	uint8_t		nexthdr;
	size_t		iplen;		/* the packet's own length (padding excluded) */
};

static struct dgram *D(struct reasm *r, uint32_t i) { return &r->pool[i].d; }
static struct frag_meta *M(struct reasm *r, uint32_t i) { return &r->pool[i].f.m; }

/* ---- parsing ---------------------------------------------------------- */

static enum kind
parse4(const uint8_t *d, size_t len, struct fraginfo *fi)
{
	size_t hl, tot;
	uint16_t fo;

	if (len < 20 || (d[0] >> 4) != 4)
		return K_UNPARSED;
	hl = (size_t)(d[0] & 0x0f) * 4;
	tot = get16(d + 2);
	if (hl < 20 || tot < hl || tot > len)	/* cut by the capture, or nonsense */
		return K_UNPARSED;
	fo = get16(d + 6);
	if ((fo & (IP_MF | IP_OFFMASK)) == 0)
		return K_WHOLE;
	fi->off = (uint32_t)(fo & IP_OFFMASK) * 8;
	fi->end = fi->off + (uint32_t)(tot - hl);
	fi->more = (fo & IP_MF) != 0;
	fi->unfrag = fi->hdrlen = (uint16_t)hl;
	fi->iplen = tot;
	/* RFC 791: every fragment but the last carries a multiple of 8 bytes. */
	if (tot == hl || (fi->more && (tot - hl) % 8 != 0))
		return K_INVALID;
	fi->key.version = 4;
	memcpy(fi->key.src, d + 12, 4);
	memcpy(fi->key.dst, d + 16, 4);
	fi->key.proto = d[9];
	fi->key.id = get16(d + 4);
	return K_FRAGMENT;
}

/*
 * The fragment header sits after hop-by-hop, routing and destination
 * options; anything else first means the packet is not a fragment.
 */
static enum kind
parse6(const uint8_t *d, size_t len, struct fraginfo *fi)
{
	size_t off = 40, hlen, iplen, nhoff = 6;
	uint8_t nh;
	uint16_t fo;

	if (len < 40 || (d[0] >> 4) != 6)
		return K_UNPARSED;
	if (get16(d + 4) == 0)			/* jumbogram: never fragmented */
		return K_WHOLE;
	iplen = 40 + (size_t)get16(d + 4);
	if (iplen > len)
		return K_UNPARSED;
	for (nh = d[6]; nh != IPPROTO_FRAGMENT; nh = d[nhoff]) {
		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS)
			return K_WHOLE;
		if (off + 8 > iplen || off + (hlen = ((size_t)d[off + 1] + 1) * 8) > iplen)
			return K_UNPARSED;
		nhoff = off;
		off += hlen;
	}
	/* The offsets below are 16-bit: 65 KB of extension headers do not fit. */
	if (off + 8 > iplen || off + 8 > 0xffff)
		return K_UNPARSED;
	fo = get16(d + off + 2);
	fi->off = fo & 0xfff8;
	fi->end = fi->off + (uint32_t)(iplen - off - 8);
	fi->more = fo & 1;
	fi->unfrag = (uint16_t)off;
	fi->hdrlen = (uint16_t)(off + 8);
	fi->nhoff = (uint16_t)nhoff;
	fi->nexthdr = d[off];
	fi->iplen = iplen;
	if (fi->off == 0 && !fi->more)
		return K_ATOMIC;		/* RFC 6946: a datagram of one fragment */
	if (fi->end == fi->off || (fi->more && (fi->end - fi->off) % 8 != 0))
		return K_INVALID;
	fi->key.version = 6;
	memcpy(fi->key.src, d + 8, 16);
	memcpy(fi->key.dst, d + 24, 16);
	fi->key.id = (uint32_t)get16(d + off + 4) << 16 | get16(d + off + 6);
	return K_FRAGMENT;
}

static enum kind
classify(const struct pkt *p, struct fraginfo *fi)
{
	enum kind k;

	memset(fi, 0, sizeof(*fi));
	if (p->rec != NULL && p->l2len > MAX_L2)
		return K_UNPARSED;		/* a link header we could not store */
	if (p->proto == ETH_P_IP)
		k = parse4(p->data, p->len, fi);
	else if (p->proto == ETH_P_IPV6)
		k = parse6(p->data, p->len, fi);
	else
		return K_WHOLE;			/* not IP: not ours to judge */
	fi->key.ifindex = p->ifindex;
	fi->key.dir = (uint8_t)p->dir;
	return k;
}

/* ---- the pool --------------------------------------------------------- */

static uint32_t
slot_alloc(struct reasm *r)
{
	uint32_t i;

	assert(r->nfree > 0);
	if (r->freelist != NIL) {
		i = r->freelist;
		r->freelist = r->pool[i].b.next;
	} else {
		i = r->bump++;
	}
	r->nfree--;
	if (r->nslots - r->nfree > r->peak_used)
		r->peak_used = r->nslots - r->nfree;
	return i;
}

static void
slot_free(struct reasm *r, uint32_t i)
{
	r->pool[i].b.next = r->freelist;
	r->freelist = i;
	r->nfree++;
}

/* Blocks a stored record of reclen bytes takes. */
static uint32_t
blocks_for(size_t reclen)
{
	if (reclen <= HEAD_ROOM)
		return 1;
	return 1 + (uint32_t)((reclen - HEAD_ROOM + REST_ROOM - 1) / REST_ROOM);
}

/*
 * Copy n bytes between buf and a fragment's stored record, from byte skip
 * of the record on; to_chain says which way.
 */
static void
chain_copy(struct reasm *r, uint32_t first, size_t skip, uint8_t *buf, size_t n,
    int to_chain)
{
	uint8_t *area = r->pool[first].f.bytes;
	size_t room = HEAD_ROOM, k;
	uint32_t b = first;

	while (skip >= room) {
		skip -= room;
		b = r->pool[b].b.next;
		area = r->pool[b].b.bytes;
		room = REST_ROOM;
	}
	while (n > 0) {
		k = room - skip < n ? room - skip : n;
		if (to_chain)
			memcpy(area + skip, buf, k);
		else
			memcpy(buf, area + skip, k);
		buf += k;
		n -= k;
		skip = 0;
		if (n > 0) {
			b = r->pool[b].b.next;
			area = r->pool[b].b.bytes;
			room = REST_ROOM;
		}
	}
}

static void
chain_free(struct reasm *r, uint32_t first)
{
	uint32_t b, next;

	for (b = first; b != NIL; b = next) {
		next = r->pool[b].b.next;
		slot_free(r, b);
	}
}

/* ---- datagrams -------------------------------------------------------- */

static uint32_t
key_hash(const struct reasm *r, const struct key *k)
{
	uint32_t w[sizeof(*k) / 4], h = r->cfg.seed;
	size_t i;

	memcpy(w, k, sizeof(w));
	for (i = 0; i < sizeof(w) / 4; i++) {
		h = (h ^ w[i]) * 0x9e3779b1u;
		h ^= h >> 16;
	}
	return h;
}

static uint32_t
lookup(struct reasm *r, const struct key *k, uint32_t hash)
{
	uint32_t i;

	for (i = r->bucket[hash & r->mask]; i != NIL; i = D(r, i)->hnext)
		if (D(r, i)->hash == hash && memcmp(&D(r, i)->key, k, sizeof(*k)) == 0)
			return i;
	return NIL;
}

/* A new, empty datagram: newest in the age list. */
static uint32_t
dgram_new(struct reasm *r, const struct key *k, uint32_t hash, uint64_t now)
{
	uint32_t i = slot_alloc(r);
	struct dgram *d = D(r, i);

	memset(d, 0, sizeof(*d));
	d->first = d->last = d->sorted = d->stail = d->hdr = NIL;
	d->key = *k;
	d->hash = hash;
	d->born = now;
	d->hnext = r->bucket[hash & r->mask];
	r->bucket[hash & r->mask] = i;
	d->newer = NIL;
	d->older = r->newest;
	if (r->newest != NIL)
		D(r, r->newest)->newer = i;
	else
		r->oldest = i;
	r->newest = i;
	return i;
}

/* Give back every fragment a datagram holds. */
static void
dgram_clear(struct reasm *r, struct dgram *d)
{
	uint32_t f, next;

	for (f = d->first; f != NIL; f = next) {
		next = M(r, f)->next;
		chain_free(r, f);
	}
	d->first = d->last = d->sorted = d->stail = d->hdr = NIL;
}

static void
dgram_free(struct reasm *r, uint32_t i)
{
	struct dgram *d = D(r, i);
	uint32_t *pp = &r->bucket[d->hash & r->mask];

	dgram_clear(r, d);
	while (*pp != i)
		pp = &D(r, *pp)->hnext;
	*pp = d->hnext;
	if (d->older != NIL)
		D(r, d->older)->newer = d->newer;
	else
		r->oldest = d->newer;
	if (d->newer != NIL)
		D(r, d->newer)->older = d->older;
	else
		r->newest = d->older;
	slot_free(r, i);
}

/*
 * Drop a datagram for good (overlap, oversize, ...): its fragments go, its
 * state stays until timeout so later fragments of it are dropped too
 * (RFC 5722) instead of starting a datagram that can only expire.
 */
static void
dgram_kill(struct reasm *r, uint32_t i, uint64_t *counter)
{
	struct dgram *d = D(r, i);

	(*counter)++;
	r->st.dropped += d->nfrags + 1;		/* + the fragment that showed it */
	dgram_clear(r, d);
	d->dead = 1;
}

/* Rebuild a stored fragment's record in scratch and write it out unchanged. */
static void
write_through(struct reasm *r, uint32_t f)
{
	struct frag_meta *m = M(r, f);
	struct pkt q;

	memset(&q, 0, sizeof(q));
	chain_copy(r, f, 0, r->scratch, m->reclen, 0);
	q.ts.tv_sec = m->ts_sec;
	q.ts.tv_usec = m->ts_usec;
	q.dir = m->dir;
	q.ifindex = m->ifindex;
	q.proto = m->proto;
	q.pkttype = m->pkttype;
	q.hatype = m->hatype;
	q.halen = m->halen;
	memcpy(q.haddr, m->haddr, sizeof(q.haddr));
	q.dlt = m->dlt;
	q.rec = r->scratch;
	q.l2len = m->l2len;
	q.data = r->scratch + m->l2len;
	q.len = m->reclen - m->l2len;
	r->st.kept++;
	r->out(&q, r->arg);
}

/* An incomplete datagram is lost (timeout, memory, end): count, maybe write, free. */
static void
dgram_lose(struct reasm *r, uint32_t i, uint64_t *counter)
{
	struct dgram *d = D(r, i);
	uint32_t f;

	if (!d->dead) {
		(*counter)++;
		if (r->cfg.keep_incomplete)
			for (f = d->first; f != NIL; f = M(r, f)->next)
				write_through(r, f);
		else
			r->st.dropped += d->nfrags;
	}
	dgram_free(r, i);
}

/* Make n blocks free by evicting the oldest datagrams but keep; -1 if impossible. */
static int
make_room(struct reasm *r, uint32_t n, uint32_t keep)
{
	uint32_t v;

	while (r->nfree < n) {
		v = r->oldest;
		if (v != NIL && v == keep)	/* keep may be NIL: nothing held */
			v = D(r, v)->newer;
		if (v == NIL)
			return -1;
		dgram_lose(r, v, &r->st.evicted);
	}
	return 0;
}

/* ---- adding a fragment ------------------------------------------------ */

static uint32_t
max_len(const struct key *k)
{
	return k->version == 4 ? REASM_MAX_V4 : REASM_MAX_V6;
}

/*
 * Lengths that cannot belong to one datagram: a second, different end, data
 * past the end, too long for IP, too many pieces.  0, or -1 after killing it.
 */
static int
check_lengths(struct reasm *r, uint32_t i, const struct fraginfo *fi)
{
	struct dgram *d = D(r, i);

	if (fi->unfrag + fi->end > max_len(&d->key)) {
		dgram_kill(r, i, &r->st.oversize);
		return -1;
	}
	if ((!fi->more && ((d->total && fi->end != d->total) || d->maxend > fi->end)) ||
	    (fi->more && d->total && fi->end > d->total)) {
		dgram_kill(r, i, &r->st.invalid);
		return -1;
	}
	if (d->nfrags >= REASM_MAX_FRAGS) {
		dgram_kill(r, i, &r->st.too_many);
		return -1;
	}
	return 0;
}

/* The fragment after which one at offset off goes in offset order (NIL: first). */
static uint32_t
sorted_prev(struct reasm *r, const struct dgram *d, uint32_t off)
{
	uint32_t prev = NIL, f;

	if (d->stail != NIL && M(r, d->stail)->off <= off)
		return d->stail;		/* in order: the usual case, O(1) */
	for (f = d->sorted; f != NIL && M(r, f)->off <= off; f = M(r, f)->next_off)
		prev = f;
	return prev;
}

/* Bytes of [off, end) that the stored fragments already cover. */
static uint32_t
covered(struct reasm *r, const struct dgram *d, uint32_t off, uint32_t end)
{
	uint32_t f, lo = 0, hi = 0, sum = 0, a, b;
	int open = 0;

	/* Merge the (possibly overlapping) fragments into runs as they come by offset. */
	for (f = d->sorted; ; f = M(r, f)->next_off) {
		if (f != NIL && open && M(r, f)->off <= hi) {
			if (M(r, f)->end > hi)
				hi = M(r, f)->end;
			continue;
		}
		if (open) {
			a = lo > off ? lo : off;
			b = hi < end ? hi : end;
			if (a < b)
				sum += b - a;
		}
		if (f == NIL)
			break;
		lo = M(r, f)->off;
		hi = M(r, f)->end;
		open = 1;
	}
	return sum;
}

enum fit { FIT_NEW, FIT_DUP, FIT_KILLED };

/*
 * How a fragment fits what is stored, by the overlap policy: FIT_NEW (store
 * it; *added new bytes), FIT_DUP (it adds nothing: discard), or FIT_KILLED.
 */
static enum fit
check_overlap(struct reasm *r, uint32_t i, const struct fraginfo *fi, uint32_t prev,
    uint32_t *added)
{
	struct dgram *d = D(r, i);
	uint32_t next = prev != NIL ? M(r, prev)->next_off : d->sorted;
	int dup = prev != NIL && M(r, prev)->off == fi->off && M(r, prev)->end == fi->end;
	uint32_t len = fi->end - fi->off;

	if (r->cfg.overlap == REASM_OVERLAP_DROP) {
		/* Stored fragments never overlap, so only the neighbours can. */
		if (dup)
			return r->st.duplicates++, FIT_DUP;
		if ((prev != NIL && M(r, prev)->end > fi->off) ||
		    (next != NIL && M(r, next)->off < fi->end)) {
			dgram_kill(r, i, &r->st.overlaps);
			return FIT_KILLED;
		}
		*added = len;
		return FIT_NEW;
	}
	*added = len - covered(r, d, fi->off, fi->end);
	if (*added == len)
		return FIT_NEW;
	if (dup || *added == 0) {
		r->st.duplicates++;
		/* "last": even a duplicate's bytes replace the stored ones */
		return r->cfg.overlap == REASM_OVERLAP_LAST ? FIT_NEW : FIT_DUP;
	}
	r->st.overlaps++;
	return FIT_NEW;
}

/* Store p as a fragment (blocks are free); its first block's index. */
static uint32_t
frag_store(struct reasm *r, const struct pkt *p, const struct fraginfo *fi,
    size_t l2len, uint32_t nblocks)
{
	uint32_t f = slot_alloc(r), b = f, k;
	struct frag_meta *m = M(r, f);

	for (k = 1; k < nblocks; k++) {
		r->pool[b].b.next = slot_alloc(r);
		b = r->pool[b].b.next;
	}
	r->pool[b].b.next = NIL;
	memset(m, 0, sizeof(*m));
	m->next = m->prev = m->next_off = NIL;
	m->off = fi->off;
	m->end = fi->end;
	m->reclen = (uint32_t)(l2len + fi->iplen);	/* padding after the packet dropped */
	m->ifindex = p->ifindex;
	m->ts_sec = p->ts.tv_sec;
	m->ts_usec = (int32_t)p->ts.tv_usec;
	m->l2len = (uint16_t)l2len;
	m->unfrag = fi->unfrag;
	m->hdrlen = fi->hdrlen;
	m->nhoff = fi->nhoff;
	m->nexthdr = fi->nexthdr;
	m->proto = p->proto;
	m->hatype = p->hatype;
	m->dlt = (int16_t)p->dlt;
	m->dir = (uint8_t)p->dir;
	m->pkttype = p->pkttype;
	m->halen = p->halen;
	memcpy(m->haddr, p->haddr, sizeof(m->haddr));
	if (l2len > 0)
		chain_copy(r, f, 0, p->rec, l2len, 1);
	chain_copy(r, f, l2len, p->data, fi->iplen, 1);
	return f;
}

/* Link a stored fragment into its datagram, by arrival and after prev by offset. */
static void
frag_link(struct reasm *r, struct dgram *d, uint32_t f, uint32_t prev)
{
	struct frag_meta *m = M(r, f);

	m->prev = d->last;
	if (d->last != NIL)
		M(r, d->last)->next = f;
	else
		d->first = f;
	d->last = f;
	if (prev == NIL) {
		m->next_off = d->sorted;
		d->sorted = f;
	} else {
		m->next_off = M(r, prev)->next_off;
		M(r, prev)->next_off = f;
	}
	if (m->next_off == NIL)
		d->stail = f;
	if (m->off == 0 && (d->hdr == NIL || r->cfg.overlap == REASM_OVERLAP_LAST))
		d->hdr = f;
	if (m->end > d->maxend)
		d->maxend = m->end;
	d->nfrags++;
}

/* Copy one stored fragment's payload to its place in buf. */
static void
copy_payload(struct reasm *r, uint32_t f, size_t unfrag)
{
	struct frag_meta *m = M(r, f);

	chain_copy(r, f, (size_t)m->l2len + m->hdrlen, r->buf + unfrag + m->off,
	    m->end - m->off, 0);
}

/* Fix the headers of a reassembled datagram of len bytes in r->buf. */
static void
fix_headers(struct reasm *r, const struct frag_meta *h, size_t len)
{
	uint8_t *ip = r->buf;

	if ((ip[0] >> 4) == 4) {
		put16(ip + 2, (uint16_t)len);
		put16(ip + 6, get16(ip + 6) & ~(IP_MF | IP_OFFMASK));	/* DF, RF stay */
		put16(ip + 10, 0);
		put16(ip + 10, csum(ip, h->unfrag));
	} else {
		ip[h->nhoff] = h->nexthdr;	/* the fragment header is gone */
		put16(ip + 4, (uint16_t)(len - 40));
	}
}

/* Build a complete datagram, write it with the metadata of p, free it. */
static void
dgram_complete(struct reasm *r, uint32_t i, const struct pkt *p)
{
	struct dgram *d = D(r, i);
	struct frag_meta *h = M(r, d->hdr);
	size_t len = (size_t)h->unfrag + d->total;
	struct pkt q;
	uint32_t f;

	if (len > max_len(&d->key)) {
		dgram_kill(r, i, &r->st.oversize);
		r->st.dropped--;		/* the last fragment is stored: counted */
		return;
	}
	chain_copy(r, d->hdr, h->l2len, r->buf, h->unfrag, 0);
	if (r->cfg.overlap == REASM_OVERLAP_FIRST)
		for (f = d->last; f != NIL; f = M(r, f)->prev)
			copy_payload(r, f, h->unfrag);
	else
		for (f = d->first; f != NIL; f = M(r, f)->next)
			copy_payload(r, f, h->unfrag);
	fix_headers(r, h, len);
	dgram_free(r, i);
	q = *p;
	q.data = r->buf;
	q.len = len;
	q.cut = 0;
	r->st.reassembled++;
	r->out(&q, r->arg);
}

/* A fragment whose datagram was evicted as it came: its fate is the datagram's. */
static void
frag_unstored(struct reasm *r, const struct pkt *p)
{
	if (r->cfg.keep_incomplete) {
		r->st.kept++;
		r->out(p, r->arg);
	} else {
		r->st.dropped++;
	}
}

static void
add_fragment(struct reasm *r, const struct pkt *p, const struct fraginfo *fi, uint64_t now)
{
	size_t l2len = p->rec != NULL ? p->l2len : 0;	/* <= MAX_L2: see classify */
	uint32_t need = blocks_for(l2len + fi->iplen), hash = key_hash(r, &fi->key);
	uint32_t i, prev, added = 0, f;
	struct dgram *d;

	if ((i = lookup(r, &fi->key, hash)) == NIL) {
		if (make_room(r, 1 + need, NIL) < 0) {
			r->st.evicted++;	/* larger than the whole pool */
			frag_unstored(r, p);
			return;
		}
		i = dgram_new(r, &fi->key, hash, now);
	}
	d = D(r, i);
	if (d->dead) {
		r->st.dropped++;
		return;
	}
	if (check_lengths(r, i, fi) < 0)
		return;
	prev = sorted_prev(r, d, fi->off);
	switch (check_overlap(r, i, fi, prev, &added)) {
	case FIT_KILLED:
		return;
	case FIT_DUP:
		r->st.dropped++;
		return;
	case FIT_NEW:
		break;
	}
	if (make_room(r, need, i) < 0) {	/* this datagram alone fills the pool */
		dgram_lose(r, i, &r->st.evicted);
		frag_unstored(r, p);
		return;
	}
	f = frag_store(r, p, fi, l2len, need);
	frag_link(r, d, f, prev);
	d->have += added;
	if (!fi->more)
		d->total = fi->end;
	if (d->total != 0 && d->have == d->total)
		dgram_complete(r, i, p);
}

/* RFC 6946: an atomic fragment is a whole datagram; write it without the header. */
static void
atomic_complete(struct reasm *r, const struct pkt *p, const struct fraginfo *fi)
{
	struct frag_meta h = { .unfrag = fi->unfrag, .nhoff = fi->nhoff,
	    .nexthdr = fi->nexthdr };
	size_t len = fi->iplen - 8;
	struct pkt q = *p;

	memcpy(r->buf, p->data, fi->unfrag);
	memcpy(r->buf + fi->unfrag, p->data + fi->hdrlen, fi->iplen - fi->hdrlen);
	fix_headers(r, &h, len);
	q.data = r->buf;
	q.len = len;
	q.cut = 0;
	r->st.reassembled++;
	r->st.atomic++;
	r->out(&q, r->arg);
}

/* ---- the API ---------------------------------------------------------- */

struct reasm *
reasm_new(const struct reasm_config *cfg, reasm_out_fn out, void *arg)
{
	struct reasm *r;
	size_t nbuckets = 64;

	if (cfg->max_memory < REASM_MIN_MEMORY ||
	    cfg->max_memory / REASM_BLOCK >= NIL) {
		errno = EINVAL;
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->cfg = *cfg;
	r->out = out;
	r->arg = arg;
	if (r->cfg.seed == 0 && getrandom(&r->cfg.seed, sizeof(r->cfg.seed), 0) < 0)
		r->cfg.seed = 0x5eed;
	/* About one bucket per four blocks: short chains, under 1% of the budget. */
	while (nbuckets * 2 <= cfg->max_memory / (4 * REASM_BLOCK))
		nbuckets *= 2;
	r->mask = (uint32_t)nbuckets - 1;
	r->nslots = (uint32_t)((cfg->max_memory - nbuckets * 4) / REASM_BLOCK);
	r->nfree = r->nslots;
	r->freelist = r->oldest = r->newest = NIL;
	/* calloc of this size maps fresh pages: untouched slots cost nothing resident. */
	r->pool = calloc(r->nslots, sizeof(union slot));
	r->bucket = malloc(nbuckets * sizeof(*r->bucket));
	if (r->pool == NULL || r->bucket == NULL) {
		reasm_free(r);
		errno = ENOMEM;
		return NULL;
	}
	memset(r->bucket, 0xff, nbuckets * sizeof(*r->bucket));
	return r;
}

void
reasm_input(struct reasm *r, const struct pkt *p, uint64_t now)
{
	struct fraginfo fi;

	r->st.packets++;
	switch (classify(p, &fi)) {
	case K_WHOLE:
		r->st.passed++;
		r->out(p, r->arg);
		break;
	case K_UNPARSED:
		r->st.passed++;
		r->st.unparsed++;
		r->out(p, r->arg);
		break;
	case K_INVALID:
		r->st.fragments++;
		r->st.invalid++;
		r->st.dropped++;
		break;
	case K_ATOMIC:
		r->st.fragments++;
		atomic_complete(r, p, &fi);
		break;
	case K_FRAGMENT:
		r->st.fragments++;
		add_fragment(r, p, &fi, now);
		break;
	}
}

void
reasm_expire(struct reasm *r, uint64_t now)
{
	while (r->oldest != NIL && now >= D(r, r->oldest)->born &&
	    now - D(r, r->oldest)->born >= r->cfg.timeout_ms)
		dgram_lose(r, r->oldest, &r->st.timed_out);
}

uint64_t
reasm_next_expiry(const struct reasm *r)
{
	if (r->oldest == NIL)
		return UINT64_MAX;
	return r->pool[r->oldest].d.born + r->cfg.timeout_ms;
}

void
reasm_flush(struct reasm *r)
{
	while (r->oldest != NIL)
		dgram_lose(r, r->oldest, &r->st.incomplete);
}

size_t
reasm_memory(const struct reasm *r)
{
	return (size_t)r->nslots * REASM_BLOCK + ((size_t)r->mask + 1) * 4;
}

size_t
reasm_in_use(const struct reasm *r)
{
	return (size_t)(r->nslots - r->nfree) * REASM_BLOCK + ((size_t)r->mask + 1) * 4;
}

size_t
reasm_peak(const struct reasm *r)
{
	return (size_t)r->peak_used * REASM_BLOCK + ((size_t)r->mask + 1) * 4;
}

const struct reasm_stats *
reasm_stats(const struct reasm *r)
{
	return &r->st;
}

void
reasm_free(struct reasm *r)
{
	if (r == NULL)
		return;
	free(r->pool);
	free(r->bucket);
	free(r);
}
