/*
 * rule_test.c - divert rules without a kernel: text -> rule -> nftables
 * objects, through their netlink wire form -> rule -> text, for every
 * option, with both verdicts (queue, NFQUEUE target); bad texts refused
 * with words.  The loop tag chain and its rules: built as nft itself
 * writes them, read back, anything else refused.  Prefix lists: their
 * canonical form, and thousands of prefixes through a set's wire form.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "divert.h"
#include "rule_expr.h"
#include "rule_prefix.h"
#include "rule_text.h"
#include "tap.h"

/* Canonical texts: each comes back as it is. */
static const char *const texts[] = {
	/* every chain */
	"prerouting 1", "input 1", "forward 1", "output 1", "postrouting 1",
	/* protocols by name and by number */
	"output tcp 1", "output udp 1", "output icmp 1", "output icmpv6 1",
	"output sctp 1", "output udplite 1", "output 47 1", "output 0 1",
	"output 255 1",
	/* families */
	"output 1 -4", "output 1 -6", "output icmpv6 1 -6", "output udp 1 -4",
	/* addresses, v4 and v6, with and without prefixes */
	"output 1 -s 10.0.0.1", "output 1 -d 10.0.0.1",
	"output 1 -s 10.0.0.0/8", "output 1 -d 10.1.2.0/23",
	"output 1 -s 0.0.0.0/0", "output 1 -d 128.0.0.0/1",
	"output 1 -s 10.0.0.2/31", "output 1 -s 10.0.0.0/8 -d 192.168.1.0/24",
	"output 1 -s fd00::1", "output 1 -d fd00::/64", "output 1 -d ::/0",
	"output 1 -s fd00::/127", "output 1 -s 2001:db8::/32 -d fd77::2",
	"output icmp 1 -s 10.0.0.1", "output icmpv6 1 -d fd77::2",
	/* ports, single and ranges */
	"output tcp 1 --sport 80", "output tcp 1 --dport 443",
	"output udp 1 --sport 1000-2000", "output udp 1 --dport 5001-5002",
	"output sctp 1 --sport 0 --dport 65535", "output udplite 1 --dport 0-65535",
	"output tcp 1 -6 --dport 22", "output udp 1 -d 10.0.0.1 --dport 53",
	/* interfaces */
	"prerouting 1 -i eth0", "input 1 -i vA", "forward 1 -i vA -o vB",
	"output 1 -o eth0", "postrouting 1 -o wlan0",
	"forward 1 -i abcdefghijklmno",
	/* pass-through, priority, fanout */
	"output 1 --pass-through", "output 1 --priority -450",
	"output 1 --priority 0", "input 1 --priority -150",
	"input 1 --priority 2147483647", "input 1 --priority -2147483648",
	"output 1-2 --fanout", "output 4321-4324 --pass-through --fanout",
	/* divert ports */
	"output 0", "output 65535", "output 100-200", "output 0-65534",
	/* everything at once */
	"prerouting udp 4321-4324 -s 10.0.0.0/8 --dport 53 --pass-through "
	    "--priority -450 --fanout",
	"forward tcp 7 -d fd00::/64 --sport 1000-2000 -i vA -o vA",
	"postrouting sctp 65535 -4 --dport 9",
	/* prefix lists: sets */
	"output 1 -d 10.0.0.0/23,10.0.3.0/24,192.168.0.1",
	"output 1 -s 10.0.1.0/24,10.0.2.0/24",	/* one range, not one prefix */
	"output 1 -s 0.0.0.0,255.255.255.255", "output 1 -d 0.0.0.0/1,255.255.255.254/31",
	"output 1 -s ::/127,fd00::/63,fd01::1 -d fd00::1,fd00::3",
	"output udp 1 -s 10.0.0.1 -d 10.9.0.0/16,10.11.0.0/16 --dport 53",
	/* socket owner, conntrack, mark */
	"output 1 --uid 0", "output 1 --uid 1000-2000", "postrouting 1 --gid 65534",
	"output 1 --uid 0-4294967294 --gid 1-2", "output 1 --ct-state new",
	"forward 1 --ct-state new,established,related,invalid,untracked",
	"input 1 --ct-state established,invalid", "forward tcp 1 --first 3",
	"output 1 --first 9223372036854775807", "prerouting 1 --first 1",
	"output 1 --mark 0x10", "output 1 --mark 0x0/0xff", "output 1 --mark 0x10/0xf0",
	"output 1 --mark 0xefffffff",
	"output tcp 1 -d 10.0.0.0/8,12.0.0.0/8 --dport 443 --mark 0x1/0x1 --uid 1-2 "
	    "--gid 3 --ct-state new,related --first 5",
};

/* The same texts, spelt otherwise: they read as the second. */
static const char *const spellings[][2] = {
	{ "OUTPUT ICMP 1", "output icmp 1" },
	{ "output 17 1", "output udp 1" },
	{ "output 0x11 0x10", "output udp 16" },
	{ "output 1 --src=10.0.0.1", "output 1 -s 10.0.0.1" },
	{ "output 1 -s10.1.2.3/8", "output 1 -s 10.0.0.0/8" },
	{ "output 1 --dst fd00::1/64", "output 1 -d fd00::/64" },
	{ "output 1 -4 -s 10.0.0.1", "output 1 -s 10.0.0.1" },
	{ "-d 10.0.0.1 output icmp -- 1", "output icmp 1 -d 10.0.0.1" },
	{ "output\ttcp  1 \t--dport=53", "output tcp 1 --dport 53" },
	{ "output 1-2 --pass --fan --prio -450", "output 1-2 --pass-through "
	    "--priority -450 --fanout" },
	{ "output 1 --priority 0x10", "output 1 --priority 16" },
	{ "output 1 --priority -150", "output 1" },
	{ "forward 1 -ivA -o vB", "forward 1 -i vA -o vB" },
	{ "output 1 -d 10.0.0.0/24,10.0.1.0/24", "output 1 -d 10.0.0.0/23" },
	{ "output 1 -d 10.0.1.0/24 -d 10.0.0.0/24", "output 1 -d 10.0.0.0/23" },
	{ "output 1 -d 10.0.0.7,10.0.0.0/8,10.0.0.7", "output 1 -d 10.0.0.0/8" },
	{ "output 1 -d 10.0.0.2,10.0.0.1,10.0.0.0", "output 1 -d 10.0.0.0/31,10.0.0.2" },
	{ "output 1 -s ::/0,fd00::1", "output 1 -s ::/0" },
	{ "output 1 --uid root --gid root", "output 1 --uid 0 --gid 0" },
	{ "output 1 --uid 5-5", "output 1 --uid 5" },
	{ "output 1 --ct-state INVALID,new,new", "output 1 --ct-state new,invalid" },
	{ "output 1 --mark 16/0xffffffff", "output 1 --mark 0x10" },
	{ "output 1 --first 0x10", "output 1 --first 16" },
};

/* Bad texts, and words their refusal must say. */
static const char *const bad[][2] = {
	{ "", "missing CHAIN" },
	{ "nowhere icmp 1", "unknown chain 'nowhere'" },
	{ "output", "missing PORT" },
	{ "output udp --dport 53", "missing PORT after 'udp'" },
	{ "output icmp 70000", "bad PORT '70000'" },
	{ "output icmp 0x", "bad PORT '0x'" },
	{ "output 0-65535", "spans more than 65535 queues" },
	{ "output gre 1", "unknown protocol 'gre'" },
	{ "output 256 1", "unknown protocol '256'" },
	{ "output icmp 1 2", "unexpected word '2'" },
	{ "output icmp 1 -d 10.0.0.300", "bad address '10.0.0.300'" },
	{ "output icmp 1 -d 10.0.0.0/33", "bad prefix length" },
	{ "output 1 -s fd00::/129", "bad prefix length" },
	{ "output icmp 1 --dport 53", "need PROTO tcp, udp, sctp or udplite" },
	{ "output 1 --sport 53", "need PROTO" },
	{ "output tcp 1 --sport 70000", "bad --sport '70000'" },
	{ "output tcp 1 --dport 9-8", "bad --dport '9-8'" },
	{ "output 1 -4 -6", "-4 and -6 exclude each other" },
	{ "output 1 -46", "-4 and -6 exclude each other" },
	{ "output 1 -4 -d fd00::1", "-4 with an IPv6 address" },
	{ "output 1 -6 -s 10.0.0.1", "-6 with an IPv4 address" },
	{ "output 1 -s 10.0.0.1 -d fd00::1", "different families" },
	{ "output icmp 1 -d fd00::1", "icmp never matches IPv6" },
	{ "output icmpv6 1 -4", "icmpv6 never matches IPv4" },
	{ "output 1 -i vA", "-i means nothing on output" },
	{ "postrouting 1 -i vA", "-i means nothing on postrouting" },
	{ "input 1 -o vA", "-o means nothing on input" },
	{ "prerouting 1 -o vA", "-o means nothing on prerouting" },
	{ "forward 1 -i a/b", "bad interface name 'a/b'" },
	{ "forward 1 -o abcdefghijklmnop", "bad interface name" },
	{ "output 1 --fanout", "--fanout needs a port range A-B" },
	{ "output 1 --priority high", "bad --priority 'high'" },
	{ "output 1 --priority 0x80000000", "bad --priority" },
	{ "output 1 --priority -0x80000001", "bad --priority" },
	{ "output 1 --frobnicate", "bad option '--frobnicate'" },
	{ "output 1 -x", "bad option '-x'" },
	{ "output 1 -s", "bad option '-s' (unknown, or missing its value)" },
	{ "output 1 --p", "bad option '--p'" },		/* ambiguous */
	{ "output 1 --fanout=1", "bad option '--fanout=1'" },
	{ "output -5", "bad option '-5'" },
	{ "output 1 --priority -2147483648", "the loop tag chain's" },
	{ "output tcp 1 --priority -0x80000000", "use -2147483647 or more" },
	{ "output 1 -d 10.0.0.1,fd00::1", "-d mixes IPv4 and IPv6 prefixes (fd00::1): use two rules" },
	{ "output 1 -s fd00::1 -s 10.0.0.1", "-s mixes IPv4 and IPv6" },
	{ "output 1 -d 10.0.0.1,", "an empty prefix" },
	{ "output 1 -d 10.0.0.1,,10.0.0.2", "an empty prefix" },
	{ "output 1 -d @/nonexistent/prefixes", "-d @/nonexistent/prefixes: No such file" },
	{ "input 1 --uid 0", "--uid works on output and postrouting only" },
	{ "forward 1 --gid 0", "--gid works on output and postrouting only" },
	{ "output 1 --uid no-such-user-here", "bad --uid 'no-such-user-here'" },
	{ "output 1 --uid 4294967295", "bad --uid" },
	{ "output 1 --uid 9-8", "bad --uid" },
	{ "output 1 --ct-state new,old", "bad --ct-state 'new,old'" },
	{ "output 1 --ct-state new,", "bad --ct-state" },
	{ "output 1 --first 0", "bad --first '0'" },
	{ "output 1 --first 3 --priority -200", "--first needs a priority after conntrack's" },
	{ "prerouting 1 --ct-state new --priority -450", "--ct-state needs a priority" },
	{ "output 1 --mark 0x10000000", "DIVERT_MARK" },
	{ "output 1 --mark 0x30000000/0xf0000000", "DIVERT_MARK" },
	{ "output 1 --mark 0x10/0x0f", "bits outside the mask" },
	{ "output 1 --mark 1/0", "bad --mark '1/0'" },
	{ "output 1 --mark 0x100000000", "bad --mark" },
	{ "input 1 --cgroup /", "--cgroup works on output only" },
	{ "output 1 --cgroup /no/such/cgroup/here", "no such cgroup" },
	{ "output 1 --cgroup /a/../b", "without . or .." },
};

static struct nftnl_rule *
through_wire_rule(struct nftnl_rule *nr)
{
	static char buf[8192];
	struct nftnl_rule *back = nftnl_rule_alloc();
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, NFPROTO_INET, 0, 1);
	nftnl_rule_nlmsg_build_payload(nlh, nr);
	if (back == NULL || nftnl_rule_nlmsg_parse(nlh, back) < 0) {
		printf("# the rule does not parse back from netlink\n");
		exit(1);
	}
	return back;
}

static struct nftnl_chain *
through_wire_chain(struct nftnl_chain *c)
{
	static char buf[4096];
	struct nftnl_chain *back = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWCHAIN, NFPROTO_INET, 0, 1);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	if (back == NULL || nftnl_chain_nlmsg_parse(nlh, back) < 0) {
		printf("# the chain does not parse back from netlink\n");
		exit(1);
	}
	return back;
}

static int
addr_eq(const struct divert_rule_addr *a, const struct divert_rule_addr *b)
{
	return a->family == b->family && a->prefix == b->prefix &&
	    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* Two prefix lists cover the same addresses: their canonical forms are equal. */
static int
prefixes_eq(const struct divert_rule_addr *a, size_t na,
    const struct divert_rule_addr *b, size_t nb)
{
	struct divert_rule_addr *ca, *cb;
	size_t nca, ncb, i;
	int eq;

	if (rule_prefixes_canon(a, na, &ca, &nca) < 0 ||
	    rule_prefixes_canon(b, nb, &cb, &ncb) < 0)
		return 0;
	eq = nca == ncb;
	for (i = 0; eq && i < nca; i++)
		eq = addr_eq(&ca[i], &cb[i]);
	free(ca);
	free(cb);
	return eq;
}

/* Every field a rule's text and its nftables form carry. */
static int
rule_eq(const struct divert_rule *a, const struct divert_rule *b)
{
	return a->chain == b->chain && a->proto == b->proto &&
	    a->family == b->family && prefixes_eq(a->src, a->nsrc, b->src, b->nsrc) &&
	    prefixes_eq(a->dst, a->ndst, b->dst, b->ndst) &&
	    a->uid_lo == b->uid_lo && a->uid_hi == b->uid_hi &&
	    a->gid_lo == b->gid_lo && a->gid_hi == b->gid_hi &&
	    a->cgroup_id == b->cgroup_id && a->cgroup_level == b->cgroup_level &&
	    a->ct_state == b->ct_state && a->first == b->first &&
	    a->mark_value == b->mark_value && a->mark_mask == b->mark_mask &&
	    a->sport_lo == b->sport_lo &&
	    a->sport_hi == b->sport_hi && a->dport_lo == b->dport_lo &&
	    a->dport_hi == b->dport_hi && strcmp(a->iif, b->iif) == 0 &&
	    strcmp(a->oif, b->oif) == 0 && a->pass_through == b->pass_through &&
	    a->priority == b->priority && a->fanout == b->fanout &&
	    a->port_lo == b->port_lo && a->port_hi == b->port_hi &&
	    a->mark == b->mark && a->handle == b->handle && a->tag == b->tag;
}

/*
 * libnftnl numbers the elements it writes (nest types 1, 2, ...: the
 * kernel reads any) but reads back only type NFTA_LIST_ELEM, as the
 * kernel writes them: what the kernel would send back.
 */
static void
renumber_elems(struct nlmsghdr *nlh)
{
	struct nlattr *list, *e;

	mnl_attr_for_each(list, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(list) == NFTA_SET_ELEM_LIST_ELEMENTS)
			mnl_attr_for_each_nested(e, list)
				e->nla_type = (e->nla_type & ~NLA_TYPE_MASK) |
				    NFTA_LIST_ELEM;
}

/* A set through its wire form: NEWSET, then NEWSETELEM messages (NULL: none). */
static struct nftnl_set *
through_wire_set(struct nftnl_set *s)
{
	static char buf[128 * 1024];
	struct nftnl_set *back;
	struct nftnl_set_elems_iter *it;
	struct nlmsghdr *nlh;
	int more;

	if (s == NULL)
		return NULL;
	back = nftnl_set_alloc();
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET, 0, 1);
	nftnl_set_nlmsg_build_payload(nlh, s);
	if (back == NULL || nftnl_set_nlmsg_parse(nlh, back) < 0) {
		printf("# the set does not parse back from netlink\n");
		exit(1);
	}
	it = nftnl_set_elems_iter_create(s);
	do {
		nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSETELEM, NFPROTO_INET, 0, 1);
		more = nftnl_set_elems_nlmsg_build_payload_iter(nlh, it);
		renumber_elems(nlh);
		if (nftnl_set_elems_nlmsg_parse(nlh, back) < 0) {
			printf("# the set's elements do not parse back\n");
			exit(1);
		}
	} while (more > 0);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return back;
}

/* r through its chain and rule objects and their wire form, back into *out. */
static int
round_trip(const struct divert_rule *r, enum rule_verdict kind,
    struct divert_rule *out)
{
	struct nftnl_chain *c, *cw;
	struct nftnl_rule *nr, *nw;
	struct nftnl_set *set[2];
	struct rule_sets sets;
	int chain, priority = 12345, ret, k;

	c = rule_expr_chain(r, "somechain");
	cw = through_wire_chain(c);
	chain = rule_expr_read_chain(cw, &priority);
	nr = rule_expr_build(r, "somechain", kind);
	if (nr == NULL)
		return -1;
	nftnl_rule_set_u64(nr, NFTNL_RULE_HANDLE, r->handle);
	nw = through_wire_rule(nr);
	for (k = 0; k < 2; k++)
		if (rule_expr_set(r, k, &set[k]) < 0)
			return -1;
	set[0] = through_wire_set(set[0]);
	set[1] = through_wire_set(set[1]);
	ret = rule_expr_read(nw, chain, priority, out, &sets);
	/* A set for each side that has several prefixes, and a lookup of it. */
	for (k = 0; ret == 0 && k < 2; k++)
		if ((set[k] != NULL) != (sets.name[k][0] != '\0'))
			ret = -1;
	if (ret == 0)
		ret = rule_expr_read_sets(out, &sets, set[0], set[1]);
	for (k = 0; k < 2; k++)
		if (set[k] != NULL)
			nftnl_set_free(set[k]);
	nftnl_rule_free(nw);
	nftnl_rule_free(nr);
	nftnl_chain_free(cw);
	nftnl_chain_free(c);
	return ret;
}

static void
test_round_trips(void)
{
	static const char *const kinds[] = { "queue", "NFQUEUE target" };
	char err[DIVERT_ERRBUF_SIZE], text[DIVERT_RULE_TEXT_MAX];
	struct divert_rule r, back;
	size_t i;
	int k;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		divert_rule_init(&r);
		err[0] = '\0';
		ok(divert_rule_parse(&r, texts[i], 0, err) == 0, "'%s' parses%s%s",
		    texts[i], err[0] ? ": " : "", err);
		divert_rule_format(&r, text, sizeof(text));
		ok(strcmp(text, texts[i]) == 0, "'%s' formats back (got '%s')",
		    texts[i], text);
		/* What only the nftables form carries, beyond the text. */
		r.mark = i % 2 ? DIVERT_MARK_DEFAULT : 0x1u << (i % 32);
		r.tag = 0x0123456789abcdefULL + i;
		r.handle = 1000 + i;
		for (k = RULE_QUEUE_NATIVE; k <= RULE_QUEUE_COMPAT; k++) {
			memset(&back, 0xa5, sizeof(back));
			ok(round_trip(&r, (enum rule_verdict)k, &back) == 0 &&
			    rule_eq(&r, &back), "'%s' (mark %#x, %s): every field "
			    "comes back", texts[i], r.mark, kinds[k]);
			divert_rule_format(&back, text, sizeof(text));
			ok(strcmp(text, texts[i]) == 0, "'%s' (%s): the text comes "
			    "back (got '%s')", texts[i], kinds[k], text);
			divert_rule_clear(&back);
		}
		divert_rule_clear(&r);
	}
}

static void
test_spellings(void)
{
	char err[DIVERT_ERRBUF_SIZE], text[DIVERT_RULE_TEXT_MAX];
	struct divert_rule r;
	size_t i;

	for (i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		const char *want = spellings[i][1];

		divert_rule_init(&r);
		err[0] = '\0';
		ok(divert_rule_parse(&r, spellings[i][0], 0, err) == 0,
		    "'%s' parses%s%s", spellings[i][0], err[0] ? ": " : "", err);
		divert_rule_format(&r, text, sizeof(text));
		ok(strcmp(text, want) == 0, "'%s' reads as '%s' (got '%s')",
		    spellings[i][0], want, text);
		divert_rule_clear(&r);
	}
}

static void
test_bad_texts(void)
{
	char err[DIVERT_ERRBUF_SIZE];
	struct divert_rule r;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		divert_rule_init(&r);
		err[0] = '\0';
		errno = 0;
		ret = divert_rule_parse(&r, bad[i][0], 0, err);
		ok(ret == -1 && errno == EINVAL && strstr(err, bad[i][1]) != NULL,
		    "'%s' is refused, saying '%s' (said '%s')", bad[i][0],
		    bad[i][1], err);
		divert_rule_clear(&r);	/* what it took before the error */
	}
}

/* divert-listen's --rule: the port is the program's, the text has none. */
static void
test_noport(void)
{
	char err[DIVERT_ERRBUF_SIZE], text[DIVERT_RULE_TEXT_MAX];
	struct divert_rule r;

	divert_rule_init(&r);
	r.port_lo = r.port_hi = 4321;
	ok(divert_rule_parse(&r, "output icmp -d 10.0.0.1", DIVERT_RULE_NOPORT,
	    err) == 0, "NOPORT: a rule without PORT parses");
	divert_rule_format(&r, text, sizeof(text));
	ok(strcmp(text, "output icmp 4321 -d 10.0.0.1") == 0,
	    "NOPORT: it takes the program's port (got '%s')", text);
	divert_rule_clear(&r);

	divert_rule_init(&r);
	r.port_lo = r.port_hi = 4321;
	ok(divert_rule_parse(&r, "output 5", DIVERT_RULE_NOPORT, err) == 0 &&
	    r.proto == 5 && r.port_lo == 4321,
	    "NOPORT: the word after CHAIN is PROTO");

	divert_rule_init(&r);
	r.port_lo = r.port_hi = 4321;
	ok(divert_rule_parse(&r, "output icmp 5", DIVERT_RULE_NOPORT, err) < 0 &&
	    strstr(err, "unexpected word '5'") != NULL,
	    "NOPORT: a PORT is one word too many (%s)", err);

	divert_rule_init(&r);
	r.port_lo = r.port_hi = 4321;
	ok(divert_rule_parse(&r, "output --fanout", DIVERT_RULE_NOPORT, err) < 0 &&
	    strstr(err, "--fanout needs a port range") != NULL,
	    "NOPORT: the whole rule is checked with the program's port (%s)", err);
}

/* The parts of the parser, as a program with its own command line uses them. */
static void
test_parts(void)
{
	char err[DIVERT_ERRBUF_SIZE], text[DIVERT_RULE_TEXT_MAX];
	char *words[] = { "forward", "udp", "53-54" };
	struct divert_rule r;

	divert_rule_init(&r);
	ok(r.mark == DIVERT_MARK_DEFAULT && r.chain == DIVERT_CHAIN_NONE &&
	    r.proto == -1 && r.port_lo == -1, "init: nothing chosen, the default mark");
	ok(divert_rule_option(&r, "-s", "10.0.0.0/8", err) == 0 &&
	    divert_rule_option(&r, "--dport", "53", err) == 0 &&
	    divert_rule_option(&r, "--fanout", NULL, err) == 0 &&
	    divert_rule_option(&r, "--priority", "-450", err) == 0 &&
	    divert_rule_option(&r, "-o", "vB", err) == 0,
	    "options one at a time");
	ok(divert_rule_words(&r, words, 3, 0, err) == 0 &&
	    divert_rule_check(&r, err) == 0, "then the words, then the check");
	divert_rule_format(&r, text, sizeof(text));
	ok(strcmp(text, "forward udp 53-54 -s 10.0.0.0/8 --dport 53 -o vB "
	    "--priority -450 --fanout") == 0, "they make the rule (got '%s')", text);
	ok(divert_rule_option(&r, "--nope", NULL, err) < 0 &&
	    strstr(err, "bad option '--nope'") != NULL, "an unknown option is refused");
	ok(divert_rule_option(&r, "-s", NULL, err) < 0 &&
	    strstr(err, "missing its value") != NULL, "an option without its value too");
	ok(divert_rule_option(&r, "--pass", NULL, err) < 0,
	    "no abbreviations one at a time: the option as the text spells it");
	ok(divert_rule_option(&r, "--fanout", "1", err) < 0,
	    "a value for an option without one is refused");
	divert_rule_clear(&r);

	divert_rule_init(&r);
	ok(divert_rule_format(&r, text, sizeof(text)) == 0 && text[0] == '\0',
	    "a blank rule renders as nothing");
	divert_rule_option(&r, "-4", NULL, err);
	divert_rule_format(&r, text, sizeof(text));
	ok(strcmp(text, "-4") == 0, "a rule without chain renders its options");
	r.chain = DIVERT_CHAIN_OUTPUT;
	r.port_lo = r.port_hi = 1;
	r.mark = 0;
	ok(divert_rule_check(&r, err) < 0 && strstr(err, "mark 0") != NULL,
	    "mark 0 is refused");
	r.mark = DIVERT_MARK_DEFAULT;
	r.port_hi = 70000;
	ok(divert_rule_check(&r, err) < 0 && strstr(err, "bad port range 1-70000")
	    != NULL, "ports beyond 65535 set by hand are refused (%s)", err);
}

/* Case i of test_fields: one field set by hand out of its range; its name. */
static const char *
spoil(struct divert_rule *r, int i)
{
	switch (i) {
	case 0: r->proto = 300; return "protocol 300";
	case 1: r->family = 7; return "family 7";
	case 2: r->dport_lo = 5, r->dport_hi = 70000; return "dport 5-70000";
	case 3: r->dport_lo = 9, r->dport_hi = 2; return "dport 9-2";
	case 4: r->dst->family = AF_INET, r->dst->prefix = 40; return "an IPv4 /40";
	case 5:
		r->dst->family = AF_INET, r->dst->prefix = 8;
		r->dst->addr[0] = 10, r->dst->addr[3] = 1;
		return "host bits set";
	case 6: memset(r->iif, 'x', sizeof(r->iif)); return "an unterminated -i";
	case 7: r->dst[1].family = AF_INET6; return "a list of two families";
	case 8: r->ndst = 3, r->dst = NULL; return "a list without its array";
	case 9: r->uid_lo = 5, r->uid_hi = 4; return "uid 5-4";
	case 10: r->gid_lo = 0, r->gid_hi = 4294967295L; return "gid 0-4294967295";
	case 11: r->ct_state = 0x80; return "ct state bit 0x80";
	case 12: r->cgroup_level = 2; return "a cgroup level without an id";
	default: return NULL;
	}
}

/* Fields set by hand out of their ranges are refused, not truncated by the encoder. */
static void
test_fields(void)
{
	struct divert_rule r;
	char err[DIVERT_ERRBUF_SIZE];
	const char *what;
	int i;

	struct divert_rule_addr *keep;

	for (i = 0; ; i++) {
		divert_rule_init(&r);
		divert_rule_parse(&r, "prerouting tcp 1 -d 10.0.0.0/8,11.0.0.1", 0, err);
		keep = r.dst;
		if ((what = spoil(&r, i)) == NULL)
			break;
		err[0] = '\0';
		ok(divert_rule_check(&r, err) < 0 && err[0] != '\0',
		    "set by hand, %s: refused (%s)", what, err);
		r.dst = keep;
		divert_rule_clear(&r);
	}
	divert_rule_clear(&r);
}

/* The decoder takes only its own shape: anything else is left alone. */
static void
test_foreign(void)
{
	struct nftnl_rule *nr = nftnl_rule_alloc(), *nw;
	struct nftnl_chain *c = nftnl_chain_alloc(), *cw;
	struct divert_rule r, back;
	struct rule_sets sets;
	char err[DIVERT_ERRBUF_SIZE];
	int priority;

	nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, DIVERT_TABLE);
	nftnl_rule_set_str(nr, NFTNL_RULE_CHAIN, "output");
	nftnl_rule_set_u64(nr, NFTNL_RULE_HANDLE, 7);
	nftnl_rule_add_expr(nr, nftnl_expr_alloc("counter"));
	nw = through_wire_rule(nr);
	ok(rule_expr_read(nw, DIVERT_CHAIN_OUTPUT, -150, &back, &sets) < 0 &&
	    back.chain == DIVERT_CHAIN_NONE && back.handle == 7,
	    "a rule of another shape: not ours, with its handle");
	nftnl_rule_free(nw);
	nftnl_rule_free(nr);

	divert_rule_init(&r);
	divert_rule_parse(&r, "output icmp 1", 0, err);
	nr = rule_expr_build(&r, "output", RULE_QUEUE_NATIVE);
	nftnl_rule_add_expr(nr, nftnl_expr_alloc("counter"));
	nw = through_wire_rule(nr);
	ok(rule_expr_read(nw, DIVERT_CHAIN_OUTPUT, -150, &back, &sets) < 0 &&
	    back.chain == DIVERT_CHAIN_NONE, "ours with one expression more: not ours");
	ok(rule_expr_read(nw, DIVERT_CHAIN_NONE, 0, &back, &sets) < 0,
	    "ours in a chain that is not a divert chain: not ours");
	nftnl_rule_free(nw);
	nftnl_rule_free(nr);

	r.chain = DIVERT_CHAIN_INPUT;		/* icmp on input, -o: add refuses it */
	strcpy(r.oif, "vA");
	nr = rule_expr_build(&r, "input", RULE_QUEUE_NATIVE);
	nw = through_wire_rule(nr);
	ok(rule_expr_read(nw, DIVERT_CHAIN_INPUT, 0, &back, &sets) < 0,
	    "a rule add would refuse is not listed as one");
	nftnl_rule_free(nw);
	nftnl_rule_free(nr);

	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, DIVERT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, "nat");
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_OUT);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, -100);
	cw = through_wire_chain(c);
	ok(rule_expr_read_chain(cw, &priority) == DIVERT_CHAIN_NONE,
	    "a nat chain is not a divert chain");
	nftnl_chain_free(cw);
	nftnl_chain_free(c);
}

/* --- the loop tag chain ----------------------------------------------- */

/* A tag rule's six expressions, each field given: nft's encoding, by hand. */
struct tag_shape {
	uint32_t	sockkey;		/* NFT_SOCKET_MARK */
	uint32_t	mask, value;		/* socket mark & mask == value */
	uint32_t	keep, set;		/* meta mark set meta mark & keep ^ set */
	int		extra;			/* a counter after them */
};

static void
set_bitwise(struct nftnl_expr *e, uint32_t mask, uint32_t xor)
{
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor, 4);
}

static struct nftnl_rule *
tag_by_hand(const struct tag_shape *t)
{
	struct nftnl_rule *nr = nftnl_rule_alloc();
	struct nftnl_expr *e;

	nftnl_rule_set_u32(nr, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, DIVERT_TABLE);
	nftnl_rule_set_str(nr, NFTNL_RULE_CHAIN, "loop_tag");
	e = nftnl_expr_alloc("socket");
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, t->sockkey);
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
	nftnl_rule_add_expr(nr, e);
	e = nftnl_expr_alloc("bitwise");
	set_bitwise(e, t->mask, 0);
	nftnl_rule_add_expr(nr, e);
	e = nftnl_expr_alloc("cmp");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &t->value, 4);
	nftnl_rule_add_expr(nr, e);
	e = nftnl_expr_alloc("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	nftnl_rule_add_expr(nr, e);
	e = nftnl_expr_alloc("bitwise");
	set_bitwise(e, t->keep, t->set);
	nftnl_rule_add_expr(nr, e);
	e = nftnl_expr_alloc("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	nftnl_rule_add_expr(nr, e);
	if (t->extra)
		nftnl_rule_add_expr(nr, nftnl_expr_alloc("counter"));
	return nr;
}

/* nr's netlink form, in buf: its length. */
static size_t
wire_of(struct nftnl_rule *nr, char *buf)
{
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, NFPROTO_INET, 0, 1);

	nftnl_rule_nlmsg_build_payload(nlh, nr);
	return nlh->nlmsg_len;
}

static void
test_tag_chain(void)
{
	struct nftnl_chain *c = rule_expr_tag_chain(), *cw;
	int priority = 0;

	cw = through_wire_chain(c);
	ok(strcmp(nftnl_chain_get_str(cw, NFTNL_CHAIN_NAME), "loop_tag") == 0 &&
	    strcmp(nftnl_chain_get_str(cw, NFTNL_CHAIN_TABLE), DIVERT_TABLE) == 0 &&
	    strcmp(nftnl_chain_get_str(cw, NFTNL_CHAIN_TYPE), "filter") == 0 &&
	    nftnl_chain_get_u32(cw, NFTNL_CHAIN_HOOKNUM) == NF_INET_LOCAL_OUT &&
	    nftnl_chain_get_s32(cw, NFTNL_CHAIN_PRIO) == INT32_MIN &&
	    nftnl_chain_get_u32(cw, NFTNL_CHAIN_POLICY) == NF_ACCEPT,
	    "tag chain: loop_tag, filter, hook output, priority -2147483648, accept");
	ok(rule_expr_read_chain(cw, &priority) == DIVERT_CHAIN_OUTPUT &&
	    priority == INT32_MIN, "tag chain: an output chain at the first priority "
	    "(rule.c tells it by its name)");
	nftnl_chain_free(cw);
	nftnl_chain_free(c);
}

static void
test_tag_rules(void)
{
	static const uint32_t marks[] = { DIVERT_MARK_DEFAULT, 0x1, 0x80000000u, 0x3,
		0xffffffffu };
	static char built[8192], hand[8192];
	struct nftnl_rule *nr, *nw, *byhand;
	struct divert_rule back;
	struct rule_sets sets;
	uint32_t m, got;
	size_t i, n;

	for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		m = marks[i];
		nr = rule_expr_tag_build(m);
		byhand = tag_by_hand(&(struct tag_shape){ NFT_SOCKET_MARK, m, m, ~m, m, 0 });
		n = wire_of(nr, built);
		ok(n == wire_of(byhand, hand) && memcmp(built, hand, n) == 0,
		    "tag %#x: the wire form of socket mark & M == M meta mark set "
		    "meta mark | M, as nft writes it", m);
		nw = through_wire_rule(nr);
		got = 0;
		ok(rule_expr_tag_read(nw, &got) == 0 && got == m,
		    "tag %#x: read back (got %#x)", m, got);
		ok(rule_expr_read(nw, DIVERT_CHAIN_OUTPUT, INT32_MIN, &back, &sets) < 0 &&
		    back.chain == DIVERT_CHAIN_NONE, "tag %#x: not a divert rule", m);
		nftnl_rule_free(nw);
		nftnl_rule_free(nr);
		nftnl_rule_free(byhand);
	}
}

/* Tag-like rules of another shape: not ours. */
static void
test_tag_foreign(void)
{
	static const struct {
		struct tag_shape	 t;
		const char		*what;
	} cases[] = {
		{ { NFT_SOCKET_MARK, 4, 4, ~4u, 4, 1 }, "one expression more" },
		{ { NFT_SOCKET_TRANSPARENT, 4, 4, ~4u, 4, 0 }, "socket transparent" },
		{ { NFT_SOCKET_MARK, 4, 0, ~4u, 4, 0 }, "mark & 4 == 0" },
		{ { NFT_SOCKET_MARK, 4, 4, ~4u, 8, 0 }, "sets another bit" },
		{ { NFT_SOCKET_MARK, 4, 4, 0xffffffffu, 4, 0 }, "an xor, not an or" },
		{ { NFT_SOCKET_MARK, 0, 0, 0xffffffffu, 0, 0 }, "mark 0" },
	};
	struct divert_rule r;
	struct nftnl_rule *nr, *nw;
	char err[DIVERT_ERRBUF_SIZE];
	uint32_t got;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		nr = tag_by_hand(&cases[i].t);
		nw = through_wire_rule(nr);
		ok(rule_expr_tag_read(nw, &got) < 0, "tag-like, %s: not a tag rule",
		    cases[i].what);
		nftnl_rule_free(nw);
		nftnl_rule_free(nr);
	}
	divert_rule_init(&r);
	divert_rule_parse(&r, "output 1", 0, err);
	nr = rule_expr_build(&r, "output", RULE_QUEUE_NATIVE);
	nw = through_wire_rule(nr);
	ok(rule_expr_tag_read(nw, &got) < 0, "a divert rule is not a tag rule");
	nftnl_rule_free(nw);
	nftnl_rule_free(nr);
}

/* Whether addr (family's) is in one of n prefixes: the plain definition. */
static int
covered(const struct divert_rule_addr *p, size_t n, const uint8_t *addr)
{
	size_t i, k, len;
	int bits;

	for (i = 0; i < n; i++) {
		len = p[i].family == AF_INET ? 4 : 16;
		for (k = 0, bits = p[i].prefix; k < len && bits > 0; k++, bits -= 8) {
			uint8_t m = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

			if ((addr[k] & m) != p[i].addr[k])
				break;
		}
		if (k == len || bits <= 0)
			return 1;
	}
	return 0;
}

/* An address near a prefix's edges: its first, its last, or one past either. */
static void
edge_of(const struct divert_rule_addr *p, int which, uint8_t *out)
{
	size_t len = p->family == AF_INET ? 4 : 16;

	memcpy(out, p->addr, len);
	if (which & 1) {		/* the last: host bits set */
		struct rule_range r;
		struct rule_range *rs;
		size_t nr;

		rule_ranges_of(p, 1, &rs, &nr);
		r = rs[0];
		free(rs);
		memcpy(out, r.hi, len);
	}
	if (which == 2)
		rule_addr_prev(out, len);
	if (which == 3)
		rule_addr_next(out, len);
}

/*
 * Random prefix lists, with duplicates and overlaps: the canonical form
 * covers exactly the same addresses (checked at every prefix's edges and
 * at random), is sorted and disjoint, and is its own canonical form.
 */
static void
test_canonical(int family, unsigned seed)
{
	size_t n = 5000, nc, nc2, i, len = family == AF_INET ? 4 : 16;
	struct divert_rule_addr *p = calloc(n, sizeof(*p)), *c, *c2;
	int same = 1, sorted = 1, idem, k;
	uint8_t a[16];

	srand(seed);
	for (i = 0; i < n; i++) {
		p[i].family = family;
		p[i].prefix = i % 7 == 0 && i > 0 ? p[i - 1].prefix + 1 :
		    (int)(len * 8) - rand() % (len == 4 ? 25 : 100);
		if (i % 7 == 0 && i > 0 && p[i].prefix <= (int)len * 8)
			memcpy(p[i].addr, p[i - 1].addr, len);	/* inside the last */
		else
			for (k = 0; k < (int)len; k++)
				p[i].addr[k] = (uint8_t)rand();
		if (p[i].prefix > (int)len * 8)
			p[i].prefix = (int)len * 8;
	}
	for (i = 0; i < n; i++) {	/* clear host bits as the parser does */
		struct rule_range *rs;

		rule_ranges_of(&p[i], 1, &rs, &nc);
		memcpy(p[i].addr, rs[0].lo, len);
		free(rs);
	}
	memcpy(&p[n - 1], &p[0], sizeof(*p));	/* a duplicate */
	ok(rule_prefixes_canon(p, n, &c, &nc) == 0 && nc > 0 && nc <= 2 * n * len * 8,
	    "IPv%d: 5000 random prefixes have a canonical form (%zu prefixes)",
	    family == AF_INET ? 4 : 6, nc);
	for (i = 0; same && i < n; i++)
		for (k = 0; same && k < 4; k++) {
			edge_of(&p[i], k, a);
			same = covered(p, n, a) == covered(c, nc, a);
		}
	for (i = 0; same && i < 20000; i++) {
		for (k = 0; k < (int)len; k++)
			a[k] = (uint8_t)rand();
		same = covered(p, n, a) == covered(c, nc, a);
	}
	ok(same, "IPv%d: it covers the same addresses (at every edge, and at "
	    "20000 random ones)", family == AF_INET ? 4 : 6);
	for (i = 1; i < nc; i++) {
		struct rule_range *r0, *r1;
		size_t n0, n1;

		rule_ranges_of(&c[i - 1], 1, &r0, &n0);
		rule_ranges_of(&c[i], 1, &r1, &n1);
		if (memcmp(r0[0].hi, r1[0].lo, len) >= 0)
			sorted = 0;
		free(r0);
		free(r1);
	}
	ok(sorted, "IPv%d: sorted, none overlapping", family == AF_INET ? 4 : 6);
	idem = rule_prefixes_canon(c, nc, &c2, &nc2) == 0 && nc2 == nc &&
	    memcmp(c, c2, nc * sizeof(*c)) == 0;
	ok(idem, "IPv%d: its own canonical form", family == AF_INET ? 4 : 6);
	free(c2);
	free(c);
	free(p);
}

/* A rule with thousands of prefixes from a file, through its set and back. */
static void
test_big_set(void)
{
	char path[] = "/tmp/rule_test.XXXXXX", err[DIVERT_ERRBUF_SIZE];
	char *text, *spec, *back_text;
	struct divert_rule r, again, back;
	FILE *f;
	int fd, i;

	fd = mkstemp(path);
	f = fdopen(fd, "w");
	fprintf(f, "# thousands of prefixes\n\n");
	srand(42);
	for (i = 0; i < 5000; i++)
		fprintf(f, "  %d.%d.%d.%d/%d # one\n", rand() % 224, rand() % 256,
		    rand() % 256, rand() % 256, 16 + rand() % 17);
	fclose(f);
	if (asprintf(&spec, "output udp 7 -d @%s", path) < 0)
		exit(1);
	divert_rule_init(&r);
	ok(divert_rule_parse(&r, spec, 0, err) == 0 && r.ndst == 5000,
	    "-d @FILE: 5000 prefixes, comments and blank lines skipped (%s)", err);
	text = rule_text(&r);
	ok(text != NULL && strlen(text) > DIVERT_RULE_TEXT_MAX &&
	    divert_rule_format(&r, NULL, 0) == (int)strlen(text),
	    "the text is longer than DIVERT_RULE_TEXT_MAX, its length from len 0");
	divert_rule_init(&again);
	ok(divert_rule_parse(&again, text, 0, err) == 0 && rule_same_spec(&r, &again),
	    "the text read back is the same rule");
	ok(round_trip(&r, RULE_QUEUE_COMPAT, &back) == 0 && rule_eq(&r, &back),
	    "through its set's wire form (several messages) and back");
	back_text = rule_text(&back);
	ok(back_text != NULL && strcmp(text, back_text) == 0,
	    "the same text comes back");
	divert_rule_clear(&back);
	ok(divert_rule_copy(&back, &r) == 0 && back.dst != r.dst &&
	    rule_same_spec(&r, &back), "divert_rule_copy: a deep copy");
	divert_rule_clear(&back);
	ok(back.ndst == 0 && back.dst == NULL && back.uid_lo == -1,
	    "divert_rule_clear: freed, and as divert_rule_init left it");
	free(back_text);
	free(text);
	free(spec);
	divert_rule_clear(&again);
	divert_rule_clear(&r);

	f = fopen(path, "w");
	fprintf(f, "10.0.0.0/8\n# fine\n\n10.0.0.300\n");
	fclose(f);
	if (asprintf(&spec, "output 7 -d @%s", path) < 0)
		exit(1);
	divert_rule_init(&r);
	ok(divert_rule_parse(&r, spec, 0, err) < 0 && strstr(err, path) != NULL &&
	    strstr(err, ":4: -d: bad address '10.0.0.300'") != NULL,
	    "a bad line names the file and the line (%s)", err);
	ok(r.ndst == 0 && r.dst == NULL, "and the rule keeps none of the file");
	free(spec);
	f = fopen(path, "w");
	fprintf(f, "fd00::/8\n10.0.0.1\n");
	fclose(f);
	if (asprintf(&spec, "output 7 -d @%s", path) < 0)
		exit(1);
	ok(divert_rule_parse(&r, spec, 0, err) < 0 &&
	    strstr(err, ":2: -d mixes IPv4 and IPv6") != NULL,
	    "a file of both families: refused at the line (%s)", err);
	free(spec);
	unlink(path);
}

/* --cgroup with the cgroup2 root, when one is mounted here. */
static void
test_cgroup(void)
{
	char err[DIVERT_ERRBUF_SIZE], text[DIVERT_RULE_TEXT_MAX];
	struct divert_rule r, back;

	divert_rule_init(&r);
	if (divert_rule_parse(&r, "output 1 --cgroup /", 0, err) < 0) {
		ok(strstr(err, "no cgroup2") != NULL, "--cgroup: no cgroup2 here (%s)", err);
		return;
	}
	divert_rule_format(&r, text, sizeof(text));
	ok(r.cgroup_id != 0 && r.cgroup_level == 0 && strcmp(text,
	    "output 1 --cgroup /") == 0, "--cgroup /: the root, level 0 (%s)", text);
	ok(round_trip(&r, RULE_QUEUE_NATIVE, &back) == 0 && rule_eq(&r, &back) &&
	    back.cgroup != NULL && strcmp(back.cgroup, "/") == 0,
	    "--cgroup: through the socket expression and back, path found by id");
	divert_rule_clear(&back);
	r.cgroup_id = 0xfffffffffffull;		/* no such cgroup */
	free(r.cgroup);
	r.cgroup = NULL;
	divert_rule_format(&r, text, sizeof(text));
	ok(strstr(text, "--cgroup gone:17592186044415") != NULL,
	    "a cgroup gone says so (%s)", text);
	divert_rule_clear(&r);
}

int
main(void)
{
	test_round_trips();
	test_spellings();
	test_bad_texts();
	test_noport();
	test_parts();
	test_foreign();
	test_fields();
	test_tag_chain();
	test_tag_rules();
	test_tag_foreign();
	test_canonical(AF_INET, 1);
	test_canonical(AF_INET6, 2);
	test_big_set();
	test_cgroup();
	return tap_done();
}
