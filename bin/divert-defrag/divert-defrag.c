/*
 * divert-defrag - reassemble IPv4 and IPv6 fragments in a divert stream,
 * or (--fragment MTU) split packets larger than MTU.
 *
 * Reads a pcap stream on stdin, writes one on stdout with the same link
 * type.  Records that are not fragments go through at once and unchanged;
 * a reassembled datagram is written when its last missing fragment comes,
 * with that fragment's record metadata (time stamp, direction, interface).
 *
 * Time is stream time: the record time stamps, so a capture replays as it
 * was taken; while the input is idle the clock runs on with wall time, so
 * incomplete datagrams still expire in a quiet live pipeline.
 *
 * In a live pipeline whose listener holds the packets (inplace.h), the
 * datagram goes back in place as the fragment that completed it, and the
 * packets of the other fragments are dropped there; so are those of
 * fragments that go nowhere.  --fragment's pieces are copies (the packet
 * they replace is dropped in place).
 */
#include <argp.h>
#include <err.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>

#include "tool.h"
#include "format_argp.h"
#include "frag.h"
#include "inplace.h"
#include "reasm.h"
#include "stream.h"

const char *argp_program_version = "divert-defrag (divert) " DIVERT_VERSION;

enum { OPT_TIMEOUT = 256, OPT_MAXMEM, OPT_OVERLAP, OPT_KEEP, OPT_FRAGMENT };

static const struct argp_option options[] = {
	{ "timeout", OPT_TIMEOUT, "S", 0, "Drop a datagram still incomplete S seconds "
	    "after its first fragment (default 30)", 0 },
	{ "max-memory", OPT_MAXMEM, "BYTES", 0, "Hold at most BYTES of fragments and "
	    "state (K, M, G: KiB, MiB, GiB; 256K to 64G, default 4M); evict the oldest "
	    "beyond", 0 },
	{ "overlap", OPT_OVERLAP, "POLICY", 0, "Overlapping fragments: linux (default: "
	    "as the kernel), rfc5722 (alias drop: any overlap drops the datagram), or "
	    "keep the bytes that came first or last (first|last)", 0 },
	{ "keep-incomplete", OPT_KEEP, NULL, 0, "Write the fragments of datagrams that "
	    "expire, are evicted or are incomplete at the end through unchanged", 0 },
	{ "fragment", OPT_FRAGMENT, "MTU", 0, "Do the opposite: split packets larger "
	    "than MTU into fragments", 0 },
	{ 0 }
};

struct args {
	const char	*timeout, *maxmem, *overlap, *fragment;
	int		 keep;
	struct format_choice fmt;	/* -F */
};

struct defrag {
	struct stream_in	*in;
	struct stream_out	*out;
	struct reasm		*r;
	struct reasm_config	 cfg;
	struct inplace		*ip;		/* drops in place; NULL: not live */
	int			 out_errno;	/* the output failed: EPIPE, ... */
	int			 broken;	/* the input ended in damage */
	uint64_t		 read, written;
	uint64_t		 clock;		/* stream clock, ms */
	struct timespec		 ticked;	/* wall time the clock last moved */
	/* --fragment */
	size_t			 mtu;
	uint32_t		 ident;		/* next IPv6 fragment ID (IPv4 ID 0) */
	const struct pkt	*splitting;	/* the record frag_split is cutting up */
	uint8_t			*fragbuf;	/* FRAG_MAX bytes: where it builds fragments */
	uint64_t		 fitted, split, pieces, df, unsplit;
};

static error_t
parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;

	switch (key) {
	case OPT_TIMEOUT: a->timeout = arg; break;
	case OPT_MAXMEM: a->maxmem = arg; break;
	case OPT_OVERLAP: a->overlap = arg; break;
	case OPT_KEEP: a->keep = 1; break;
	case OPT_FRAGMENT: a->fragment = arg; break;
	case ARGP_KEY_ARG:
		argp_error(state, "no arguments: the stream comes on stdin");
		break;
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &a->fmt;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp_child children[] = { { &format_argp, 0, NULL, 0 }, { 0 } };

static const struct argp argp = { options, parse_opt, NULL,
	"Reassemble the IPv4 and IPv6 fragments of a pcapng or pcap stream (stdin to "
	"stdout); pass everything else through unchanged.", children, NULL, NULL };

/* Every check on the command line, in one place; exits 64 on a bad one. */
static void
check_args(const struct args *a, struct defrag *g)
{
	long n;

	g->cfg.timeout_ms = 30 * 1000;
	g->cfg.max_memory = 4 << 20;
	g->cfg.overlap = REASM_OVERLAP_LINUX;
	g->cfg.keep_incomplete = a->keep;
	if (a->fragment != NULL) {
		if (a->timeout || a->maxmem || a->overlap || a->keep)
			usage_errx("--fragment only splits: --timeout, --max-memory, "
			    "--overlap and --keep-incomplete do not apply");
		if ((n = parse_ulong(a->fragment, 68, 65535)) < 0)
			usage_errx("bad MTU '%s': want 68..65535", a->fragment);
		g->mtu = (size_t)n;
	}
	if (a->timeout != NULL) {
		if ((n = parse_ulong(a->timeout, 1, 86400)) < 0)
			usage_errx("bad timeout '%s': want 1..86400 seconds", a->timeout);
		g->cfg.timeout_ms = (uint64_t)n * 1000;
	}
	if (a->maxmem != NULL) {
		g->cfg.max_memory = parse_size(a->maxmem);
		if (g->cfg.max_memory < REASM_MIN_MEMORY ||
		    g->cfg.max_memory > REASM_MAX_MEMORY)
			usage_errx("bad --max-memory '%s': want a size from 256K to 64G "
			    "(suffix K, M or G)", a->maxmem);
	}
	if (a->overlap != NULL) {
		if (strcmp(a->overlap, "linux") == 0)
			g->cfg.overlap = REASM_OVERLAP_LINUX;
		else if (strcmp(a->overlap, "rfc5722") == 0 || strcmp(a->overlap, "drop") == 0)
			g->cfg.overlap = REASM_OVERLAP_RFC5722;
		else if (strcmp(a->overlap, "first") == 0)
			g->cfg.overlap = REASM_OVERLAP_FIRST;
		else if (strcmp(a->overlap, "last") == 0)
			g->cfg.overlap = REASM_OVERLAP_LAST;
		else
			usage_errx("bad --overlap '%s': want linux, rfc5722, first or last",
			    a->overlap);
	}
	/* "< X >> X" would read its own output without end. */
	if (same_file(NULL, NULL))
		usage_errx("standard output is the file standard input reads: "
		    "write the stream to another file");
}

/* The one place records leave: counted, or the failure remembered. */
static void
emit(const struct pkt *p, void *arg)
{
	struct defrag *g = arg;

	if (g->out_errno != 0)
		return;
	if (stream_out_write(g->out, p) < 0)
		g->out_errno = errno;
	else
		g->written++;
}

/* One piece of g->splitting: its record, with the fragment for data. */
static int
emit_fragment(const uint8_t *frag, size_t len, void *arg)
{
	struct defrag *g = arg;
	struct pkt f = *g->splitting;

	f.data = (uint8_t *)frag;
	f.len = len;
	f.a.cut = 0;
	f.a.holder = 0;		/* a piece is a copy: the packet itself is dropped */
	emit(&f, g);
	g->pieces++;
	return g->out_errno != 0;
}

static void
flush_out(struct defrag *g)
{
	if (g->out_errno == 0 && stream_out_flush(g->out) < 0)
		g->out_errno = errno;
	inplace_flush(g->ip);
}

/* A held record that goes nowhere (reasm_gone_fn): its packet is dropped in place. */
static void
dropped(const struct divert_addr *a, void *arg)
{
	struct defrag *g = arg;

	inplace_drop(g->ip, a);
}

/* ---- the stream clock ------------------------------------------------- */

static uint64_t
ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - t->tv_sec) * 1000 +
	    (uint64_t)((now.tv_nsec - t->tv_nsec) / 1000000);
}

/* Advance the clock to a record's time stamp; it never goes back. */
static void
clock_record(struct defrag *g, const struct pkt *p)
{
	uint64_t ts = (uint64_t)p->a.ts.tv_sec * 1000 + (uint64_t)p->a.ts.tv_usec / 1000;

	if (p->a.ts.tv_sec >= 0 && ts > g->clock)
		g->clock = ts;
	clock_gettime(CLOCK_MONOTONIC, &g->ticked);
}

/* Advance the clock by the wall time since it last moved (input idle). */
static void
clock_idle(struct defrag *g)
{
	g->clock += ms_since(&g->ticked);
	clock_gettime(CLOCK_MONOTONIC, &g->ticked);
}

/*
 * The input is idle: sleep until it is readable or the oldest datagram is
 * due, whichever is first, then expire what is due.
 */
static void
wait_input(struct defrag *g)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	uint64_t due = reasm_next_expiry(g->r);
	int ms = -1;

	if (due != UINT64_MAX) {
		clock_idle(g);
		ms = due <= g->clock ? 0 : due - g->clock > 60000 ? 60000 :
		    (int)(due - g->clock);
	}
	/* Live, the listeners are watched too: one that leaves is left at once. */
	if ((g->ip != NULL ? inplace_wait(g->ip, ms) : poll(&pfd, 1, ms)) < 0 && errno != EINTR)
		err(EX_RUNTIME, "poll");
	clock_idle(g);
	reasm_expire(g->r, g->clock);
}

/* ---- the two jobs ----------------------------------------------------- */

static void
defrag_loop(struct defrag *g)
{
	struct pkt p;
	int rc;

	while (g->out_errno == 0 && !stop_signalled) {
		if (stream_in_idle(g->in)) {
			flush_out(g);		/* the reader sees everything so far */
			wait_input(g);
			continue;
		}
		if ((rc = stream_in_read(g->in, &p)) <= 0) {
			g->broken = rc < 0 && !stop_signalled;	/* a signal cuts the read short */
			break;
		}
		g->read++;
		clock_record(g, &p);
		reasm_expire(g->r, g->clock);
		reasm_input(g->r, &p, g->clock);
	}
	reasm_flush(g->r);		/* end of input: the rest is incomplete */
}

/* Split one record to the MTU; what cannot be split goes on unchanged. */
static void
split_one(struct defrag *g, const struct pkt *p)
{
	int n;

	if (p->a.cut != 0 || (p->a.proto != ETH_P_IP && p->a.proto != ETH_P_IPV6) ||
	    p->len <= g->mtu) {
		if (p->len > g->mtu)
			g->unsplit++;
		else
			g->fitted++;
		emit(p, g);
		return;
	}
	g->splitting = p;
	n = frag_split(p->data, p->len, g->mtu, g->ident, g->fragbuf, FRAG_MAX,
	    emit_fragment, g);
	g->splitting = NULL;		/* p is the caller's: not to be used after */
	if (n > 1) {
		g->split++;
		g->ident++;
		dropped(&p->a, g);	/* its pieces replace it */
	} else if (n == 1) {
		g->pieces--;
		g->fitted++;
	} else if (n != FRAG_E_STOP) {
		if (n == FRAG_E_DF)
			g->df++;
		else
			g->unsplit++;
		emit(p, g);
	}
}

static void
fragment_loop(struct defrag *g)
{
	struct pkt p;
	int rc;

	while (g->out_errno == 0 && !stop_signalled && (rc = stream_in_read(g->in, &p)) != 0) {
		if (rc < 0) {
			g->broken = !stop_signalled;	/* a signal cuts the read short */
			break;
		}
		g->read++;
		split_one(g, &p);
		if (stream_in_idle(g->in)) {
			flush_out(g);
			if (g->ip != NULL)
				inplace_wait(g->ip, -1);
		}
	}
}

/* ---- the report ------------------------------------------------------- */

static void
report(const struct defrag *g)
{
	const char *me = program_invocation_short_name;
	const struct reasm_stats *s;

	if (g->r == NULL) {
		fprintf(stderr, "%s: %ju read, %ju written; %ju split into %ju fragments, "
		    "%ju fitted, %ju with DF passed, %ju unsplittable passed\n", me,
		    (uintmax_t)g->read, (uintmax_t)g->written, (uintmax_t)g->split,
		    (uintmax_t)g->pieces, (uintmax_t)g->fitted, (uintmax_t)g->df,
		    (uintmax_t)g->unsplit);
		return;
	}
	if (inplace_dropped(g->ip) > 0)
		fprintf(stderr, "%s: %ju dropped in place\n", me, (uintmax_t)inplace_dropped(g->ip));
	s = reasm_stats(g->r);
	fprintf(stderr, "%s: %ju read, %ju written; %ju passed, %ju fragments, "
	    "%ju reassembled\n", me, (uintmax_t)g->read, (uintmax_t)g->written,
	    (uintmax_t)s->passed, (uintmax_t)s->fragments, (uintmax_t)s->reassembled);
	fprintf(stderr, "%s: %ju duplicates, %ju overlaps, %ju timed out, %ju evicted, "
	    "%ju oversize, %ju too many fragments, %ju invalid, %ju ECN mixes, "
	    "%ju incomplete at end; %ju fragments kept, %ju dropped; %ju unparsed passed; "
	    "%ju trimmed to the 8-byte grid; %ju with a bad IPv4 header checksum; "
	    "memory peak %zu of %zu bytes\n", me,
	    (uintmax_t)s->duplicates, (uintmax_t)s->overlaps, (uintmax_t)s->timed_out,
	    (uintmax_t)s->evicted, (uintmax_t)s->oversize, (uintmax_t)s->too_many,
	    (uintmax_t)s->invalid, (uintmax_t)s->ecn, (uintmax_t)s->incomplete,
	    (uintmax_t)s->kept, (uintmax_t)s->dropped, (uintmax_t)s->unparsed,
	    (uintmax_t)s->trimmed, (uintmax_t)s->badsum, reasm_peak(g->r),
	    reasm_memory(g->r));
}

int
main(int argc, char **argv)
{
	struct defrag g = { 0 };
	struct args a = { 0 };
	char why[512];
	int status = 0;

	argp_parse(&argp, argc, argv, 0, NULL, &a);
	check_args(&a, &g);
	catch_stop_signals();		/* counters even on SIGINT; a gone reader is EPIPE */

	if ((g.in = stream_in_open(NULL, why, sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);
	if ((g.out = stream_out_open(NULL, stream_in_linktype(g.in), a.fmt.format, why,
	    sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);
	if (getrandom(&g.ident, sizeof(g.ident), 0) < 0)
		g.ident = (uint32_t)time(NULL);
	g.ip = inplace_new(STDIN_FILENO, 0);

	if (g.mtu != 0) {
		if ((g.fragbuf = malloc(FRAG_MAX)) == NULL)
			err(EX_RUNTIME, "cannot reserve a fragment buffer");
		fragment_loop(&g);
	} else {
		if ((g.r = reasm_new(&g.cfg, emit, &g)) == NULL)
			err(EX_RUNTIME, "cannot reserve %zu bytes for reassembly",
			    g.cfg.max_memory);
		reasm_set_gone(g.r, dropped, &g);
		defrag_loop(&g);
	}
	inplace_flush(g.ip);

	/* What a stop left unwritten is not counted written (stream.h). */
	if (stream_out_flush(g.out) < 0 && g.out_errno == 0)
		g.out_errno = errno;
	stream_out_discard(g.out);
	g.written = stream_out_records_out(g.out);
	report(&g);
	if (g.broken) {
		warnx("%s: what came before was written", stream_in_error(g.in));
		status = EX_RUNTIME;
	}
	if (stream_out_finish(g.out, g.out_errno, "the stream") != 0)
		status = EX_RUNTIME;
	stream_in_close(g.in);
	reasm_free(g.r);
	inplace_free(g.ip);
	free(g.fragbuf);
	return status;
}
