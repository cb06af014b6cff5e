/*
 * rule_test.c - divert rules without a kernel: text -> rule -> nftables
 * objects, through their netlink wire form -> rule -> text, for every
 * option, with both verdicts (queue, NFQUEUE target); bad texts refused
 * with words.  The loop tag chain and its rules: built as nft itself
 * writes them, read back, anything else refused.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "divert.h"
#include "rule_expr.h"
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

/* Every field a rule's text and its nftables form carry. */
static int
rule_eq(const struct divert_rule *a, const struct divert_rule *b)
{
	return a->chain == b->chain && a->proto == b->proto &&
	    a->family == b->family && addr_eq(&a->src, &b->src) &&
	    addr_eq(&a->dst, &b->dst) && a->sport_lo == b->sport_lo &&
	    a->sport_hi == b->sport_hi && a->dport_lo == b->dport_lo &&
	    a->dport_hi == b->dport_hi && strcmp(a->iif, b->iif) == 0 &&
	    strcmp(a->oif, b->oif) == 0 && a->pass_through == b->pass_through &&
	    a->priority == b->priority && a->fanout == b->fanout &&
	    a->port_lo == b->port_lo && a->port_hi == b->port_hi &&
	    a->mark == b->mark && a->handle == b->handle && a->tag == b->tag;
}

/* r through its chain and rule objects and their wire form, back into *out. */
static int
round_trip(const struct divert_rule *r, enum rule_verdict kind,
    struct divert_rule *out)
{
	struct nftnl_chain *c, *cw;
	struct nftnl_rule *nr, *nw;
	int chain, priority = 12345, ret;

	c = rule_expr_chain(r, "somechain");
	cw = through_wire_chain(c);
	chain = rule_expr_read_chain(cw, &priority);
	nr = rule_expr_build(r, "somechain", kind);
	if (nr == NULL)
		return -1;
	nftnl_rule_set_u64(nr, NFTNL_RULE_HANDLE, r->handle);
	nw = through_wire_rule(nr);
	ret = rule_expr_read(nw, chain, priority, out);
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
		}
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
	case 4: r->dst.family = AF_INET, r->dst.prefix = 40; return "an IPv4 /40";
	case 5:
		r->dst.family = AF_INET, r->dst.prefix = 8;
		r->dst.addr[0] = 10, r->dst.addr[3] = 1;
		return "host bits set";
	case 6: memset(r->iif, 'x', sizeof(r->iif)); return "an unterminated -i";
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

	for (i = 0; ; i++) {
		divert_rule_init(&r);
		divert_rule_parse(&r, "prerouting tcp 1", 0, err);
		if ((what = spoil(&r, i)) == NULL)
			break;
		err[0] = '\0';
		ok(divert_rule_check(&r, err) < 0 && err[0] != '\0',
		    "set by hand, %s: refused (%s)", what, err);
	}
}

/* The decoder takes only its own shape: anything else is left alone. */
static void
test_foreign(void)
{
	struct nftnl_rule *nr = nftnl_rule_alloc(), *nw;
	struct nftnl_chain *c = nftnl_chain_alloc(), *cw;
	struct divert_rule r, back;
	char err[DIVERT_ERRBUF_SIZE];
	int priority;

	nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, DIVERT_TABLE);
	nftnl_rule_set_str(nr, NFTNL_RULE_CHAIN, "output");
	nftnl_rule_set_u64(nr, NFTNL_RULE_HANDLE, 7);
	nftnl_rule_add_expr(nr, nftnl_expr_alloc("counter"));
	nw = through_wire_rule(nr);
	ok(rule_expr_read(nw, DIVERT_CHAIN_OUTPUT, -150, &back) < 0 &&
	    back.chain == DIVERT_CHAIN_NONE && back.handle == 7,
	    "a rule of another shape: not ours, with its handle");
	nftnl_rule_free(nw);
	nftnl_rule_free(nr);

	divert_rule_init(&r);
	divert_rule_parse(&r, "output icmp 1", 0, err);
	nr = rule_expr_build(&r, "output", RULE_QUEUE_NATIVE);
	nftnl_rule_add_expr(nr, nftnl_expr_alloc("counter"));
	nw = through_wire_rule(nr);
	ok(rule_expr_read(nw, DIVERT_CHAIN_OUTPUT, -150, &back) < 0 &&
	    back.chain == DIVERT_CHAIN_NONE, "ours with one expression more: not ours");
	ok(rule_expr_read(nw, DIVERT_CHAIN_NONE, 0, &back) < 0,
	    "ours in a chain that is not a divert chain: not ours");
	nftnl_rule_free(nw);
	nftnl_rule_free(nr);

	r.chain = DIVERT_CHAIN_INPUT;		/* icmp on input, -o: add refuses it */
	strcpy(r.oif, "vA");
	nr = rule_expr_build(&r, "input", RULE_QUEUE_NATIVE);
	nw = through_wire_rule(nr);
	ok(rule_expr_read(nw, DIVERT_CHAIN_INPUT, 0, &back) < 0,
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
		ok(rule_expr_read(nw, DIVERT_CHAIN_OUTPUT, INT32_MIN, &back) < 0 &&
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
	return tap_done();
}
