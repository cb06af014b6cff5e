/*
 * rule_text.c - a divert rule as text and back: "CHAIN [PROTO] PORT
 * [options]", the syntax divert-rule(1) takes and lists.  Pure code.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "num.h"
#include "rule_text.h"

/*
 * Chain names are the hook names; enum divert_chain indexes this table.
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
	int		 priority;
} chains[] = {
	[DIVERT_CHAIN_PREROUTING]	= { "prerouting",	-150 },
	[DIVERT_CHAIN_INPUT]		= { "input",		0 },
	[DIVERT_CHAIN_FORWARD]		= { "forward",		0 },
	[DIVERT_CHAIN_OUTPUT]		= { "output",		-150 },
	[DIVERT_CHAIN_POSTROUTING]	= { "postrouting",	0 },
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

/* The options, spelt as getopt_long would take them. */
enum opt {
	OPT_4, OPT_6, OPT_SRC, OPT_DST, OPT_SPORT, OPT_DPORT, OPT_IIF, OPT_OIF,
	OPT_PASS_THROUGH, OPT_PRIORITY, OPT_FANOUT, OPT_NONE = -1
};

static const struct {
	char		 letter;	/* -x; 0: long only */
	const char	*name;		/* --name; NULL: short only */
	bool		 has_arg;
} opts[] = {
	[OPT_4]			= { '4', NULL, false },
	[OPT_6]			= { '6', NULL, false },
	[OPT_SRC]		= { 's', "src", true },
	[OPT_DST]		= { 'd', "dst", true },
	[OPT_SPORT]		= { 0, "sport", true },
	[OPT_DPORT]		= { 0, "dport", true },
	[OPT_IIF]		= { 'i', NULL, true },
	[OPT_OIF]		= { 'o', NULL, true },
	[OPT_PASS_THROUGH]	= { 0, "pass-through", false },
	[OPT_PRIORITY]		= { 0, "priority", true },
	[OPT_FANOUT]		= { 0, "fanout", false },
};
#define NOPTS	(sizeof(opts) / sizeof(opts[0]))

#define BLANKS	" \t\n"

int
rule_seterr(char *errbuf, int err, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL) {
		va_start(ap, fmt);
		vsnprintf(errbuf, DIVERT_ERRBUF_SIZE, fmt, ap);
		va_end(ap);
	}
	errno = err;
	return -1;
}

void
divert_rule_init(struct divert_rule *r)
{
	memset(r, 0, sizeof(*r));
	r->chain = DIVERT_CHAIN_NONE;
	r->proto = -1;
	r->sport_lo = r->sport_hi = -1;
	r->dport_lo = r->dport_hi = -1;
	r->port_lo = r->port_hi = -1;
	r->mark = DIVERT_MARK_DEFAULT;
}

const char *
rule_chain_name(int chain)
{
	return chain >= 0 && (size_t)chain < NCHAINS ? chains[chain].name : NULL;
}

int
rule_default_priority(int chain)
{
	return chain >= 0 && (size_t)chain < NCHAINS ? chains[chain].priority : 0;
}

static int
chain_by_name(const char *s)
{
	size_t i;

	for (i = 0; i < NCHAINS; i++)
		if (strcasecmp(s, chains[i].name) == 0)	/* OUTPUT, as HOWTOs write */
			return (int)i;
	return DIVERT_CHAIN_NONE;
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

size_t
rule_addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

void
rule_prefix_mask(uint8_t *mask, size_t len, int prefix)
{
	size_t i;

	for (i = 0; i < len; i++) {
		int bits = prefix - (int)i * 8;

		mask[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 :
		    (uint8_t)(0xff << (8 - bits));
	}
}

int
rule_mask_prefix(const uint8_t *mask, size_t len)
{
	uint8_t want[16];
	int prefix = 0;
	size_t i;

	for (i = 0; i < len; i++)
		prefix += __builtin_popcount(mask[i]);
	rule_prefix_mask(want, len, prefix);
	return memcmp(want, mask, len) == 0 ? prefix : -1;
}

/* The names the kernel would take: dev_valid_name(), without the checks
 * only the kernel can make. */
bool
rule_ifname_ok(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len < IF_NAMESIZE && strcmp(s, ".") != 0 &&
	    strcmp(s, "..") != 0 && strpbrk(s, "/: \t\n") == NULL;
}

int
rule_family(const struct divert_rule *r)
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

/* --- text -> rule ----------------------------------------------------- */

static int
parse_addr(const char *s, struct divert_rule_addr *a, char *errbuf)
{
	char buf[INET6_ADDRSTRLEN + 8];
	uint8_t mask[16];
	char *slash;
	long prefix;
	size_t i, max;

	if (strlen(s) >= sizeof(buf))
		return rule_seterr(errbuf, EINVAL, "bad address '%s'", s);
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
		return rule_seterr(errbuf, EINVAL, "bad address '%s': want an "
		    "IPv4 or IPv6 address, optionally /LEN", buf);
	max = rule_addr_len(a->family) * 8;
	prefix = slash != NULL ? parse_ulong(slash, 0, (long)max) : (long)max;
	if (prefix < 0)
		return rule_seterr(errbuf, EINVAL, "bad prefix length in '%s': "
		    "want 0..%zu", s, max);
	a->prefix = (int)prefix;
	/* Canonical form, as nft does: 10.1.2.3/8 is 10.0.0.0/8. */
	rule_prefix_mask(mask, rule_addr_len(a->family), a->prefix);
	for (i = 0; i < rule_addr_len(a->family); i++)
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

static int
set_family(struct divert_rule *r, int family, char *errbuf)
{
	if (r->family != 0 && r->family != family)
		return rule_seterr(errbuf, EINVAL, "-4 and -6 exclude each other");
	r->family = family;
	return 0;
}

static int
set_ifname(char *name, const char *arg, char *errbuf)
{
	if (!rule_ifname_ok(arg))
		return rule_seterr(errbuf, EINVAL, "bad interface name '%s'", arg);
	memset(name, 0, IF_NAMESIZE);
	strcpy(name, arg);
	return 0;
}

static int
set_ports(long *lo, long *hi, const char *flag, const char *arg, char *errbuf)
{
	if (parse_range(arg, 65535, lo, hi) < 0)
		return rule_seterr(errbuf, EINVAL, "bad %s '%s': want N or N-M "
		    "within 0..65535", flag, arg);
	return 0;
}

/* Option o with its value (NULL when it takes none). */
static int
set_option(struct divert_rule *r, enum opt o, const char *arg, char *errbuf)
{
	switch (o) {
	case OPT_4:
		return set_family(r, AF_INET, errbuf);
	case OPT_6:
		return set_family(r, AF_INET6, errbuf);
	case OPT_SRC:
		return parse_addr(arg, &r->src, errbuf);
	case OPT_DST:
		return parse_addr(arg, &r->dst, errbuf);
	case OPT_SPORT:
		return set_ports(&r->sport_lo, &r->sport_hi, "--sport", arg, errbuf);
	case OPT_DPORT:
		return set_ports(&r->dport_lo, &r->dport_hi, "--dport", arg, errbuf);
	case OPT_IIF:
		return set_ifname(r->iif, arg, errbuf);
	case OPT_OIF:
		return set_ifname(r->oif, arg, errbuf);
	case OPT_PASS_THROUGH:
		r->pass_through = 1;
		return 0;
	case OPT_PRIORITY:
		if (parse_priority(arg, &r->priority) < 0)
			return rule_seterr(errbuf, EINVAL, "bad --priority '%s': "
			    "want a 32-bit signed number, e.g. -450", arg);
		r->priority_set = 1;
		return 0;
	case OPT_FANOUT:
		r->fanout = 1;
		return 0;
	case OPT_NONE:
		break;
	}
	return rule_seterr(errbuf, EINVAL, "no such option");
}

static int
bad_option(const char *word, char *errbuf)
{
	return rule_seterr(errbuf, EINVAL, "bad option '%s' (unknown, or "
	    "missing its value)", word);
}

static enum opt
opt_by_letter(char c)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (opts[i].letter != 0 && opts[i].letter == c)
			return (enum opt)i;
	return OPT_NONE;
}

/* The long option len bytes of name spell, whole or as a unique prefix. */
static enum opt
opt_by_name(const char *name, size_t len)
{
	enum opt found = OPT_NONE;
	int prefixed = 0;
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		if (opts[i].name == NULL || strncmp(opts[i].name, name, len) != 0)
			continue;
		if (opts[i].name[len] == '\0')
			return (enum opt)i;
		found = (enum opt)i;
		prefixed++;
	}
	return prefixed == 1 ? found : OPT_NONE;	/* none, or ambiguous */
}

int
divert_rule_option(struct divert_rule *r, const char *opt, const char *arg,
    char *errbuf)
{
	enum opt o = OPT_NONE;
	size_t i;

	if (opt[0] == '-' && opt[1] == '-') {
		for (i = 0; i < NOPTS; i++)
			if (opts[i].name != NULL && strcmp(opt + 2, opts[i].name) == 0)
				o = (enum opt)i;
	} else if (opt[0] == '-' && opt[1] != '\0' && opt[2] == '\0') {
		o = opt_by_letter(opt[1]);
	}
	if (o == OPT_NONE || (opts[o].has_arg && arg == NULL))
		return bad_option(opt, errbuf);
	if (!opts[o].has_arg && arg != NULL)
		return rule_seterr(errbuf, EINVAL, "option '%s' takes no value", opt);
	return set_option(r, o, arg, errbuf);
}

int
divert_rule_words(struct divert_rule *r, char *const *words, int n,
    unsigned flags, char *errbuf)
{
	int want_port = !(flags & DIVERT_RULE_NOPORT), i = 0;

	if (n == 0)
		return rule_seterr(errbuf, EINVAL, "missing CHAIN (prerouting, "
		    "input, forward, output or postrouting)");
	r->chain = chain_by_name(words[i]);
	if (r->chain == DIVERT_CHAIN_NONE)
		return rule_seterr(errbuf, EINVAL, "unknown chain '%s': want "
		    "prerouting, input, forward, output or postrouting", words[i]);
	if (!r->priority_set)
		r->priority = chains[r->chain].priority;
	i++;
	/* PROTO is there when a word is left over for it. */
	if (n - i > want_port) {
		r->proto = proto_by_name(words[i]);
		if (r->proto < 0)
			return rule_seterr(errbuf, EINVAL, "unknown protocol '%s': "
			    "want tcp, udp, icmp, icmpv6, sctp, udplite or 0..255",
			    words[i]);
		i++;
	}
	if (want_port) {
		if (i == n)
			return rule_seterr(errbuf, EINVAL, "missing PORT (the "
			    "divert port, 0..65535 or A-B)");
		if (parse_range(words[i], 65535, &r->port_lo, &r->port_hi) < 0) {
			r->port_lo = r->port_hi = -1;
			if (i == 1 && proto_by_name(words[i]) >= 0)
				return rule_seterr(errbuf, EINVAL, "missing PORT "
				    "after '%s'", words[i]);
			return rule_seterr(errbuf, EINVAL, "bad PORT '%s': want "
			    "0..65535 or A-B", words[i]);
		}
		i++;
	}
	if (i < n)
		return rule_seterr(errbuf, EINVAL, "unexpected word '%s'", words[i]);
	return 0;
}

/*
 * The long option in word ("--name" or "--name=value"), its value from the
 * next word when it takes one and has none yet.
 */
static int
take_long(struct divert_rule *r, char *word, char **save, char *errbuf)
{
	char *eq = strchr(word, '='), *arg = NULL;
	enum opt o;

	o = opt_by_name(word + 2, eq != NULL ? (size_t)(eq - word - 2) :
	    strlen(word + 2));
	if (o == OPT_NONE || (!opts[o].has_arg && eq != NULL))
		return bad_option(word, errbuf);
	if (opts[o].has_arg) {
		arg = eq != NULL ? eq + 1 : strtok_r(NULL, BLANKS, save);
		if (arg == NULL)
			return bad_option(word, errbuf);
	}
	return set_option(r, o, arg, errbuf);
}

/* The short options in word ("-4", "-46", "-s ADDR", "-sADDR"). */
static int
take_short(struct divert_rule *r, char *word, char **save, char *errbuf)
{
	char *p, *arg;
	enum opt o;

	for (p = word + 1; *p != '\0'; p++) {
		if ((o = opt_by_letter(*p)) == OPT_NONE)
			return bad_option(word, errbuf);
		if (!opts[o].has_arg) {
			if (set_option(r, o, NULL, errbuf) < 0)
				return -1;
			continue;
		}
		arg = p[1] != '\0' ? p + 1 : strtok_r(NULL, BLANKS, save);
		if (arg == NULL)
			return bad_option(word, errbuf);
		return set_option(r, o, arg, errbuf);
	}
	return 0;
}

/*
 * CHAIN, PROTO, PORT and one word too many: words past these cannot change
 * the answer of divert_rule_words, which only counts them.
 */
#define WORDS_KEPT	4

int
divert_rule_parse(struct divert_rule *r, const char *text, unsigned flags,
    char *errbuf)
{
	char *copy, *word, *save, *words[WORDS_KEPT];
	int n = 0, ret = 0, options = 1;

	if ((copy = strdup(text)) == NULL)
		return rule_seterr(errbuf, ENOMEM, "out of memory");
	/* Options first, in order, words after: as argp reports them. */
	for (word = strtok_r(copy, BLANKS, &save); word != NULL && ret == 0;
	    word = strtok_r(NULL, BLANKS, &save)) {
		if (options && strcmp(word, "--") == 0)
			options = 0;
		else if (options && word[0] == '-' && word[1] == '-')
			ret = take_long(r, word, &save, errbuf);
		else if (options && word[0] == '-' && word[1] != '\0')
			ret = take_short(r, word, &save, errbuf);
		else if (n++ < WORDS_KEPT)
			words[n - 1] = word;
	}
	if (ret == 0) {
		if (n > WORDS_KEPT)
			n = WORDS_KEPT;
		ret = divert_rule_words(r, words, n, flags, errbuf);
	}
	if (ret == 0)
		ret = divert_rule_check(r, errbuf);
	free(copy);
	return ret;
}

/* An address match as the encoder needs it: a family, a prefix that fits, no host bits. */
static bool
addr_ok(const struct divert_rule_addr *a)
{
	uint8_t mask[16];
	size_t i, len;

	if (a->family == 0)
		return true;
	if (a->family != AF_INET && a->family != AF_INET6)
		return false;
	len = rule_addr_len(a->family);
	if (a->prefix < 0 || (size_t)a->prefix > len * 8)
		return false;
	rule_prefix_mask(mask, len, a->prefix);
	for (i = 0; i < len; i++)
		if (a->addr[i] & ~mask[i])
			return false;
	return true;
}

/* A port match: none (-1, -1) or lo..hi within 0..65535. */
static bool
range_ok(long lo, long hi)
{
	return (lo == -1 && hi == -1) || (lo >= 0 && lo <= hi && hi <= 65535);
}

/* An interface match: none, or a name the kernel would take (terminated). */
static bool
ifname_ok(const char *name)
{
	return name[0] == '\0' ||
	    (strnlen(name, IF_NAMESIZE) < IF_NAMESIZE && rule_ifname_ok(name));
}

/*
 * What a rule built field by field (not parsed) may get wrong, and the
 * encoder would otherwise truncate: every field within its range.
 */
static int
check_fields(const struct divert_rule *r, char *errbuf)
{
	if (r->proto < -1 || r->proto > 255)
		return rule_seterr(errbuf, EINVAL, "bad protocol %d: want 0..255, "
		    "or -1 for any", r->proto);
	if (r->family != 0 && r->family != AF_INET && r->family != AF_INET6)
		return rule_seterr(errbuf, EINVAL, "bad family %d: want 0, AF_INET "
		    "or AF_INET6", r->family);
	if (!addr_ok(&r->src) || !addr_ok(&r->dst))
		return rule_seterr(errbuf, EINVAL, "bad address: want a family, a "
		    "prefix within its length, and no host bits set");
	if (!range_ok(r->sport_lo, r->sport_hi) || !range_ok(r->dport_lo, r->dport_hi))
		return rule_seterr(errbuf, EINVAL, "bad port match: want A-B with "
		    "0 <= A <= B <= 65535, or -1 for any");
	if (!ifname_ok(r->iif) || !ifname_ok(r->oif))
		return rule_seterr(errbuf, EINVAL, "bad interface name");
	return 0;
}

int
divert_rule_check(const struct divert_rule *r, char *errbuf)
{
	int family;

	if (r->chain < 0 || (size_t)r->chain >= NCHAINS)
		return rule_seterr(errbuf, EINVAL, "missing CHAIN");
	if (check_fields(r, errbuf) < 0)
		return -1;
	family = rule_family(r);
	if (r->port_lo < 0)
		return rule_seterr(errbuf, EINVAL, "missing PORT");
	if (r->port_hi < r->port_lo || r->port_hi > 65535)
		return rule_seterr(errbuf, EINVAL, "bad port range %ld-%ld: want "
		    "0..65535", r->port_lo, r->port_hi);
	/* The kernel counts queues in 16 bits: 0-65535 is one too many. */
	if (r->port_hi - r->port_lo + 1 > 65535)
		return rule_seterr(errbuf, EINVAL, "port range %ld-%ld spans "
		    "more than 65535 queues", r->port_lo, r->port_hi);
	if (r->mark == 0)
		return rule_seterr(errbuf, EINVAL, "mark 0: the rule would take "
		    "back the packets a program sends");
	if (r->src.family != 0 && r->dst.family != 0 &&
	    r->src.family != r->dst.family)
		return rule_seterr(errbuf, EINVAL, "-s and -d are of different "
		    "families");
	if ((r->src.family != 0 && r->src.family != family) ||
	    (r->dst.family != 0 && r->dst.family != family))
		return rule_seterr(errbuf, EINVAL, "%s with an IPv%d address",
		    family_flag(family), family == AF_INET ? 6 : 4);
	if (r->proto == IPPROTO_ICMP && family == AF_INET6)
		return rule_seterr(errbuf, EINVAL, "icmp never matches IPv6: use "
		    "icmpv6");
	if (r->proto == IPPROTO_ICMPV6 && family == AF_INET)
		return rule_seterr(errbuf, EINVAL, "icmpv6 never matches IPv4: "
		    "use icmp");
	if ((r->sport_lo >= 0 || r->dport_lo >= 0) && !proto_has_ports(r->proto))
		return rule_seterr(errbuf, EINVAL, "--sport and --dport need "
		    "PROTO tcp, udp, sctp or udplite");
	if (r->iif[0] != '\0' && (r->chain == DIVERT_CHAIN_OUTPUT ||
	    r->chain == DIVERT_CHAIN_POSTROUTING))
		return rule_seterr(errbuf, EINVAL, "-i means nothing on %s: "
		    "locally sent packets have no input interface",
		    chains[r->chain].name);
	if (r->oif[0] != '\0' && (r->chain == DIVERT_CHAIN_PREROUTING ||
	    r->chain == DIVERT_CHAIN_INPUT))
		return rule_seterr(errbuf, EINVAL, "-o means nothing on %s: the "
		    "output interface is not chosen yet", chains[r->chain].name);
	if (r->fanout && r->port_lo == r->port_hi)
		return rule_seterr(errbuf, EINVAL, "--fanout needs a port range A-B");
	/* The loop tag chain's (rule_expr.h): it must see copies first. */
	if (r->chain == DIVERT_CHAIN_OUTPUT && r->priority == INT32_MIN)
		return rule_seterr(errbuf, EINVAL, "--priority %d on output is the "
		    "loop tag chain's, which must come first: use %d or more",
		    INT32_MIN, INT32_MIN + 1);
	return 0;
}

/* --- rule -> text ----------------------------------------------------- */

/* snprintf() that appends words, separated by one space. */
struct text {
	char	*buf;
	size_t	 len;
	int	 n;
};

static void
put(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

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
put_addr(struct text *t, const char *flag, const struct divert_rule_addr *a)
{
	char s[INET6_ADDRSTRLEN];

	if (a->family == 0)
		return;
	inet_ntop(a->family, a->addr, s, sizeof(s));
	if ((size_t)a->prefix == rule_addr_len(a->family) * 8)
		put(t, "%s %s", flag, s);
	else
		put(t, "%s %s/%d", flag, s, a->prefix);
}

int
divert_rule_format(const struct divert_rule *r, char *buf, size_t len)
{
	struct text t = { buf, len, 0 };
	const char *chain = rule_chain_name(r->chain);

	if (len > 0)
		buf[0] = '\0';
	if (chain != NULL)
		put(&t, "%s", chain);
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
	if (chain == NULL ? r->priority_set || r->priority != 0 :
	    r->priority != chains[r->chain].priority)
		put(&t, "--priority %d", r->priority);
	if (r->fanout)
		put(&t, "--fanout");
	return t.n;
}
