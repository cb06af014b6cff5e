/*
 * divert-inject - put packets back into the IP stack, outbound and inbound.
 *
 * Reads a pcap stream (stdin, or -r FILE) and injects each IP packet in the
 * direction its record says: outgoing ones through header-included raw
 * sockets, incoming ones as if they arrived on their interface (a TUN whose
 * ingress redirects to it).  Every injected packet carries the toolkit's
 * mark bit, so divert rules do not take it again.  Packets over the route
 * MTU are fragmented (common/frag.c) unless IPv4's DF forbids it.
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

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <sys/random.h>

#include "bytes.h"
#include "csum.h"
#include "describe.h"
#include "tool.h"
#include "frag.h"
#include "raw.h"
#include "stream.h"
#include "tun.h"

const char *argp_program_version = "divert-inject (divert) " DIVERT_VERSION;

enum { OPT_IN = 256, OPT_OUT };

static const struct argp_option options[] = {
	{ "read", 'r', "FILE", 0, "Read the stream from FILE instead of stdin", 0 },
	{ "in", OPT_IN, "IFACE", 0, "Inject every packet inbound, as if it arrived on IFACE", 0 },
	{ "out", OPT_OUT, NULL, 0, "Inject every packet outbound, whatever its record says", 0 },
	{ "write", 'w', "FILE", 0, "Write what was injected to FILE as a stream (SLL2; - for stdout)", 0 },
	{ "verbose", 'v', NULL, 0, "Show each packet on stderr: time, direction, interface, "
	    "addresses, protocol, length", 0 },
	{ 0 }
};

struct args {
	const char	*rfile, *wfile, *in_iface;
	int		 out, verbose;
};

/* Why a packet was not injected; counted one by one and reported at exit. */
enum reason {
	R_NOTIP, R_MALFORMED, R_CUT, R_TOOLONG, R_DF, R_NOFRAG, R_NOIF, R_IFDOWN, R_SNDBUF,
	R_KERNEL, R_COUNT
};

static const char *const reason_words[R_COUNT] = {
	[R_NOTIP] = "not IP",
	[R_MALFORMED] = "malformed",
	[R_CUT] = "cut short by the capture",
	[R_TOOLONG] = "longer than IP allows",
	[R_DF] = "over the MTU with Don't Fragment",
	[R_NOFRAG] = "could not be fragmented",
	[R_NOIF] = "no interface to arrive on",
	[R_IFDOWN] = "interface down",
	[R_SNDBUF] = "send buffer full (neighbour unreachable?)",
	[R_KERNEL] = "refused by the kernel",
};

struct injector {
	struct raw		*raw;
	struct tun_set		*tun;
	struct stream_out	*out;		/* -w; NULL without */
	int			 verbose;
	int			 force_dir;	/* DIVERT_IN (--in), DIVERT_OUT (--out), or 0 */
	uint32_t		 in_ifindex;	/* --in */
	uint32_t		 ident;		/* next fragment identification, IPv4 ID */
	uint64_t		 read, injected, out_n, in_n, fragmented, fragments;
	uint64_t		 refused, reason[R_COUNT];
	int			 warned[R_COUNT];
	int			 out_errno;	/* -w failed: EPIPE, ENOSPC ... */
	int			 frag_err;	/* errno of the fragment that failed */
	int			 fatal;		/* the inbound path cannot be built */
	const struct pkt	*splitting;	/* the packet frag_split is cutting up */
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
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s' (the stream comes on stdin, or -r FILE)", arg);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp argp = { options, parse_opt, NULL,
	"Inject the packets of a pcap stream (stdin) back into the IP stack: outgoing "
	"ones are sent, incoming ones arrive on their interface.  Records without a "
	"direction (RAW, Ethernet, NULL captures) go out.", NULL, NULL, NULL };

/* Every check on the command line, in one place; exits 64 on a bad one. */
static void
check_args(const struct args *a, struct injector *ij)
{
	if (a->in_iface != NULL && a->out)
		usage_errx("--in and --out contradict each other: choose one direction");
	if (a->in_iface != NULL) {
		if ((ij->in_ifindex = if_nametoindex(a->in_iface)) == 0)
			usage_errx("--in %s: no such interface here", a->in_iface);
		ij->force_dir = DIVERT_IN;
	}
	if (a->out)
		ij->force_dir = DIVERT_OUT;
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
	fprintf(stderr, "%s.%06ld %s %s %s%s%s\n", when, (long)p->a.ts.tv_usec,
	    p->a.dir == DIVERT_IN ? "in " : "out", ifname(ij, p->a.ifindex), what,
	    note[0] ? " " : "", note);
}

/* Append to -w; a failing copy is reported once and stops, injection goes on. */
static void
copy_out(struct injector *ij, const struct pkt *p)
{
	if (ij->out == NULL || ij->out_errno != 0)
		return;
	if (stream_out_write(ij->out, p) < 0) {
		ij->out_errno = errno;
		if (!reader_gone(errno))
			warn("writing -w");
	}
}

/* A packet is in (nfrag fragments, already copied to -w; 0: whole). */
static void
injected(struct injector *ij, const struct pkt *p, int nfrag)
{
	char note[32] = "";

	ij->injected++;
	if (p->a.dir == DIVERT_IN)
		ij->in_n++;
	else
		ij->out_n++;
	if (nfrag > 1) {
		ij->fragmented++;
		ij->fragments += (uint64_t)nfrag;
		snprintf(note, sizeof(note), "(%d fragments)", nfrag);
	} else if (nfrag == 0) {
		copy_out(ij, p);	/* pieces were copied out as they were sent */
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
refuse(struct injector *ij, const struct pkt *p, enum reason r, const char *why)
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
 * Check the record holds a whole IP packet and make its length fields
 * right.  A length field shorter than the record trims it (link-layer
 * padding, as the kernel's receive path does); a zero, short or longer one
 * is set to the record's length, as the raw socket does for IPv4.  The IPv4
 * header checksum is recomputed (the TUN path does not).  -1 when fine,
 * else the reason, with words in why.
 */
static int
fix_packet(struct pkt *p, char *why, size_t whylen)
{
	uint8_t *ip = p->data;
	int v = p->len > 0 ? ip[0] >> 4 : 0;
	size_t hl, n;

	p->a.proto = p->a.proto ? p->a.proto : pkt_ip_proto(p->data, p->len);
	if (p->a.proto != ETH_P_IP && p->a.proto != ETH_P_IPV6) {
		snprintf(why, whylen, "not an IPv4 or IPv6 packet (ethertype 0x%04x)", p->a.proto);
		return R_NOTIP;
	}
	if (v != (p->a.proto == ETH_P_IP ? 4 : 6)) {
		snprintf(why, whylen, "IP version %d in a record of ethertype 0x%04x", v, p->a.proto);
		return R_MALFORMED;
	}
	if (p->a.cut != 0) {
		snprintf(why, whylen, "the capture kept %zu of its %zu bytes", p->len, p->len + p->a.cut);
		return R_CUT;
	}
	if (v == 4) {
		hl = p->len >= 20 ? (size_t)(ip[0] & 15) * 4 : 0;
		if (hl < 20 || hl > p->len) {
			snprintf(why, whylen, "a %zu-byte packet with an IPv4 header of %zu", p->len, hl);
			return R_MALFORMED;
		}
		n = get16(ip + 2);
		if (n >= hl && n < p->len)
			p->len = n;
		if (p->len > 65535) {
			snprintf(why, whylen, "%zu bytes, more than IPv4's 65535", p->len);
			return R_TOOLONG;
		}
		put16(ip + 2, (uint16_t)p->len);
		put16(ip + 10, 0);
		put16(ip + 10, csum(ip, hl));
	} else {
		if (p->len < 40) {
			snprintf(why, whylen, "%zu bytes, shorter than an IPv6 header", p->len);
			return R_MALFORMED;
		}
		n = get16(ip + 4);
		if (n > 0 && 40 + n < p->len)
			p->len = 40 + n;
		if (p->len - 40 > 65535) {
			snprintf(why, whylen, "an IPv6 payload of %zu bytes (jumbograms are not "
			    "injected)", p->len - 40);
			return R_TOOLONG;
		}
		put16(ip + 4, (uint16_t)(p->len - 40));
	}
	return -1;
}

/* Each fragment of an oversized packet goes out at once, and to -w. */
static int
send_fragment(const uint8_t *frag, size_t len, void *arg)
{
	struct injector *ij = arg;
	struct pkt piece = *ij->splitting, *f = &piece;

	f->data = (uint8_t *)frag;
	f->len = len;
	f->a.cut = 0;

	if ((ij->frag_err = raw_send(ij->raw, f)) != 0)
		return 1;
	copy_out(ij, f);
	return 0;
}

/* The kernel said EMSGSIZE: fragment to the route's MTU, unless DF forbids it. */
static void
too_big(struct injector *ij, const struct pkt *p)
{
	char why[128];
	int mtu, n;

	if ((mtu = raw_route_mtu(ij->raw, p)) < 0) {
		snprintf(why, sizeof(why), "over the interface MTU, and the route MTU is "
		    "unknown: %s", strerror(-mtu));
		refuse(ij, p, R_KERNEL, why);
		return;
	}
	ij->frag_err = 0;
	ij->splitting = p;
	n = frag_split(p->data, p->len, (size_t)mtu, ij->ident++, send_fragment, ij);
	if (n > 1) {
		injected(ij, p, n);
	} else if (n == 1) {
		injected(ij, p, 1);	/* it fit the probed MTU after all: sent whole */
	} else if (n == FRAG_E_DF) {
		snprintf(why, sizeof(why), "Don't Fragment set, %zu bytes > route MTU %d",
		    p->len, mtu);
		refuse(ij, p, R_DF, why);
	} else if (n == FRAG_E_STOP) {
		snprintf(why, sizeof(why), "sending a fragment: %s",
		    strerror(ij->frag_err ? ij->frag_err : EMSGSIZE));
		refuse(ij, p, ij->frag_err == EAGAIN ? R_SNDBUF : R_KERNEL, why);
	} else {
		snprintf(why, sizeof(why), "%s (route MTU %d)", frag_strerror(n), mtu);
		refuse(ij, p, R_NOFRAG, why);
	}
}

/* raw.c's report on each outbound packet, in order. */
static void
sent(const struct pkt *p, int err, void *arg)
{
	struct injector *ij = arg;
	char why[128];

	if (err == 0) {
		injected(ij, p, 0);
	} else if (err == EMSGSIZE) {
		too_big(ij, p);
	} else if (err == EAGAIN) {
		/*
		 * This destination's socket is full of packets the kernel
		 * holds: waiting would hold up every other destination.
		 */
		refuse(ij, p, R_SNDBUF, "its socket's send buffer is full (the neighbour does "
		    "not answer, or its device is slower than the stream)");
	} else {
		snprintf(why, sizeof(why), "%s%s", strerror(err), err == EPERM ?
		    " (a firewall rule dropped it)" : err == EAFNOSUPPORT ?
		    " (no IPv6 in this kernel)" : "");
		refuse(ij, p, R_KERNEL, why);
	}
}

/* Which way a record goes and by which interface, after --in / --out. */
static void
aim(struct injector *ij, struct pkt *p)
{
	int dir = ij->force_dir ? ij->force_dir : p->a.dir == DIVERT_IN ? DIVERT_IN : DIVERT_OUT;

	if (dir == DIVERT_IN && ij->in_ifindex != 0)
		p->a.ifindex = ij->in_ifindex;
	else if (dir != p->a.dir)
		p->a.ifindex = 0;		/* the record's interface meant the other way */
	p->a.dir = dir;
	p->dlt = 0;			/* metadata changed: -w builds the SLL2 header anew */
}

/*
 * Packets counted injected that the kernel dropped as their interface went
 * down or away (tun_losses): counted again as refused, so that injected is
 * what arrived.
 */
static void
take_back(struct injector *ij, int final)
{
	uint64_t down, gone, k;

	tun_losses(ij->tun, final, &down, &gone);
	if ((k = down + gone) == 0)
		return;
	ij->injected -= k;
	ij->in_n -= k;
	ij->refused += k;
	ij->reason[R_IFDOWN] += down;
	ij->reason[R_NOIF] += gone;
	if (ij->verbose || !ij->warned[R_IFDOWN]) {
		ij->warned[R_IFDOWN] = 1;
		warnx("%ju packets shown injected were dropped by the kernel: their interface "
		    "went down or away as they were written (counted refused)", (uintmax_t)k);
	}
}

static void
inject_inbound(struct injector *ij, struct pkt *p)
{
	char why[512];

	if (p->a.ifindex == 0) {
		refuse(ij, p, R_NOIF, "inbound, but the record names no interface: use --in IFACE");
		return;
	}
	switch (tun_inject(ij->tun, &p->a.ifindex, p->data, p->len, why, sizeof(why))) {
	case TUN_OK:
		injected(ij, p, 0);
		break;
	case TUN_E_NOIF:
		refuse(ij, p, R_NOIF, why);
		break;
	case TUN_E_DOWN:
		refuse(ij, p, R_IFDOWN, why);
		break;
	case TUN_E_WRITE:
		refuse(ij, p, R_KERNEL, why);
		break;
	default:
		warnx("%s", why);
		ij->fatal = 1;
	}
	take_back(ij, 0);
}

/*
 * An outgoing IPv4 packet with ID 0 and DF clear would get its ID from the
 * kernel after -w saw it: give it one here (with its header checksum), so
 * that -w holds what went on the wire.  ident is also the fragments' counter.
 */
static void
fill_ipv4_id(struct injector *ij, struct pkt *p)
{
	uint8_t *ip = p->data;
	uint16_t id;

	if (ip[0] >> 4 != 4 || get16(ip + 4) != 0 || (get16(ip + 6) & 0x4000) != 0)
		return;
	if ((id = (uint16_t)ij->ident++) == 0)
		id = (uint16_t)ij->ident++;
	put16(ip + 4, id);
	put16(ip + 10, 0);
	put16(ip + 10, csum(ip, (size_t)(ip[0] & 15) * 4));
}

static void
inject(struct injector *ij, struct pkt *p)
{
	char why[256];
	int r;

	ij->read++;
	if ((r = fix_packet(p, why, sizeof(why))) >= 0) {
		refuse(ij, p, (enum reason)r, why);
		return;
	}
	aim(ij, p);
	if (p->a.dir == DIVERT_OUT) {
		fill_ipv4_id(ij, p);
		raw_queue(ij->raw, p);
		return;
	}
	raw_flush(ij->raw);		/* keep the stream's order */
	inject_inbound(ij, p);
}

/*
 * Whether the input has nothing ready.  A signal (SIGIO: a link changed)
 * can cut the check short; ask again, or a pending batch would wait for
 * the next packet.
 */
static int
input_idle(struct stream_in *in)
{
	int idle;

	do {
		errno = 0;
		idle = stream_in_idle(in);
	} while (!idle && errno == EINTR && !divert_stop);
	return idle;
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

	while (!divert_stop && !ij->fatal) {
		if ((rc = stream_in_read(in, &p)) == 0)
			break;
		if (rc < 0) {
			raw_flush(ij->raw);
			if (divert_stop)
				break;
			warnx("%s after %ju records: stopped there", stream_in_error(in),
			    (uintmax_t)ij->read);
			return EX_RUNTIME;
		}
		inject(ij, &p);
		if (input_idle(in)) {
			raw_flush(ij->raw);
			if (ij->out != NULL && ij->out_errno == 0 && stream_out_flush(ij->out) < 0)
				ij->out_errno = errno;
		}
	}
	raw_flush(ij->raw);
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
	for (r = 0; r < R_COUNT; r++) {
		if (ij->reason[r] == 0)
			continue;
		fprintf(stderr, "%s%ju %s", first ? " (" : ", ", (uintmax_t)ij->reason[r],
		    reason_words[r]);
		first = 0;
	}
	fputs(first ? "\n" : ")\n", stderr);
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
	mark = divert_mark();
	catch_stop_signals();
	if (getrandom(&ij->ident, sizeof(ij->ident), GRND_NONBLOCK) != sizeof(ij->ident))
		ij->ident = (uint32_t)time(NULL) ^ (uint32_t)getpid();

	if ((ij->raw = raw_open(mark, sent, ij, why, sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);
	if ((ij->tun = tun_open(mark, why, sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);
	/* With --in the one inbound path is built now: a kernel that lacks it fails at once. */
	if (ij->in_ifindex != 0 && tun_prepare(ij->tun, ij->in_ifindex, why, sizeof(why)) != TUN_OK)
		errx(EX_RUNTIME, "%s", why);
	if ((in = stream_in_open(a.rfile, why, sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);
	if (a.wfile != NULL && (ij->out = stream_out_open(a.wfile, DLT_SLL2, why,
	    sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);

	status = inject_loop(ij, in);

	take_back(ij, 1);
	report(ij);
	if (ij->out != NULL && stream_out_close(ij->out) < 0 && ij->out_errno == 0)
		ij->out_errno = errno;
	if (ij->out_errno != 0 && !reader_gone(ij->out_errno)) {
		errno = ij->out_errno;
		warn("writing -w %s", a.wfile);
		status = EX_RUNTIME;
	}
	stream_in_close(in);
	tun_close(ij->tun);
	raw_close(ij->raw);
	return status;
}
