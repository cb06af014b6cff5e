/* impair.c - divert-impair's models and scheduler (impair.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "csum.h"
#include "impair.h"
#include "ipwalk.h"

/* ---- the generator ------------------------------------------------------ */

/* splitmix64 (Steele, Lea and Flood): spreads one seed over the state. */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
impair_rng_seed(struct impair_rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
		r->s[0] = 1;		/* the one state xoshiro never leaves */
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
impair_rng_next(struct impair_rng *r)
{
	uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double
impair_rng_double(struct impair_rng *r)
{
	return (double)(impair_rng_next(r) >> 11) * 0x1.0p-53;
}

int
impair_rng_chance(struct impair_rng *r, double p)
{
	return impair_rng_double(r) < p;
}

double
impair_rng_normal(struct impair_rng *r)
{
	double u, v, s;

	do {
		u = 2 * impair_rng_double(r) - 1;
		v = 2 * impair_rng_double(r) - 1;
		s = u * u + v * v;
	} while (s >= 1 || s == 0);
	return u * sqrt(-2 * log(s) / s);	/* v's twin is thrown away: no state */
}

/* ---- delays ------------------------------------------------------------- */

/*
 * Pareto of shape 3 and scale 1 has mean 3/2 and variance 3/4: shifted
 * and scaled to mean 0 and standard deviation 1.
 */
static double
pareto_std(struct impair_rng *r)
{
	double u = 1 - impair_rng_double(r);	/* (0, 1] */

	return (1 / cbrt(u) - 1.5) / sqrt(0.75);
}

uint64_t
impair_delay_draw(struct impair_rng *r, enum impair_dist dist, uint64_t delay,
    uint64_t jitter)
{
	double d;

	if (jitter == 0)
		return delay;
	switch (dist) {
	case IMPAIR_NORMAL:
		d = (double)delay + (double)jitter * impair_rng_normal(r);
		break;
	case IMPAIR_PARETO:
		d = (double)delay + (double)jitter * pareto_std(r);
		break;
	default:
		d = (double)delay + (double)jitter * (2 * impair_rng_double(r) - 1);
		break;
	}
	return d <= 0 ? 0 : (uint64_t)(d + 0.5);
}

/* ---- Gilbert-Elliott ---------------------------------------------------- */

int
impair_ge_lost(struct impair_ge *ge, struct impair_rng *r)
{
	/* One draw a packet in either state: the choices stay on one stream. */
	double u = impair_rng_double(r);

	if (ge->bad ? u < ge->leave : u < ge->enter)
		ge->bad = !ge->bad;
	return ge->bad;
}

/* ---- the token bucket --------------------------------------------------- */

#define CREDIT_OF(bytes)	((__int128)(bytes) * 8 * 1000000)

void
impair_bucket_init(struct impair_bucket *b, uint64_t rate, uint64_t burst)
{
	memset(b, 0, sizeof(*b));
	b->rate = rate;
	b->cap = b->credit = CREDIT_OF(burst);
}

/* The credit at time t (>= b->t), the bucket never fuller than its cap. */
static void
refill(struct impair_bucket *b, uint64_t t)
{
	b->credit += (__int128)b->rate * (t - b->t);
	if (b->credit > b->cap)
		b->credit = b->cap;
	b->t = t;
}

uint64_t
impair_bucket_depart(struct impair_bucket *b, uint64_t now, size_t bytes)
{
	__int128 need = CREDIT_OF(bytes), wait;
	uint64_t t = now > b->free_at ? now : b->free_at;

	if (t < b->t)
		t = b->t;
	refill(b, t);
	if (need > b->cap)
		need = b->cap;		/* larger than the bucket: a full one will do */
	if (b->credit < need) {
		wait = (need - b->credit + b->rate - 1) / b->rate;	/* rounded up */
		t += (uint64_t)wait;
		refill(b, t);
	}
	b->credit -= CREDIT_OF(bytes);
	b->free_at = t;
	return t;
}

/* ---- packets ------------------------------------------------------------ */

size_t
impair_payload_off(const uint8_t *ip, size_t len, size_t cut)
{
	struct ipwalk w;

	if (ipwalk(ip, len, cut, IPW_L4, &w) < 0)
		return 0;
	if (w.l4off != 0)
		return w.l4off;
	/* A later fragment: its data after the fragment header, or the IPv4 header. */
	return w.version == 6 && w.fh != 0 ? w.fh + 8 : w.hlen;
}

void
impair_flip_bit(uint8_t *ip, size_t len, size_t off, uint64_t pick)
{
	uint64_t bit;

	if (off >= len)
		return;
	bit = pick % ((uint64_t)(len - off) * 8);
	ip[off + bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
}

size_t
impair_truncate(uint8_t *ip, size_t *len, uint32_t *cut, size_t n)
{
	struct ipwalk w;
	uint16_t old, new;

	if (ipwalk(ip, *len, *cut, 0, &w) < 0)
		return 0;
	if (n < w.hlen)
		n = w.hlen;
	if (n >= *len + *cut)
		return 0;
	if (n <= *len) {
		*len = n;
		*cut = 0;
	} else {
		*cut = (uint32_t)(n - *len);
	}
	if (w.version == 4) {
		old = get16(ip + 2);
		new = (uint16_t)n;
		put16(ip + 2, new);
		put16(ip + 10, csum_update16(get16(ip + 10), old, new));
	} else {
		put16(ip + 4, (uint16_t)(n - 40));
	}
	return n;
}

/* ---- the scheduler ------------------------------------------------------- */

/* One held packet: in the heap by (dep, seq); a held back one also in its group's list. */
struct node {
	uint64_t	 dep, seq;
	void		*item;
	size_t		 bytes;
	size_t		 idx;		/* in the heap */
	int		 g;
	unsigned	 behind;	/* held back: packets still to let pass; 0: not */
	struct node	*next;		/* the group's held back list, or the ready list */
};

enum { R_LOSS, R_BURST, R_TRUNC, R_CORRUPT, R_DUP, R_DELAY, R_REORDER, R_KINDS };

struct group {
	struct impair_conf	c;
	struct impair_rng	rng[R_KINDS];
	struct impair_ge	ge;
	struct impair_bucket	bucket;
	uint64_t		last_dep;	/* packets leave in order */
	uint64_t		pkts, bytes;	/* held now */
	struct node		*back;		/* held back, oldest first */
};

struct impair {
	struct group		*g;
	int			 ngroups;
	struct node		**heap;
	size_t			 n, cap;
	struct node		*ready, *ready_tail;	/* let go by a reorder: next out */
	struct node		*spare;		/* let go: the next holds' (no allocation once warm) */
	uint64_t		 seq;
	struct impair_stats	 st;
};

struct impair *
impair_new(const struct impair_conf *groups, int ngroups, uint64_t seed)
{
	struct impair *im;
	int i, k;

	if ((im = calloc(1, sizeof(*im))) == NULL ||
	    (im->g = calloc((size_t)ngroups, sizeof(*im->g))) == NULL) {
		free(im);
		return NULL;
	}
	im->ngroups = ngroups;
	for (i = 0; i < ngroups; i++) {
		struct group *g = &im->g[i];

		g->c = groups[i];
		/* A stream of its own for every group and kind (impair.h). */
		for (k = 0; k < R_KINDS; k++)
			impair_rng_seed(&g->rng[k], seed ^ ((uint64_t)i << 32 | (uint64_t)k) *
			    0xd1342543de82ef95ULL);
		g->ge.enter = g->c.ge_enter;
		g->ge.leave = g->c.ge_leave;
		if (g->c.rate != 0)
			impair_bucket_init(&g->bucket, g->c.rate, g->c.burst);
		if (g->c.reorder_gap == 0)
			g->c.reorder_gap = 1;
	}
	return im;
}

void
impair_judge(struct impair *im, int gi, struct impair_fate *f)
{
	struct group *g = &im->g[gi];
	const struct impair_conf *c = &g->c;

	memset(f, 0, sizeof(*f));
	/* The burst model moves on every packet, lost or not by the other. */
	if (c->ge_enter > 0 && impair_ge_lost(&g->ge, &g->rng[R_BURST]))
		f->lost = IMPAIR_LOST_BURST;
	if (c->loss > 0 && impair_rng_chance(&g->rng[R_LOSS], c->loss) && !f->lost)
		f->lost = IMPAIR_LOST;
	if (f->lost)
		return;
	f->truncate = c->truncate;
	if (c->corrupt > 0 && impair_rng_chance(&g->rng[R_CORRUPT], c->corrupt)) {
		f->corrupt = 1;
		f->pick = impair_rng_next(&g->rng[R_CORRUPT]);
	}
	if (c->duplicate > 0)
		f->duplicate = impair_rng_chance(&g->rng[R_DUP], c->duplicate);
}

/* The heap, ordered by departure, then by arrival (seq). */
static int
before(const struct node *a, const struct node *b)
{
	return a->dep < b->dep || (a->dep == b->dep && a->seq < b->seq);
}

static void
place(struct impair *im, size_t i, struct node *n)
{
	im->heap[i] = n;
	n->idx = i;
}

static void
sift_up(struct impair *im, size_t i)
{
	struct node *n = im->heap[i];

	while (i > 0 && before(n, im->heap[(i - 1) / 2])) {
		place(im, i, im->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(im, i, n);
}

static void
sift_down(struct impair *im, size_t i)
{
	struct node *n = im->heap[i];
	size_t c;

	while ((c = 2 * i + 1) < im->n) {
		if (c + 1 < im->n && before(im->heap[c + 1], im->heap[c]))
			c++;
		if (!before(im->heap[c], n))
			break;
		place(im, i, im->heap[c]);
		i = c;
	}
	place(im, i, n);
}

static int
heap_push(struct impair *im, struct node *n)
{
	struct node **h;
	size_t cap;

	if (im->n == im->cap) {
		cap = im->cap ? im->cap * 2 : 256;
		if ((h = realloc(im->heap, cap * sizeof(*h))) == NULL)
			return -1;
		im->heap = h, im->cap = cap;
	}
	place(im, im->n++, n);
	sift_up(im, im->n - 1);
	return 0;
}

static void
heap_remove(struct impair *im, struct node *n)
{
	size_t i = n->idx;
	struct node *last = im->heap[--im->n];

	if (i == im->n)
		return;
	place(im, i, last);
	if (i > 0 && before(last, im->heap[(i - 1) / 2]))
		sift_up(im, i);
	else
		sift_down(im, i);
}

/* When a packet arriving now leaves: rate, then delay, in order. */
static uint64_t
departure(struct group *g, uint64_t now, size_t bytes)
{
	uint64_t t = now;

	if (g->c.rate != 0)
		t = impair_bucket_depart(&g->bucket, now, bytes);
	t += impair_delay_draw(&g->rng[R_DELAY], g->c.dist, g->c.delay, g->c.jitter);
	if (t < g->last_dep)
		t = g->last_dep;
	g->last_dep = t;
	return t;
}

static int
queue_full(const struct group *g, size_t bytes)
{
	return (g->c.queue_pkts != 0 && g->pkts + 1 > g->c.queue_pkts) ||
	    (g->c.queue_bytes != 0 && g->bytes + bytes > g->c.queue_bytes);
}

int
impair_hold(struct impair *im, int gi, uint64_t now, size_t bytes, void *item)
{
	struct group *g = &im->g[gi];
	struct node *n, **tail;

	if (queue_full(g, bytes)) {
		im->st.queue_full++;
		return errno = ENOBUFS, -1;
	}
	if ((n = im->spare) != NULL) {
		im->spare = n->next;
		memset(n, 0, sizeof(*n));
	} else if ((n = calloc(1, sizeof(*n))) == NULL)
		return -1;
	n->item = item;
	n->bytes = bytes;
	n->g = gi;
	n->seq = im->seq++;
	n->dep = departure(g, now, bytes);
	if (g->c.reorder > 0 && impair_rng_chance(&g->rng[R_REORDER], g->c.reorder)) {
		n->behind = g->c.reorder_gap;
		n->dep += IMPAIR_REORDER_MAX_US;
		for (tail = &g->back; *tail != NULL; tail = &(*tail)->next)
			;
		*tail = n;
		im->st.reordered++;
	}
	if (heap_push(im, n) < 0) {
		free(n);
		return errno = ENOMEM, -1;
	}
	if (n->dep > now)
		im->st.delayed++;
	g->pkts++;
	g->bytes += bytes;
	if (im->n > im->st.peak)
		im->st.peak = im->n;
	return 0;
}

uint64_t
impair_next(const struct impair *im)
{
	if (im->ready != NULL)
		return im->ready->dep;
	return im->n > 0 ? im->heap[0]->dep : UINT64_MAX;
}

/* n leaves the group's held back list (it is in it). */
static void
unlist(struct group *g, struct node *n)
{
	struct node **p;

	for (p = &g->back; *p != n; p = &(*p)->next)
		;
	*p = n->next;
	n->next = NULL;
}

/*
 * A packet of g that arrived as seq left at dep: those held back before it
 * arrived count it (the list is in arrival order); those it was the last
 * one for follow it.
 */
static void
count_down(struct impair *im, struct group *g, uint64_t seq, uint64_t dep)
{
	struct node **p = &g->back, *n;

	while ((n = *p) != NULL && n->seq < seq) {
		if (--n->behind > 0) {
			p = &n->next;
			continue;
		}
		*p = n->next;
		n->next = NULL;
		heap_remove(im, n);
		n->dep = dep;
		if (im->ready_tail != NULL)
			im->ready_tail->next = n;
		else
			im->ready = n;
		im->ready_tail = n;
	}
}

void *
impair_due(struct impair *im, uint64_t now, uint64_t *when)
{
	struct node *n;
	struct group *g;
	void *item;

	if ((n = im->ready) != NULL) {
		if ((im->ready = n->next) == NULL)
			im->ready_tail = NULL;
	} else if (im->n > 0 && im->heap[0]->dep <= now) {
		n = im->heap[0];
		heap_remove(im, n);
		g = &im->g[n->g];
		if (n->behind > 0)
			unlist(g, n);	/* held back as long as allowed */
		else
			count_down(im, g, n->seq, n->dep);
	} else {
		return NULL;
	}
	g = &im->g[n->g];
	g->pkts--;
	g->bytes -= n->bytes;
	*when = n->dep;
	item = n->item;
	n->next = im->spare;
	im->spare = n;
	return item;
}

uint64_t
impair_held(const struct impair *im)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < im->ngroups; i++)
		n += im->g[i].pkts;
	return n;
}

const struct impair_stats *
impair_stats(const struct impair *im)
{
	return &im->st;
}

void
impair_free(struct impair *im)
{
	struct node *n;
	size_t i;

	if (im == NULL)
		return;
	for (i = 0; i < im->n; i++)
		free(im->heap[i]);
	while ((n = im->ready) != NULL) {
		im->ready = n->next;
		free(n);
	}
	while ((n = im->spare) != NULL) {
		im->spare = n->next;
		free(n);
	}
	free(im->heap);
	free(im->g);
	free(im);
}
