/*
 * rule.c - divert rules as nftables rules in the toolkit's own table
 * (inet divert): parse and render the command-line form, turn a rule into
 * expressions and back, and talk to the kernel with libnftnl over libmnl.
 *
 * Every rule reads, in this order:
 *   meta mark & DIVERT_MARK == 0		loop avoidance, always
 *   meta nfproto == ipv4|ipv6		-4/-6, or implied by an address
 *   meta l4proto == PROTO
 *   network header saddr[/mask] == ADDR	-s
 *   network header daddr[/mask] == ADDR	-d
 *   transport header 0:2 == N or in N-M	--sport
 *   transport header 2:2 == N or in N-M	--dport
 *   meta iifname == IFACE, oifname		-i, -o
 *   counter
 *   queue (native) or target NFQUEUE v3	the divert port(s)
 * The decoder accepts exactly this shape and nothing else.  The rule's
 * comment (NFTNL_RULE_USERDATA) holds the tag rule_add() gave it.
 */
#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "tool.h"
#include "rule.h"

/*
 * Chain names are the hook names; enum rule_chain indexes this table.
 * Default priorities: a packet diverted after NAT has changed it comes back
 * (as a copy, through divert-inject) looking like a new connection, and a
 * NATed connection then times out.  On prerouting and output, -150 is after
 * defragmentation and connection tracking (-400, -200) but before
 * destination NAT (-100), so the copy goes through NAT as the original
 * would have.  Input, forward and postrouting come after prerouting's and
 * output's NAT at any priority: nothing better than 0 (filter) there.
 */
static const struct {
	const char	*name;
	int		 hook;
	int		 priority;
} chains[] = {
	[CHAIN_PREROUTING]	= { "prerouting",	NF_INET_PRE_ROUTING,	-150 },
	[CHAIN_INPUT]		= { "input",		NF_INET_LOCAL_IN,	0 },
	[CHAIN_FORWARD]		= { "forward",		NF_INET_FORWARD,	0 },
	[CHAIN_OUTPUT]		= { "output",		NF_INET_LOCAL_OUT,	-150 },
	[CHAIN_POSTROUTING]	= { "postrouting",	NF_INET_POST_ROUTING,	0 },
};
#define NCHAINS	(sizeof(chains) / sizeof(chains[0]))

static const struct {
	const char	*name;
	int		 num;
} protos[] = {
	{ "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP },
	{ "icmp", IPPROTO_ICMP }, { "icmpv6", IPPROTO_ICMPV6 },
	{ "sctp", IPPROTO_SCTP }, { "udplite", IPPROTO_UDPLITE },
};
#define NPROTOS	(sizeof(protos) / sizeof(protos[0]))

enum {
	OPT_SPORT = 256, OPT_DPORT, OPT_PASS_THROUGH, OPT_PRIORITY, OPT_FANOUT,
};

#define MAX_EXPRS	32	/* a divert rule has at most 23 expressions */
#define BATCH_LIMIT	8192	/* our batches are a few hundred bytes */
#define NLMSG_REQ_SIZE	512	/* a get or dump request */
#define NLMSG_READ_SIZE	32768	/* what a dump answers at once */
#define RETRIES		10	/* rereads when the ruleset changes under us */
#define TAG_FORMAT	"divert tag %016" PRIx64	/* the rule's comment */

static int
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Allocation failure in a tool this small is not worth unwinding. */
static void *
must(void *p)
{
	if (p == NULL)
		err(EX_RUNTIME, "out of memory");
	return p;
}

void
rule_init(struct rule_spec *r)
{
	memset(r, 0, sizeof(*r));
	r->chain = CHAIN_NONE;
	r->proto = -1;
	r->sport_lo = r->sport_hi = -1;
	r->dport_lo = r->dport_hi = -1;
	r->port_lo = r->port_hi = -1;
}

/* --- the command-line form ------------------------------------------- */

static int
chain_by_name(const char *s)
{
	size_t i;

	for (i = 0; i < NCHAINS; i++)
		if (strcasecmp(s, chains[i].name) == 0)	/* OUTPUT, as HOWTOs write */
			return (int)i;
	return CHAIN_NONE;
}

int
rule_default_priority(int chain)
{
	return chain >= 0 && (size_t)chain < NCHAINS ? chains[chain].priority : 0;
}

static int
proto_by_name(const char *s)
{
	size_t i;

	for (i = 0; i < NPROTOS; i++)
		if (strcasecmp(s, protos[i].name) == 0)
			return protos[i].num;
	return (int)parse_ulong(s, 0, 255);
}

static const char *
proto_name(int num)
{
	size_t i;

	for (i = 0; i < NPROTOS; i++)
		if (protos[i].num == num)
			return protos[i].name;
	return NULL;
}

static bool
proto_has_ports(int proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
	    proto == IPPROTO_SCTP || proto == IPPROTO_UDPLITE;
}

static size_t
addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* Build the mask of a prefix: len bytes, the first prefix bits set. */
static void
prefix_mask(uint8_t *mask, size_t len, int prefix)
{
	size_t i;

	for (i = 0; i < len; i++) {
		int bits = prefix - (int)i * 8;

		mask[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 :
		    (uint8_t)(0xff << (8 - bits));
	}
}

/* The prefix length a mask stands for, -1 when it is not contiguous. */
static int
mask_prefix(const uint8_t *mask, size_t len)
{
	uint8_t want[16];
	int prefix = 0;
	size_t i;

	for (i = 0; i < len; i++)
		prefix += __builtin_popcount(mask[i]);
	prefix_mask(want, len, prefix);
	return memcmp(want, mask, len) == 0 ? prefix : -1;
}

static int
parse_addr(const char *s, struct rule_addr *a, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	uint8_t mask[16];
	char *slash;
	long prefix;
	size_t i, max;

	if (strlen(s) >= sizeof(buf))
		return seterr(err, errlen, "bad address '%s'", s);
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, buf, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, a->addr) == 1)
		a->family = AF_INET6;
	else
		return seterr(err, errlen, "bad address '%s': want an IPv4 or "
		    "IPv6 address, optionally /LEN", buf);
	max = addr_len(a->family) * 8;
	prefix = slash != NULL ? parse_ulong(slash, 0, (long)max) : (long)max;
	if (prefix < 0)
		return seterr(err, errlen, "bad prefix length in '%s': want "
		    "0..%zu", s, max);
	a->prefix = (int)prefix;
	/* Canonical form, as nft does: 10.1.2.3/8 is 10.0.0.0/8. */
	prefix_mask(mask, addr_len(a->family), a->prefix);
	for (i = 0; i < addr_len(a->family); i++)
		a->addr[i] &= mask[i];
	return 0;
}

/* A signed 32-bit number, decimal or 0x hex, as parse_ulong() reads them. */
static int
parse_priority(const char *s, int *prio)
{
	long v;

	if (*s == '-') {
		if ((v = parse_ulong(s + 1, 0, -(long)INT_MIN)) < 0)
			return -1;
		*prio = (int)-v;
	} else {
		if ((v = parse_ulong(s, 0, INT_MAX)) < 0)
			return -1;
		*prio = (int)v;
	}
	return 0;
}

/* The names the kernel would take: dev_valid_name(), without the checks
 * only the kernel can make. */
static bool
valid_ifname(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len < IFNAMSIZ && strcmp(s, ".") != 0 &&
	    strcmp(s, "..") != 0 && strpbrk(s, "/: \t\n") == NULL;
}

/*
 * Why a static buffer: argp gives an option parser no place of ours for a
 * message.  Under the command line argp_error() prints it and exits 64;
 * under rule_parse_string() (ARGP_SILENT) it prints nothing and the message
 * is picked up from here.
 */
static char option_err[192];

static error_t
option_fail(struct argp_state *state, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(option_err, sizeof(option_err), fmt, ap);
	va_end(ap);
	argp_error(state, "%s", option_err);
	return EINVAL;
}

static error_t
set_family(struct argp_state *state, struct rule_spec *r, int family)
{
	if (r->family != 0 && r->family != family)
		return option_fail(state, "-4 and -6 exclude each other");
	r->family = family;
	return 0;
}

static error_t
set_ifname(struct argp_state *state, char *name, const char *arg)
{
	if (!valid_ifname(arg))
		return option_fail(state, "bad interface name '%s'", arg);
	memset(name, 0, IFNAMSIZ);
	strcpy(name, arg);
	return 0;
}

static error_t
parse_rule_option(int key, char *arg, struct argp_state *state)
{
	struct rule_spec *r = state->input;
	char msg[sizeof(option_err)];

	switch (key) {
	case '4':
		return set_family(state, r, AF_INET);
	case '6':
		return set_family(state, r, AF_INET6);
	case 's':
	case 'd':
		if (parse_addr(arg, key == 's' ? &r->src : &r->dst, msg,
		    sizeof(msg)) < 0)
			return option_fail(state, "%s", msg);
		return 0;
	case OPT_SPORT:
		if (parse_range(arg, 65535, &r->sport_lo, &r->sport_hi) < 0)
			return option_fail(state, "bad --sport '%s': want N or "
			    "N-M within 0..65535", arg);
		return 0;
	case OPT_DPORT:
		if (parse_range(arg, 65535, &r->dport_lo, &r->dport_hi) < 0)
			return option_fail(state, "bad --dport '%s': want N or "
			    "N-M within 0..65535", arg);
		return 0;
	case 'i':
		return set_ifname(state, r->iif, arg);
	case 'o':
		return set_ifname(state, r->oif, arg);
	case OPT_PASS_THROUGH:
		r->pass_through = 1;
		return 0;
	case OPT_PRIORITY:
		if (parse_priority(arg, &r->priority) < 0)
			return option_fail(state, "bad --priority '%s': want a "
			    "32-bit signed number, e.g. -450", arg);
		r->priority_set = 1;
		return 0;
	case OPT_FANOUT:
		r->fanout = 1;
		return 0;
	}
	return ARGP_ERR_UNKNOWN;
}

static const struct argp_option rule_options[] = {
	{ NULL, 0, NULL, 0, "Rule options:", 1 },
	{ NULL, '4', NULL, 0, "Only IPv4 packets", 0 },
	{ NULL, '6', NULL, 0, "Only IPv6 packets", 0 },
	{ "src", 's', "ADDR[/LEN]", 0,
	    "Source address or prefix", 0 },
	{ "dst", 'd', "ADDR[/LEN]", 0,
	    "Destination address or prefix", 0 },
	{ "sport", OPT_SPORT, "N[-M]", 0,
	    "Source port or range (tcp, udp, sctp, udplite)", 0 },
	{ "dport", OPT_DPORT, "N[-M]", 0,
	    "Destination port or range (tcp, udp, sctp, udplite)", 0 },
	{ NULL, 'i', "IFACE", 0,
	    "Input interface (not on output, postrouting)", 0 },
	{ NULL, 'o', "IFACE", 0,
	    "Output interface (not on prerouting, input)", 0 },
	{ "pass-through", OPT_PASS_THROUGH, NULL, 0,
	    "Let packets go on while nobody listens on the port (default: "
	    "drop them)", 0 },
	{ "priority", OPT_PRIORITY, "N", 0,
	    "Chain priority (default -150 on prerouting and output, before "
	    "NAT; 0 elsewhere; -450 sees fragments before conntrack)", 0 },
	{ "fanout", OPT_FANOUT, NULL, 0,
	    "Spread a port range A-B by CPU (without it: by address pair)", 0 },
	{ 0 }
};

const struct argp rule_options_argp = {
	rule_options, parse_rule_option, NULL, NULL, NULL, NULL, NULL
};

int
rule_parse_words(struct rule_spec *r, char *const *words, int n,
    int want_port, char *err, size_t errlen)
{
	int i = 0;

	if (n == 0)
		return seterr(err, errlen, "missing CHAIN (prerouting, input, "
		    "forward, output or postrouting)");
	r->chain = chain_by_name(words[i]);
	if (r->chain == CHAIN_NONE)
		return seterr(err, errlen, "unknown chain '%s': want prerouting, "
		    "input, forward, output or postrouting", words[i]);
	if (!r->priority_set)
		r->priority = chains[r->chain].priority;
	i++;
	/* PROTO is there when a word is left over for it. */
	if (n - i > (want_port ? 1 : 0)) {
		r->proto = proto_by_name(words[i]);
		if (r->proto < 0)
			return seterr(err, errlen, "unknown protocol '%s': want "
			    "tcp, udp, icmp, icmpv6, sctp, udplite or 0..255",
			    words[i]);
		i++;
	}
	if (want_port) {
		if (i == n)
			return seterr(err, errlen, "missing PORT (the divert "
			    "port, 0..65535 or A-B)");
		if (parse_range(words[i], 65535, &r->port_lo, &r->port_hi) < 0) {
			r->port_lo = r->port_hi = -1;
			if (i == 1 && proto_by_name(words[i]) >= 0)
				return seterr(err, errlen, "missing PORT after "
				    "'%s'", words[i]);
			return seterr(err, errlen, "bad PORT '%s': want "
			    "0..65535 or A-B", words[i]);
		}
		i++;
	}
	if (i < n)
		return seterr(err, errlen, "unexpected word '%s'", words[i]);
	return 0;
}

/* rule_parse_string's view of argp: the words, then the rule options. */
struct spec_parse {
	struct rule_spec	*rule;
	char			**words;
	int			 n;
};

static error_t
parse_spec_arg(int key, char *arg, struct argp_state *state)
{
	struct spec_parse *p = state->input;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = p->rule;
		return 0;
	case ARGP_KEY_ARG:
		p->words[p->n++] = arg;
		return 0;
	case ARGP_KEY_ERROR:
		/* An unknown option or one missing its value. */
		if (option_err[0] == '\0' && state->next > 0)
			snprintf(option_err, sizeof(option_err),
			    "bad option '%s' (unknown, or missing its "
			    "value)", state->argv[state->next - 1]);
		return 0;
	}
	return ARGP_ERR_UNKNOWN;
}

int
rule_parse_string(struct rule_spec *r, const char *spec, char *err,
    size_t errlen)
{
	static const struct argp_child children[] = {
		{ &rule_options_argp, 0, NULL, 0 }, { 0 }
	};
	static const struct argp spec_argp = {
		NULL, parse_spec_arg, NULL, NULL, children, NULL, NULL
	};
	struct spec_parse p = { r, NULL, 0 };
	char *copy, *word, *save;
	char **argv;
	int argc = 1, ret;

	copy = must(strdup(spec));
	/* At most one word per two characters, plus argv[0] and NULL. */
	argv = must(calloc(strlen(spec) / 2 + 3, sizeof(*argv)));
	p.words = must(calloc(strlen(spec) / 2 + 1, sizeof(*p.words)));
	argv[0] = (char *)"rule";
	for (word = strtok_r(copy, " \t\n", &save); word != NULL;
	    word = strtok_r(NULL, " \t\n", &save))
		argv[argc++] = word;

	option_err[0] = '\0';
	if (argp_parse(&spec_argp, argc, argv, ARGP_SILENT, NULL, &p) != 0)
		ret = seterr(err, errlen, "%s", option_err[0] != '\0' ?
		    option_err : "bad rule options");
	else
		ret = rule_parse_words(r, p.words, p.n, 0, err, errlen);
	free(p.words);
	free(argv);
	free(copy);
	return ret;
}

/* The family the rule matches: -4/-6, else the one its addresses imply. */
static int
rule_family(const struct rule_spec *r)
{
	if (r->family != 0)
		return r->family;
	return r->src.family != 0 ? r->src.family : r->dst.family;
}

static const char *
family_flag(int family)
{
	return family == AF_INET ? "-4" : "-6";
}

int
rule_check(const struct rule_spec *r, char *err, size_t errlen)
{
	int family = rule_family(r);

	if (r->chain == CHAIN_NONE)
		return seterr(err, errlen, "missing CHAIN");
	if (r->port_lo < 0)
		return seterr(err, errlen, "missing PORT");
	/* The kernel counts queues in 16 bits: 0-65535 is one too many. */
	if (r->port_hi - r->port_lo + 1 > 65535)
		return seterr(err, errlen, "port range %ld-%ld spans more than "
		    "65535 queues", r->port_lo, r->port_hi);
	if (r->src.family != 0 && r->dst.family != 0 &&
	    r->src.family != r->dst.family)
		return seterr(err, errlen, "-s and -d are of different families");
	if ((r->src.family != 0 && r->src.family != family) ||
	    (r->dst.family != 0 && r->dst.family != family))
		return seterr(err, errlen, "%s with an IPv%d address",
		    family_flag(family), family == AF_INET ? 6 : 4);
	if (r->proto == IPPROTO_ICMP && family == AF_INET6)
		return seterr(err, errlen, "icmp never matches IPv6: use icmpv6");
	if (r->proto == IPPROTO_ICMPV6 && family == AF_INET)
		return seterr(err, errlen, "icmpv6 never matches IPv4: use icmp");
	if ((r->sport_lo >= 0 || r->dport_lo >= 0) &&
	    !proto_has_ports(r->proto))
		return seterr(err, errlen, "--sport and --dport need PROTO tcp, "
		    "udp, sctp or udplite");
	if (r->iif[0] != '\0' &&
	    (r->chain == CHAIN_OUTPUT || r->chain == CHAIN_POSTROUTING))
		return seterr(err, errlen, "-i means nothing on %s: locally "
		    "sent packets have no input interface", chains[r->chain].name);
	if (r->oif[0] != '\0' &&
	    (r->chain == CHAIN_PREROUTING || r->chain == CHAIN_INPUT))
		return seterr(err, errlen, "-o means nothing on %s: the output "
		    "interface is not chosen yet", chains[r->chain].name);
	if (r->fanout && r->port_lo == r->port_hi)
		return seterr(err, errlen, "--fanout needs a port range A-B");
	return 0;
}

/* snprintf() that appends words, separated by one space. */
struct text {
	char	*buf;
	size_t	 len;
	int	 n;
};

static void
put(struct text *t, const char *fmt, ...)
{
	size_t at = (size_t)t->n < t->len ? (size_t)t->n : t->len;
	va_list ap;

	if (t->n > 0)
		t->n += snprintf(t->buf + at, t->len - at, " ");
	at = (size_t)t->n < t->len ? (size_t)t->n : t->len;
	va_start(ap, fmt);
	t->n += vsnprintf(t->buf + at, t->len - at, fmt, ap);
	va_end(ap);
}

static void
put_range(struct text *t, const char *flag, long lo, long hi)
{
	if (lo < 0)
		return;
	if (lo == hi)
		put(t, "%s%s%ld", flag, *flag ? " " : "", lo);
	else
		put(t, "%s%s%ld-%ld", flag, *flag ? " " : "", lo, hi);
}

static void
put_addr(struct text *t, const char *flag, const struct rule_addr *a)
{
	char s[INET6_ADDRSTRLEN];

	if (a->family == 0)
		return;
	inet_ntop(a->family, a->addr, s, sizeof(s));
	if ((size_t)a->prefix == addr_len(a->family) * 8)
		put(t, "%s %s", flag, s);
	else
		put(t, "%s %s/%d", flag, s, a->prefix);
}

int
rule_format(const struct rule_spec *r, char *buf, size_t len)
{
	struct text t = { buf, len, 0 };

	if (len > 0)
		buf[0] = '\0';
	if (r->chain != CHAIN_NONE)
		put(&t, "%s", chains[r->chain].name);
	if (r->proto >= 0 && proto_name(r->proto) != NULL)
		put(&t, "%s", proto_name(r->proto));
	else if (r->proto >= 0)
		put(&t, "%d", r->proto);
	put_range(&t, "", r->port_lo, r->port_hi);
	/* An address says its family already: keep one canonical form. */
	if (r->family != 0 && r->src.family == 0 && r->dst.family == 0)
		put(&t, "%s", family_flag(r->family));
	put_addr(&t, "-s", &r->src);
	put_addr(&t, "-d", &r->dst);
	put_range(&t, "--sport", r->sport_lo, r->sport_hi);
	put_range(&t, "--dport", r->dport_lo, r->dport_hi);
	if (r->iif[0] != '\0')
		put(&t, "-i %s", r->iif);
	if (r->oif[0] != '\0')
		put(&t, "-o %s", r->oif);
	if (r->pass_through)
		put(&t, "--pass-through");
	/* Only a priority other than the chain's default, which the rule
	 * takes again when the line is added back. */
	if (r->chain == CHAIN_NONE ? r->priority_set || r->priority != 0 :
	    r->priority != chains[r->chain].priority)
		put(&t, "--priority %d", r->priority);
	if (r->fanout)
		put(&t, "--fanout");
	return t.n;
}

/* --- rule -> expressions ---------------------------------------------- */

enum verdict_kind { QUEUE_NATIVE, QUEUE_COMPAT };

static struct nftnl_expr *
add_expr(struct nftnl_rule *nr, const char *name)
{
	struct nftnl_expr *e = must(nftnl_expr_alloc(name));

	nftnl_rule_add_expr(nr, e);
	return e;
}

/* Everything works in register 1: each match loads, then compares. */
static void
add_meta(struct nftnl_rule *nr, uint32_t key)
{
	struct nftnl_expr *e = add_expr(nr, "meta");

	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
}

static void
add_payload(struct nftnl_rule *nr, uint32_t base, uint32_t offset,
    uint32_t len)
{
	struct nftnl_expr *e = add_expr(nr, "payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
}

static void
add_mask(struct nftnl_rule *nr, const void *mask, uint32_t len)
{
	static const uint8_t zero[16];
	struct nftnl_expr *e = add_expr(nr, "bitwise");

	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
}

static void
add_cmp_eq(struct nftnl_rule *nr, const void *data, uint32_t len)
{
	struct nftnl_expr *e = add_expr(nr, "cmp");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void
add_port_match(struct nftnl_rule *nr, uint32_t offset, long lo, long hi)
{
	uint16_t from = htons((uint16_t)lo), to = htons((uint16_t)hi);
	struct nftnl_expr *e;

	if (lo < 0)
		return;
	add_payload(nr, NFT_PAYLOAD_TRANSPORT_HEADER, offset, 2);
	if (lo == hi) {
		add_cmp_eq(nr, &from, 2);
		return;
	}
	e = add_expr(nr, "range");
	nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_OP, NFT_RANGE_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_RANGE_FROM_DATA, &from, 2);
	nftnl_expr_set(e, NFTNL_EXPR_RANGE_TO_DATA, &to, 2);
}

/* Where an address sits in the network header of its family. */
static uint32_t
addr_offset(int family, bool dst)
{
	if (family == AF_INET)
		return dst ? 16 : 12;
	return dst ? 24 : 8;
}

static void
add_addr_match(struct nftnl_rule *nr, const struct rule_addr *a, bool dst)
{
	uint32_t len = (uint32_t)addr_len(a->family);
	uint8_t mask[16];

	if (a->family == 0)
		return;
	add_payload(nr, NFT_PAYLOAD_NETWORK_HEADER, addr_offset(a->family, dst),
	    len);
	if ((uint32_t)a->prefix < len * 8) {
		prefix_mask(mask, len, a->prefix);
		add_mask(nr, mask, len);
	}
	add_cmp_eq(nr, a->addr, len);
}

static void
add_ifname_match(struct nftnl_rule *nr, uint32_t key, const char *name)
{
	char padded[IFNAMSIZ] = { 0 };

	if (name[0] == '\0')
		return;
	/* Zero-padded to IFNAMSIZ: an exact match, not a prefix one. */
	memcpy(padded, name, strnlen(name, sizeof(padded) - 1));
	add_meta(nr, key);
	add_cmp_eq(nr, padded, IFNAMSIZ);
}

static void
add_verdict(struct nftnl_rule *nr, const struct rule_spec *r,
    enum verdict_kind kind)
{
	uint16_t total = (uint16_t)(r->port_hi - r->port_lo + 1);
	struct xt_NFQ_info_v3 *info;
	struct nftnl_expr *e;

	if (kind == QUEUE_NATIVE) {
		e = add_expr(nr, "queue");
		nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, (uint16_t)r->port_lo);
		nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, total);
		nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS,
		    (r->pass_through ? NFT_QUEUE_FLAG_BYPASS : 0) |
		    (r->fanout ? NFT_QUEUE_FLAG_CPU_FANOUT : 0));
		return;
	}
	e = add_expr(nr, "target");
	nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
	/* libnftnl takes ownership of info and frees it with the expression. */
	info = must(calloc(1, XT_ALIGN(sizeof(*info))));
	info->queuenum = (uint16_t)r->port_lo;
	info->queues_total = total;
	info->flags = (r->pass_through ? NFQ_FLAG_BYPASS : 0) |
	    (r->fanout ? NFQ_FLAG_CPU_FANOUT : 0);
	nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, XT_ALIGN(sizeof(*info)));
}

static void
add_matches(struct nftnl_rule *nr, const struct rule_spec *r,
    enum verdict_kind kind)
{
	uint32_t mark = divert_mark(), zero = 0;
	int family = rule_family(r);
	uint8_t nfproto, l4proto;

	add_meta(nr, NFT_META_MARK);
	add_mask(nr, &mark, sizeof(mark));
	add_cmp_eq(nr, &zero, sizeof(zero));
	if (family != 0) {
		nfproto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
		add_meta(nr, NFT_META_NFPROTO);
		add_cmp_eq(nr, &nfproto, 1);
	}
	if (r->proto >= 0) {
		l4proto = (uint8_t)r->proto;
		add_meta(nr, NFT_META_L4PROTO);
		add_cmp_eq(nr, &l4proto, 1);
	}
	add_addr_match(nr, &r->src, false);
	add_addr_match(nr, &r->dst, true);
	add_port_match(nr, 0, r->sport_lo, r->sport_hi);
	add_port_match(nr, 2, r->dport_lo, r->dport_hi);
	add_ifname_match(nr, NFT_META_IIFNAME, r->iif);
	add_ifname_match(nr, NFT_META_OIFNAME, r->oif);
	/* So `nft list table inet divert` shows what each rule took. */
	add_expr(nr, "counter");
	add_verdict(nr, r, kind);
}

/* --- expressions -> rule ---------------------------------------------- */

struct cursor {
	struct nftnl_expr	*e[MAX_EXPRS];
	int			 n, i;
};

static int
collect_expr(struct nftnl_expr *e, void *data)
{
	struct cursor *c = data;

	if (c->n == MAX_EXPRS)
		return -1;
	c->e[c->n++] = e;
	return 0;
}

static bool
str_is(const char *s, const char *want)
{
	return s != NULL && strcmp(s, want) == 0;
}

/* The expression k places ahead if it is called name, else NULL. */
static struct nftnl_expr *
peek(const struct cursor *c, int k, const char *name)
{
	if (c->i + k >= c->n ||
	    !str_is(nftnl_expr_get_str(c->e[c->i + k], NFTNL_EXPR_NAME), name))
		return NULL;
	return c->e[c->i + k];
}

static bool
u32_is(const struct nftnl_expr *e, uint16_t attr, uint32_t want)
{
	return nftnl_expr_is_set(e, attr) && nftnl_expr_get_u32(e, attr) == want;
}

static bool
is_meta(const struct nftnl_expr *e, uint32_t key)
{
	return e != NULL && u32_is(e, NFTNL_EXPR_META_KEY, key) &&
	    u32_is(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
}

static bool
is_payload(const struct nftnl_expr *e, uint32_t base, uint32_t offset,
    uint32_t len)
{
	return e != NULL && u32_is(e, NFTNL_EXPR_PAYLOAD_BASE, base) &&
	    u32_is(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset) &&
	    u32_is(e, NFTNL_EXPR_PAYLOAD_LEN, len) &&
	    u32_is(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
}

/* A "cmp eq reg 1" of len bytes: copies the operand to out. */
static bool
read_cmp_eq(const struct nftnl_expr *e, void *out, uint32_t len)
{
	const void *data;
	uint32_t dlen;

	if (e == NULL || !u32_is(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1) ||
	    !u32_is(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ))
		return false;
	data = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &dlen);
	if (data == NULL || dlen != len)
		return false;
	memcpy(out, data, len);
	return true;
}

/* A "bitwise reg 1 = reg 1 & mask ^ 0" of len bytes: copies the mask. */
static bool
read_mask(const struct nftnl_expr *e, void *mask, uint32_t len)
{
	static const uint8_t zero[16];
	const void *m, *x;
	uint32_t mlen, xlen;

	if (e == NULL || !u32_is(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1) ||
	    !u32_is(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1) ||
	    !u32_is(e, NFTNL_EXPR_BITWISE_LEN, len) ||
	    (nftnl_expr_is_set(e, NFTNL_EXPR_BITWISE_OP) &&
	    !u32_is(e, NFTNL_EXPR_BITWISE_OP, NFT_BITWISE_BOOL)))
		return false;
	m = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &mlen);
	x = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_XOR, &xlen);
	if (m == NULL || x == NULL || mlen != len || xlen != len ||
	    memcmp(x, zero, len) != 0)
		return false;
	memcpy(mask, m, len);
	return true;
}

static bool
take_mark(struct cursor *c)
{
	uint32_t mask, value;

	if (!is_meta(peek(c, 0, "meta"), NFT_META_MARK) ||
	    !read_mask(peek(c, 1, "bitwise"), &mask, 4) ||
	    !read_cmp_eq(peek(c, 2, "cmp"), &value, 4))
		return false;
	/* A rule made under another DIVERT_MARK would be re-added wrong. */
	if (mask != divert_mark() || value != 0)
		return false;
	c->i += 3;
	return true;
}

static bool
take_meta_cmp(struct cursor *c, uint32_t key, void *out, uint32_t len)
{
	if (!is_meta(peek(c, 0, "meta"), key) ||
	    !read_cmp_eq(peek(c, 1, "cmp"), out, len))
		return false;
	c->i += 2;
	return true;
}

static bool
take_addr(struct cursor *c, int family, bool dst, struct rule_addr *a)
{
	uint32_t len = (uint32_t)addr_len(family);
	uint8_t mask[16], addr[16];
	int k = 1, prefix = (int)len * 8;
	uint32_t i;

	if (!is_payload(peek(c, 0, "payload"), NFT_PAYLOAD_NETWORK_HEADER,
	    addr_offset(family, dst), len))
		return false;
	memset(mask, 0xff, sizeof(mask));
	if (peek(c, 1, "bitwise") != NULL) {
		if (!read_mask(peek(c, 1, "bitwise"), mask, len) ||
		    (prefix = mask_prefix(mask, len)) < 0)
			return false;
		k = 2;
	}
	if (!read_cmp_eq(peek(c, k, "cmp"), addr, len))
		return false;
	for (i = 0; i < len; i++)
		if (addr[i] & ~mask[i])
			return false;	/* could never match: not ours */
	a->family = family;
	memcpy(a->addr, addr, len);
	a->prefix = prefix;
	c->i += k + 1;
	return true;
}

static bool
take_port(struct cursor *c, uint32_t offset, long *lo, long *hi)
{
	struct nftnl_expr *range = peek(c, 1, "range");
	uint16_t from, to;
	const void *f, *t;
	uint32_t flen, tlen;

	if (!is_payload(peek(c, 0, "payload"), NFT_PAYLOAD_TRANSPORT_HEADER,
	    offset, 2))
		return false;
	if (read_cmp_eq(peek(c, 1, "cmp"), &from, 2)) {
		to = from;
	} else if (range != NULL &&
	    u32_is(range, NFTNL_EXPR_RANGE_SREG, NFT_REG_1) &&
	    u32_is(range, NFTNL_EXPR_RANGE_OP, NFT_RANGE_EQ) &&
	    (f = nftnl_expr_get(range, NFTNL_EXPR_RANGE_FROM_DATA, &flen)) &&
	    (t = nftnl_expr_get(range, NFTNL_EXPR_RANGE_TO_DATA, &tlen)) &&
	    flen == 2 && tlen == 2) {
		memcpy(&from, f, 2);
		memcpy(&to, t, 2);
	} else {
		return false;
	}
	*lo = ntohs(from);
	*hi = ntohs(to);
	c->i += 2;
	return true;
}

static bool
take_ifname(struct cursor *c, uint32_t key, char *name)
{
	char padded[IFNAMSIZ];
	struct cursor probe = *c;

	if (!take_meta_cmp(&probe, key, padded, IFNAMSIZ))
		return false;
	/* Only an exact, zero-padded name that we could have written. */
	if (padded[IFNAMSIZ - 1] != '\0' || !valid_ifname(padded))
		return false;
	strcpy(name, padded);
	*c = probe;
	return true;
}

static bool
take_verdict(struct cursor *c, struct rule_spec *r)
{
	struct nftnl_expr *e;
	struct xt_NFQ_info_v3 info;
	const void *data;
	uint32_t len, total, flags;

	if ((e = peek(c, 0, "queue")) != NULL) {
		if (nftnl_expr_is_set(e, NFTNL_EXPR_QUEUE_SREG_QNUM))
			return false;
		r->port_lo = nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_NUM);
		total = nftnl_expr_is_set(e, NFTNL_EXPR_QUEUE_TOTAL) ?
		    nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_TOTAL) : 1;
		flags = nftnl_expr_is_set(e, NFTNL_EXPR_QUEUE_FLAGS) ?
		    nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_FLAGS) : 0;
	} else if ((e = peek(c, 0, "target")) != NULL &&
	    str_is(nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME), "NFQUEUE") &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_TG_REV) == 3 &&
	    (data = nftnl_expr_get(e, NFTNL_EXPR_TG_INFO, &len)) != NULL &&
	    len >= sizeof(info)) {
		memcpy(&info, data, sizeof(info));
		r->port_lo = info.queuenum;
		total = info.queues_total;
		flags = info.flags;
	} else {
		return false;
	}
	/* Both flag sets have the same values. */
	if (total == 0 || (flags & ~(uint32_t)NFQ_FLAG_MASK) != 0)
		return false;
	r->port_hi = r->port_lo + total - 1;
	r->pass_through = (flags & NFQ_FLAG_BYPASS) != 0;
	r->fanout = (flags & NFQ_FLAG_CPU_FANOUT) != 0;
	c->i++;
	return true;
}

/* Decode r from the expressions of nr; -1 when it is not our shape. */
static int
decode_exprs(struct nftnl_rule *nr, struct rule_spec *r)
{
	struct cursor c = { .n = 0, .i = 0 };
	struct nftnl_expr *e;
	uint8_t nfproto, l4proto;

	if (nftnl_expr_foreach(nr, collect_expr, &c) < 0 || !take_mark(&c))
		return -1;
	if (take_meta_cmp(&c, NFT_META_NFPROTO, &nfproto, 1)) {
		if (nfproto != NFPROTO_IPV4 && nfproto != NFPROTO_IPV6)
			return -1;
		r->family = nfproto == NFPROTO_IPV4 ? AF_INET : AF_INET6;
	}
	if (take_meta_cmp(&c, NFT_META_L4PROTO, &l4proto, 1))
		r->proto = l4proto;
	if (r->family != 0) {
		take_addr(&c, r->family, false, &r->src);
		take_addr(&c, r->family, true, &r->dst);
	}
	take_port(&c, 0, &r->sport_lo, &r->sport_hi);
	take_port(&c, 2, &r->dport_lo, &r->dport_hi);
	take_ifname(&c, NFT_META_IIFNAME, r->iif);
	take_ifname(&c, NFT_META_OIFNAME, r->oif);
	if ((e = peek(&c, 0, "counter")) != NULL) {
		r->packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		r->bytes = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
		c.i++;
	}
	if (!take_verdict(&c, r) || c.i != c.n)
		return -1;
	return 0;
}

/* --- netlink ---------------------------------------------------------- */

struct nl {
	struct mnl_socket	*sock;
	uint32_t		 portid, seq;
};

static int
nl_open(struct nl *nl)
{
	int e;

	nl->sock = mnl_socket_open(NETLINK_NETFILTER);
	if (nl->sock == NULL)
		return -errno;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		e = errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return -e;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	return 0;
}

static void
nl_close(struct nl *nl)
{
	if (nl->sock != NULL)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
}

/* Send one request and feed its answers to cb until the dump ends or the
 * request is acked. */
static int
nl_query(struct nl *nl, struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	static char buf[NLMSG_READ_SIZE];
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, (size_t)n, req->nlmsg_seq, nl->portid, cb,
		    data);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

/* One batch at a time; a message may run past the limit before
 * mnl_nlmsg_batch_next() notices, hence twice the room. */
static char batch_buf[2 * BATCH_LIMIT];

static struct mnl_nlmsg_batch *
batch_start(struct nl *nl, const uint32_t *genid)
{
	struct mnl_nlmsg_batch *b;
	struct nlmsghdr *nlh;

	b = must(mnl_nlmsg_batch_start(batch_buf, BATCH_LIMIT));
	nlh = nftnl_batch_begin(mnl_nlmsg_batch_current(b), nl->seq++);
	/* The kernel refuses the batch (ERESTART) if the ruleset changed
	 * since generation *genid: what we read is still what we change. */
	if (genid != NULL)
		mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(*genid));
	mnl_nlmsg_batch_next(b);
	return b;
}

static struct nlmsghdr *
batch_msg(struct nl *nl, struct mnl_nlmsg_batch *b, uint16_t type,
    uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), type,
	    NFPROTO_INET, flags | NLM_F_ACK, nl->seq++);
}

/* Read the kernel's answers to a batch: the first error, and the handle
 * of a rule the kernel echoes back. */
static void
read_answers(const void *buf, int len, int *error, uint64_t *handle)
{
	const struct nlmsghdr *nlh;
	const struct nlmsgerr *e;
	struct nftnl_rule *nr;

	for (nlh = buf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		if (nlh->nlmsg_type == NLMSG_ERROR &&
		    mnl_nlmsg_get_payload_len(nlh) >= sizeof(*e)) {
			e = mnl_nlmsg_get_payload(nlh);
			if (e->error != 0 && *error == 0)
				*error = e->error;
		} else if (handle != NULL &&
		    nlh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE)) {
			nr = must(nftnl_rule_alloc());
			if (nftnl_rule_nlmsg_parse(nlh, nr) == 0)
				*handle = nftnl_rule_get_u64(nr, NFTNL_RULE_HANDLE);
			nftnl_rule_free(nr);
		}
	}
}

/*
 * Send a batch, return 0 or the first error.  nfnetlink processes a batch
 * inside sendmsg(), so every answer is queued when it returns: read until
 * the socket is empty rather than count acks (a batch refused whole, as
 * for EPERM, gets a single answer).
 */
static int
batch_send(struct nl *nl, struct mnl_nlmsg_batch *b, uint64_t *handle)
{
	static char buf[NLMSG_READ_SIZE];
	int error = 0;
	ssize_t n;

	nftnl_batch_end(mnl_nlmsg_batch_current(b), nl->seq++);
	if (!mnl_nlmsg_batch_next(b))
		return -EMSGSIZE;
	if (mnl_socket_sendto(nl->sock, mnl_nlmsg_batch_head(b),
	    mnl_nlmsg_batch_size(b)) < 0)
		return -errno;
	while ((n = recv(mnl_socket_get_fd(nl->sock), buf, sizeof(buf),
	    MSG_DONTWAIT)) > 0)
		read_answers(buf, (int)n, &error, handle);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		return -errno;
	return error;
}

static void
put_table(struct nl *nl, struct mnl_nlmsg_batch *b, uint16_t type,
    uint16_t flags)
{
	struct nftnl_table *t = must(nftnl_table_alloc());
	struct nlmsghdr *nlh;

	nftnl_table_set_str(t, NFTNL_TABLE_NAME, DIVERT_TABLE);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nlh = batch_msg(nl, b, type, flags);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	mnl_nlmsg_batch_next(b);
}

/* One chain per hook and priority: "output" at the hook's default
 * priority, "prerouting_-450" at another. */
static void
chain_name(const struct rule_spec *r, char *buf, size_t len)
{
	if (r->priority == chains[r->chain].priority)
		snprintf(buf, len, "%s", chains[r->chain].name);
	else
		snprintf(buf, len, "%s_%d", chains[r->chain].name, r->priority);
}

static void
put_new_chain(struct nl *nl, struct mnl_nlmsg_batch *b,
    const struct rule_spec *r, const char *name)
{
	struct nftnl_chain *c = must(nftnl_chain_alloc());
	struct nlmsghdr *nlh;

	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, DIVERT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)chains[r->chain].hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, r->priority);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nlh = batch_msg(nl, b, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	mnl_nlmsg_batch_next(b);
}

static void
put_del_chain(struct nl *nl, struct mnl_nlmsg_batch *b, const char *name)
{
	struct nftnl_chain *c = must(nftnl_chain_alloc());
	struct nlmsghdr *nlh;

	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, DIVERT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nlh = batch_msg(nl, b, NFT_MSG_DELCHAIN, 0);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	mnl_nlmsg_batch_next(b);
}

/* The tag as the rule's comment, in the layout nft reads and prints. */
static void
set_tag(struct nftnl_rule *nr, uint64_t tag)
{
	struct nftnl_udata_buf *ud = must(nftnl_udata_buf_alloc(64));
	char text[64];

	snprintf(text, sizeof(text), TAG_FORMAT, tag);
	if (!nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, text))
		errx(EX_RUNTIME, "rule comment does not fit");
	nftnl_rule_set_data(nr, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
	    nftnl_udata_buf_len(ud));
	nftnl_udata_buf_free(ud);
}

static void
put_new_rule(struct nl *nl, struct mnl_nlmsg_batch *b,
    const struct rule_spec *r, const char *chain, enum verdict_kind kind)
{
	struct nftnl_rule *nr = must(nftnl_rule_alloc());
	struct nlmsghdr *nlh;

	nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, DIVERT_TABLE);
	nftnl_rule_set_str(nr, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(nr, NFTNL_RULE_FAMILY, NFPROTO_INET);
	add_matches(nr, r, kind);
	if (r->tag != 0)
		set_tag(nr, r->tag);
	/* NLM_F_ECHO: the kernel sends the rule back, with its handle. */
	nlh = batch_msg(nl, b, NFT_MSG_NEWRULE,
	    NLM_F_CREATE | NLM_F_APPEND | NLM_F_ECHO);
	nftnl_rule_nlmsg_build_payload(nlh, nr);
	nftnl_rule_free(nr);
	mnl_nlmsg_batch_next(b);
}

static void
put_del_rule(struct nl *nl, struct mnl_nlmsg_batch *b, const char *chain,
    uint64_t handle)
{
	struct nftnl_rule *nr = must(nftnl_rule_alloc());
	struct nlmsghdr *nlh;

	/* Always with the chain: a DELRULE without one empties the table. */
	nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, DIVERT_TABLE);
	nftnl_rule_set_str(nr, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u64(nr, NFTNL_RULE_HANDLE, handle);
	nlh = batch_msg(nl, b, NFT_MSG_DELRULE, 0);
	nftnl_rule_nlmsg_build_payload(nlh, nr);
	nftnl_rule_free(nr);
	mnl_nlmsg_batch_next(b);
}

/*
 * Table, chain and rule in one batch, so nothing is left half made; the
 * kernel refuses it (ERESTART) if the ruleset is no longer generation
 * genid, the one in which no copy of the rule was found.
 */
static int
send_add(struct nl *nl, struct rule_spec *r, const char *chain,
    enum verdict_kind kind, uint32_t genid)
{
	struct mnl_nlmsg_batch *b = batch_start(nl, &genid);
	int ret;

	put_table(nl, b, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	put_new_chain(nl, b, r, chain);
	put_new_rule(nl, b, r, chain, kind);
	ret = batch_send(nl, b, &r->handle);
	mnl_nlmsg_batch_stop(b);
	return ret;
}

/* A tag no other rule has: random, never 0 (which means "no tag"). */
static uint64_t
new_tag(void)
{
	uint64_t tag = 0;

	while (tag == 0)
		if (getrandom(&tag, sizeof(tag), 0) != sizeof(tag))
			tag = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^
			    (uint64_t)(uintptr_t)&tag;
	return tag;
}

/* --- reading the table back ------------------------------------------- */

struct chain_info {
	char	name[NFT_CHAIN_MAXNAMELEN];
	int	chain;		/* enum rule_chain; CHAIN_NONE: not ours */
	int	priority;
	size_t	nrules;
};

struct rule_info {
	struct rule_spec	 rule;	/* chain CHAIN_NONE: not decodable */
	struct chain_info	*chain;	/* NULL: chain unknown */
};

struct ruleset {
	struct chain_info	*chains;
	size_t			 nchains;
	struct rule_info	*rules;
	size_t			 nrules;
	uint32_t		 genid;
};

static void
ruleset_free(struct ruleset *rs)
{
	free(rs->chains);
	free(rs->rules);
	memset(rs, 0, sizeof(*rs));
}

static int
genid_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *gen = must(nftnl_gen_alloc());

	if (nftnl_gen_nlmsg_parse(nlh, gen) == 0)
		*(uint32_t *)data = nftnl_gen_get_u32(gen, NFTNL_GEN_ID);
	nftnl_gen_free(gen);
	return MNL_CB_OK;
}

static int
get_genid(struct nl *nl, uint32_t *genid)
{
	char buf[NLMSG_REQ_SIZE];
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK,
	    nl->seq++);
	return nl_query(nl, nlh, genid_cb, genid);
}

static int
hook_chain(uint32_t hook)
{
	size_t i;

	for (i = 0; i < NCHAINS; i++)
		if ((uint32_t)chains[i].hook == hook)
			return (int)i;
	return CHAIN_NONE;
}

static bool
in_our_table(const char *table, uint32_t family)
{
	return str_is(table, DIVERT_TABLE) && family == NFPROTO_INET;
}

static int
chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ruleset *rs = data;
	struct nftnl_chain *c = must(nftnl_chain_alloc());
	struct chain_info *ci;
	const char *type;

	if (nftnl_chain_nlmsg_parse(nlh, c) < 0 ||
	    !in_our_table(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE),
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY))) {
		nftnl_chain_free(c);
		return MNL_CB_OK;
	}
	rs->chains = must(reallocarray(rs->chains, rs->nchains + 1,
	    sizeof(*rs->chains)));
	ci = &rs->chains[rs->nchains++];
	memset(ci, 0, sizeof(*ci));
	snprintf(ci->name, sizeof(ci->name), "%s",
	    nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	/* The real hook and priority, whatever the chain is called. */
	type = nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE);
	ci->chain = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) &&
	    str_is(type, "filter") ?
	    hook_chain(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM)) : CHAIN_NONE;
	ci->priority = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static struct chain_info *
find_chain(struct ruleset *rs, const char *name)
{
	size_t i;

	for (i = 0; i < rs->nchains; i++)
		if (str_is(name, rs->chains[i].name))
			return &rs->chains[i];
	return NULL;
}

static int
comment_cb(const struct nftnl_udata *attr, void *data)
{
	const char **comment = data;
	const char *s = nftnl_udata_get(attr);
	uint8_t len = nftnl_udata_len(attr);

	if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT && len > 0 &&
	    s[len - 1] == '\0')
		*comment = s;
	return MNL_CB_OK;
}

/* The tag in the rule's comment; 0 when it has none of ours. */
static uint64_t
read_tag(const struct nftnl_rule *nr)
{
	const char *comment = NULL;
	const void *data;
	uint64_t tag;
	uint32_t len;
	char check[64];

	if (!nftnl_rule_is_set(nr, NFTNL_RULE_USERDATA) ||
	    (data = nftnl_rule_get_data(nr, NFTNL_RULE_USERDATA, &len)) == NULL ||
	    nftnl_udata_parse(data, len, comment_cb, &comment) < 0 ||
	    comment == NULL || sscanf(comment, "divert tag %" SCNx64, &tag) != 1)
		return 0;
	/* Exactly what set_tag() writes, nothing more. */
	snprintf(check, sizeof(check), TAG_FORMAT, tag);
	return strcmp(check, comment) == 0 ? tag : 0;
}

static void
decode_rule(struct nftnl_rule *nr, const struct chain_info *ci,
    struct rule_spec *r)
{
	struct rule_spec d;
	char why[128];

	rule_init(r);
	r->handle = nftnl_rule_get_u64(nr, NFTNL_RULE_HANDLE);
	r->tag = read_tag(nr);
	if (ci == NULL || ci->chain == CHAIN_NONE)
		return;
	d = *r;
	d.chain = ci->chain;
	d.priority = ci->priority;
	/* Only what `add` would accept: never print a line that lies. */
	if (decode_exprs(nr, &d) == 0 && rule_check(&d, why, sizeof(why)) == 0)
		*r = d;
}

static int
rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ruleset *rs = data;
	struct nftnl_rule *nr = must(nftnl_rule_alloc());
	struct rule_info *ri;

	if (nftnl_rule_nlmsg_parse(nlh, nr) < 0 ||
	    !in_our_table(nftnl_rule_get_str(nr, NFTNL_RULE_TABLE),
	    nftnl_rule_get_u32(nr, NFTNL_RULE_FAMILY))) {
		nftnl_rule_free(nr);
		return MNL_CB_OK;
	}
	rs->rules = must(reallocarray(rs->rules, rs->nrules + 1,
	    sizeof(*rs->rules)));
	ri = &rs->rules[rs->nrules++];
	ri->chain = find_chain(rs, nftnl_rule_get_str(nr, NFTNL_RULE_CHAIN));
	if (ri->chain != NULL)
		ri->chain->nrules++;
	decode_rule(nr, ri->chain, &ri->rule);
	nftnl_rule_free(nr);
	return MNL_CB_OK;
}

static int
dump_chains(struct nl *nl, struct ruleset *rs)
{
	char buf[NLMSG_REQ_SIZE];
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_INET,
	    NLM_F_DUMP, nl->seq++);
	return nl_query(nl, nlh, chain_cb, rs);
}

static int
dump_rules(struct nl *nl, struct ruleset *rs)
{
	char buf[NLMSG_REQ_SIZE];
	struct nftnl_rule *nr = must(nftnl_rule_alloc());
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET,
	    NLM_F_DUMP, nl->seq++);
	nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, DIVERT_TABLE);
	nftnl_rule_nlmsg_build_payload(nlh, nr);
	nftnl_rule_free(nr);
	return nl_query(nl, nlh, rule_cb, rs);
}

/*
 * Chains, then rules, as one consistent picture: if the generation moved
 * between the two dumps (someone added or deleted meanwhile), read again.
 */
static int
read_ruleset(struct nl *nl, struct ruleset *rs)
{
	uint32_t after;
	int ret, tries;

	for (tries = 0; tries < RETRIES; tries++) {
		memset(rs, 0, sizeof(*rs));
		if ((ret = get_genid(nl, &rs->genid)) < 0 ||
		    (ret = dump_chains(nl, rs)) < 0 ||
		    (ret = dump_rules(nl, rs)) < 0 ||
		    (ret = get_genid(nl, &after)) < 0) {
			ruleset_free(rs);
			if (ret != -EINTR)
				return ret;
			/* A dump cut short by a change leaves its tail
			 * queued: go on with a fresh socket. */
			nl_close(nl);
			if ((ret = nl_open(nl)) < 0)
				return ret;
			continue;
		}
		if (after == rs->genid)
			return 0;
		ruleset_free(rs);
	}
	return -EAGAIN;
}

int
rule_list(int (*cb)(const struct rule_spec *r, void *arg), void *arg)
{
	struct ruleset rs;
	struct nl nl;
	size_t i;
	int ret;

	if ((ret = nl_open(&nl)) < 0)
		return ret;
	ret = read_ruleset(&nl, &rs);
	nl_close(&nl);
	for (i = 0; ret == 0 && i < rs.nrules; i++)
		ret = cb(&rs.rules[i].rule, arg);
	ruleset_free(&rs);
	return ret;
}

/* The rule r names: by handle (and then its spec too, if it has one), or
 * else the first rule whose spec reads the same. */
static struct rule_info *
find_rule(struct ruleset *rs, const struct rule_spec *r)
{
	char want[RULE_TEXT_MAX], have[RULE_TEXT_MAX];
	struct rule_info *ri;
	size_t i;

	rule_format(r, want, sizeof(want));
	for (i = 0; i < rs->nrules; i++) {
		ri = &rs->rules[i];
		if (r->handle != 0 && ri->rule.handle != r->handle)
			continue;
		/* Tagged: that very rule, not one that reads the same. */
		if (r->tag != 0 && ri->rule.tag != r->tag)
			continue;
		if (r->chain == CHAIN_NONE)
			return ri->chain != NULL ? ri : NULL;
		if (ri->rule.chain == CHAIN_NONE)
			continue;
		rule_format(&ri->rule, have, sizeof(have));
		if (strcmp(want, have) == 0)
			return ri;
	}
	return NULL;
}

/* Delete the rule, then what it leaves empty: its chain, or, when it was
 * the last rule, the whole table.  Empty chains left by others go too. */
static int
send_del(struct nl *nl, struct ruleset *rs, struct rule_info *victim)
{
	struct mnl_nlmsg_batch *b = batch_start(nl, &rs->genid);
	size_t i;
	int ret;

	put_del_rule(nl, b, victim->chain->name, victim->rule.handle);
	victim->chain->nrules--;
	if (rs->nrules == 1)
		put_table(nl, b, NFT_MSG_DELTABLE, 0);
	else
		for (i = 0; i < rs->nchains; i++)
			/* Base chains only: nothing can jump to them. */
			if (rs->chains[i].nrules == 0 &&
			    rs->chains[i].chain != CHAIN_NONE)
				put_del_chain(nl, b, rs->chains[i].name);
	ret = batch_send(nl, b, NULL);
	mnl_nlmsg_batch_stop(b);
	return ret;
}

int
rule_del(const struct rule_spec *r)
{
	struct ruleset rs;
	struct rule_info *victim;
	struct nl nl;
	int ret, tries;

	if ((ret = nl_open(&nl)) < 0)
		return ret;
	/* ERESTART: the ruleset changed between reading and deleting. */
	for (tries = 0, ret = -ERESTART; ret == -ERESTART && tries < RETRIES;
	    tries++) {
		if ((ret = read_ruleset(&nl, &rs)) < 0)
			break;
		victim = find_rule(&rs, r);
		ret = victim != NULL ? send_del(&nl, &rs, victim) : -ENOENT;
		ruleset_free(&rs);
	}
	nl_close(&nl);
	return ret;
}

/* A rule reading the same as r (handle and tag aside), or NULL. */
static struct rule_info *
find_same(struct ruleset *rs, const struct rule_spec *r)
{
	struct rule_spec spec = *r;

	spec.handle = 0;
	spec.tag = 0;
	return find_rule(rs, &spec);
}

/*
 * The chain for r: the table's chain of r's hook and priority, whatever it
 * is called, else a new one by chain_name() -- or "<hook>_<priority>" when
 * that name is taken by a chain of another priority (a table made when the
 * hook's default priority was another).
 */
static void
pick_chain(struct ruleset *rs, const struct rule_spec *r, char *buf,
    size_t len)
{
	size_t i;

	for (i = 0; i < rs->nchains; i++)
		if (rs->chains[i].chain == r->chain &&
		    rs->chains[i].priority == r->priority) {
			snprintf(buf, len, "%s", rs->chains[i].name);
			return;
		}
	chain_name(r, buf, len);
	if (find_chain(rs, buf) != NULL)
		snprintf(buf, len, "%s_%d", chains[r->chain].name, r->priority);
}

/* One try: refuse a copy of a rule that is there, else add it. */
static int
add_unless_there(struct nl *nl, struct rule_spec *r)
{
	char chain[NFT_CHAIN_MAXNAMELEN];
	struct rule_info *same;
	struct ruleset rs;
	int ret;

	if ((ret = read_ruleset(nl, &rs)) < 0)
		return ret;
	if ((same = find_same(&rs, r)) != NULL) {
		r->handle = same->rule.handle;
		ret = -EEXIST;
	} else {
		pick_chain(&rs, r, chain, sizeof(chain));
		ret = send_add(nl, r, chain, QUEUE_NATIVE, rs.genid);
		/* No nft queue expression in this kernel (CONFIG_NFT_QUEUE
		 * unset): the xtables NFQUEUE target through nft_compat
		 * does the same. */
		if (ret == -ENOENT || ret == -EOPNOTSUPP)
			ret = send_add(nl, r, chain, QUEUE_COMPAT, rs.genid);
	}
	ruleset_free(&rs);
	return ret;
}

int
rule_add(struct rule_spec *r)
{
	char why[128];
	struct nl nl;
	int ret, tries;

	if (rule_check(r, why, sizeof(why)) < 0)
		return -EINVAL;
	if ((ret = nl_open(&nl)) < 0)
		return ret;
	r->handle = 0;
	r->tag = new_tag();
	/* ERESTART: the ruleset changed between reading and adding. */
	for (tries = 0, ret = -ERESTART; ret == -ERESTART && tries < RETRIES;
	    tries++)
		ret = add_unless_there(&nl, r);
	nl_close(&nl);
	return ret;
}

int
rule_has_listener(const struct rule_spec *r)
{
	struct divert_port_info pi;
	int rc = divert_port_bound(r->port_lo, r->port_hi, &pi);

	return rc < 0 ? -errno : rc;
}

int
rule_flush(void)
{
	struct mnl_nlmsg_batch *b;
	struct nl nl;
	int ret;

	if ((ret = nl_open(&nl)) < 0)
		return ret;
	b = batch_start(&nl, NULL);
	put_table(&nl, b, NFT_MSG_DELTABLE, 0);
	ret = batch_send(&nl, b, NULL);
	mnl_nlmsg_batch_stop(b);
	nl_close(&nl);
	return ret;
}
