/*
 * divert-impair - make a network bad on purpose, as one more pipe stage:
 * loss (independent or in bursts), delay and jitter, reorder, duplication,
 * a rate limit with its queue, corruption and truncation; per flow with
 * pcap filters, live or on a capture, the same every time with a seed.
 *
 *	divert-listen --rule 'output udp --dport 53' 53 |
 *	    divert-impair --loss 5% --delay 40ms --jitter 10ms | divert-inject
 *	divert-impair -r in.pcap -w out.pcap --seed 7 --reorder 2% --duplicate 1%
 *
 * The models and the scheduler are impair.h's; this file reads the stream,
 * says which group a record belongs to, damages its bytes as judged, holds
 * a copy until its departure and writes it then.  Live (the input is a
 * pipe or a socket), departures are on the monotonic clock and a timerfd
 * wakes the loop for the next one; offline (a file), time is the records'
 * own and nothing waits: each record leaves with its departure as its time
 * stamp.  A record keeps its context; a dropped one held by a live
 * listener is dropped there (inplace.h); a duplicate is a copy, never
 * answered in place.
 */
#include <argp.h>
#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <pcap/pcap.h>

#include "tool.h"
#include "edit.h"
#include "format_argp.h"
#include "impair.h"
#include "inplace.h"
#include "stream.h"

const char *argp_program_version = "divert-impair (divert) " DIVERT_VERSION;

#define MAX_GROUPS	16		/* -f groups, and the default one */
#define QUEUE_DEFAULT	1000		/* packets, as tc netem's limit */
#define BURST_DEFAULT	1500		/* bytes: one full-size packet */
#define MAX_DELAY_US	(3600LL * 1000000)	/* an hour */
#define MAX_AGE_US	1000000		/* a live record older than this counts from now */
#define MAX_LEAD_US	2000		/* the timer is armed this much early at most */
#define LATE_STEP_US	10		/* -v: live departures' lateness, in steps of this */
#define LATE_STEPS	1000		/* ...up to 10 ms (the last step: that or more) */

enum {
	OPT_LOSS = 256, OPT_LOSS_BURST, OPT_DELAY, OPT_JITTER, OPT_DIST, OPT_REORDER,
	OPT_DUP, OPT_RATE, OPT_BURST, OPT_QUEUE, OPT_CORRUPT, OPT_TRUNC, OPT_FIXCSUM,
	OPT_SEED
};

/* Which options a group was given (cross-checks in check_args). */
enum {
	G_LOSS = 1 << 0, G_LOSS_BURST = 1 << 1, G_DELAY = 1 << 2, G_JITTER = 1 << 3,
	G_DIST = 1 << 4, G_REORDER = 1 << 5, G_DUP = 1 << 6, G_RATE = 1 << 7,
	G_BURST = 1 << 8, G_QUEUE = 1 << 9, G_CORRUPT = 1 << 10, G_TRUNC = 1 << 11,
};
#define G_IMPAIRS	(G_LOSS | G_LOSS_BURST | G_DELAY | G_REORDER | G_DUP | G_RATE | \
			 G_QUEUE | G_CORRUPT | G_TRUNC)

static const struct argp_option options[] = {
	{ NULL, 0, NULL, 0, "Loss (P: a percentage, the % sign optional):", 1 },
	{ "loss", OPT_LOSS, "P", 0, "Drop each packet with probability P", 1 },
	{ "loss-burst", OPT_LOSS_BURST, "P,R", 0, "Drop in bursts (Gilbert-Elliott): a "
	    "packet enters the bad state with probability P, leaves it with R; every "
	    "packet in the bad state is lost (mean burst 1/R packets)", 1 },
	{ NULL, 0, NULL, 0, "Delay (times: us, ms or s; a bare number is ms):", 2 },
	{ "delay", OPT_DELAY, "D", 0, "Hold each packet D (in order: never past the "
	    "one before it)", 2 },
	{ "distribution", OPT_DIST, "NAME", 0, "Of the jitter: uniform (D-J..D+J, the "
	    "default), normal (standard deviation J) or pareto (standard deviation J, "
	    "a long tail)", 2 },
	{ "jitter", OPT_JITTER, "J", 0, "Vary --delay by J", 2 },
	{ "reorder", OPT_REORDER, "P[,N]", 0, "Hold a packet back with probability P "
	    "until the next N packets (default 1) have left, at most 100 ms", 2 },
	{ NULL, 0, NULL, 0, "Rate (bit, kbit, mbit, gbit; bps, kbps... are bytes):", 3 },
	{ "burst", OPT_BURST, "BYTES", 0, "The token bucket's size (default 1500; K, M, "
	    "G: KiB, MiB, GiB)", 3 },
	{ "queue", OPT_QUEUE, "N|BYTES", 0, "Hold at most N packets (default 1000), or "
	    "BYTES with a unit (1500B, 64K, 1M); a packet that finds it full is dropped", 3 },
	{ "rate", OPT_RATE, "RATE", 0, "Let packets go at RATE at most (their IP "
	    "bytes), e.g. 8mbit", 3 },
	{ NULL, 0, NULL, 0, "Damage:", 4 },
	{ "corrupt", OPT_CORRUPT, "P", 0, "Flip one random bit of the IP payload with "
	    "probability P", 4 },
	{ "duplicate", OPT_DUP, "P", 0, "Send a packet twice with probability P", 4 },
	{ "fix-checksums", OPT_FIXCSUM, NULL, 0, "Recompute the checksums of corrupted and "
	    "truncated packets (without it their transport checksum is wrong)", 4 },
	{ "truncate", OPT_TRUNC, "N", 0, "Cut packets longer than N bytes to N (never "
	    "below their IP header)", 4 },
	{ NULL, 0, NULL, 0, "Selection and files:", 5 },
	{ "filter", 'f', "EXPR", 0, "Start a group: the impairments after it apply to the "
	    "packets matching the pcap filter EXPR (the first group that matches wins); "
	    "those before any -f, to the packets no filter matches", 5 },
	{ "read", 'r', "FILE", 0, "Read the stream from FILE instead of stdin (offline)", 5 },
	{ "seed", OPT_SEED, "N", 0, "Seed the random choices (0..2^64-1): the same input "
	    "and seed give the same output offline", 5 },
	{ "verbose", 'v', NULL, 0, "Say at start whether the run is live or offline, and "
	    "its seed; at exit, how late live packets left", 5 },
	{ "write", 'w', "FILE", 0, "Write the stream to FILE instead of stdout", 5 },
	{ 0 }
};

struct group_args {
	const char		*filter;	/* NULL: the default group */
	unsigned		 given;		/* G_* */
	struct impair_conf	 c;
};

struct args {
	struct group_args	 g[MAX_GROUPS];
	int			 ngroups;	/* g[0] is the default group */
	const char		*rfile, *wfile;
	int			 fix_checksums, verbose, seeded;
	uint64_t		 seed;
	struct format_choice	 fmt;		/* -F */
};

/* A group at run time: its filter compiled for the stream's link type. */
struct group {
	int			 filtered;
	struct bpf_program	 prog;
	int			 impairs;	/* it was given impairments */
};

/* A record held until it leaves: the record's bytes copied, as a struct pkt. */
struct held {
	struct pkt	 p;
	size_t		 cap;		/* room in rec */
	struct held	*next;		/* on the spare list */
	uint8_t		 rec[];
};

struct impairer {
	struct group		 g[MAX_GROUPS];
	int			 ngroups;
	struct impair		*im;
	struct stream_in	*in;
	struct stream_out	*out;
	struct inplace		*ip;		/* drops in place; NULL: not live */
	int			 offline;
	int			 tfd;		/* live: the timerfd of the next departure */
	uint64_t		 lead;		/* live: the timer's wake-up latency, us */
	uint64_t		 upto;		/* live: release up to this departure now */
	uint64_t		 late[LATE_STEPS + 1];	/* live: departures by lateness */
	int			 fix;		/* --fix-checksums */
	struct edits		 fixer;		/* mangle() that only fixes checksums */
	int			 out_errno;
	int			 broken;
	uint64_t		 clock;		/* the last arrival, us */
	struct held		*spare;		/* written copies, reused: no allocation once warm */
	uint64_t		 read, passed, lost, lost_burst, duplicated, corrupted,
				 truncated, early;
};

/* ---- the command line ------------------------------------------------- */

/* After getopt's own message: the same hint usage_errx() gives, and exit 64. */
static void __attribute__((noreturn))
usage_hint(void)
{
	fprintf(stderr, "Try '%s --help' or '%s --usage' for more information.\n",
	    program_invocation_short_name, program_invocation_short_name);
	exit(EX_USAGE_ERR);
}

static double
percent(const char *opt, const char *arg)
{
	double p = parse_percent(arg);

	if (p < 0)
		usage_errx("bad --%s '%s': want a percentage, 0 to 100 (e.g. 5%% or 0.5%%)",
		    opt, arg);
	return p;
}

static uint64_t
duration(const char *opt, const char *arg)
{
	long long us = parse_duration_us(arg, MAX_DELAY_US);

	if (us < 0)
		usage_errx("bad --%s '%s': want a time up to an hour, e.g. 20ms, 500us, 1.5s",
		    opt, arg);
	return (uint64_t)us;
}

/* "P,R" for --loss-burst, "P[,N]" for --reorder: the part after the comma, or NULL. */
static char *
split_comma(char *arg)
{
	char *comma = strchr(arg, ',');

	if (comma != NULL)
		*comma++ = '\0';
	return comma;
}

static void
parse_queue(struct impair_conf *c, char *arg)
{
	size_t n = strlen(arg);
	long pkts = parse_ulong(arg, 1, 10000000);

	c->queue_pkts = c->queue_bytes = 0;
	if (pkts > 0) {
		c->queue_pkts = (uint64_t)pkts;
		return;
	}
	if (n > 1 && (arg[n - 1] == 'B' || arg[n - 1] == 'b'))
		arg[n - 1] = '\0';
	if ((c->queue_bytes = parse_size(arg)) == 0)
		usage_errx("bad --queue '%s': want packets (1..10000000) or bytes with a "
		    "unit (1500B, 64K, 1M)", arg);
}

static void
parse_seed(struct args *a, const char *arg)
{
	char *end;

	errno = 0;
	a->seed = strtoull(arg, &end, 0);
	if (*arg < '0' || *arg > '9' || errno != 0 || *end != '\0' ||
	    (arg[0] == '0' && arg[1] != '\0' && arg[1] != 'x' && arg[1] != 'X'))
		usage_errx("bad --seed '%s': want a number 0..18446744073709551615", arg);
	a->seeded = 1;
}

/* An impairment of the group being given (the last -f's, or the default one). */
static void
parse_impairment(struct args *a, int key, char *arg)
{
	struct group_args *g = &a->g[a->ngroups - 1];
	struct impair_conf *c = &g->c;
	char *second;
	long long rate;
	long n;

	switch (key) {
	case OPT_LOSS:
		c->loss = percent("loss", arg);
		g->given |= G_LOSS;
		break;
	case OPT_LOSS_BURST:
		if ((second = split_comma(arg)) == NULL)
			usage_errx("bad --loss-burst '%s': want P,R (enter and leave the "
			    "bad state, percentages)", arg);
		c->ge_enter = percent("loss-burst", arg);
		c->ge_leave = percent("loss-burst", second);
		if (c->ge_enter == 0 || c->ge_leave == 0)
			usage_errx("bad --loss-burst '%s,%s': both P and R must be above 0 "
			    "(R 0 would never leave the bad state)", arg, second);
		g->given |= G_LOSS_BURST;
		break;
	case OPT_DELAY:
		c->delay = duration("delay", arg);
		g->given |= G_DELAY;
		break;
	case OPT_JITTER:
		c->jitter = duration("jitter", arg);
		g->given |= G_JITTER;
		break;
	case OPT_DIST:
		if (strcmp(arg, "uniform") == 0)
			c->dist = IMPAIR_UNIFORM;
		else if (strcmp(arg, "normal") == 0)
			c->dist = IMPAIR_NORMAL;
		else if (strcmp(arg, "pareto") == 0)
			c->dist = IMPAIR_PARETO;
		else
			usage_errx("bad --distribution '%s': want uniform, normal or pareto", arg);
		g->given |= G_DIST;
		break;
	case OPT_REORDER:
		second = split_comma(arg);
		c->reorder = percent("reorder", arg);
		c->reorder_gap = 1;
		if (second != NULL) {
			if ((n = parse_ulong(second, 1, 1000)) < 0)
				usage_errx("bad --reorder gap '%s': want 1..1000 packets", second);
			c->reorder_gap = (unsigned)n;
		}
		g->given |= G_REORDER;
		break;
	case OPT_DUP:
		c->duplicate = percent("duplicate", arg);
		g->given |= G_DUP;
		break;
	case OPT_RATE:
		if ((rate = parse_rate_bps(arg, 10000000000000LL)) < 0)
			usage_errx("bad --rate '%s': want a rate up to 10tbit, e.g. 8mbit, "
			    "100kbit, 1gbit, 125kbps", arg);
		c->rate = (uint64_t)rate;
		g->given |= G_RATE;
		break;
	case OPT_BURST:
		if ((c->burst = parse_size(arg)) == 0)
			usage_errx("bad --burst '%s': want bytes, 1 to 1T (suffix K, M or G)", arg);
		g->given |= G_BURST;
		break;
	case OPT_QUEUE:
		parse_queue(c, arg);
		g->given |= G_QUEUE;
		break;
	case OPT_CORRUPT:
		c->corrupt = percent("corrupt", arg);
		g->given |= G_CORRUPT;
		break;
	case OPT_TRUNC:
		if ((n = parse_ulong(arg, 1, 262144)) < 0)
			usage_errx("bad --truncate '%s': want bytes, 1..262144", arg);
		c->truncate = (size_t)n;
		g->given |= G_TRUNC;
		break;
	}
}

static error_t
parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;

	switch (key) {
	case OPT_LOSS: case OPT_LOSS_BURST: case OPT_DELAY: case OPT_JITTER: case OPT_DIST:
	case OPT_REORDER: case OPT_DUP: case OPT_RATE: case OPT_BURST: case OPT_QUEUE:
	case OPT_CORRUPT: case OPT_TRUNC:
		parse_impairment(a, key, arg);
		break;
	case 'f':
		if (a->ngroups == MAX_GROUPS)
			usage_errx("too many -f groups: at most %d", MAX_GROUPS - 1);
		a->g[a->ngroups++].filter = arg;
		break;
	case OPT_FIXCSUM: a->fix_checksums = 1; break;
	case OPT_SEED: parse_seed(a, arg); break;
	case 'r': a->rfile = arg; break;
	case 'w': a->wfile = arg; break;
	case 'v': a->verbose = 1; break;
	case ARGP_KEY_INIT:
		/* getopt has said what is wrong; main prints our hint (as divert-mangle). */
		state->err_stream = NULL;
		state->child_inputs[0] = &a->fmt;
		a->ngroups = 1;
		break;
	case ARGP_KEY_ARG:
		usage_errx("unexpected argument '%s': the stream comes on stdin, or -r FILE", arg);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp_child children[] = { { &format_argp, 0, NULL, 5 }, { 0 } };

static const struct argp argp = { options, parse_opt, NULL,
	"Impair a pcapng or pcap stream (stdin to stdout): lose, delay, reorder, "
	"duplicate, throttle, corrupt or truncate its packets, e.g.\n\n"
	"  divert-listen 53 | divert-impair --loss 5% --delay 40ms | divert-inject\n\v"
	"A packet meets, in this order: loss (bursts, then independent), truncation, "
	"corruption, duplication, the queue and the rate, delay and jitter, reorder.  "
	"Live (a pipe or socket on stdin) packets leave on the clock; offline (a file) "
	"at once, their time stamps rewritten to when they would have left.  Counters "
	"go to stderr at exit.",
	children, NULL, NULL };

/* The name of the group for messages: "the default group" or "-f 'EXPR'". */
static const char *
group_name(const struct group_args *g, char *buf, size_t size)
{
	if (g->filter == NULL)
		return "the options before any -f";
	snprintf(buf, size, "-f '%s'", g->filter);
	return buf;
}

/* Every check on the command line, in one place; exits 64 on a bad one. */
static void
check_args(struct args *a, struct impairer *m)
{
	struct group_args *g;
	char buf[128];
	const char *name;
	int i;

	for (i = 0; i < a->ngroups; i++) {
		g = &a->g[i];
		name = group_name(g, buf, sizeof(buf));
		if (g->filter != NULL && !(g->given & G_IMPAIRS))
			usage_errx("%s: give the impairments of its packets after it "
			    "(e.g. -f 'udp port 53' --loss 100%%)", name);
		if ((g->given & G_JITTER) && !(g->given & G_DELAY))
			usage_errx("%s: --jitter varies --delay: give --delay too", name);
		if ((g->given & G_DIST) && !(g->given & G_JITTER))
			usage_errx("%s: --distribution shapes --jitter: give --jitter too", name);
		if ((g->given & G_BURST) && !(g->given & G_RATE))
			usage_errx("%s: --burst is the --rate's bucket: give --rate too", name);
		if (!(g->given & G_QUEUE))
			g->c.queue_pkts = QUEUE_DEFAULT;
		if (!(g->given & G_BURST))
			g->c.burst = BURST_DEFAULT;
		m->g[i].impairs = (g->given & G_IMPAIRS) != 0;
	}
	m->ngroups = a->ngroups;
	m->fix = a->fix_checksums;
	if (same_file(a->rfile, a->wfile))
		usage_errx("%s%s%s is the input: writing it would destroy it; "
		    "write to another file", a->wfile ? "-w '" : "standard output",
		    a->wfile ? a->wfile : "", a->wfile ? "'" : "");
}

/* ---- per record ----------------------------------------------------------- */

static void
compile_filters(struct impairer *m, const struct args *a, int dlt)
{
	pcap_t *dead = pcap_open_dead(dlt, STREAM_SNAPLEN);
	int i;

	if (dead == NULL)
		errx(EX_RUNTIME, "out of memory");
	for (i = 1; i < m->ngroups; i++) {
		if (pcap_compile(dead, &m->g[i].prog, a->g[i].filter, 1,
		    PCAP_NETMASK_UNKNOWN) < 0)
			usage_errx("bad filter expression '%s' for link type %s: %s",
			    a->g[i].filter, pcap_datalink_val_to_name(dlt) ?: "?",
			    pcap_geterr(dead));
		m->g[i].filtered = 1;
	}
	pcap_close(dead);
}

/* The first group whose filter matches, else the default one if it impairs; -1: none. */
static int
group_of(const struct impairer *m, const struct pkt *p)
{
	struct pcap_pkthdr h;
	int i;

	h.caplen = (bpf_u_int32)(p->l2len + p->len);
	h.len = (bpf_u_int32)(h.caplen + p->a.cut);
	for (i = 1; i < m->ngroups; i++)
		if (pcap_offline_filter(&m->g[i].prog, &h, p->rec) != 0)
			return i;
	return m->g[0].impairs ? 0 : -1;
}

/* Truncate and corrupt an IP packet as judged; its checksums fixed if asked. */
static void
damage(struct impairer *m, struct pkt *p, const struct impair_fate *f)
{
	size_t off;
	int changed = 0;

	if ((p->a.proto != ETH_P_IP && p->a.proto != ETH_P_IPV6) ||
	    (f->truncate == 0 && !f->corrupt))
		return;
	if (f->truncate != 0 && impair_truncate(p->data, &p->len, &p->a.cut, f->truncate) > 0) {
		m->truncated++;
		changed = 1;
	}
	if (f->corrupt && (off = impair_payload_off(p->data, p->len, p->a.cut)) != 0 &&
	    off < p->len) {
		impair_flip_bit(p->data, p->len, off, f->pick);
		m->corrupted++;
		changed = 1;
	}
	if (changed && m->fix)
		(void)mangle(&m->fixer, p->data, p->len, p->a.cut, NULL);
}

/* Room for a copy of n bytes: a spare one (grown if need be) or a new one. */
static struct held *
held_get(struct impairer *m, size_t n)
{
	struct held *h = m->spare;

	if (h != NULL)
		m->spare = h->next;
	if (h == NULL || h->cap < n) {
		if ((h = realloc(h, sizeof(*h) + n)) == NULL)
			err(EX_RUNTIME, "cannot hold a packet");
		h->cap = n;
	}
	return h;
}

static void
held_put(struct impairer *m, struct held *h)
{
	h->next = m->spare;
	m->spare = h;
}

/* Hold a copy of p in group g until it is due; 0, or -1 when the queue was full. */
static int
hold(struct impairer *m, int g, const struct pkt *p, uint64_t now)
{
	struct held *h = held_get(m, p->l2len + p->len);

	memcpy(h->rec, p->rec, p->l2len);
	memcpy(h->rec + p->l2len, p->data, p->len);
	h->p = *p;
	h->p.rec = h->rec;
	h->p.data = h->rec + p->l2len;
	if (impair_hold(m->im, g, now, p->len + p->a.cut, h) == 0)
		return 0;
	if (errno == ENOMEM)
		err(EX_RUNTIME, "cannot hold a packet");
	held_put(m, h);
	return -1;
}

/* One record arriving at now (us): passed, dropped, or held (and maybe its duplicate). */
static void
arrive(struct impairer *m, struct pkt *p, uint64_t now)
{
	struct impair_fate f;
	int g;

	if ((g = group_of(m, p)) < 0) {
		m->passed++;
		if (m->out_errno == 0 && stream_out_write(m->out, p) < 0)
			m->out_errno = errno;
		return;
	}
	impair_judge(m->im, g, &f);
	if (f.lost) {
		if (f.lost == IMPAIR_LOST_BURST)
			m->lost_burst++;
		else
			m->lost++;
		inplace_drop(m->ip, &p->a);	/* a held packet is dropped where it waits */
		return;
	}
	damage(m, p, &f);
	if (hold(m, g, p, now) < 0)
		inplace_drop(m->ip, &p->a);	/* tail drop, counted by the engine */
	if (f.duplicate) {
		p->a.holder = 0;		/* a copy: the packet itself is answered once */
		m->duplicated++;
		(void)hold(m, g, p, now);
	}
}

/* Write every record due at now (offline: with its departure as its time stamp). */
static void
release(struct impairer *m, uint64_t now)
{
	struct held *h;
	uint64_t when, late;

	while ((h = impair_due(m->im, now, &when)) != NULL) {
		if (m->offline) {
			h->p.a.ts.tv_sec = (time_t)(when / 1000000);
			h->p.a.ts.tv_usec = (suseconds_t)(when % 1000000);
		} else if (now != UINT64_MAX) {
			late = now > when ? (now - when) / LATE_STEP_US : 0;
			m->late[late < LATE_STEPS ? late : LATE_STEPS]++;
		}
		if (m->out_errno == 0 && stream_out_write(m->out, &h->p) < 0)
			m->out_errno = errno;
		held_put(m, h);
	}
}

static void
flush_out(struct impairer *m)
{
	if (m->out_errno == 0 && stream_out_flush(m->out) < 0)
		m->out_errno = errno;
	inplace_flush(m->ip);
}

/* ---- offline: the records' own time ---------------------------------------- */

static uint64_t
record_us(const struct pkt *p)
{
	if (p->a.ts.tv_sec < 0)
		return 0;
	return (uint64_t)p->a.ts.tv_sec * 1000000 + (uint64_t)p->a.ts.tv_usec;
}

static void
run_offline(struct impairer *m)
{
	struct pkt p;
	uint64_t t;
	int rc;

	while (m->out_errno == 0 && !stop_signalled && (rc = stream_in_read(m->in, &p)) != 0) {
		if (rc < 0) {
			m->broken = !stop_signalled;	/* a signal cuts the read short */
			break;
		}
		m->read++;
		/* A capture out of order does not take time back. */
		if ((t = record_us(&p)) < m->clock)
			t = m->clock;
		m->clock = t;
		release(m, t);
		arrive(m, &p, t);
	}
}

/* ---- live: the monotonic clock and a timer ------------------------------- */

static uint64_t
clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * When a live record arrived: when its packet was queued (its time stamp),
 * so the listener's own latency is part of the delay rather than added to
 * it; from now when the stamp is not recent (a replayed capture).
 */
static uint64_t
arrival(struct impairer *m, const struct pkt *p)
{
	uint64_t now = clock_us(CLOCK_MONOTONIC), wall = clock_us(CLOCK_REALTIME);
	uint64_t ts = record_us(p), t = now;

	if (ts <= wall && wall - ts <= MAX_AGE_US && wall - ts <= now)
		t = now - (wall - ts);
	if (t < m->clock)
		t = m->clock;
	return m->clock = t;
}

/* Wake at the next departure (absolute, monotonic), or never. */
static void
arm_timer(struct impairer *m, uint64_t at)
{
	struct itimerspec its = { 0 };

	if (at != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(at / 1000000);
		its.it_value.tv_nsec = (long)(at % 1000000) * 1000;
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;	/* 0 would disarm it */
	}
	if (timerfd_settime(m->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		err(EX_RUNTIME, "timerfd_settime");
}

/*
 * Nothing to read: sleep until the input is readable (when still open) or
 * the next packet is due, whichever comes first.  A wake-up by a timer
 * comes late, by ~200 us on this project's machines (a virtual CPU halted
 * while idle): the timer is armed that much ahead, as measured on the
 * last wake-ups, so the packet leaves on time on the median instead of
 * always late; one due within that lead leaves at once.
 */
static void
wait_live(struct impairer *m, int input_open)
{
	struct pollfd pfd[2];
	uint64_t next = impair_next(m->im), expirations, at, late;
	int rc;

	if (next != UINT64_MAX && next <= clock_us(CLOCK_MONOTONIC) + m->lead) {
		m->upto = next;
		return;
	}
	at = next == UINT64_MAX ? next : next - m->lead;
	arm_timer(m, at);
	if (input_open && m->ip != NULL) {
		/* Live, the listeners are watched too: one that leaves is left at once. */
		rc = inplace_wait_also(m->ip, -1, m->tfd);
	} else {
		pfd[0] = (struct pollfd){ .fd = input_open ? STDIN_FILENO : -1, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = m->tfd, .events = POLLIN };
		rc = poll_unless_stopped(pfd, 2, -1, 0);
	}
	if (rc < 0 && errno != EINTR)
		err(EX_RUNTIME, "poll");
	if (read(m->tfd, &expirations, sizeof(expirations)) < 0) {
		if (errno != EAGAIN)
			err(EX_RUNTIME, "reading the timer");
		return;			/* the input woke us */
	}
	/* How late the timer woke us: the lead follows it (1/8 of each new sample). */
	late = clock_us(CLOCK_MONOTONIC) - at;
	if (late > MAX_LEAD_US)
		late = MAX_LEAD_US;
	m->lead = (m->lead * 7 + late) / 8;
	m->upto = next;
}

static void
run_live(struct impairer *m)
{
	struct pkt p;
	uint64_t now;
	int rc, open = 1;

	while (m->out_errno == 0 && !stop_signalled) {
		now = clock_us(CLOCK_MONOTONIC);
		release(m, now > m->upto ? now : m->upto);
		m->upto = 0;
		if (!open && impair_held(m->im) == 0)
			break;
		if (!open || stream_in_idle(m->in)) {
			flush_out(m);		/* the reader sees everything due so far */
			wait_live(m, open);
			continue;
		}
		if ((rc = stream_in_read(m->in, &p)) <= 0) {
			m->broken = rc < 0 && !stop_signalled;
			open = 0;		/* what is held still leaves on time */
			continue;
		}
		m->read++;
		arrive(m, &p, arrival(m, &p));
	}
	/* A stop: what is still held goes at once (main), counted. */
	if (stop_signalled)
		m->early = impair_held(m->im);
}

/* ---- the report ----------------------------------------------------------- */

/* Live departures timed (-v). */
static uint64_t
departures(const struct impairer *m)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i <= LATE_STEPS; i++)
		n += m->late[i];
	return n;
}

/* The lateness (us) that fraction q of the live departures did not exceed. */
static uint64_t
late_quantile(const struct impairer *m, double q)
{
	uint64_t n = departures(m), seen = 0;
	int i;

	for (i = 0; i <= LATE_STEPS; i++)
		if ((seen += m->late[i]) >= q * (double)n)
			break;
	return (uint64_t)i * LATE_STEP_US;
}

static void
report(const struct impairer *m, int verbose)
{
	const char *me = program_invocation_short_name;
	const struct impair_stats *s = impair_stats(m->im);
	uint64_t written = stream_out_records_out(m->out);

	fprintf(stderr, "%s: %ju read, %ju written; %ju passed untouched, %ju delayed, "
	    "%ju reordered, %ju duplicated, %ju corrupted, %ju truncated\n", me,
	    (uintmax_t)m->read, (uintmax_t)written, (uintmax_t)m->passed,
	    (uintmax_t)s->delayed, (uintmax_t)s->reordered, (uintmax_t)m->duplicated,
	    (uintmax_t)m->corrupted, (uintmax_t)m->truncated);
	fprintf(stderr, "%s: %ju dropped: %ju lost, %ju lost in bursts, %ju queue full; "
	    "at most %ju held at once\n", me,
	    (uintmax_t)(m->lost + m->lost_burst + s->queue_full), (uintmax_t)m->lost,
	    (uintmax_t)m->lost_burst, (uintmax_t)s->queue_full, (uintmax_t)s->peak);
	if (m->early > 0)
		fprintf(stderr, "%s: %ju held at the stop went at once\n", me,
		    (uintmax_t)m->early);
	if (verbose && departures(m) > 0)
		fprintf(stderr, "%s: departures late by %ju us on the median, %ju us at the "
		    "99th percentile (timer lead %ju us)\n", me, (uintmax_t)late_quantile(m, 0.5),
		    (uintmax_t)late_quantile(m, 0.99), (uintmax_t)m->lead);
	if (inplace_dropped(m->ip) > 0)
		fprintf(stderr, "%s: %ju of them dropped in place, in the kernel\n", me,
		    (uintmax_t)inplace_dropped(m->ip));
}

/* The input is live when it comes from a process now: a pipe or a socket. */
static int
input_is_live(const char *rfile)
{
	struct stat st;

	if (rfile != NULL && strcmp(rfile, "-") != 0)
		return 0;
	return fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

int
main(int argc, char **argv)
{
	static struct impairer m;	/* the fixer's maps are large: not on the stack */
	static struct args a;
	struct impair_conf conf[MAX_GROUPS];
	char why[512];
	struct held *h;
	uint64_t unwritten;
	int i, status = 0;

	argv[0] = program_invocation_short_name;	/* getopt's messages: "divert-impair: " */
	if (argp_parse(&argp, argc, argv, 0, NULL, &a) != 0)
		usage_hint();
	check_args(&a, &m);
	catch_stop_signals();		/* counters even on SIGINT; a gone reader is EPIPE */

	if (!a.seeded && getrandom(&a.seed, sizeof(a.seed), 0) != sizeof(a.seed))
		a.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	m.offline = !input_is_live(a.rfile);
	if (a.verbose)
		fprintf(stderr, "%s: %s, seed %" PRIu64 "\n", program_invocation_short_name,
		    m.offline ? "offline" : "live", a.seed);
	edits_init(&m.fixer);
	m.fixer.fix_checksums = 1;
	edits_ready(&m.fixer);

	if ((m.in = stream_in_open(a.rfile, why, sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);
	compile_filters(&m, &a, stream_in_linktype(m.in));
	if ((m.out = stream_out_open(a.wfile, stream_in_linktype(m.in), a.fmt.format, why,
	    sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);
	for (i = 0; i < m.ngroups; i++)
		conf[i] = a.g[i].c;
	if ((m.im = impair_new(conf, m.ngroups, a.seed)) == NULL)
		err(EX_RUNTIME, "out of memory");

	if (m.offline) {
		run_offline(&m);
	} else {
		m.ip = inplace_new(STDIN_FILENO, 0);
		if ((m.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
			err(EX_RUNTIME, "timerfd_create");
		/* The timer is the delay: no slack on top (the default is 50 us). */
		prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
		run_live(&m);
	}
	release(&m, UINT64_MAX);	/* offline: the rest; after a stop: at once */
	inplace_flush(m.ip);
	/* What a stop left unwritten is counted as such (stream.h). */
	if (stream_out_flush(m.out) < 0 && m.out_errno == 0)
		m.out_errno = errno;
	unwritten = stream_out_discard(m.out);

	report(&m, a.verbose);
	if (unwritten > 0)
		fprintf(stderr, "%s: %ju of them not written: stopped, or the reader "
		    "left\n", program_invocation_short_name, (uintmax_t)unwritten);
	if (m.broken) {
		warnx("%s: what came before was written", stream_in_error(m.in));
		status = EX_RUNTIME;
	}
	if (stream_out_finish(m.out, m.out_errno, "the stream") != 0)
		status = EX_RUNTIME;
	inplace_free(m.ip);
	stream_in_close(m.in);
	impair_free(m.im);
	while ((h = m.spare) != NULL) {
		m.spare = h->next;
		free(h);
	}
	for (i = 1; i < m.ngroups; i++)
		pcap_freecode(&m.g[i].prog);
	if (m.tfd > 0)
		close(m.tfd);
	return status;
}
