/*
 * reasm.c - IPv4 (RFC 791/815) and IPv6 (RFC 8200, RFC 5722) reassembly.
 *
 * Memory: one pool of REASM_BLOCK-byte blocks and a hash table, both within
 * max_memory.  A block is either a datagram's state or a piece of a stored
 * fragment (fragments are kept whole, link header and metadata included, so
 * they can be written through unchanged when their datagram is lost).
 * Blocks come from a free list, or from the untouched end of the pool: the
 * pool is address space reserved at start and resident only as it is used.
 * The hash table starts small and doubles with the datagrams held, up to
 * the share of the budget kept for it.  Nothing is allocated per packet.
 *
 * Datagrams sit in a hash table (chains of block indices) and in one list
 * by age: the oldest is at its head, which makes expiry and eviction O(1).
 * A datagram's fragments are linked in arrival order (reassembly copies in
 * that order, so "last" wins; reversed for "first").  Where they lie is
 * known without walking them (FragmentSmack, CVE-2018-5390/5391, was a
 * sorted list walked per fragment):
 *  - a fragment that starts at or after the end of what is held (the
 *    in-order case, the kernel's fast path) needs only that end: O(1);
 *  - from the first fragment that does not, the datagram gets bitmaps
 *    indexed by offset in 8-byte units (the grid every fragment but the
 *    last starts and ends on): one bit a unit held, one a unit where a run
 *    starts.  A fragment's overlaps, duplicates and new bytes are then a
 *    few word operations over its own units, whatever the number or the
 *    order of the fragments held: O(its length / 512 bytes).
 * The bitmaps live in pool blocks: a directory block of 32 chunk indices,
 * each chunk one block of 512 units (4 KiB of payload), made as needed.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include <netinet/in.h>
#include <netinet/ip.h>
#include <linux/if_ether.h>

#include "bytes.h"
#include "csum.h"
#include "ipwalk.h"
#include "reasm.h"

#define NIL		UINT32_MAX

#define THP_SKIP	(2u << 20)	/* pool bytes kept on small pages */

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
	uint32_t	dir;		/* bitmap directory block; NIL while in order */
	uint32_t	held_end;	/* highest end of the bytes held */
	uint32_t	hdr;		/* fragment at offset 0 that gives the headers */
	uint32_t	total;		/* payload bytes; 0 until the last fragment came */
	uint32_t	have;		/* payload bytes covered */
	uint32_t	maxend;		/* highest payload end seen */
	uint32_t	nfrags;
	uint32_t	hash;
	uint8_t		dead;		/* dropped: absorbs its later fragments until timeout */
	uint8_t		ecn;		/* ECN_* bits of the fragments taken */
	uint8_t		badsum;		/* a fragment taken had a bad IPv4 header checksum */
	struct key	key;
	uint64_t	born;		/* clock at the first fragment */
};

/*
 * What a run is depends on the policy.  linux: the kernel's runs (a
 * fragment that starts where the bytes held end joins the last run, any
 * other starts one of its own); rfc5722: each fragment (so exact duplicates
 * are seen); first and last: only the bytes held matter.
 */
struct frag_meta {
	uint32_t	next, prev;	/* arrival order */
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
	/* The queued packet it is, for a verdict in place when it goes nowhere. */
	uint64_t	holder;
	uint32_t	qid, qflags;
	uint16_t	qport;
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

#define UNIT_BITS	512		/* 8-byte units a bitmap chunk covers */
#define NCHUNKS		32		/* chunks a datagram may need: IPv4 ends reach
					   65528 + 65515 bytes before refusal */

union slot {
	struct block	 b;
	struct frag_block f;
	struct dgram	 d;
	uint32_t	 dir[NCHUNKS];		/* chunk block indices, NIL: none */
	uint64_t	 bits[2][UNIT_BITS / 64];	/* [0] units held, [1] run starts */
};

static_assert(sizeof(union slot) == REASM_BLOCK, "a pool slot is one block");

#define HEAD_ROOM	sizeof(((struct frag_block *)0)->bytes)
#define REST_ROOM	sizeof(((struct block *)0)->bytes)

struct reasm {
	struct reasm_config cfg;
	reasm_out_fn	 out;
	void		*arg;
	reasm_gone_fn	 gone;
	void		*gone_arg;
	union slot	*pool;
	size_t		 mapped;	/* bytes of address space the pool has */
	uint32_t	 nslots;
	uint32_t	 bump;		/* slots from here on were never used */
	uint32_t	 freelist;
	uint32_t	 nfree;
	uint32_t	*bucket;
	uint32_t	 mask;
	uint32_t	 maxbuckets;	/* the table's share of the budget */
	uint32_t	 ndgrams;	/* datagrams held */
	uint32_t	 oldest, newest;
	uint32_t	 peak_used;	/* slots */
	struct reasm_stats st;
	uint8_t		 buf[REASM_MAX_V6];		/* a reassembled datagram */
	uint8_t		 scratch[REASM_MAX_L2 + REASM_MAX_V6];	/* a fragment written through */
};

/* What one record is, as far as reassembly cares. */
enum kind { K_WHOLE, K_UNPARSED, K_INVALID, K_TOOBIG, K_FRAGMENT, K_ATOMIC };

enum { ECN_NOT_ECT = 1, ECN_ECT_1 = 2, ECN_ECT_0 = 4, ECN_CE = 8 };	/* 1 << bits */

struct fraginfo {
	struct key	key;
	uint32_t	off, end;
	int		more;
	uint8_t		ecn;		/* ECN_*: 1 << the header's ECN bits */
	uint8_t		badsum;		/* IPv4 header checksum wrong */
	uint8_t		trimmed;	/* IPv4: data past the 8-byte grid left out */
	uint16_t	unfrag, hdrlen, nhoff;
	uint8_t		nexthdr;
	size_t		iplen;		/* the packet's own length (padding excluded) */
};

static struct dgram *D(struct reasm *r, uint32_t i) { return &r->pool[i].d; }
static struct frag_meta *M(struct reasm *r, uint32_t i) { return &r->pool[i].f.m; }

/* ---- records that go nowhere ------------------------------------------ */

/* A record taken in goes nowhere: the gone function hears of its packet, if held. */
static void
gone(struct reasm *r, const struct divert_addr *a)
{
	if (r->gone != NULL && (a->flags & DIVERT_ADDR_QUEUE) && a->holder != 0)
		r->gone(a, r->gone_arg);
}

/* The queued packet a stored fragment is, as its record said. */
static void
frag_addr(struct reasm *r, uint32_t f, struct divert_addr *a)
{
	const struct frag_meta *m = M(r, f);

	memset(a, 0, sizeof(*a));
	a->ts.tv_sec = m->ts_sec;
	a->ts.tv_usec = m->ts_usec;
	a->dir = m->dir;
	a->ifindex = m->ifindex;
	a->proto = m->proto;
	a->hatype = m->hatype;
	a->halen = m->halen;
	memcpy(a->haddr, m->haddr, sizeof(a->haddr));
	a->holder = m->holder;
	a->id = m->qid;
	a->port = m->qport;
	a->flags = m->qflags;
}

/* Every fragment a datagram holds goes nowhere, but the record except is (NULL: none). */
static void
frags_gone(struct reasm *r, const struct dgram *d, const struct divert_addr *except)
{
	struct divert_addr a;
	uint32_t f;

	if (r->gone == NULL)
		return;
	for (f = d->first; f != NIL; f = M(r, f)->next) {
		frag_addr(r, f, &a);
		if (except != NULL && a.holder == except->holder && a.id == except->id &&
		    a.port == except->port && a.flags == except->flags)
			continue;
		gone(r, &a);
	}
}

/* ---- parsing ---------------------------------------------------------- */

/* An IPv4 fragment, as the walk found it. */
static enum kind
frag4(const uint8_t *d, const struct ipwalk *w, struct fraginfo *fi)
{
	fi->off = w->fragoff;
	fi->end = fi->off + (uint32_t)(w->tot - w->hlen);
	fi->more = w->more;
	fi->unfrag = fi->hdrlen = w->hlen;
	fi->iplen = w->tot;
	fi->ecn = (uint8_t)(1 << (d[1] & 3));
	fi->badsum = csum(d, w->hlen) != 0;
	/*
	 * RFC 791: every fragment but the last carries a multiple of 8 bytes.
	 * The kernel cuts the rest off (ip_frag_queue); a fragment left with
	 * no data, like one that came without, then kills its datagram.
	 */
	if (fi->more && (fi->end - fi->off) % 8 != 0) {
		fi->end -= (fi->end - fi->off) % 8;
		fi->trimmed = 1;
	}
	fi->key.version = 4;
	memcpy(fi->key.src, d + 12, 4);
	memcpy(fi->key.dst, d + 16, 4);
	fi->key.proto = d[9];
	fi->key.id = w->id;
	return K_FRAGMENT;
}

/* An IPv6 fragment: its fragment header is at w->fh. */
static enum kind
frag6(const uint8_t *d, const struct ipwalk *w, struct fraginfo *fi)
{
	/* The offsets below are 16-bit: 65 KB of extension headers do not fit. */
	if (w->fh + 8 > 0xffff)
		return K_UNPARSED;
	fi->off = w->fragoff;
	fi->end = fi->off + (uint32_t)(w->tot - w->fh - 8);
	fi->more = w->more;
	fi->unfrag = (uint16_t)w->fh;
	fi->hdrlen = (uint16_t)(w->fh + 8);
	fi->nhoff = (uint16_t)w->fh_nh;
	fi->nexthdr = d[w->fh];
	fi->iplen = w->tot;
	fi->ecn = (uint8_t)(1 << ((d[1] >> 4) & 3));
	if (fi->off == 0 && !fi->more)
		return K_ATOMIC;		/* RFC 6946: a datagram of one fragment */
	/*
	 * As the kernel (ip6_frag_queue): a fragment reaching past 65535 bytes
	 * of payload, or not the last and off the 8-byte grid, is refused
	 * alone (RFC 8200 asks for a Parameter Problem); the datagram stays.
	 */
	if (fi->end > 65535)
		return K_TOOBIG;
	if (fi->more && (fi->end - fi->off) % 8 != 0)
		return K_INVALID;
	fi->key.version = 6;
	memcpy(fi->key.src, d + 8, 16);
	memcpy(fi->key.dst, d + 24, 16);
	fi->key.id = w->id;
	return K_FRAGMENT;
}

/*
 * The IP packet of a record of ethertype version 4 or 6.  IPv6's fragment
 * header may follow any extension headers (ipwalk.h); a chain cut before
 * one, like a datagram cut by the capture, is not parsed.
 */
static enum kind
parse(const uint8_t *d, size_t len, int version, struct fraginfo *fi)
{
	struct ipwalk w;

	if (ipwalk(d, len, 0, IPW_FRAG, &w) < 0 || w.version != version)
		return K_UNPARSED;
	if (!w.sized)			/* IPv6: a jumbogram, never fragmented */
		return version == 6 ? K_WHOLE : K_UNPARSED;
	if (!w.whole)			/* cut by the capture, or nonsense */
		return K_UNPARSED;
	if (!w.frag)
		return w.chain_cut ? K_UNPARSED : K_WHOLE;
	return version == 4 ? frag4(d, &w, fi) : frag6(d, &w, fi);
}

static enum kind
classify(const struct pkt *p, struct fraginfo *fi)
{
	enum kind k;

	memset(fi, 0, sizeof(*fi));
	if (p->rec != NULL && p->l2len > REASM_MAX_L2)
		return K_UNPARSED;		/* a link header we could not store */
	if (p->a.proto == ETH_P_IP)
		k = parse(p->data, p->len, 4, fi);
	else if (p->a.proto == ETH_P_IPV6)
		k = parse(p->data, p->len, 6, fi);
	else
		return K_WHOLE;			/* not IP: not ours to judge */
	fi->key.ifindex = p->a.ifindex;
	fi->key.dir = (uint8_t)p->a.dir;
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

/*
 * Double the hash table when it holds more datagrams than buckets, within
 * its share of the budget: a few datagrams cost a small table, however
 * large --max-memory is.  Without memory for it, chains just grow longer.
 */
static void
table_grow(struct reasm *r)
{
	uint32_t n = (r->mask + 1) * 2, i, *b;

	if (r->ndgrams <= r->mask + 1 || n > r->maxbuckets)
		return;
	if ((b = realloc(r->bucket, n * sizeof(*b))) == NULL)
		return;
	r->bucket = b;
	r->mask = n - 1;
	memset(b, 0xff, n * sizeof(*b));
	for (i = r->oldest; i != NIL; i = D(r, i)->newer) {
		D(r, i)->hnext = b[D(r, i)->hash & r->mask];
		b[D(r, i)->hash & r->mask] = i;
	}
}

/* A new, empty datagram: newest in the age list. */
static uint32_t
dgram_new(struct reasm *r, const struct key *k, uint32_t hash, uint64_t now)
{
	uint32_t i = slot_alloc(r);
	struct dgram *d = D(r, i);

	memset(d, 0, sizeof(*d));
	d->first = d->last = d->dir = d->hdr = NIL;
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
	r->ndgrams++;
	table_grow(r);
	return i;
}

/* Give back the bitmaps of a datagram. */
static void
bits_free(struct reasm *r, struct dgram *d)
{
	uint32_t c;

	if (d->dir == NIL)
		return;
	for (c = 0; c < NCHUNKS; c++)
		if (r->pool[d->dir].dir[c] != NIL)
			slot_free(r, r->pool[d->dir].dir[c]);
	slot_free(r, d->dir);
	d->dir = NIL;
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
	bits_free(r, d);
	d->first = d->last = d->hdr = NIL;
	d->held_end = 0;
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
	r->ndgrams--;
	slot_free(r, i);
}

/*
 * Drop a datagram (overlap, size, ECN, ...).  Linux forgets it (later
 * fragments start a new queue, as inet_frag_kill does).  The other
 * policies keep its state, without data, until its timeout, so that its
 * later fragments are dropped too (RFC 5722) instead of starting a datagram
 * that can only expire.
 */
static void
dgram_kill(struct reasm *r, uint32_t i, uint64_t *counter, const struct pkt *p)
{
	struct dgram *d = D(r, i);

	(*counter)++;
	r->st.dropped += d->nfrags + 1;		/* + the fragment that showed it */
	frags_gone(r, d, NULL);
	if (p != NULL)
		gone(r, &p->a);			/* it is not stored */
	if (r->cfg.overlap == REASM_OVERLAP_LINUX) {
		dgram_free(r, i);
		return;
	}
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
	q.a.ts.tv_sec = m->ts_sec;
	q.a.ts.tv_usec = m->ts_usec;
	q.a.dir = m->dir;
	q.a.ifindex = m->ifindex;
	q.a.proto = m->proto;
	q.pkttype = m->pkttype;
	q.a.hatype = m->hatype;
	q.a.halen = m->halen;
	memcpy(q.a.haddr, m->haddr, sizeof(q.a.haddr));
	q.a.holder = m->holder;
	q.a.id = m->qid;
	q.a.port = m->qport;
	q.a.flags = m->qflags;
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
		if (r->cfg.keep_incomplete) {
			for (f = d->first; f != NIL; f = M(r, f)->next)
				write_through(r, f);
		} else {
			r->st.dropped += d->nfrags;
			frags_gone(r, d, NULL);
		}
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

/* ---- where the bytes held are: bitmaps by 8-byte unit ----------------- */

/* The word of bitmap which (0 held, 1 run starts) with unit u; NULL: all 0. */
static uint64_t *
bits_word(struct reasm *r, const struct dgram *d, int which, uint32_t u)
{
	uint32_t c = r->pool[d->dir].dir[u / UNIT_BITS];

	r->st.bitmap_words++;
	return c == NIL ? NULL : &r->pool[c].bits[which][u % UNIT_BITS / 64];
}

/* The bits of units [ua, ub) within the word that holds unit ua. */
static uint64_t
word_mask(uint32_t ua, uint32_t ub)
{
	uint32_t lo = ua % 64, hi = ub - (ua - lo) < 64 ? ub - (ua - lo) : 64;

	return (hi == 64 ? ~0ULL : (1ULL << hi) - 1) & ~((1ULL << lo) - 1);
}

/* How many of units [ua, ub) are set in bitmap which. */
static uint32_t
bits_count(struct reasm *r, const struct dgram *d, int which, uint32_t ua, uint32_t ub)
{
	uint32_t n = 0;
	uint64_t *w;

	for (; ua < ub; ua = (ua | 63) + 1)
		if ((w = bits_word(r, d, which, ua)) != NULL)
			n += (uint32_t)__builtin_popcountll(*w & word_mask(ua, ub));
	return n;
}

static int
bit_is_set(struct reasm *r, const struct dgram *d, int which, uint32_t u)
{
	return u < NCHUNKS * UNIT_BITS && bits_count(r, d, which, u, u + 1) != 0;
}

/* Blocks that setting units [ua, ub) (and making the directory) may take. */
static uint32_t
bits_need(struct reasm *r, const struct dgram *d, uint32_t ua, uint32_t ub)
{
	uint32_t c, n = 0;

	if (ub <= ua)
		return 0;
	for (c = ua / UNIT_BITS; c <= (ub - 1) / UNIT_BITS; c++)
		n += d->dir == NIL || r->pool[d->dir].dir[c] == NIL;
	return n + (d->dir == NIL);
}

/* Set units [ua, ub) in bitmap which; the blocks are free (bits_need). */
static void
bits_set(struct reasm *r, struct dgram *d, int which, uint32_t ua, uint32_t ub)
{
	uint32_t c, *slot;

	if (d->dir == NIL) {
		d->dir = slot_alloc(r);
		memset(r->pool[d->dir].dir, 0xff, sizeof(r->pool[d->dir].dir));
	}
	for (; ua < ub; ua = (ua | 63) + 1) {
		slot = &r->pool[d->dir].dir[ua / UNIT_BITS];
		if (*slot == NIL) {
			c = slot_alloc(r);
			memset(&r->pool[c], 0, sizeof(r->pool[c]));
			*slot = c;
		}
		*bits_word(r, d, which, ua) |= word_mask(ua, ub);
	}
}

static uint32_t unit_of(uint32_t off) { return off / 8; }
static uint32_t units_to(uint32_t end) { return (end + 7) / 8; }

/* Does policy p mark where runs start (linux: the kernel's runs; rfc5722: fragments)? */
static int
marks_starts(int p)
{
	return p == REASM_OVERLAP_LINUX || p == REASM_OVERLAP_RFC5722;
}

/*
 * Blocks that making a datagram's bitmaps from what it holds takes (an
 * upper bound: every chunk up to the end held, and the directory).
 */
static uint32_t
bits_build_need(const struct dgram *d)
{
	return 1 + (units_to(d->held_end) + UNIT_BITS - 1) / UNIT_BITS;
}

/*
 * The first fragment that does not go after everything held: make the
 * bitmaps from the fragments held.  They came in order, each starting at
 * or after the end of the ones before, so the runs are what they were:
 * linux, a fragment that started where the one before ended joined its run.
 */
static void
bits_build(struct reasm *r, struct dgram *d)
{
	uint32_t f, prev_end = UINT32_MAX;
	struct frag_meta *m;

	for (f = d->first; f != NIL; f = m->next) {
		m = M(r, f);
		bits_set(r, d, 0, unit_of(m->off), units_to(m->end));
		if ((r->cfg.overlap == REASM_OVERLAP_LINUX && m->off != prev_end) ||
		    r->cfg.overlap == REASM_OVERLAP_RFC5722)
			bits_set(r, d, 1, unit_of(m->off), unit_of(m->off) + 1);
		prev_end = m->end;
	}
	if (d->dir == NIL)			/* nothing held: still a directory */
		bits_set(r, d, 0, 0, 0);
}

/* ---- adding a fragment ------------------------------------------------ */

static uint32_t
max_len(const struct key *k)
{
	return k->version == 4 ? REASM_MAX_V4 : REASM_MAX_V6;
}

/*
 * Lengths that cannot belong to one datagram, in the kernel's order
 * (ip_frag_queue, ip6_frag_queue): a last fragment ending before data
 * already seen or at another end, data past a known end, a fragment without
 * data; and more pieces than we keep.  The end is taken as the kernel takes
 * it, before knowing whether the fragment is a duplicate.  0, or -1 after
 * killing the datagram.
 */
static int
check_lengths(struct reasm *r, uint32_t i, const struct fraginfo *fi, const struct pkt *p)
{
	struct dgram *d = D(r, i);

	if (!fi->more) {
		if (fi->end < d->maxend || (d->total && fi->end != d->total))
			goto invalid;
		d->total = d->maxend = fi->end;
	} else if (fi->end > d->maxend) {
		if (d->total)
			goto invalid;
		d->maxend = fi->end;
	}
	if (fi->end == fi->off)
		goto invalid;
	if (d->nfrags >= REASM_MAX_FRAGS) {
		dgram_kill(r, i, &r->st.too_many, p);
		return -1;
	}
	return 0;
invalid:
	dgram_kill(r, i, &r->st.invalid, p);
	return -1;
}

enum fit {
	FIT_NEW,	/* bytes not held: store it */
	FIT_PART,	/* first, last: some bytes held, some not: store it */
	FIT_DUP,	/* nothing new: discard it (last: store it) */
	FIT_OVERLAP,	/* linux, rfc5722: drop the datagram */
};

/* What fit() found, for frag_link. */
struct place {
	int		start;		/* it starts a run (linux, rfc5722) */
	uint32_t	added;		/* bytes it adds to what is held */
};

/* Bytes of [off, end) held; the datagram has its bitmaps. */
static uint32_t
held_bytes(struct reasm *r, const struct dgram *d, uint32_t off, uint32_t end)
{
	uint32_t ua = unit_of(off), ub = units_to(end);
	uint32_t n = bits_count(r, d, 0, ua, ub) * 8;

	/* Only the last fragment ends off the grid; its last unit is partial. */
	if (end % 8 != 0 && bit_is_set(r, d, 0, ub - 1))
		n -= 8 - end % 8;
	return n;
}

/*
 * Where [off, end) goes, as the kernel's inet_frag_queue_insert decides.
 * Starting at or after the end of the bytes held (the fast path): new; a
 * fragment that ends after them but starts inside overlaps (linux, rfc5722).
 * Any other: the bitmaps say (the caller made them).  linux: a duplicate
 * when wholly inside one run, an overlap when it meets held bytes
 * otherwise; rfc5722: a duplicate only when the exact copy of a fragment;
 * first, last: what it adds.
 */
static enum fit
fit(struct reasm *r, const struct dgram *d, const struct fraginfo *fi, struct place *pl)
{
	int p = r->cfg.overlap, runs = marks_starts(p);
	uint32_t off = fi->off, end = fi->end, ua = unit_of(off), ub = units_to(end), held;

	pl->added = end - off;
	pl->start = p == REASM_OVERLAP_RFC5722 ||
	    (p == REASM_OVERLAP_LINUX && (d->first == NIL || off != d->held_end));
	if (off >= d->held_end)
		return FIT_NEW;
	if (runs && end > d->held_end)
		return FIT_OVERLAP;
	if ((held = held_bytes(r, d, off, end)) == 0) {
		pl->start = runs;
		return FIT_NEW;
	}
	if (runs) {
		if (held != end - off || bits_count(r, d, 1, ua + 1, ub) != 0)
			return FIT_OVERLAP;	/* meets two runs, or a hole */
		if (p == REASM_OVERLAP_LINUX)
			return FIT_DUP;
		/* rfc5722: a fragment starts at off and the next at end (or none) */
		if (bit_is_set(r, d, 1, ua) && (end >= d->held_end ||
		    bit_is_set(r, d, 1, ub) || !bit_is_set(r, d, 0, ub)))
			return FIT_DUP;
		return FIT_OVERLAP;
	}
	pl->added = end - off - held;
	return pl->added == 0 ? FIT_DUP : FIT_PART;
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
	m->next = m->prev = NIL;
	m->off = fi->off;
	m->end = fi->end;
	m->reclen = (uint32_t)(l2len + fi->iplen);	/* padding after the packet dropped */
	m->ifindex = p->a.ifindex;
	m->ts_sec = p->a.ts.tv_sec;
	m->ts_usec = (int32_t)p->a.ts.tv_usec;
	m->l2len = (uint16_t)l2len;
	m->unfrag = fi->unfrag;
	m->hdrlen = fi->hdrlen;
	m->nhoff = fi->nhoff;
	m->nexthdr = fi->nexthdr;
	m->proto = p->a.proto;
	m->hatype = p->a.hatype;
	m->dlt = (int16_t)p->dlt;
	m->dir = (uint8_t)p->a.dir;
	m->pkttype = p->pkttype;
	m->halen = p->a.halen;
	memcpy(m->haddr, p->a.haddr, sizeof(m->haddr));
	m->holder = p->a.holder;
	m->qid = p->a.id;
	m->qport = p->a.port;
	m->qflags = p->a.flags;
	if (l2len > 0)
		chain_copy(r, f, 0, p->rec, l2len, 1);
	chain_copy(r, f, l2len, p->data, fi->iplen, 1);
	return f;
}

/* Link a stored fragment into its datagram: by arrival, and in the bitmaps. */
static void
frag_link(struct reasm *r, struct dgram *d, uint32_t f, const struct place *pl,
    const struct fraginfo *fi)
{
	struct frag_meta *m = M(r, f);

	m->prev = d->last;
	if (d->last != NIL)
		M(r, d->last)->next = f;
	else
		d->first = f;
	d->last = f;
	if (d->dir != NIL) {
		bits_set(r, d, 0, unit_of(m->off), units_to(m->end));
		if (pl->start)
			bits_set(r, d, 1, unit_of(m->off), unit_of(m->off) + 1);
	}
	if (m->end > d->held_end)
		d->held_end = m->end;
	if (m->off == 0 && (d->hdr == NIL || r->cfg.overlap == REASM_OVERLAP_LAST))
		d->hdr = f;
	d->have += pl->added;
	d->ecn |= fi->ecn;
	d->badsum |= fi->badsum;
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

/*
 * Copy every payload into buf and give the fragments back in the same
 * pass (one visit to each block): in arrival order, or reversed for
 * "first", so that the bytes that must win are written last.
 */
static void
copy_all(struct reasm *r, struct dgram *d, size_t unfrag)
{
	int first = r->cfg.overlap == REASM_OVERLAP_FIRST;
	uint32_t f, next;

	for (f = first ? d->last : d->first; f != NIL; f = next) {
		next = first ? M(r, f)->prev : M(r, f)->next;
		copy_payload(r, f, unfrag);
		chain_free(r, f);
	}
	d->first = d->last = d->hdr = NIL;
}

/*
 * RFC 3168 section 5.3, as the kernel's ip_frag_ecn_table: indexed by the
 * ECN_* bits of the fragments, what to OR into the first fragment's ECN
 * field; 0xff: Not-ECT mixed with ECT or CE, drop the datagram.
 */
static const uint8_t ecn_table[16] = {
	[ECN_CE | ECN_ECT_0] = 3,
	[ECN_CE | ECN_ECT_1] = 3,
	[ECN_CE | ECN_ECT_0 | ECN_ECT_1] = 3,
	[ECN_NOT_ECT | ECN_CE] = 0xff,
	[ECN_NOT_ECT | ECN_ECT_0] = 0xff,
	[ECN_NOT_ECT | ECN_ECT_1] = 0xff,
	[ECN_NOT_ECT | ECN_ECT_0 | ECN_ECT_1] = 0xff,
	[ECN_NOT_ECT | ECN_CE | ECN_ECT_0] = 0xff,
	[ECN_NOT_ECT | ECN_CE | ECN_ECT_1] = 0xff,
	[ECN_NOT_ECT | ECN_CE | ECN_ECT_0 | ECN_ECT_1] = 0xff,
};

/*
 * Fix the headers of a reassembled datagram of len bytes in r->buf.  A
 * checksum that arrived wrong stays wrong: when a fragment had a bad IPv4
 * header checksum, the new one is written one off the valid value.
 */
static void
fix_headers(struct reasm *r, const struct frag_meta *h, size_t len, uint8_t ecn,
    int badsum)
{
	uint8_t *ip = r->buf;

	if ((ip[0] >> 4) == 4) {
		ip[1] |= ecn;
		put16(ip + 2, (uint16_t)len);
		put16(ip + 6, get16(ip + 6) & ~(IP_MF | IP_OFFMASK));	/* DF, RF stay */
		put16(ip + 10, 0);
		put16(ip + 10, csum(ip, h->unfrag) ^ (badsum ? 1 : 0));
	} else {
		ip[1] |= (uint8_t)(ecn << 4);
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
	size_t len = (size_t)h->unfrag + d->total;	/* the first fragment's headers */
	uint8_t ecn = ecn_table[d->ecn];
	int badsum = d->badsum;
	struct frag_meta hdr;
	struct pkt q;

	if (len > max_len(&d->key) || ecn == 0xff) {
		dgram_kill(r, i, ecn == 0xff ? &r->st.ecn : &r->st.oversize, NULL);
		r->st.dropped--;		/* the last fragment is stored: counted */
		return;
	}
	/* The datagram goes as p's record: its packet; the other fragments' go nowhere. */
	frags_gone(r, d, &p->a);
	chain_copy(r, d->hdr, h->l2len, r->buf, h->unfrag, 0);
	hdr = *h;			/* its block is given back below */
	copy_all(r, d, hdr.unfrag);
	fix_headers(r, &hdr, len, ecn, badsum);
	dgram_free(r, i);
	q = *p;
	q.data = r->buf;
	q.len = len;
	q.a.cut = 0;
	r->st.reassembled++;
	r->st.badsum += badsum;
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
		gone(r, &p->a);
	}
}

static int
is_complete(const struct dgram *d)
{
	return d->total != 0 && d->have == d->total;
}

static void
add_fragment(struct reasm *r, const struct pkt *p, const struct fraginfo *fi, uint64_t now)
{
	size_t l2len = p->rec != NULL ? p->l2len : 0;	/* <= REASM_MAX_L2: see classify */
	uint32_t need = blocks_for(l2len + fi->iplen), hash = key_hash(r, &fi->key);
	uint32_t i, f, bneed;
	struct place pl;
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
		gone(r, &p->a);
		return;
	}
	if (check_lengths(r, i, fi, p) < 0)
		return;
	if (d->dir == NIL && fi->off < d->held_end) {	/* out of order: bitmaps from now on */
		if (make_room(r, bits_build_need(d), i) < 0)
			goto lost;
		bits_build(r, d);
	}
	switch (fit(r, d, fi, &pl)) {
	case FIT_OVERLAP:
		dgram_kill(r, i, &r->st.overlaps, p);
		return;
	case FIT_DUP:
		r->st.duplicates++;
		if (r->cfg.overlap == REASM_OVERLAP_LAST)
			break;			/* its bytes replace the ones held */
		r->st.dropped++;
		/* A duplicate that completes: the datagram goes as it (frags_gone spares it). */
		if (!(r->cfg.overlap != REASM_OVERLAP_LINUX && is_complete(d)))
			gone(r, &p->a);
		/*
		 * A duplicate last fragment may have told the end.  Linux then
		 * waits for a fragment that can never come (it checks only
		 * after storing one); the other policies finish.
		 */
		if (r->cfg.overlap != REASM_OVERLAP_LINUX && is_complete(d))
			dgram_complete(r, i, p);
		return;
	case FIT_PART:
		r->st.overlaps++;
		break;
	case FIT_NEW:
		break;
	}
	bneed = d->dir != NIL ? bits_need(r, d, unit_of(fi->off), units_to(fi->end)) : 0;
	if (make_room(r, need + bneed, i) < 0)
		goto lost;
	if (fi->trimmed)
		r->st.trimmed++;
	f = frag_store(r, p, fi, l2len, need);
	frag_link(r, d, f, &pl, fi);
	if (is_complete(d))
		dgram_complete(r, i, p);
	return;
lost:					/* this datagram alone fills the pool */
	dgram_lose(r, i, &r->st.evicted);
	frag_unstored(r, p);
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
	fix_headers(r, &h, len, 0, 0);
	q.data = r->buf;
	q.len = len;
	q.a.cut = 0;
	r->st.reassembled++;
	r->st.atomic++;
	r->out(&q, r->arg);
}

/* ---- the API ---------------------------------------------------------- */

struct reasm *
reasm_new(const struct reasm_config *cfg, reasm_out_fn out, void *arg)
{
	struct reasm *r;
	size_t nbuckets = 64, bytes;
	void *pool;

	if (cfg->max_memory < REASM_MIN_MEMORY || cfg->max_memory > REASM_MAX_MEMORY) {
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
	/*
	 * The table may grow to about one bucket per four blocks (short chains,
	 * under 1% of the budget); that share is kept aside, the rest is pool.
	 */
	while (nbuckets * 2 <= cfg->max_memory / (4 * REASM_BLOCK))
		nbuckets *= 2;
	r->maxbuckets = (uint32_t)nbuckets;
	r->nslots = (uint32_t)((cfg->max_memory - nbuckets * 4) / REASM_BLOCK);
	r->nfree = r->nslots;
	r->freelist = r->oldest = r->newest = NIL;
	/*
	 * Address space only: pages become resident as blocks are first used
	 * (from the bottom up), so a large --max-memory costs what is held.
	 */
	bytes = (size_t)r->nslots * sizeof(union slot);
	pool = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	r->pool = pool == MAP_FAILED ? NULL : pool;
	r->mapped = bytes;
	/*
	 * Past its first 2 MiB (which blocks are taken from first, so a small
	 * input stays small), huge pages where the kernel allows: a pool holding
	 * many fragments is touched all over, and 4 KiB pages cost a fault each
	 * and a TLB miss on most accesses.  Resident size then grows in 2 MiB
	 * steps.
	 */
	if (r->pool != NULL && bytes > 2 * THP_SKIP)
		(void)madvise((uint8_t *)pool + THP_SKIP, bytes - THP_SKIP, MADV_HUGEPAGE);
	r->mask = 64 - 1;
	r->bucket = malloc(64 * sizeof(*r->bucket));
	if (r->pool == NULL || r->bucket == NULL) {
		reasm_free(r);
		errno = ENOMEM;
		return NULL;
	}
	memset(r->bucket, 0xff, 64 * sizeof(*r->bucket));
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
		gone(r, &p->a);
		break;
	case K_TOOBIG:
		r->st.fragments++;
		r->st.oversize++;
		r->st.dropped++;
		gone(r, &p->a);
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
	return (size_t)r->nslots * REASM_BLOCK + (size_t)r->maxbuckets * 4;
}

size_t
reasm_held(const struct reasm *r)
{
	return (size_t)(r->nslots - r->nfree) * REASM_BLOCK;
}

int
reasm_shrink_pool(struct reasm *r, size_t nblocks)
{
	if (r->nfree != r->nslots || nblocks == 0 || nblocks > r->nslots) {
		errno = EINVAL;
		return -1;
	}
	r->nslots = r->nfree = (uint32_t)nblocks;
	return 0;
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
reasm_set_gone(struct reasm *r, reasm_gone_fn fn, void *arg)
{
	r->gone = fn;
	r->gone_arg = arg;
}

void
reasm_free(struct reasm *r)
{
	if (r == NULL)
		return;
	if (r->pool != NULL)
		munmap(r->pool, r->mapped);
	free(r->bucket);
	free(r);
}
