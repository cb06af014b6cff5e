/*
 * impair.h - divert-impair's models: a seeded generator, delay
 * distributions, the Gilbert-Elliott loss model, a token bucket, and the
 * scheduler that says when each held packet leaves.  Pure code: time is
 * the caller's (microseconds, the wall clock live, the records' own time
 * stamps offline), so a seed and an input give one output.
 *
 * One packet of a group, in this order (divert-impair(1) documents it):
 *   1. loss: the burst model's state moves, a packet in its bad state is
 *      lost; else independent loss (impair_judge);
 *   2. truncation, then corruption, then duplication (impair_judge: the
 *      caller edits the bytes, and holds a copy for a duplicate);
 *   3. the group's queue: a packet that finds it full is dropped (tail
 *      drop), then the rate: the token bucket says when it may go;
 *   4. delay and jitter on top, never overtaking the group's previous
 *      packet (in order);
 *   5. reorder: a packet is held back until the next N packets of its
 *      group have left (at most IMPAIR_REORDER_MAX_US), then leaves right
 *      after them  (3-5: impair_hold).
 * Every kind of decision draws from its own generator, so that adding an
 * impairment changes none of the others' choices for the same seed.
 */
#ifndef DIVERT_IMPAIR_H
#define DIVERT_IMPAIR_H

#include <stddef.h>
#include <stdint.h>

/* ---- the generator: xoshiro256** (Blackman and Vigna, 2018) ---------- */

struct impair_rng {
	uint64_t	s[4];
};

/* Seed the four words from one with splitmix64 (never all zero). */
void impair_rng_seed(struct impair_rng *r, uint64_t seed);

/* The next 64 random bits. */
uint64_t impair_rng_next(struct impair_rng *r);

/* Uniform in [0, 1), 53 bits. */
double impair_rng_double(struct impair_rng *r);

/* 1 with probability p (0: never, 1: always), else 0; one draw either way. */
int impair_rng_chance(struct impair_rng *r, double p);

/* A standard normal variate (Marsaglia's polar method). */
double impair_rng_normal(struct impair_rng *r);

/* ---- delays ----------------------------------------------------------- */

enum impair_dist {
	IMPAIR_UNIFORM = 0,	/* delay - jitter .. delay + jitter */
	IMPAIR_NORMAL,		/* mean delay, standard deviation jitter */
	IMPAIR_PARETO,		/* mean delay, standard deviation jitter, a long tail
				   above (Pareto of shape 3, shifted and scaled) */
};

/* One delay in microseconds drawn from dist around delay with spread jitter; 0 at least. */
uint64_t impair_delay_draw(struct impair_rng *r, enum impair_dist dist, uint64_t delay,
    uint64_t jitter);

/* ---- loss in bursts: Gilbert-Elliott, all lost in the bad state ------- */

struct impair_ge {
	double		enter, leave;	/* per packet: good -> bad, bad -> good */
	int		bad;
};

/* Move the state for one packet; 1 when that packet is lost (the state is bad). */
int impair_ge_lost(struct impair_ge *ge, struct impair_rng *r);

/* ---- the token bucket -------------------------------------------------- */

struct impair_bucket {
	uint64_t	rate;		/* bits per second */
	__int128	cap, credit;	/* bits x 10^6 (bit-microseconds per second) */
	uint64_t	t;		/* when credit was last brought up to date, us */
	uint64_t	free_at;	/* the previous packet's departure: FIFO */
};

/* A bucket of burst bytes, full, filling at rate bits per second. */
void impair_bucket_init(struct impair_bucket *b, uint64_t rate, uint64_t burst);

/*
 * When a packet of bytes arriving at now (us) leaves: not before the one
 * before it, and once the bucket holds its size (a packet larger than the
 * bucket waits for a full one and leaves it in debt).  Over any interval
 * of W us, at most burst + rate x W bytes leave.
 */
uint64_t impair_bucket_depart(struct impair_bucket *b, uint64_t now, size_t bytes);

/* ---- packets ------------------------------------------------------------ */

/* Offset of the IP payload (what --corrupt may change) in an IP packet; 0 when not IP. */
size_t impair_payload_off(const uint8_t *ip, size_t len, size_t cut);

/* Flip bit pick % (bits from off to len) of ip[off..len); nothing when empty. */
void impair_flip_bit(uint8_t *ip, size_t len, size_t off, uint64_t pick);

/*
 * Cut an IP packet of len bytes captured (cut more on the wire) to n bytes
 * on the wire, never below its IP header: its length field and the IPv4
 * header checksum follow.  The new wire length, or 0 when it is not IP or
 * already that short.  *len and *cut are updated.
 */
size_t impair_truncate(uint8_t *ip, size_t *len, uint32_t *cut, size_t n);

/* ---- a group's impairments, and the scheduler of all groups ------------- */

#define IMPAIR_REORDER_MAX_US	100000	/* a packet held back leaves after this at most */

struct impair_conf {
	double		loss;			/* --loss, 0..1 */
	double		ge_enter, ge_leave;	/* --loss-burst; ge_enter 0: off */
	uint64_t	delay, jitter;		/* us */
	enum impair_dist dist;
	double		reorder;
	unsigned	reorder_gap;		/* packets a held back one falls behind */
	double		duplicate;
	uint64_t	rate;			/* bits per second; 0: no limit */
	uint64_t	burst;			/* bytes */
	uint64_t	queue_pkts, queue_bytes;	/* held at once, at most; 0: no limit */
	double		corrupt;
	size_t		truncate;		/* bytes; 0: none */
};

/* What impair_judge decided for one packet. */
enum { IMPAIR_KEEP = 0, IMPAIR_LOST, IMPAIR_LOST_BURST };
struct impair_fate {
	int		lost;		/* IMPAIR_KEEP, IMPAIR_LOST, IMPAIR_LOST_BURST */
	size_t		truncate;	/* cut it to this many bytes; 0: no */
	int		corrupt;	/* flip one bit: impair_flip_bit(..., pick) */
	uint64_t	pick;
	int		duplicate;	/* a copy follows it (held on its own) */
};

struct impair_stats {
	uint64_t	delayed;	/* held past their arrival */
	uint64_t	reordered;	/* held back behind later packets */
	uint64_t	queue_full;	/* refused by impair_hold: tail drops */
	uint64_t	peak;		/* packets held at once, at most */
};

struct impair;

/* The engine for ngroups groups; every generator seeded from seed.  NULL: out of memory. */
struct impair *impair_new(const struct impair_conf *groups, int ngroups, uint64_t seed);

/* Decide loss, truncation, corruption and duplication for one packet of group g. */
void impair_judge(struct impair *im, int g, struct impair_fate *f);

/*
 * Hold item, a packet of bytes on the wire of group g arriving at now (us,
 * never less than the last call's), until it is due: rate, delay, order and
 * reorder say when.  0, or -1 when the group's queue is full (errno
 * ENOBUFS: nothing held) or out of memory (ENOMEM).
 */
int impair_hold(struct impair *im, int g, uint64_t now, size_t bytes, void *item);

/* The earliest departure of what is held (UINT64_MAX: nothing). */
uint64_t impair_next(const struct impair *im);

/*
 * The next item due at now, in departure order (a held back packet right
 * after the one that lets it go), its departure in *when; NULL: none due.
 * now UINT64_MAX: everything, in order.
 */
void *impair_due(struct impair *im, uint64_t now, uint64_t *when);

/* Packets held now. */
uint64_t impair_held(const struct impair *im);

const struct impair_stats *impair_stats(const struct impair *im);

/* Free the engine; the items still held are the caller's (impair_due(UINT64_MAX) first). */
void impair_free(struct impair *im);

#endif
