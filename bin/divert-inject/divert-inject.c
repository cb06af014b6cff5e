/*
 * divert-inject - put packets back into the IP stack, outbound and inbound.
 *
 * Reads a pcap stream (stdin, or -r FILE).  A record whose packet a
 * listener of this namespace still holds, read live from a pipe, goes back
 * in place: the kernel gets its own packet back, with the record's bytes,
 * and carries on with it where it took it (inplace.h).  Every other IP
 * packet is sent as a copy through libdivert in the direction its record
 * says: outgoing ones out, incoming ones as if they arrived on their
 * interface; a copy carries the toolkit's mark bit, so divert rules do not
 * take it again, and is fragmented over the route MTU unless IPv4's DF
 * forbids it.  Each packet's fate is counted and shown here.
 */
#include <argp.h>
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <net/if.h>

#include "describe.h"
#include "divert.h"
#include "format_argp.h"
#include "inplace.h"
#include "tool.h"
#include "stream.h"

const char *argp_program_version = "divert-inject (divert) " DIVERT_VERSION;

enum { OPT_IN = 256, OPT_OUT, OPT_COPY };

static const struct argp_option options[] = {
	{ "read", 'r', "FILE", 0, "Read the stream from FILE instead of stdin", 0 },
	{ "in", OPT_IN, "IFACE", 0, "Inject every packet inbound, as if it arrived on IFACE", 0 },
	{ "out", OPT_OUT, NULL, 0, "Inject every packet outbound, whatever its record says", 0 },
	{ "copy", OPT_COPY, NULL, 0, "Inject every packet as a copy, never in place (the "
	    "listener then takes its packets out of the stack)", 0 },
	{ "write", 'w', "FILE", 0, "Write what was injected to FILE as a stream (SLL2; - for "
	    "stdout)", 0 },
	{ "verbose", 'v', NULL, 0, "Show each packet on stderr: time, direction, interface, "
	    "addresses, protocol, length", 0 },
	{ 0 }
};

struct args {
	const char	*rfile, *wfile, *in_iface;
	int		 out, verbose, copy;
	struct format_choice fmt;	/* -F, for -w */
};

/*
 * Why a packet was not injected (libdivert's enum divert_result, whose
 * order the exit report keeps); counted one by one and reported at exit.
 */
#define R_COUNT	DIVERT_E_SYSTEM

static const char *const reason_words[R_COUNT] = {
	[DIVERT_E_NOTIP] = "not IP",
	[DIVERT_E_MALFORMED] = "malformed",
	[DIVERT_E_CUT] = "cut short by the capture",
	[DIVERT_E_TOOLONG] = "longer than IP allows",
	[DIVERT_E_DF] = "over the MTU with Don't Fragment",
	[DIVERT_E_NOFRAG] = "could not be fragmented",
	[DIVERT_E_NOIF] = "no interface to arrive on",
	[DIVERT_E_IFDOWN] = "interface down",
	[DIVERT_E_SNDBUF] = "send buffer full (neighbour unreachable?)",
	[DIVERT_E_KERNEL] = "refused by the kernel",
};

struct injector {
	struct divert		*h;
	struct inplace		*ip;		/* in place; NULL: copies only */
	struct stream_out	*out;		/* -w; NULL without */
	int			 verbose;
	int			 force_dir;	/* DIVERT_IN (--in), DIVERT_OUT (--out), or 0 */
	uint32_t		 in_ifindex;	/* --in */
	char			 in_name[DIVERT_IFNAMSIZ];	/* and its name */
	uint64_t		 read, injected, out_n, in_n, fragmented, fragments;
	uint64_t		 in_place;	/* of injected: given back in place */
	uint64_t		 lost;		/* of those: verdicts whose send failed */
	uint64_t		 unchanged;	/* of those: cut records, the packet given back as it was */
	uint64_t		 refused, reason[R_COUNT];
	int			 warned[R_COUNT];
	int			 out_errno;	/* -w failed: EPIPE, ENOSPC ... */
	int			 fatal;		/* the inbound path cannot be built */
	struct divert_addr	 record;	/* the record being sent, as read */
	uint8_t			 pkttype;	/* and its SLL packet type */
	struct { uint32_t index; char name[IF_NAMESIZE]; } names[8];	/* -v's cache */
};


static error_t
parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;

	switch (key) {
	case 'r': a->rfile = arg; break;
	case 'w': a->wfile = arg; break;
	case 'v': a->verbose = 1; break;
	case OPT_IN: a->in_iface = arg; break;
	case OPT_OUT: a->out = 1; break;
	case OPT_COPY: a->copy = 1; break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s' (the stream comes on stdin, or -r FILE)", arg);
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
	"Inject the packets of a pcapng or pcap stream (stdin) back into the IP stack: "
	"outgoing ones are sent, incoming ones arrive on their interface (by name, "
	"else by index).  Records without a direction (RAW, Ethernet, NULL captures) "
	"go out.", children, NULL, NULL };

/* Every check on the command line, in one place; exits 64 on a bad one. */
static void
check_args(const struct args *a, struct injector *ij)
{
	if (a->in_iface != NULL && a->out)
		usage_errx("--in and --out contradict each other: choose one direction");
	if (a->in_iface != NULL) {
		if ((ij->in_ifindex = if_nametoindex(a->in_iface)) == 0)
			usage_errx("--in %s: no such interface here", a->in_iface);
		snprintf(ij->in_name, sizeof(ij->in_name), "%s", a->in_iface);
		ij->force_dir = DIVERT_IN;
	}
	if (a->out)
		ij->force_dir = DIVERT_OUT;
	if (a->fmt.given && a->wfile == NULL)
		usage_errx("-F chooses the format of -w FILE: give -w too");
	if (a->wfile != NULL && same_file(a->rfile, a->wfile))
		usage_errx("-w %s would overwrite the stream being read: write elsewhere",
		    a->wfile);
	ij->verbose = a->verbose;
}

/* The name of an interface of this namespace, "-" for none (cached: -v runs per packet). */
static const char *
ifname(struct injector *ij, uint32_t index)
{
	size_t slot = index % (sizeof(ij->names) / sizeof(ij->names[0]));

	if (index == 0)
		return "-";
	if (ij->names[slot].index != index) {
		if (if_indextoname(index, ij->names[slot].name) == NULL)
			snprintf(ij->names[slot].name, IF_NAMESIZE, "if%u", index);
		ij->names[slot].index = index;
	}
	return ij->names[slot].name;
}

/* One line about p's IP packet, for -v and warnings (describe.h). */
static void
describe(const struct pkt *p, char *buf, size_t len)
{
	ip_describe(p->data, p->len, buf, len);
}

/* Whether p's IP header is whole, so describe() can show it. */
static int
describable(const struct pkt *p)
{
	return ip_describable(p->data, p->len);
}

/* The interceptor display: one line a packet on stderr. */
static void
show(struct injector *ij, const struct pkt *p, const char *note)
{
	char when[16], what[256];
	time_t sec = p->a.ts.tv_sec;
	struct tm tm;

	localtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	describe(p, what, sizeof(what));
	/* The name a pcapng record gives, else this namespace's name for the index. */
	fprintf(stderr, "%s.%06ld %s %s %s%s%s\n", when, (long)p->a.ts.tv_usec,
	    p->a.dir == DIVERT_IN ? "in " : "out",
	    p->a.ifname[0] != '\0' && memchr(p->a.ifname, '\0', sizeof(p->a.ifname)) ?
	    p->a.ifname : ifname(ij, p->a.ifindex), what, note[0] ? " " : "", note);
}

/*
 * libdivert's tap: each packet (each fragment) as it went in, appended to
 * -w.  An inbound one keeps its record's packet type (it is sent at once,
 * so the record is the one being sent).  A failing copy is reported once
 * and stops; injection goes on.
 */
static void
copy_out(const struct divert_addr *to, const uint8_t *data, size_t len, void *arg)
{
	struct injector *ij = arg;
	struct pkt p = { .a = *to, .data = (uint8_t *)data, .len = len };

	if (ij->out == NULL || ij->out_errno != 0)
		return;
	p.pkttype = to->dir == DIVERT_IN ? ij->pkttype : SLL_OUTGOING;
	if (stream_out_write(ij->out, &p) < 0) {
		ij->out_errno = errno;
		if (!reader_gone(errno))
			warn("writing -w");
	}
}

/*
 * A packet is in: a copy in nfrag pieces (1: whole), already copied to -w;
 * or (nfrag 0) given back in place.
 */
static void
injected(struct injector *ij, const struct pkt *p, unsigned nfrag)
{
	char note[32] = "";

	if (nfrag == 0)
		snprintf(note, sizeof(note), "in place");
	ij->injected++;
	if (p->a.dir == DIVERT_IN)
		ij->in_n++;
	else
		ij->out_n++;
	if (nfrag > 1) {
		ij->fragmented++;
		ij->fragments += nfrag;
		snprintf(note, sizeof(note), "(%u fragments)", nfrag);
	}
	if (ij->verbose)
		show(ij, p, note);
}

/*
 * A packet that cannot go in: counted; shown with -v, else the first of
 * each kind is reported and the rest only counted (a broken capture would
 * otherwise flood the terminal).
 */
static void
refuse(struct injector *ij, const struct pkt *p, int r, const char *why)
{
	char note[320], what[256];

	ij->refused++;
	ij->reason[r]++;
	if (ij->verbose) {
		snprintf(note, sizeof(note), "refused: %s", why);
		if (describable(p))
			show(ij, p, note);
		else
			warnx("record %ju refused: %s", (uintmax_t)ij->read, why);
	} else if (!ij->warned[r]) {
		ij->warned[r] = 1;
		if (describable(p)) {
			describe(p, what, sizeof(what));
			warnx("refused %s: %s (more like it are only counted)", what, why);
		} else {
			warnx("record %ju refused: %s (more like it are only counted)",
			    (uintmax_t)ij->read, why);
		}
	}
}

/*
 * libdivert's report on each packet, in the order sent: counted, shown.
 * A refusal by the packet checks comes before the packet is aimed: it is
 * shown as its record was.  The words for a missing interface name the
 * option that gives one.
 */
static void
reported(const struct divert_report *r, void *arg)
{
	struct injector *ij = arg;
	struct pkt p = { .a = *r->to, .data = (uint8_t *)r->pkt, .len = r->len };
	char why[256];

	switch (r->result) {
	case DIVERT_SENT:
		injected(ij, &p, r->fragments);
		return;
	case DIVERT_E_SYSTEM:
		warnx("%s", r->why);
		ij->fatal = 1;
		return;
	case DIVERT_E_NOTIP: case DIVERT_E_MALFORMED: case DIVERT_E_CUT: case DIVERT_E_TOOLONG:
		p.a = ij->record;
		break;
	}
	if (r->result == DIVERT_E_NOIF && r->error == EDESTADDRREQ)
		refuse(ij, &p, r->result, "inbound, but the record names no interface: use --in IFACE");
	else if (r->result == DIVERT_E_NOIF && r->error == ENXIO && snprintf(why, sizeof(why),
	    "%s (a capture from elsewhere? --in IFACE names the interface to arrive on)",
	    r->why) > 0)
		refuse(ij, &p, r->result, why);
	else
		refuse(ij, &p, r->result, r->why);
}

/*
 * Which way a record goes and by which interface, after --in / --out.  The
 * interface is named as well as numbered (a pcapng record's name is looked
 * up first): --in replaces both, a record turned the other way loses both.
 */
static void
aim(struct injector *ij, struct pkt *p)
{
	int dir = ij->force_dir ? ij->force_dir : p->a.dir == DIVERT_IN ? DIVERT_IN : DIVERT_OUT;

	if (dir == DIVERT_IN && ij->in_ifindex != 0) {
		p->a.ifindex = ij->in_ifindex;
		memcpy(p->a.ifname, ij->in_name, sizeof(p->a.ifname));
	} else if (dir != p->a.dir) {
		p->a.ifindex = 0;		/* the record's interface meant the other way */
		p->a.ifname[0] = '\0';
	}
	p->a.dir = dir;
}

/*
 * Packets counted injected that the kernel dropped as their interface went
 * down or away (divert_inbound_losses): counted again as refused, so that
 * injected is what arrived.
 */
static void
take_back(struct injector *ij, int final)
{
	uint64_t down, gone, k;

	divert_inbound_losses(ij->h, final, &down, &gone);
	if ((k = down + gone) == 0)
		return;
	ij->injected -= k;
	ij->in_n -= k;
	ij->refused += k;
	ij->reason[DIVERT_E_IFDOWN] += down;
	ij->reason[DIVERT_E_NOIF] += gone;
	if (ij->verbose || !ij->warned[DIVERT_E_IFDOWN]) {
		ij->warned[DIVERT_E_IFDOWN] = 1;
		warnx("%ju packets shown injected were dropped by the kernel: their interface "
		    "went down or away as they were written (counted refused)", (uintmax_t)k);
	}
}

/*
 * A record whose packet its listener holds: given back in place (the
 * verdict batched), with the record's bytes unless they are not the whole
 * packet (cut short: the kernel keeps its own).  0 when it is not for here.
 */
static int
give_back(struct injector *ij, struct pkt *p)
{
	if (!inplace_accept(ij->ip, &p->a, p->a.cut == 0 ? p->data : NULL, p->len))
		return 0;
	ij->in_place++;
	/* Whatever a stage between changed in a cut record is lost: say so. */
	if (p->a.cut != 0 && ij->unchanged++ == 0)
		warnx("cut record: given back unchanged (the kernel's own packet; "
		    "edits to the record are lost)");
	injected(ij, p, 0);
	if (ij->out != NULL && ij->out_errno == 0 && stream_out_write(ij->out, p) < 0) {
		ij->out_errno = errno;
		if (!reader_gone(errno))
			warn("writing -w");
	}
	return 1;
}

/* One record: given back in place, or sent (outbound ones batched); its fate counted. */
static void
inject(struct injector *ij, struct pkt *p)
{
	ij->read++;
	inplace_see(ij->ip, &p->a);
	if (give_back(ij, p))
		return;
	ij->record = p->a;
	ij->pkttype = p->pkttype;
	aim(ij, p);
	divert_send(ij->h, p->data, p->len, &p->a);	/* every fate comes as a report */
	if (p->a.dir == DIVERT_IN)
		take_back(ij, 0);
}

/*
 * Read and inject until the stream ends.  Outgoing packets are batched
 * while more input is ready; an idle input sends the batch and flushes -w,
 * so a lone packet (a TCP handshake) is never held back.
 */
static int
inject_loop(struct injector *ij, struct stream_in *in)
{
	struct pkt p;
	int rc;

	while (!stop_signalled && !ij->fatal) {
		if ((rc = stream_in_read(in, &p)) == 0)
			break;
		if (rc < 0) {
			divert_flush(ij->h);
			if (stop_signalled)
				break;
			warnx("%s after %ju records: stopped there", stream_in_error(in),
			    (uintmax_t)ij->read);
			return EX_RUNTIME;
		}
		inject(ij, &p);
		if (stream_in_idle(in)) {
			inplace_flush(ij->ip);
			divert_flush(ij->h);
			if (ij->out != NULL && ij->out_errno == 0 && stream_out_flush(ij->out) < 0)
				ij->out_errno = errno;
			/* Idle, the listeners are watched too: one that leaves is left at once. */
			if (ij->ip != NULL)
				inplace_wait(ij->ip, -1);
		}
	}
	inplace_flush(ij->ip);
	divert_flush(ij->h);
	return ij->fatal ? EX_RUNTIME : 0;
}

static void
report(const struct injector *ij)
{
	int r, first = 1;

	fprintf(stderr, "%s: %ju read, %ju injected (%ju out, %ju in), %ju fragmented "
	    "into %ju, %ju refused", program_invocation_short_name, (uintmax_t)ij->read,
	    (uintmax_t)ij->injected, (uintmax_t)ij->out_n, (uintmax_t)ij->in_n,
	    (uintmax_t)ij->fragmented, (uintmax_t)ij->fragments, (uintmax_t)ij->refused);
	for (r = DIVERT_E_NOTIP; r < R_COUNT; r++) {
		if (ij->reason[r] == 0)
			continue;
		fprintf(stderr, "%s%ju %s", first ? " (" : ", ", (uintmax_t)ij->reason[r],
		    reason_words[r]);
		first = 0;
	}
	fputs(first ? "" : ")", stderr);
	/* Of the injected, those given back in place (a live pipeline's). */
	if (ij->in_place > 0)
		fprintf(stderr, ", %ju in place", (uintmax_t)ij->in_place);
	if (ij->unchanged > 0)
		fprintf(stderr, " (%ju cut: given back unchanged)", (uintmax_t)ij->unchanged);
	if (ij->lost > 0)
		fprintf(stderr, " (%ju verdicts lost: not sent)", (uintmax_t)ij->lost);
	fputc('\n', stderr);
}

int
main(int argc, char **argv)
{
	static struct injector injector;	/* large: not on the stack */
	struct injector *ij = &injector;
	struct stream_in *in;
	struct args a = { 0 };
	char why[512];
	uint32_t mark;
	int status;

	argp_parse(&argp, argc, argv, 0, NULL, &a);
	check_args(&a, ij);
	mark = mark_in_force();
	catch_stop_signals();

	if ((ij->h = divert_open(DIVERT_PORT_NONE, mark, 0, why)) == NULL)
		errx(EX_RUNTIME, "%s", why);
	divert_set_report(ij->h, reported, ij);
	if (a.wfile != NULL)
		divert_set_tap(ij->h, copy_out, ij);
	/* With --in the one inbound path is built now: a kernel that lacks it fails at once. */
	if (ij->in_ifindex != 0 && divert_prepare_in(ij->h, ij->in_ifindex) < 0)
		errx(EX_RUNTIME, "%s", divert_geterr(ij->h));
	/*
	 * In place only from a live input, and only where the record's own
	 * direction counts: --in and --out send copies where they say.  The
	 * listener is joined before the stream's first record, so that it
	 * holds that one too.
	 */
	if (!a.copy && a.in_iface == NULL && !a.out)
		ij->ip = inplace_new(a.rfile == NULL || strcmp(a.rfile, "-") == 0 ?
		    STDIN_FILENO : -1, 1);
	inplace_find(ij->ip);
	if ((in = stream_in_open(a.rfile, why, sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);
	if (a.wfile != NULL && (ij->out = stream_out_open(a.wfile, DLT_SLL2, a.fmt.format,
	    why, sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);

	status = inject_loop(ij, in);
	ij->lost = inplace_failed(ij->ip);
	inplace_free(ij->ip);		/* the listeners hear the counts, and wait no more */
	ij->ip = NULL;

	take_back(ij, 1);
	report(ij);
	snprintf(why, sizeof(why), "-w %s", a.wfile ? a.wfile : "");
	if (stream_out_finish(ij->out, ij->out_errno, why) != 0)
		status = EX_RUNTIME;
	stream_in_close(in);
	divert_close(ij->h);
	return status;
}
