/*
 * divert-mangle - edit IP/TCP/UDP/SCTP headers of a pcap stream, in a pipe.
 *
 *	divert-listen 4321 | divert-mangle --ttl 5 | divert-inject
 *
 * Reads a stream on stdin, edits each packet in place (the edits and their
 * order are in edit.h), fixes the checksums and writes it to stdout with the
 * same link type and the record's own link header, time and length.  -f
 * limits the edits to matching packets, --drop removes them instead (and,
 * in a live pipeline whose listener holds them, drops them in the kernel:
 * inplace.h).  A packet that does not parse passes through unchanged and
 * is counted; a broken stream ends the run with status 1 after everything
 * before it was written.
 */
#include <argp.h>
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <linux/if_ether.h>
#include <pcap/pcap.h>

#include "tool.h"
#include "edit.h"
#include "inplace.h"
#include "ether.h"
#include "format_argp.h"
#include "stream.h"

const char *argp_program_version = "divert-mangle (divert) " DIVERT_VERSION;

enum {
	OPT_TTL = 256, OPT_TOS, OPT_DSCP, OPT_ECN, OPT_TCLASS, OPT_FLOWLABEL, OPT_SRC,
	OPT_DST, OPT_SPORT, OPT_DPORT, OPT_MSS, OPT_DF, OPT_IPID, OPT_FIXCSUM, OPT_DROP
};

/*
 * The groups are the man page's.  argp sorts the options of a group by name,
 * so each group is one whose names read well in that order: the source
 * maps and the destination maps are groups of their own.
 */
static const struct argp_option options[] = {
	{ NULL, 0, NULL, 0, "IP header edits, on every fragment (IPv4 and IPv6 where "
	    "the field exists):", 1 },
	{ "df", OPT_DF, "set|clear", 0, "Set or clear IPv4's don't-fragment bit", 1 },
	{ "dscp", OPT_DSCP, "N", 0, "Set the DSCP (0..63) of the TOS or traffic class", 1 },
	{ "ecn", OPT_ECN, "N", 0, "Set the ECN bits (0..3) of the TOS or traffic class", 1 },
	{ "flowlabel", OPT_FLOWLABEL, "N", 0, "Set the IPv6 flow label (0..0xfffff)", 1 },
	{ "ipid", OPT_IPID, "N", 0, "Set the IPv4 identification (0..65535)", 1 },
	{ "tclass", OPT_TCLASS, "N", 0, "Set the IPv6 traffic class (0..255)", 1 },
	{ "tos", OPT_TOS, "N", 0, "Set the IPv4 TOS byte (0..255)", 1 },
	{ "ttl", OPT_TTL, "[+|-]N", 0, "Set the TTL or hop limit to N (1..255), or add or "
	    "subtract N, saturating at 1 and 255", 1 },
	{ NULL, 0, NULL, 0, "Source maps (repeatable, the first match wins):", 2 },
	{ "sport", OPT_SPORT, "A[-B]:C", 0, "Map TCP, UDP and SCTP source ports A..B to C", 2 },
	{ "src", OPT_SRC, "A/L:B/L", 0, "Map source addresses in A/L into B/L, host bits "
	    "kept (IPv6 may be [A/L]:[B/L])", 2 },
	{ NULL, 0, NULL, 0, "Destination maps (repeatable, the first match wins):", 3 },
	{ "dport", OPT_DPORT, "A[-B]:C", 0, "Map TCP, UDP and SCTP destination ports A..B "
	    "to C", 3 },
	{ "dst", OPT_DST, "A/L:B/L", 0, "Map destination addresses in A/L into B/L, host "
	    "bits kept (the header's, not a source route's)", 3 },
	{ NULL, 0, NULL, 0, "TCP:", 4 },
	{ "mss", OPT_MSS, "N", 0, "Clamp the MSS option of TCP SYNs to N", 4 },
	{ NULL, 0, NULL, 0, "Checksums:", 5 },
	{ "fix-checksums", OPT_FIXCSUM, NULL, 0, "Recompute every checksum, edited or not, "
	    "repairing wrong ones", 5 },
	{ NULL, 0, NULL, 0, "Selection and files:", 6 },
	{ "drop", OPT_DROP, NULL, 0, "Drop the packets matching -f instead of editing them", 6 },
	{ "filter", 'f', "EXPR", 0, "Edit only packets matching the pcap filter; the others "
	    "pass byte for byte", 6 },
	{ "read", 'r', "FILE", 0, "Read the stream from FILE instead of stdin", 6 },
	{ "write", 'w', "FILE", 0, "Write the stream to FILE instead of stdout (never "
	    "the input)", 6 },
	{ 0 }
};

struct args {
	struct edits	 e;
	const char	*filter, *rfile, *wfile;
	int		 drop;
	struct format_choice fmt;	/* -F */
};

struct mangler {
	struct edits		 e;
	int			 editing, drop, filtered;
	struct bpf_program	 prog;
	struct stream_in	*in;
	struct stream_out	*out;
	struct inplace		*ip;		/* --drop in place; NULL: not live */
	uint64_t		 read, edited, dropped, passed, unparseable;
	uint64_t		 skipped;	/* SCTP first fragments left unedited */
	uint64_t		 unwritten;	/* counted, then refused by the output */
};


/* After getopt's own message: the same hint usage_errx() gives, and exit 64. */
static void __attribute__((noreturn))
usage_hint(void)
{
	fprintf(stderr, "Try '%s --help' or '%s --usage' for more information.\n",
	    program_invocation_short_name, program_invocation_short_name);
	exit(EX_USAGE_ERR);
}

static long
number(const char *opt, const char *arg, long max)
{
	long v = parse_ulong(arg, 0, max);

	if (v < 0)
		usage_errx("bad --%s '%s': want 0..%ld", opt, arg, max);
	return v;
}

static error_t
parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	struct edits *e = &a->e;

	switch (key) {
	case OPT_TTL:
		if (edits_parse_ttl(e, arg) < 0)
			usage_errx("bad --ttl '%s': want N (1..255), +N or -N (0..255)", arg);
		break;
	case OPT_TOS: e->tos = (int)number("tos", arg, 255); break;
	case OPT_TCLASS: e->tclass = (int)number("tclass", arg, 255); break;
	case OPT_DSCP: e->dscp = (int)number("dscp", arg, 63); break;
	case OPT_ECN: e->ecn = (int)number("ecn", arg, 3); break;
	case OPT_FLOWLABEL: e->flowlabel = number("flowlabel", arg, 0xfffff); break;
	case OPT_IPID: e->ipid = number("ipid", arg, 65535); break;
	case OPT_MSS:
		if ((e->mss = (int)parse_ulong(arg, 1, 65535)) < 0)
			usage_errx("bad --mss '%s': want 1..65535", arg);
		break;
	case OPT_DF:
		if (strcasecmp(arg, "set") == 0)
			e->df = 1;
		else if (strcasecmp(arg, "clear") == 0)
			e->df = 0;
		else
			usage_errx("bad --df '%s': want set or clear", arg);
		break;
	case OPT_SRC:
	case OPT_DST:
		if (edits_add_addr_map(key == OPT_SRC ? e->src : e->dst,
		    key == OPT_SRC ? &e->nsrc : &e->ndst, arg) < 0)
			usage_errx("bad --%s '%s': want A/L:B/L of one family, e.g. "
			    "10.0.0.0/24:10.9.0.0/24 or [fd00::/64]:[fd01::/64] (at most %d)",
			    key == OPT_SRC ? "src" : "dst", arg, EDIT_MAX_MAPS);
		break;
	case OPT_SPORT:
	case OPT_DPORT:
		if (edits_add_port_map(key == OPT_SPORT ? e->sport : e->dport,
		    key == OPT_SPORT ? &e->nsport : &e->ndport, arg) < 0)
			usage_errx("bad --%s '%s': want A:C or A-B:C with ports 0..65535 "
			    "(at most %d)", key == OPT_SPORT ? "sport" : "dport", arg,
			    EDIT_MAX_MAPS);
		break;
	case OPT_FIXCSUM: e->fix_checksums = 1; break;
	case OPT_DROP: a->drop = 1; break;
	case 'f': a->filter = arg; break;
	case 'r': a->rfile = arg; break;
	case 'w': a->wfile = arg; break;
	case ARGP_KEY_INIT:
		/*
		 * getopt has said what is wrong ("unrecognized option '--x'");
		 * argp's own "Try `...'" line would quote otherwise than every
		 * other message: main prints ours.
		 */
		state->err_stream = NULL;
		state->child_inputs[0] = &a->fmt;
		break;
	case ARGP_KEY_ARG:
		usage_errx("unexpected argument '%s': the stream comes on stdin, or -r FILE", arg);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp_child children[] = { { &format_argp, 0, NULL, 6 }, { 0 } };

static const struct argp argp = { options, parse_opt, NULL,
	"Edit the IP, TCP, UDP and SCTP headers of a pcapng or pcap stream (stdin to stdout), "
	"fixing the checksums, e.g.\n\n"
	"  divert-listen 4321 | divert-mangle --ttl 5 | divert-inject\n\v"
	"Edits apply in this order: TTL, TOS/traffic class, DSCP, ECN, flow label, DF, "
	"IP ID, --src, --dst; then, where the L4 header is present (first fragment), "
	"--sport, --dport, --mss; then checksums.  Counters go to stderr at exit.",
	children, NULL, NULL };

/* Every check on the command line, in one place; exits 64 on a bad one. */
static void
check_args(struct args *a, struct mangler *m)
{
	m->e = a->e;
	m->editing = edits_ready(&m->e);
	m->drop = a->drop;
	if (a->drop && a->filter == NULL)
		usage_errx("--drop drops the packets matching -f FILTER: give one");
	if (a->drop && m->editing)
		usage_errx("--drop removes the matching packets, it does not edit them: "
		    "give no edits with it (or use two divert-mangle in a row)");
	if (same_file(a->rfile, a->wfile))
		usage_errx("%s%s%s is the input: writing it would destroy it; "
		    "write to another file", a->wfile ? "-w '" : "standard output",
		    a->wfile ? a->wfile : "", a->wfile ? "'" : "");
}

/* The filter is compiled for the stream's own link type. */
static void
compile_filter(struct mangler *m, const char *expr, int dlt)
{
	pcap_t *dead = pcap_open_dead(dlt, STREAM_SNAPLEN);

	if (dead == NULL)
		errx(EX_RUNTIME, "out of memory");
	if (pcap_compile(dead, &m->prog, expr, 1, PCAP_NETMASK_UNKNOWN) < 0)
		usage_errx("bad filter expression '%s' for link type %s: %s", expr,
		    pcap_datalink_val_to_name(dlt) ?: "?", pcap_geterr(dead));
	pcap_close(dead);
	m->filtered = 1;
}

static int
matches(const struct mangler *m, const struct pkt *p)
{
	struct pcap_pkthdr h;

	h.caplen = (bpf_u_int32)(p->l2len + p->len);
	h.len = (bpf_u_int32)(h.caplen + p->a.cut);
	return pcap_offline_filter(&m->prog, &h, p->rec) != 0;
}


/*
 * Where the IP header starts in p->data: at once, or after an MPLS label
 * stack, where the bottom label is followed by IP (its version nibble says
 * which) or by a pseudowire control word (nibble 0, RFC 4385) and an
 * Ethernet frame (what tcprewrite also edits).  -1: the record is cut or
 * lies about its protocol; -2: no IP in it (an MPLS pseudowire of ARP...).
 */
static long
ip_offset(const struct pkt *p)
{
	size_t off = 0, eth;
	uint16_t type;
	int v;

	if (p->a.proto == ETH_P_MPLS_UC || p->a.proto == ETH_P_MPLS_MC) {
		do {
			if ((off += 4) > p->len)
				return -1;
		} while (!(p->data[off - 2] & 1));	/* bottom-of-stack bit */
		if (off >= p->len)
			return -1;
		if ((p->data[off] >> 4) == 0) {		/* control word, then Ethernet */
			off += 4;
			if (off >= p->len || (eth = ether_hdrlen(p->data + off, p->len - off,
			    &type)) == 0)
				return -1;
			if (type != ETH_P_IP && type != ETH_P_IPV6)
				return -2;
			off += eth;
		}
	}
	if (off >= p->len)
		return -1;
	v = p->data[off] >> 4;
	if (p->a.proto == ETH_P_IP || p->a.proto == ETH_P_IPV6)
		return v == (p->a.proto == ETH_P_IP ? 4 : 6) ? (long)off : -1;
	return v == 4 || v == 6 ? (long)off : -2;
}

static int
carries_ip(uint16_t proto)
{
	return proto == ETH_P_IP || proto == ETH_P_IPV6 || proto == ETH_P_MPLS_UC ||
	    proto == ETH_P_MPLS_MC;
}

/* Decide one record's fate and edit it in place: 1 to write it, 0 to drop it. */
static int
handle(struct mangler *m, struct pkt *p)
{
	long off;
	int skipped = 0;

	if (m->filtered && !matches(m, p)) {
		m->passed++;
		return 1;
	}
	if (m->drop) {
		m->dropped++;
		inplace_drop(m->ip, &p->a);	/* a held packet is dropped where it waits */
		return 0;
	}
	if (!carries_ip(p->a.proto)) {
		if (p->a.proto == 0)
			m->unparseable++;	/* link header or IP version unreadable */
		else
			m->passed++;		/* ARP and the like: not ours to edit */
		return 1;
	}
	if (!m->editing) {
		m->passed++;
		return 1;
	}
	if ((off = ip_offset(p)) == -2) {
		m->passed++;
		return 1;
	}
	switch (off < 0 ? MANGLE_BAD : mangle(&m->e, p->data + off, p->len - (size_t)off,
	    p->a.cut, &skipped)) {
	case MANGLE_EDITED: m->edited++; break;
	case MANGLE_SAME: m->passed++; break;
	default: m->unparseable++; break;
	}
	m->skipped += skipped;
	return 1;
}

/*
 * The loop: read, edit, write; flush whenever the input has nothing more
 * ready, so a lone packet (a SYN) is not held back.  0 at the end of the
 * stream or on a signal, -1 (with a message) on a broken stream or output.
 */
static int
mangle_stream(struct mangler *m)
{
	struct pkt p;
	int rc = 0;

	while (!stop_signalled && (rc = stream_in_read(m->in, &p)) == 1) {
		m->read++;
		if (handle(m, &p) && stream_out_write(m->out, &p) < 0) {
			m->unwritten++;		/* counted above, but not taken */
			goto out_failed;
		}
		if (stream_in_idle(m->in)) {
			inplace_flush(m->ip);
			if (stream_out_flush(m->out) < 0)
				goto out_failed;
			/* Idle, the listeners are watched too: one that leaves is left at once. */
			if (m->ip != NULL)
				inplace_wait(m->ip, -1);
		}
	}
	if (stop_signalled || rc == 0)
		return 0;
	warnx("%s after %ju records: the stream ends here", stream_in_error(m->in),
	    (uintmax_t)m->read);
	return -1;
out_failed:
	if (reader_gone(errno))
		return 0;
	warn("writing the stream");
	return -1;
}

int
main(int argc, char **argv)
{
	static struct mangler m;	/* the maps are large: not on the stack */
	static struct args a;
	char why[256];
	uint64_t unwritten;
	int status = 0, out_err = 0;

	edits_init(&a.e);
	argv[0] = program_invocation_short_name;	/* getopt's messages: "divert-mangle: " */
	if (argp_parse(&argp, argc, argv, 0, NULL, &a) != 0)
		usage_hint();
	check_args(&a, &m);
	catch_stop_signals();

	if ((m.in = stream_in_open(a.rfile, why, sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);
	if (a.filter != NULL)
		compile_filter(&m, a.filter, stream_in_linktype(m.in));
	if ((m.out = stream_out_open(a.wfile, stream_in_linktype(m.in), a.fmt.format, why,
	    sizeof(why))) == NULL)
		errx(EX_RUNTIME, "%s", why);

	/* Only --drop answers in place: an edited packet goes on down the pipe. */
	if (m.drop)
		m.ip = inplace_new(a.rfile == NULL || strcmp(a.rfile, "-") == 0 ?
		    STDIN_FILENO : -1, 0);
	if (mangle_stream(&m) < 0)
		status = EX_RUNTIME;
	inplace_flush(m.ip);
	/* What a stop left unwritten is counted as such (stream.h). */
	if (stream_out_flush(m.out) < 0)
		out_err = errno;
	unwritten = m.unwritten + stream_out_discard(m.out);

	fprintf(stderr, "%s: %ju read, %ju edited, %ju dropped, %ju passed, "
	    "%ju unparseable; %ju SCTP fragments kept their ports\n",
	    program_invocation_short_name, (uintmax_t)m.read, (uintmax_t)m.edited,
	    (uintmax_t)m.dropped, (uintmax_t)m.passed, (uintmax_t)m.unparseable,
	    (uintmax_t)m.skipped);
	if (unwritten > 0)
		fprintf(stderr, "%s: %ju of them not written: stopped, or the reader "
		    "left\n", program_invocation_short_name, (uintmax_t)unwritten);
	if (inplace_dropped(m.ip) > 0)
		fprintf(stderr, "%s: %ju of them dropped in place, in the kernel\n",
		    program_invocation_short_name, (uintmax_t)inplace_dropped(m.ip));
	inplace_free(m.ip);
	/* A broken input was reported already: one message is enough. */
	if (stream_out_finish(m.out, out_err, status == 0 ? "the stream" : NULL) != 0)
		status = EX_RUNTIME;
	stream_in_close(m.in);
	if (m.filtered)
		pcap_freecode(&m.prog);
	return status;
}
