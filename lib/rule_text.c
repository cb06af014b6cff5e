/*
 * rule_text.c - a divert rule as text and back: "CHAIN [PROTO] PORT
 * [options]", the syntax divert-rule(1) takes and lists.  Pure code.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "num.h"
#include "rule_cgroup.h"
#include "rule_prefix.h"
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
	OPT_PASS_THROUGH, OPT_PRIORITY, OPT_FANOUT, OPT_UID, OPT_GID, OPT_CGROUP,
	OPT_CT_STATE, OPT_FIRST, OPT_MARK, OPT_NONE = -1
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
	[OPT_UID]		= { 0, "uid", true },
	[OPT_GID]		= { 0, "gid", true },
	[OPT_CGROUP]		= { 0, "cgroup", true },
	[OPT_CT_STATE]		= { 0, "ct-state", true },
	[OPT_FIRST]		= { 0, "first", true },
	[OPT_MARK]		= { 0, "mark", true },
};
#define NOPTS	(sizeof(opts) / sizeof(opts[0]))

#define BLANKS	" \t\n"

/* --ct-state's words, in the order the text lists them. */
static const struct {
	const char	*name;
	uint32_t	 bit;
} ct_states[] = {
	{ "new", DIVERT_CT_NEW }, { "established", DIVERT_CT_ESTABLISHED },
	{ "related", DIVERT_CT_RELATED }, { "invalid", DIVERT_CT_INVALID },
	{ "untracked", DIVERT_CT_UNTRACKED },
};
#define NCT_STATES	(sizeof(ct_states) / sizeof(ct_states[0]))
#define CT_ALL		(DIVERT_CT_NEW | DIVERT_CT_ESTABLISHED | DIVERT_CT_RELATED | \
			 DIVERT_CT_INVALID | DIVERT_CT_UNTRACKED)

/* Conntrack's priority at prerouting and output (NF_IP_PRI_CONNTRACK). */
#define CONNTRACK_PRIORITY	(-200)

/* The largest uid or gid a rule takes: (uid_t)-1 is nobody's. */
#define ID_MAX	4294967294L

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
	r->uid_lo = r->uid_hi = -1;
	r->gid_lo = r->gid_hi = -1;
}

void
divert_rule_clear(struct divert_rule *r)
{
	free(r->src);
	free(r->dst);
	free(r->cgroup);
	divert_rule_init(r);
}

static int
copy_prefixes(struct divert_rule_addr **to, const struct divert_rule_addr *from,
    size_t n)
{
	*to = NULL;
	if (n == 0)
		return 0;
	if ((*to = reallocarray(NULL, n, sizeof(*from))) == NULL)
		return -1;
	memcpy(*to, from, n * sizeof(*from));
	return 0;
}

int
divert_rule_copy(struct divert_rule *dst, const struct divert_rule *src)
{
	*dst = *src;
	dst->cgroup = NULL;
	if (copy_prefixes(&dst->src, src->src, src->nsrc) < 0 ||
	    copy_prefixes(&dst->dst, src->dst, src->ndst) < 0 ||
	    (src->cgroup != NULL && (dst->cgroup = strdup(src->cgroup)) == NULL)) {
		free(dst->src);
		free(dst->dst);
		divert_rule_init(dst);
		errno = ENOMEM;
		return -1;
	}
	return 0;
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
rule_table_ours(const char *name)
{
	size_t n = strlen(DIVERT_TABLE);

	if (name == NULL || strncmp(name, DIVERT_TABLE, n) != 0)
		return false;
	if (name[n] == '\0')
		return true;
	return name[n] == '-' && name[n + 1] != '\0' &&
	    strspn(name + n + 1, "0123456789") == strlen(name + n + 1);
}

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
	if (r->nsrc > 0)
		return r->src[0].family;
	return r->ndst > 0 ? r->dst[0].family : 0;
}

static const char *
family_flag(int family)
{
	return family == AF_INET ? "-4" : "-6";
}

/* --- text -> rule ----------------------------------------------------- */

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

/* A user or group: its name, or a number N or range N-M. */
static int
set_id_range(long *lo, long *hi, bool group, const char *arg, char *errbuf)
{
	char buf[1024];
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;

	if (group && getgrnam_r(arg, &gr, buf, sizeof(buf), &grp) == 0 && grp != NULL) {
		*lo = *hi = gr.gr_gid;
		return 0;
	}
	if (!group && getpwnam_r(arg, &pw, buf, sizeof(buf), &pwp) == 0 && pwp != NULL) {
		*lo = *hi = pw.pw_uid;
		return 0;
	}
	if (parse_range(arg, ID_MAX, lo, hi) == 0)
		return 0;
	*lo = *hi = -1;
	return rule_seterr(errbuf, EINVAL, "bad %s '%s': want a %s name, a number "
	    "N or a range N-M", group ? "--gid" : "--uid", arg, group ? "group" : "user");
}

static int
set_cgroup(struct divert_rule *r, const char *arg, char *errbuf)
{
	char *path;

	if (rule_cgroup_lookup(arg, &r->cgroup_id, &r->cgroup_level, &path, errbuf) < 0)
		return -1;
	free(r->cgroup);
	r->cgroup = path;
	return 0;
}

static int
set_ct_state(struct divert_rule *r, const char *arg, char *errbuf)
{
	uint32_t bits = 0;
	const char *p = arg;
	size_t i, len;

	for (; ; p += len + 1) {
		len = strcspn(p, ",");
		for (i = 0; i < NCT_STATES; i++)
			if (strlen(ct_states[i].name) == len &&
			    strncasecmp(p, ct_states[i].name, len) == 0)
				break;
		if (i == NCT_STATES)
			return rule_seterr(errbuf, EINVAL, "bad --ct-state '%s': want "
			    "a list of new, established, related, invalid, untracked", arg);
		bits |= ct_states[i].bit;
		if (p[len] == '\0')
			break;
	}
	r->ct_state = bits;
	return 0;
}

/* "V" or "V/M", 32-bit numbers. */
static int
set_mark_match(struct divert_rule *r, const char *arg, char *errbuf)
{
	char buf[32], *slash;
	long v, m = UINT32_MAX;

	if (strlen(arg) >= sizeof(buf))
		goto bad;
	strcpy(buf, arg);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if ((v = parse_ulong(buf, 0, UINT32_MAX)) < 0 ||
	    (slash != NULL && (m = parse_ulong(slash, 1, UINT32_MAX)) < 0))
		goto bad;
	r->mark_value = (uint32_t)v;
	r->mark_mask = (uint32_t)m;
	return 0;
bad:
	return rule_seterr(errbuf, EINVAL, "bad --mark '%s': want V or V/M, "
	    "32-bit numbers (M not 0), e.g. 0x10/0xf0", arg);
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
		return rule_prefixes_add(&r->src, &r->nsrc, "-s", arg, errbuf);
	case OPT_DST:
		return rule_prefixes_add(&r->dst, &r->ndst, "-d", arg, errbuf);
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
	case OPT_UID:
		return set_id_range(&r->uid_lo, &r->uid_hi, false, arg, errbuf);
	case OPT_GID:
		return set_id_range(&r->gid_lo, &r->gid_hi, true, arg, errbuf);
	case OPT_CGROUP:
		return set_cgroup(r, arg, errbuf);
	case OPT_CT_STATE:
		return set_ct_state(r, arg, errbuf);
	case OPT_FIRST:
		if ((r->first = (uint64_t)parse_ulong(arg, 1, LONG_MAX)) == (uint64_t)-1) {
			r->first = 0;
			return rule_seterr(errbuf, EINVAL, "bad --first '%s': want a "
			    "number of packets >= 1", arg);
		}
		return 0;
	case OPT_MARK:
		return set_mark_match(r, arg, errbuf);
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

/* A prefix list: each prefix as above, all of the first one's family. */
static bool
prefixes_ok(const struct divert_rule_addr *p, size_t n)
{
	size_t i;

	if (n > 0 && p == NULL)
		return false;
	for (i = 0; i < n; i++)
		if (!addr_ok(&p[i]) || p[i].family != p[0].family)
			return false;
	return true;
}

/* An id match: none (-1, -1) or lo..hi within 0..ID_MAX. */
static bool
id_range_ok(long lo, long hi)
{
	return (lo == -1 && hi == -1) || (lo >= 0 && lo <= hi && hi <= ID_MAX);
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
	if (!prefixes_ok(r->src, r->nsrc) || !prefixes_ok(r->dst, r->ndst))
		return rule_seterr(errbuf, EINVAL, "bad address: want a family (one "
		    "for all of a list), a prefix within its length, and no host "
		    "bits set");
	if (!id_range_ok(r->uid_lo, r->uid_hi) || !id_range_ok(r->gid_lo, r->gid_hi))
		return rule_seterr(errbuf, EINVAL, "bad --uid or --gid: want A-B "
		    "with 0 <= A <= B <= %ld, or -1 for any", ID_MAX);
	if ((r->ct_state & ~(uint32_t)CT_ALL) != 0)
		return rule_seterr(errbuf, EINVAL, "bad --ct-state bits 0x%x",
		    r->ct_state);
	if (r->first > LONG_MAX)
		return rule_seterr(errbuf, EINVAL, "bad --first %llu",
		    (unsigned long long)r->first);
	if (r->cgroup_id == 0 && r->cgroup_level != 0)
		return rule_seterr(errbuf, EINVAL, "a cgroup level without a cgroup id");
	if (!range_ok(r->sport_lo, r->sport_hi) || !range_ok(r->dport_lo, r->dport_hi))
		return rule_seterr(errbuf, EINVAL, "bad port match: want A-B with "
		    "0 <= A <= B <= 65535, or -1 for any");
	if (!ifname_ok(r->iif) || !ifname_ok(r->oif))
		return rule_seterr(errbuf, EINVAL, "bad interface name");
	return 0;
}

/* Where the kernel knows a packet's socket: the packets the host sends. */
static bool
has_local_socket(int chain)
{
	return chain == DIVERT_CHAIN_OUTPUT || chain == DIVERT_CHAIN_POSTROUTING;
}

/* The socket, conntrack and mark matches: each where it can match at all. */
static int
check_matches(const struct divert_rule *r, char *errbuf)
{
	const char *name = chains[r->chain].name;

	if (r->uid_lo >= 0 && !has_local_socket(r->chain))
		return rule_seterr(errbuf, EINVAL, "--uid works on output and "
		    "postrouting only (the sending socket's owner), not on %s", name);
	if (r->gid_lo >= 0 && !has_local_socket(r->chain))
		return rule_seterr(errbuf, EINVAL, "--gid works on output and "
		    "postrouting only (the sending socket's group), not on %s", name);
	/* The kernel's socket expression: prerouting, input and output
	 * (nft_socket_validate); of these only output has the sender's. */
	if (r->cgroup_id != 0 && r->chain != DIVERT_CHAIN_OUTPUT)
		return rule_seterr(errbuf, EINVAL, "--cgroup works on output only "
		    "(the sending socket's cgroup), not on %s", name);
	if ((r->ct_state != 0 || r->first != 0) &&
	    (r->chain == DIVERT_CHAIN_PREROUTING || r->chain == DIVERT_CHAIN_OUTPUT) &&
	    r->priority <= CONNTRACK_PRIORITY)
		return rule_seterr(errbuf, EINVAL, "%s needs a priority after "
		    "conntrack's (%d) on %s: the packet has no connection yet",
		    r->ct_state != 0 ? "--ct-state" : "--first", CONNTRACK_PRIORITY, name);
	if (r->mark_mask != 0 && (r->mark_value & ~r->mark_mask) != 0)
		return rule_seterr(errbuf, EINVAL, "--mark 0x%x/0x%x: the value has "
		    "bits outside the mask, it could never match", r->mark_value,
		    r->mark_mask);
	if (r->mark_mask != 0 && (r->mark_value & r->mark) != 0)
		return rule_seterr(errbuf, EINVAL, "--mark 0x%x wants the bit 0x%x "
		    "that divert rules skip (DIVERT_MARK): it could never match",
		    r->mark_value, r->mark_value & r->mark);
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
	if (r->nsrc > 0 && r->ndst > 0 && r->src[0].family != r->dst[0].family)
		return rule_seterr(errbuf, EINVAL, "-s and -d are of different "
		    "families");
	if ((r->nsrc > 0 && r->src[0].family != family) ||
	    (r->ndst > 0 && r->dst[0].family != family))
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
	if (check_matches(r, errbuf) < 0)
		return -1;
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

/* Where the text goes on, and the room left there (none past the end, or with no buffer). */
static char *
tail(const struct text *t)
{
	if (t->buf == NULL)
		return NULL;
	return t->buf + ((size_t)t->n < t->len ? (size_t)t->n : t->len);
}

static size_t
room(const struct text *t)
{
	return t->buf == NULL || (size_t)t->n >= t->len ? 0 : t->len - (size_t)t->n;
}

static void
put(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
append_text(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* snprintf() at the end of the text, with no separator. */
static void
append_text(struct text *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	t->n += vsnprintf(tail(t), room(t), fmt, ap);
	va_end(ap);
}

static void
put(struct text *t, const char *fmt, ...)
{
	va_list ap;

	if (t->n > 0)
		t->n += snprintf(tail(t), room(t), " ");
	va_start(ap, fmt);
	t->n += vsnprintf(tail(t), room(t), fmt, ap);
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

/* The prefixes, canonical, as one comma list after flag; false: out of memory. */
static bool
put_prefixes(struct text *t, const char *flag, const struct divert_rule_addr *p,
    size_t n)
{
	struct divert_rule_addr *c;
	char s[INET6_ADDRSTRLEN];
	size_t i, nc;

	if (n == 0)
		return true;
	if (rule_prefixes_canon(p, n, &c, &nc) < 0)
		return false;
	for (i = 0; i < nc; i++) {
		inet_ntop(c[i].family, c[i].addr, s, sizeof(s));
		/* The list is one word: put() only separates the first. */
		if (i == 0)
			put(t, "%s ", flag);
		append_text(t, "%s%s", i > 0 ? "," : "", s);
		if ((size_t)c[i].prefix != rule_addr_len(c[i].family) * 8)
			append_text(t, "/%d", c[i].prefix);
	}
	free(c);
	return true;
}

static void
put_ct_state(struct text *t, uint32_t bits)
{
	size_t i;
	int n = 0;

	if (bits == 0)
		return;
	put(t, "--ct-state ");
	for (i = 0; i < NCT_STATES; i++)
		if (bits & ct_states[i].bit)
			append_text(t, "%s%s", n++ > 0 ? "," : "", ct_states[i].name);
}

static void
put_mark_match(struct text *t, uint32_t value, uint32_t mask)
{
	if (mask == 0)
		return;
	if (mask == UINT32_MAX)
		put(t, "--mark 0x%x", value);
	else
		put(t, "--mark 0x%x/0x%x", value, mask);
}

static void
put_cgroup(struct text *t, const struct divert_rule *r)
{
	if (r->cgroup_id == 0)
		return;
	/* A path never starts so: clearly no cgroup that could be named. */
	if (r->cgroup == NULL)
		put(t, "--cgroup gone:%llu", (unsigned long long)r->cgroup_id);
	else
		put(t, "--cgroup %s", r->cgroup);
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
	if (r->family != 0 && r->nsrc == 0 && r->ndst == 0)
		put(&t, "%s", family_flag(r->family));
	if (!put_prefixes(&t, "-s", r->src, r->nsrc) ||
	    !put_prefixes(&t, "-d", r->dst, r->ndst)) {
		errno = ENOMEM;
		return -1;
	}
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
	put_mark_match(&t, r->mark_value, r->mark_mask);
	if (r->uid_lo >= 0)
		put_range(&t, "--uid", r->uid_lo, r->uid_hi);
	if (r->gid_lo >= 0)
		put_range(&t, "--gid", r->gid_lo, r->gid_hi);
	put_cgroup(&t, r);
	put_ct_state(&t, r->ct_state);
	if (r->first != 0)
		put(&t, "--first %llu", (unsigned long long)r->first);
	return t.n;
}

char *
rule_text(const struct divert_rule *r)
{
	char *buf;
	int n;

	if ((n = divert_rule_format(r, NULL, 0)) < 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	divert_rule_format(r, buf, (size_t)n + 1);
	return buf;
}

bool
rule_same_spec(const struct divert_rule *a, const struct divert_rule *b)
{
	char *ta, *tb;
	bool same;

	if (a->cgroup_id != b->cgroup_id)
		return false;
	ta = rule_text(a);
	tb = rule_text(b);
	same = ta != NULL && tb != NULL && strcmp(ta, tb) == 0;
	free(ta);
	free(tb);
	return same;
}
