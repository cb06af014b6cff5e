/*
 * divert-listen - take packets from a divert port and stream them as pcap.
 *
 * Binds PORT (libdivert), writes every packet to stdout as an SLL2 pcap
 * record and takes it out of the stack (batched drop verdicts), or lets it
 * go on (--tee).  Packets that miss the -f filter are let through untouched.
 *
 * The port is offered to the pipeline's other tools (divert_offer): while
 * an injector downstream has joined, a packet is held instead of taken
 * (its record says so: holder = the session), for the injector to give
 * back in place; held packets nobody answered are dropped after
 * --hold-timeout.
 */
#include <argp.h>
#include <err.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "divert.h"
#include "format_argp.h"
#include "mark_users.h"
#include "tool.h"
#include "owner.h"
#include "stream.h"

const char *argp_program_version = "divert-listen (divert) " DIVERT_VERSION;

enum { OPT_TEE = 256, OPT_RULE, OPT_HOLD, OPT_QLEN, OPT_FAIL_OPEN, OPT_GSO };

/*
 * A packet's verdict waits until its record is written whole: only then is
 * it the stream's (drop), and a record that never gets out (stop signal,
 * reader gone) lets its packet through.  Records pending at most: a full
 * stream buffer of the smallest records, with room for one more batch.
 */
#define PEND_MAX	4096

#define HOLD_MS_DEFAULT	1000	/* --hold-timeout */
#define EXPIRE_STEPS	8	/* expiries per hold timeout, at most: a held packet
				   waits the timeout and up to an eighth more */
#define HEAR_MS		50	/* under load, joiners are heard this often */

static const struct argp_option options[] = {
	{ "count", 'c', "N", 0, "Exit after streaming N packets", 0 },
	{ "tee", OPT_TEE, NULL, 0, "Let packets go on and stream a copy (ipfw tee)", 0 },
	{ "rule", OPT_RULE, "SPEC", 0, "Add the rule 'CHAIN [PROTO] [options]' for PORT "
	    "while listening, remove it at exit", 0 },
	{ "filter", 'f', "EXPR", 0, "Stream only packets matching the pcap filter; "
	    "let the others through", 0 },
	{ "write", 'w', "FILE", 0, "Write the stream to FILE instead of stdout", 0 },
	{ "hold-timeout", OPT_HOLD, "MS", 0, "Drop a packet held for an injector that has "
	    "not answered it after MS milliseconds (default 1000)", 0 },
	{ "queue-len", OPT_QLEN, "N", 0, "Let the kernel keep at most N packets waiting "
	    "for a verdict (default 8192); it drops more", 0 },
	{ "fail-open", OPT_FAIL_OPEN, NULL, 0, "When the queue is full, let the kernel pass "
	    "packets on instead of dropping them", 0 },
	{ "gso", OPT_GSO, NULL, 0, "Take large (GSO) packets whole, up to 64 KiB, "
	    "checksums completed, instead of cut to the MTU", 0 },
	{ 0 }
};

struct args {
	const char	*port, *count, *rule, *filter, *wfile, *hold, *qlen;
	int		 tee, fail_open, gso;
	struct format_choice fmt;	/* -F */
};

/* A record given to the stream, not yet written whole: its packet's id, and how it waits. */
struct pending {
	uint32_t	id;
	int		shared;		/* held for the injector, not taken */
};

struct listener {
	struct divert		*h;
	struct stream_out	*out;
	struct bpf_program	 prog;
	int			 filtered, tee;
	int			 draining;	/* at exit: let everything through */
	uint64_t		 limit;		/* 0: no -c */
	uint64_t		 received, written, passed;
	uint64_t		 taken;		/* records given to the stream */
	struct pending		 pend[PEND_MAX];	/* records not yet written */
	size_t			 npend;
	/* In place: the port offered to the tools downstream. */
	int			 offered;
	unsigned		 hold_ms;
	uint32_t		 qlen;		/* --queue-len; 0: the library's */
	int			 fail_open;	/* --fail-open */
	int			 gso;		/* --gso */
	int			 counted;	/* matched is known: our --rule's counter */
	uint64_t		 matched;	/* packets our --rule sent to the port */
	uint64_t		 session;
	struct divert_joiners	 joiners;	/* as last heard */
	uint64_t		 held;		/* packets written and left held for injectors */
	uint64_t		 next_expiry;	/* ms: no expiry before (EXPIRE_STEPS) */
	uint64_t		 next_hear;	/* ms: joiners heard again by then, under load */
	int			 out_errno;	/* the stream failed: EPIPE, ... */
	uint8_t			 rec[SLL2_HDRLEN + STREAM_SNAPLEN];
};

static error_t
parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;

	switch (key) {
	case 'c': a->count = arg; break;
	case 'f': a->filter = arg; break;
	case 'w': a->wfile = arg; break;
	case OPT_TEE: a->tee = 1; break;
	case OPT_RULE: a->rule = arg; break;
	case OPT_HOLD: a->hold = arg; break;
	case OPT_QLEN: a->qlen = arg; break;
	case OPT_FAIL_OPEN: a->fail_open = 1; break;
	case OPT_GSO: a->gso = 1; break;
	case ARGP_KEY_ARG:
		if (a->port != NULL)
			argp_error(state, "one PORT only");
		a->port = arg;
		break;
	case ARGP_KEY_NO_ARGS:
		argp_error(state, "which divert port? (0..65535)");
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

static const struct argp argp = { options, parse_opt, "PORT",
	"Take packets from divert port PORT and write them to stdout as a pcapng "
	"stream (-F pcap: classic pcap), link type LINUX_SLL2.", children, NULL, NULL };

/* Every check on the command line, in one place; exits 64 on a bad one. */
static void
check_args(const struct args *a, struct listener *l, struct divert_rule *r,
    long *port)
{
	char why[256];
	pcap_t *dead;
	long n;

	if ((*port = parse_ulong(a->port, 0, 65535)) < 0)
		usage_errx("bad divert port '%s': want 0..65535", a->port);
	if (a->count != NULL) {
		if ((n = parse_ulong(a->count, 1, LONG_MAX)) < 0)
			usage_errx("bad count '%s': want a number of packets >= 1", a->count);
		l->limit = (uint64_t)n;
	}
	if (a->filter != NULL) {
		dead = pcap_open_dead(DLT_SLL2, STREAM_SNAPLEN);
		if (dead == NULL)
			errx(EX_RUNTIME, "out of memory");
		if (pcap_compile(dead, &l->prog, a->filter, 1, PCAP_NETMASK_UNKNOWN) < 0)
			usage_errx("bad filter expression '%s': %s", a->filter,
			    pcap_geterr(dead));
		pcap_close(dead);
		l->filtered = 1;
	}
	l->hold_ms = HOLD_MS_DEFAULT;
	if (a->hold != NULL) {
		if ((n = parse_ulong(a->hold, 1, 3600000)) < 0)
			usage_errx("bad --hold-timeout '%s': want milliseconds, 1..3600000", a->hold);
		l->hold_ms = (unsigned)n;
	}
	if (a->qlen != NULL) {
		if ((n = parse_ulong(a->qlen, 1, UINT32_MAX)) < 0)
			usage_errx("bad --queue-len '%s': want a number of packets >= 1", a->qlen);
		l->qlen = (uint32_t)n;
	}
	if (a->rule != NULL) {
		r->port_lo = r->port_hi = *port;
		if (divert_rule_parse(r, a->rule, DIVERT_RULE_NOPORT, why) < 0)
			usage_errx("--rule '%s': %s", a->rule, why);
	}
	/* Binary on a screen helps nobody (gzip refuses the same way). */
	if (a->wfile == NULL && isatty(STDOUT_FILENO))
		usage_errx("will not write a binary pcap stream to a terminal: "
		    "read it with '| tcpdump -n -r -', or write it with -w FILE");
	l->tee = a->tee;
	l->fail_open = a->fail_open;
	l->gso = a->gso;
	(void)mark_in_force();	/* a bad DIVERT_MARK is a usage error, before the bind */
}

/*
 * The --rule we added, in a table of our own that the kernel removes when
 * we exit however we do (SIGKILL too); remove_rule removes it sooner, and
 * at any exit (err() included) where the kernel has no owned tables.
 */
static struct divert_rules *rules;
static struct divert_rule *added_rule;

static void
remove_rule(void)
{
	divert_rules_close(rules);
	rules = NULL;
	added_rule = NULL;
}

/* Add r for our lifetime: 0, or the errno of the failure. */
static int
add_rule(struct divert_rule *r)
{
	char why[DIVERT_ERRBUF_SIZE];
	int e;

	if ((rules = divert_rules_open(why)) == NULL ||
	    divert_rules_add(rules, r, why) < 0) {
		e = errno;
		remove_rule();
		return e;
	}
	added_rule = r;
	atexit(remove_rule);
	warn_mark_users(r->mark);
	return 0;
}

/* Our --rule, found by its tag: its counter. */
static int
our_rule_counter(const struct divert_rule *r, void *arg)
{
	uint64_t *packets = arg;

	if (r->tag == 0 || r->tag != added_rule->tag)
		return 0;
	*packets = r->packets;
	return 1;
}

/*
 * With --fail-open, what the kernel let past a full queue is counted
 * nowhere: the nearest figure is how many packets our --rule sent to the
 * port, to set against those received and those the kernel dropped (see
 * let_through_by_kernel).  Read before the queue is drained, so that what
 * comes meanwhile can only make the figure smaller.
 */
static void
read_rule_counter(struct listener *l)
{
	char why[DIVERT_ERRBUF_SIZE];

	if (!l->fail_open || added_rule == NULL)
		return;
	l->counted = divert_rule_list(our_rule_counter, &l->matched, why) == 1;
}

/*
 * Packets our --rule matched that neither reached us nor were dropped by
 * the kernel: let past the full queue.  A packet another rule sent to the
 * port, or one matched after the counter was read, makes it smaller, never
 * larger; so does a large (GSO) packet the kernel cuts into several before
 * queueing.
 */
static uint64_t
let_through_by_kernel(const struct listener *l, const struct divert_stats *st)
{
	uint64_t seen = l->received + st->kernel_drops;

	return l->matched > seen ? l->matched - seen : 0;
}

/* The queue as the command line wants it; exits on failure. */
static void
configure_queue(struct listener *l)
{
	if ((l->qlen != 0 && divert_set_queue_len(l->h, l->qlen) < 0) ||
	    (l->fail_open && divert_set_fail_open(l->h, 1) < 0) ||
	    (l->gso && divert_set_gso(l->h, 1) < 0)) {
		warnx("%s", divert_geterr(l->h));
		divert_close(l->h);
		exit(EX_RUNTIME);
	}
}

/*
 * Why the bind failed.  The kernel answers EPERM both to a caller without
 * CAP_NET_ADMIN and to root on a port that another socket holds: tell the
 * two apart, and name the holder when /proc shows it.
 */
static void
bind_failed(long port, int err)
{
	char comm[64];
	pid_t pid;

	if ((err == EPERM || err == EBUSY) && have_net_admin() &&
	    queue_owner((uint16_t)port, &pid, comm, sizeof(comm))) {
		if (pid != 0)
			errx(EX_RUNTIME, "cannot bind divert port %ld: in use by process "
			    "%ld (%s); stop it or pick another port", port, (long)pid,
			    comm[0] ? comm : "?");
		errx(EX_RUNTIME, "cannot bind divert port %ld: in use by another "
		    "listener; stop it or pick another port", port);
	}
	/* With the capability, EPERM means taken: the holder left meanwhile. */
	if (err == EPERM && have_net_admin())
		errx(EX_RUNTIME, "cannot bind divert port %ld: it was in use; try again",
		    port);
	errx(EX_RUNTIME, "cannot bind divert port %ld: %s", port, errno_hint(err));
}

/* A divert rule of ours (our DIVERT_MARK) for the port. */
static int
feeds_port(const struct divert_rule *r, void *arg)
{
	long port = *(long *)arg;

	return r->chain != DIVERT_CHAIN_NONE && r->mark == mark_in_force() &&
	    r->port_lo <= port && port <= r->port_hi;
}

/*
 * A port nothing feeds waits forever in silence: say so once.  Only our own
 * table is read; an NFQUEUE rule elsewhere in the ruleset may still feed it,
 * hence "no divert rule", and it is a warning.
 */
static void
warn_if_unfed(long port)
{
	char why[DIVERT_ERRBUF_SIZE];

	if (divert_rule_list(feeds_port, &port, why) == 0)
		warnx("no divert rule feeds port %ld (add one with: divert-rule add "
		    "CHAIN %ld)", port, port);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Offer the port to the tools downstream: an injector that joins makes
 * packets wait for it instead of being taken.  --tee lets every packet go
 * on at once: nothing to offer; nor does a classic pcap stream, which
 * cannot say which packets are held.  A port another process offers here
 * (unusual: it would have to be a listener of the port) is streamed as
 * before, without in place.
 */
static void
offer_port(struct listener *l, enum stream_format fmt)
{
	/* Classic pcap has no room for the holder: its reader could not answer. */
	if (l->tee || fmt != STREAM_PCAPNG)
		return;
	if (divert_offer(l->h, l->hold_ms) < 0) {
		warnx("%s: packets are taken, never given back in place", divert_geterr(l->h));
		return;
	}
	l->offered = 1;
	l->session = divert_session(l->h);
}

/* Hear the joiners: who came, who left, what they did. */
static void
hear_joiners(struct listener *l)
{
	if (!l->offered)
		return;
	if (divert_offer_run(l->h) < 0)
		warnx("%s", divert_geterr(l->h));
	divert_offer_info(l->h, &l->joiners);
	l->next_hear = mono_ms() + HEAR_MS;
}

/* Between batches: a system call a tick, not a batch (poll says when idle). */
static void
hear_joiners_now_and_then(struct listener *l)
{
	if (l->offered && mono_ms() >= l->next_hear)
		hear_joiners(l);
}

/* Whether packets wait for an injector now (else they are taken). */
static int
holding(const struct listener *l)
{
	return l->offered && l->joiners.injectors > 0;
}

/*
 * Drop the held packets nobody answered within the hold timeout (the
 * kernel drops only those it still holds), at most EXPIRE_STEPS times a
 * timeout, so that a steady flow costs one message now and then.
 */
static void
expire_held(struct listener *l)
{
	long age;
	uint64_t now;

	if (!l->offered || (age = divert_held_age(l->h)) < (long)l->hold_ms)
		return;
	if ((now = mono_ms()) < l->next_expiry)
		return;
	if (divert_verdict_expired(l->h, l->hold_ms, DIVERT_DROP) < 0 || divert_flush(l->h) < 0)
		err(EX_RUNTIME, "verdict on divert port");
	l->next_expiry = now + l->hold_ms / EXPIRE_STEPS;
}

/* How long poll may sleep before a held packet is due to expire (ms; -1: none held). */
static int
expiry_wait(const struct listener *l)
{
	long age = l->offered ? divert_held_age(l->h) : -1;
	uint64_t now = mono_ms();
	long ms;

	if (age < 0)
		return -1;
	ms = (long)l->hold_ms - age;
	if (l->next_expiry > now && (long)(l->next_expiry - now) > ms)
		ms = (long)(l->next_expiry - now);
	return ms < 0 ? 0 : (int)ms;
}

/*
 * While the stream waits for a stalled reader: held packets still expire
 * on time (the listener may wait inside the packet callback: libdivert
 * takes verdicts there).  How long the wait may last.
 */
static int
expire_while_waiting(void *arg)
{
	struct listener *l = arg;

	expire_held(l);
	return expiry_wait(l);
}

/* Let a packet go on untouched: its verdict. */
static int
let_through(struct listener *l)
{
	l->passed++;
	return DIVERT_ACCEPT;
}

/* A packet from the port: streamed and held until its record is written, or let through. */
static int
on_packet(const struct divert_addr *from, uint8_t *data, size_t len, void *arg)
{
	struct listener *l = arg;
	struct pkt p = { .a = *from, .data = data, .len = len };
	struct pcap_pkthdr h;
	int shared = holding(l);

	l->received++;
	p.pkttype = from->dir == DIVERT_OUT ? SLL_OUTGOING : SLL_HOST;
	if (shared)
		p.a.holder = l->session;	/* the injector answers it in place */
	if (l->draining || (l->limit != 0 && l->taken >= l->limit) || l->out_errno != 0 ||
	    l->npend == PEND_MAX || pkt_make_sll2(&p, l->rec, sizeof(l->rec)) < 0)
		return let_through(l);
	if (l->filtered) {
		h.caplen = h.len = (bpf_u_int32)(SLL2_HDRLEN + p.len);
		if (!pcap_offline_filter(&l->prog, &h, p.rec))
			return let_through(l);
	}
	if (stream_out_write(l->out, &p) < 0) {
		l->out_errno = errno;
		return let_through(l);
	}
	l->taken++;
	l->pend[l->npend++] = (struct pending){ from->id, shared };
	return shared ? DIVERT_HOLD_SHARED : DIVERT_HOLD_IT;
}

/*
 * Verdicts for the records written whole since last time: drop (the stream
 * has them), or accept with --tee.  One batch verdict covers them, as ids
 * grow: the pending ones all come after (libdivert leaves the packets held
 * for the injector out of it).  Those held for the injector stay held.
 */
static void
settle_written(struct listener *l)
{
	uint64_t done = stream_out_records_out(l->out) - l->written;
	size_t i, own = 0;

	if (done == 0)
		return;
	for (i = 0; i < done; i++)
		if (l->pend[i].shared)
			l->held++;
		else
			own = i + 1;
	if (own > 0 && divert_verdict_upto(l->h, l->pend[own - 1].id,
	    l->tee ? DIVERT_ACCEPT : DIVERT_DROP) < 0)
		err(EX_RUNTIME, "verdict on divert port");
	memmove(l->pend, l->pend + done, (l->npend - done) * sizeof(l->pend[0]));
	l->npend -= done;
	l->written += done;
}

/* Whether a record not yet written waits for the injector (not ours to batch). */
static int
any_shared(const struct listener *l)
{
	size_t i;

	for (i = 0; i < l->npend; i++)
		if (l->pend[i].shared)
			return 1;
	return 0;
}

/*
 * Records that will not be written (stop, reader gone): their packets go on.
 * A record already begun (torn: only on sockets, or larger than the pipe) is
 * kept, as the stream may still finish it: settle_torn decides its packet.
 */
static void
let_pending_through(struct listener *l)
{
	size_t gone, keep, i;

	if (l->npend == 0)
		return;
	gone = (size_t)stream_out_discard(l->out);
	keep = gone < l->npend ? l->npend - gone : 0;	/* 0, or 1: the torn one */
	if (keep == 0 && !any_shared(l)) {
		if (divert_verdict_upto(l->h, l->pend[l->npend - 1].id, DIVERT_ACCEPT) < 0)
			err(EX_RUNTIME, "verdict on divert port");
	} else
		for (i = keep; i < l->npend; i++)
			if (divert_verdict(l->h, l->pend[i].id, DIVERT_ACCEPT, NULL, 0) < 0)
				err(EX_RUNTIME, "verdict on divert port");
	l->passed += l->npend - keep;
	l->taken -= l->npend - keep;
	l->npend = keep;
}

/*
 * At exit, the record begun before a stop: written whole after all (its
 * packet is the stream's), or not (the packet goes on) -- never both.
 */
static void
settle_torn(struct listener *l)
{
	if (l->npend == 0)
		return;
	if (stream_out_flush(l->out) < 0 && l->out_errno == 0)
		l->out_errno = errno;
	settle_written(l);
	for (; l->npend > 0; l->npend--, l->passed++, l->taken--)
		if (divert_verdict(l->h, l->pend[l->npend - 1].id, DIVERT_ACCEPT, NULL, 0) < 0)
			err(EX_RUNTIME, "verdict on divert port");
	if (divert_flush(l->h) < 0)
		err(EX_RUNTIME, "verdict on divert port");
}

/* Send the verdicts for what is settled. */
static void
answer(struct listener *l)
{
	settle_written(l);
	if (l->out_errno != 0 || stop_signalled)
		let_pending_through(l);
	if (divert_flush(l->h) < 0)
		err(EX_RUNTIME, "verdict on divert port");
}

/* Write everything buffered (waiting for the reader unless stopped), then answer. */
static void
flush_stream(struct listener *l)
{
	if (l->out_errno == 0 && stream_out_flush(l->out) < 0)
		l->out_errno = errno;
	answer(l);
}

/* Receive and answer everything that is ready; 0 once nothing is. */
static int
take_ready(struct listener *l)
{
	int n;

	while ((n = divert_dispatch(l->h, on_packet, l)) != 0) {
		if (n < 0) {
			if (errno != ENOBUFS)
				err(EX_RUNTIME, "receive from divert port");
			continue;	/* the kernel dropped some: counted, /proc too */
		}
		/*
		 * A short batch drained the queue: the reader gets it now.  A
		 * long one waits for more, unless the ids to hold run short.
		 */
		if (n < DIVERT_BATCH || l->npend > PEND_MAX - DIVERT_BATCH)
			flush_stream(l);
		else
			answer(l);
		expire_held(l);
		if (stop_signalled || l->out_errno || (l->limit && l->taken >= l->limit))
			return 1;
		/* Short: the socket is empty; poll says when it is not (no call to learn it). */
		if (n < DIVERT_BATCH)
			return 0;
		/* Joins are heard between batches too: a flood never ends on its own. */
		hear_joiners_now_and_then(l);
	}
	return 0;
}

/*
 * The tight loop: take what is ready, flush the stream once the queue is
 * idle (so one lone packet reaches the reader at once), then sleep.
 * POLLERR on a pipe means its reader has gone.  A stop signal ends the
 * poll (poll_unless_stopped) and interrupts even a write blocked on a
 * full pipe.  A lone packet costs poll, recvmmsg and one write.
 */
static void
listen_loop(struct listener *l, int outfd)
{
	struct pollfd pfd[3] = {
		{ .fd = divert_fd(l->h), .events = POLLIN },
		{ .fd = outfd, .events = 0 },
		{ .fd = divert_offer_fd(l->h), .events = POLLIN },
	};
	int rc, offer_ready = 1;

	while (!stop_signalled && !l->out_errno && (!l->limit || l->taken < l->limit)) {
		if (offer_ready)	/* else poll says nobody knocked */
			hear_joiners(l);
		expire_held(l);
		if (take_ready(l))
			continue;
		flush_stream(l);
		if (l->out_errno)
			break;
		rc = poll_unless_stopped(pfd, 3, expiry_wait(l), 0);
		if (rc < 0 && errno != EINTR)
			err(EX_RUNTIME, "poll");
		if (rc > 0 && (pfd[1].revents & (POLLERR | POLLHUP)))
			l->out_errno = EPIPE;
		offer_ready = rc > 0 && pfd[2].revents != 0;
	}
}

/* Packets that reached us but were not answered go on rather than vanish. */
static void
drain(struct listener *l)
{
	int i, n;

	l->draining = 1;
	for (i = 0; i < 2 * DIVERT_QUEUE_MAXLEN / DIVERT_BATCH; i++) {
		n = divert_dispatch(l->h, on_packet, l);
		if (n == 0 || (n < 0 && errno != ENOBUFS))
			break;
	}
}

/*
 * At exit, with the stream closed: the joiners answer what they have read
 * of it, and leave.  Wait for them, at most a hold timeout (they may be
 * stuck), and meanwhile let through what still comes to the port (a rule
 * not ours) and drop what waited too long.  Only then does the port go.
 */
static void
wait_joiners(struct listener *l)
{
	struct pollfd pfd[2] = {
		{ .fd = divert_fd(l->h), .events = POLLIN },
		{ .fd = divert_offer_fd(l->h), .events = POLLIN },
	};
	uint64_t deadline = mono_ms() + l->hold_ms;
	uint64_t now;

	hear_joiners(l);
	while (l->joiners.joined > 0 && (now = mono_ms()) < deadline) {
		if (poll(pfd, 2, (int)(deadline - now)) < 0 && errno != EINTR)
			err(EX_RUNTIME, "poll");
		drain(l);
		hear_joiners(l);
		expire_held(l);
	}
}

/* The exit report: one line on standard error. */
static void
report(const struct listener *l, const struct divert_stats *st)
{
	uint64_t answered = l->joiners.accepted + l->joiners.dropped;

	fprintf(stderr, "%s: %ju received, %ju written, %ju let through, "
	    "%ju dropped by kernel", program_invocation_short_name,
	    (uintmax_t)l->received, (uintmax_t)l->written, (uintmax_t)l->passed,
	    (uintmax_t)st->kernel_drops);
	if (l->counted)
		fprintf(stderr, ", %ju let through by the kernel (queue full)",
		    (uintmax_t)let_through_by_kernel(l, st));
	if (st->overruns)
		fprintf(stderr, " (%ju overruns)", (uintmax_t)st->overruns);
	/*
	 * Timed out: held, and not answered by a joiner that reported (dropped
	 * at last).  With joiners still there (wait_joiners gave up on them),
	 * what they answered is not known: not reported, then.
	 */
	if (l->held > 0 || answered > 0)
		fprintf(stderr, "; %ju held (%ju in place, %ju dropped in place, %ju %s",
		    (uintmax_t)l->held, (uintmax_t)l->joiners.accepted,
		    (uintmax_t)l->joiners.dropped,
		    (uintmax_t)(l->held > answered ? l->held - answered : 0),
		    l->joiners.joined > 0 ? "not reported" : "timed out)");
	if ((l->held > 0 || answered > 0) && l->joiners.joined > 0)
		fprintf(stderr, ": %u joiner%s did not leave in time)", l->joiners.joined,
		    l->joiners.joined > 1 ? "s" : "");
	fputc('\n', stderr);
}

int
main(int argc, char **argv)
{
	static struct listener listener;	/* large: not on the stack */
	struct listener *l = &listener;
	struct args a = { 0 };
	static struct divert_rule r;	/* static: remove_rule() may run from exit() */
	struct divert_stats st;
	char why[256];
	long port;
	uint32_t mark;
	int rc, status = 0;

	divert_rule_init(&r);
	argp_parse(&argp, argc, argv, 0, NULL, &a);
	check_args(&a, l, &r, &port);
	mark = mark_in_force();
	catch_stop_signals();

	/* Packets are held until their records are written: the callback says so. */
	if ((l->h = divert_open((int)port, mark, 0, NULL)) == NULL)
		bind_failed(port, errno);
	configure_queue(l);
	offer_port(l, a.fmt.format);
	if ((l->out = stream_out_open(a.wfile, DLT_SLL2, a.fmt.format, why,
	    sizeof(why))) == NULL) {
		divert_close(l->h);
		errx(EX_RUNTIME, "%s", why);
	}
	if (l->offered)
		stream_out_set_wait_hook(l->out, expire_while_waiting, l);
	if (a.rule != NULL) {
		r.mark = mark;
		if ((rc = add_rule(&r)) != 0) {
			divert_close(l->h);
			errx(EX_RUNTIME, "cannot add rule '%s': %s", a.rule, errno_hint(rc));
		}
	} else
		warn_if_unfed(port);

	listen_loop(l, a.wfile ? -1 : STDOUT_FILENO);
	flush_stream(l);	/* -c reached: the last records; a stop: what fits */
	let_pending_through(l);
	settle_torn(l);

	/*
	 * The stream ends first: the tools downstream finish with it, answer
	 * what they read, and leave.  The rule goes only then: removing a
	 * chain makes the kernel drop every packet queued in the namespace,
	 * the held ones too.
	 */
	status = stream_out_finish(l->out, l->out_errno, "the stream");
	if (l->offered)
		wait_joiners(l);
	/*
	 * What is still queued goes on before our rule goes: its chain's
	 * removal would drop it (and fail-open's figure needs it received).
	 */
	read_rule_counter(l);
	if (added_rule != NULL)
		drain(l);
	remove_rule();
	drain(l);
	divert_stats(l->h, &st);
	report(l, &st);
	divert_close(l->h);
	if (l->filtered)
		pcap_freecode(&l->prog);
	return status;
}
