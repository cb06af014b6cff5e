/*
 * rule_expr.c - a divert rule as nftables objects and back: its base
 * chain, and its expressions.  Pure code over libnftnl.
 *
 * Every rule reads, in this order:
 *   meta mark & MARK == 0			loop avoidance, always
 *   meta nfproto == ipv4|ipv6		-4/-6, or implied by an address
 *   meta l4proto == PROTO
 *   network header saddr[/mask] == ADDR	-s (one prefix)
 *   network header saddr in SET		-s (several: an anonymous set)
 *   network header daddr ...			-d, likewise
 *   transport header 0:2 == N or in N-M	--sport
 *   transport header 2:2 == N or in N-M	--dport
 *   meta iifname == IFACE, oifname		-i, -o
 *   meta mark [& M] == V			--mark
 *   meta skuid == N, or hton >= N <= M	--uid
 *   meta skgid ...				--gid
 *   socket cgroupv2 level L == ID		--cgroup
 *   ct state & BITS != 0			--ct-state
 *   ct packets (both directions), hton <= N	--first
 *   counter
 *   queue (native) or target NFQUEUE v3	the divert port(s)
 * The decoder accepts exactly this shape and nothing else.  The rule's
 * comment (NFTNL_RULE_USERDATA) holds its tag.  A set is anonymous,
 * constant, of intervals (as nft makes for `ip daddr { ... }`): it lives
 * and dies with the rule.  Comparisons other than equality work on bytes
 * (memcmp), so host-order numbers are turned to network order first, as
 * nft does.
 *
 * The table also has the loop tag chain (RULE_TAG_CHAIN: hook output, the
 * first priority of all), one rule per mark in use:
 *   socket mark & MARK == MARK		sent by a socket with the bit (a copy)
 *   meta mark set meta mark | MARK	the packet gets the bit too
 * A copy sent with its record's own mark (lib/raw.c) is routed by that
 * mark, then tagged here before any divert chain sees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>

#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>

#include "rule_cgroup.h"
#include "rule_expr.h"
#include "rule_prefix.h"
#include "rule_text.h"

#define MAX_EXPRS	64	/* a divert rule has at most 46 expressions */
#define SET_NAME	"__set%d"	/* an anonymous set: the kernel numbers it */
/* nft's data types, so that `nft list ruleset' prints the set's addresses. */
#define TYPE_IPADDR	7
#define TYPE_IP6ADDR	8
#define TAG_FORMAT	"divert tag %016" PRIx64	/* the rule's comment */

/* The netfilter hook of each chain; enum divert_chain indexes it. */
static const uint32_t hooks[] = {
	[DIVERT_CHAIN_PREROUTING]	= NF_INET_PRE_ROUTING,
	[DIVERT_CHAIN_INPUT]		= NF_INET_LOCAL_IN,
	[DIVERT_CHAIN_FORWARD]		= NF_INET_FORWARD,
	[DIVERT_CHAIN_OUTPUT]		= NF_INET_LOCAL_OUT,
	[DIVERT_CHAIN_POSTROUTING]	= NF_INET_POST_ROUTING,
};
#define NHOOKS	(sizeof(hooks) / sizeof(hooks[0]))

/* --- the chain -------------------------------------------------------- */

struct nftnl_chain *
rule_expr_chain(const struct divert_rule *r, const char *name)
{
	struct nftnl_chain *c;

	if ((c = nftnl_chain_alloc()) == NULL)
		return NULL;
	if (nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, DIVERT_TABLE) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter") < 0) {
		nftnl_chain_free(c);
		errno = ENOMEM;
		return NULL;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hooks[r->chain]);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, r->priority);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	return c;
}

int
rule_expr_read_chain(const struct nftnl_chain *c, int *priority)
{
	uint32_t hook;
	size_t i;

	/* The real hook and priority, whatever the chain is called. */
	if (!nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) ||
	    !str_is(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), "filter"))
		return DIVERT_CHAIN_NONE;
	hook = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
	*priority = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
	for (i = 0; i < NHOOKS; i++)
		if (hooks[i] == hook)
			return (int)i;
	return DIVERT_CHAIN_NONE;
}

struct nftnl_chain *
rule_expr_tag_chain(void)
{
	struct divert_rule r;

	divert_rule_init(&r);
	r.chain = DIVERT_CHAIN_OUTPUT;
	r.priority = RULE_TAG_PRIORITY;
	return rule_expr_chain(&r, RULE_TAG_CHAIN);
}

/* --- rule -> expressions ---------------------------------------------- */

static struct nftnl_expr *
add_expr(struct nftnl_rule *nr, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (e != NULL)
		nftnl_rule_add_expr(nr, e);
	return e;
}

/* Everything works in register 1: each match loads, then compares. */
static int
add_meta(struct nftnl_rule *nr, uint32_t key)
{
	struct nftnl_expr *e = add_expr(nr, "meta");

	if (e == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	return 0;
}

static int
add_payload(struct nftnl_rule *nr, uint32_t base, uint32_t offset,
    uint32_t len)
{
	struct nftnl_expr *e = add_expr(nr, "payload");

	if (e == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	return 0;
}

static int
add_mask(struct nftnl_rule *nr, const void *mask, uint32_t len)
{
	static const uint8_t zero[16];
	struct nftnl_expr *e = add_expr(nr, "bitwise");

	if (e == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	if (nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len) < 0 ||
	    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len) < 0)
		return -1;
	return 0;
}

static int
add_cmp(struct nftnl_rule *nr, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = add_expr(nr, "cmp");

	if (e == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	return nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len) < 0 ? -1 : 0;
}

static int
add_cmp_eq(struct nftnl_rule *nr, const void *data, uint32_t len)
{
	return add_cmp(nr, NFT_CMP_EQ, data, len);
}

static int
add_meta_cmp(struct nftnl_rule *nr, uint32_t key, const void *data,
    uint32_t len)
{
	return add_meta(nr, key) < 0 || add_cmp_eq(nr, data, len) < 0 ? -1 : 0;
}

static int
add_port_match(struct nftnl_rule *nr, uint32_t offset, long lo, long hi)
{
	uint16_t from = htons((uint16_t)lo), to = htons((uint16_t)hi);
	struct nftnl_expr *e;

	if (lo < 0)
		return 0;
	if (add_payload(nr, NFT_PAYLOAD_TRANSPORT_HEADER, offset, 2) < 0)
		return -1;
	if (lo == hi)
		return add_cmp_eq(nr, &from, 2);
	if ((e = add_expr(nr, "range")) == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_OP, NFT_RANGE_EQ);
	if (nftnl_expr_set(e, NFTNL_EXPR_RANGE_FROM_DATA, &from, 2) < 0 ||
	    nftnl_expr_set(e, NFTNL_EXPR_RANGE_TO_DATA, &to, 2) < 0)
		return -1;
	return 0;
}

/* Where an address sits in the network header of its family. */
static uint32_t
addr_offset(int family, bool dst)
{
	if (family == AF_INET)
		return dst ? 16 : 12;
	return dst ? 24 : 8;
}

static int
add_prefix_match(struct nftnl_rule *nr, const struct divert_rule_addr *a, bool dst)
{
	uint32_t len = (uint32_t)rule_addr_len(a->family);
	uint8_t mask[16];

	if (add_payload(nr, NFT_PAYLOAD_NETWORK_HEADER,
	    addr_offset(a->family, dst), len) < 0)
		return -1;
	if ((uint32_t)a->prefix < len * 8) {
		rule_prefix_mask(mask, len, a->prefix);
		if (add_mask(nr, mask, len) < 0)
			return -1;
	}
	return add_cmp_eq(nr, a->addr, len);
}

/* The set, named as a new anonymous one, by its id in the rule's batch. */
static int
add_set_match(struct nftnl_rule *nr, int family, bool dst)
{
	struct nftnl_expr *e;

	if (add_payload(nr, NFT_PAYLOAD_NETWORK_HEADER, addr_offset(family, dst),
	    (uint32_t)rule_addr_len(family)) < 0 ||
	    (e = add_expr(nr, "lookup")) == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, RULE_SET_ID(dst));
	return nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, SET_NAME) < 0 ? -1 : 0;
}

/* One side's prefixes: one (canonical) prefix is a plain match, more a set. */
static int
add_addr_match(struct nftnl_rule *nr, const struct divert_rule *r, bool dst)
{
	const struct divert_rule_addr *p = dst ? r->dst : r->src;
	size_t n = dst ? r->ndst : r->nsrc, nc;
	struct divert_rule_addr *c;
	int ret;

	if (n == 0)
		return 0;
	if (rule_prefixes_canon(p, n, &c, &nc) < 0)
		return -1;
	ret = nc == 1 ? add_prefix_match(nr, &c[0], dst) :
	    add_set_match(nr, c[0].family, dst);
	free(c);
	return ret;
}

/* A host-order number of len bytes within lo..hi: equal, or in network order between. */
static int
add_number_range(struct nftnl_rule *nr, uint64_t lo, uint64_t hi, uint32_t len)
{
	struct nftnl_expr *e;
	uint64_t from = len == 8 ? htobe64(lo) : htonl((uint32_t)lo);
	uint64_t to = len == 8 ? htobe64(hi) : htonl((uint32_t)hi);
	uint32_t lo32 = (uint32_t)lo;

	if (lo == hi)
		return len == 8 ? add_cmp_eq(nr, &lo, 8) : add_cmp_eq(nr, &lo32, 4);
	if ((e = add_expr(nr, "byteorder")) == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, len);
	/* lo 0 needs no lower bound: only the upper one (--first). */
	if (lo != 0 && add_cmp(nr, NFT_CMP_GTE, &from, len) < 0)
		return -1;
	return add_cmp(nr, NFT_CMP_LTE, &to, len);
}

static int
add_id_match(struct nftnl_rule *nr, uint32_t key, long lo, long hi)
{
	if (lo < 0)
		return 0;
	return add_meta(nr, key) < 0 ||
	    add_number_range(nr, (uint64_t)lo, (uint64_t)hi, 4) < 0 ? -1 : 0;
}

static int
add_mark_match(struct nftnl_rule *nr, uint32_t value, uint32_t mask)
{
	if (mask == 0)
		return 0;
	if (add_meta(nr, NFT_META_MARK) < 0 ||
	    (mask != UINT32_MAX && add_mask(nr, &mask, sizeof(mask)) < 0))
		return -1;
	return add_cmp_eq(nr, &value, sizeof(value));
}

static int
add_cgroup_match(struct nftnl_rule *nr, uint64_t id, uint32_t level)
{
	struct nftnl_expr *e;

	if (id == 0)
		return 0;
	if ((e = add_expr(nr, "socket")) == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_CGROUPV2);
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_LEVEL, level);
	return add_cmp_eq(nr, &id, sizeof(id));
}

static int
add_ct(struct nftnl_rule *nr, uint32_t key)
{
	struct nftnl_expr *e = add_expr(nr, "ct");

	if (e == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	return 0;
}

static int
add_ct_matches(struct nftnl_rule *nr, uint32_t state, uint64_t first)
{
	uint32_t zero = 0;

	if (state != 0 && (add_ct(nr, NFT_CT_STATE) < 0 ||
	    add_mask(nr, &state, sizeof(state)) < 0 ||
	    add_cmp(nr, NFT_CMP_NEQ, &zero, sizeof(zero)) < 0))
		return -1;
	/* No direction: the kernel sums both (and turns accounting on). */
	if (first != 0 && (add_ct(nr, NFT_CT_PKTS) < 0 ||
	    add_number_range(nr, 0, first, 8) < 0))
		return -1;
	return 0;
}

/* r's set for its -s (dst: -d) prefixes: elements start and end each range. */
static int
add_range_elems(struct nftnl_set *s, const struct rule_range *rg, size_t n,
    uint32_t len)
{
	static const uint8_t zero[16];
	struct nftnl_set_elem *e;
	uint8_t end[16];
	size_t i;

	/* As nft: an end at 0 first, unless a range starts there. */
	for (i = 0; i <= n; i++) {
		if (i == 0 && memcmp(rg[0].lo, zero, len) == 0)
			continue;
		if ((e = nftnl_set_elem_alloc()) == NULL)
			return -1;
		if (i == 0) {
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, zero, len);
			nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS,
			    NFT_SET_ELEM_INTERVAL_END);
		} else {
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, rg[i - 1].lo, len);
		}
		nftnl_set_elem_add(s, e);
		if (i == 0)
			continue;
		/* The end is the first address past the range: none past the last. */
		memcpy(end, rg[i - 1].hi, len);
		if (!rule_addr_next(end, len))
			continue;
		if ((e = nftnl_set_elem_alloc()) == NULL)
			return -1;
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, end, len);
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
		nftnl_set_elem_add(s, e);
	}
	return 0;
}

int
rule_expr_set(const struct divert_rule *r, bool dst, struct nftnl_set **set)
{
	const struct divert_rule_addr *p = dst ? r->dst : r->src;
	size_t n = dst ? r->ndst : r->nsrc, nr;
	struct rule_range *rg;
	struct nftnl_set *s;
	uint32_t len;

	*set = NULL;
	if (n == 0)
		return 0;
	if (rule_ranges_of(p, n, &rg, &nr) < 0)
		return -1;
	len = (uint32_t)rule_addr_len(p[0].family);
	/* One range that is one prefix: a plain match (add_addr_match). */
	if (nr == 1 && rule_range_is_prefix(&rg[0], len)) {
		free(rg);
		return 0;
	}
	if ((s = nftnl_set_alloc()) == NULL ||
	    nftnl_set_set_str(s, NFTNL_SET_TABLE, DIVERT_TABLE) < 0 ||
	    nftnl_set_set_str(s, NFTNL_SET_NAME, SET_NAME) < 0)
		goto nomem;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT |
	    NFT_SET_INTERVAL);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, len == 4 ? TYPE_IPADDR : TYPE_IP6ADDR);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, len);
	nftnl_set_set_u32(s, NFTNL_SET_ID, RULE_SET_ID(dst));
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, (uint32_t)(2 * nr + 1));
	if (add_range_elems(s, rg, nr, len) < 0)
		goto nomem;
	free(rg);
	*set = s;
	return 0;
nomem:
	if (s != NULL)
		nftnl_set_free(s);
	free(rg);
	errno = ENOMEM;
	return -1;
}

static int
add_ifname_match(struct nftnl_rule *nr, uint32_t key, const char *name)
{
	char padded[IF_NAMESIZE] = { 0 };

	if (name[0] == '\0')
		return 0;
	/* Zero-padded to IF_NAMESIZE: an exact match, not a prefix one. */
	memcpy(padded, name, strnlen(name, sizeof(padded) - 1));
	return add_meta_cmp(nr, key, padded, IF_NAMESIZE);
}

static int
add_queue(struct nftnl_rule *nr, const struct divert_rule *r, uint16_t total)
{
	struct nftnl_expr *e = add_expr(nr, "queue");

	if (e == NULL)
		return -1;
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, (uint16_t)r->port_lo);
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, total);
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS,
	    (r->pass_through ? NFT_QUEUE_FLAG_BYPASS : 0) |
	    (r->fanout ? NFT_QUEUE_FLAG_CPU_FANOUT : 0));
	return 0;
}

static int
add_nfqueue_target(struct nftnl_rule *nr, const struct divert_rule *r,
    uint16_t total)
{
	struct xt_NFQ_info_v3 *info;
	struct nftnl_expr *e = add_expr(nr, "target");

	if (e == NULL || nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE") < 0)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
	if ((info = calloc(1, XT_ALIGN(sizeof(*info)))) == NULL)
		return -1;
	info->queuenum = (uint16_t)r->port_lo;
	info->queues_total = total;
	info->flags = (r->pass_through ? NFQ_FLAG_BYPASS : 0) |
	    (r->fanout ? NFQ_FLAG_CPU_FANOUT : 0);
	/* libnftnl takes ownership of info and frees it with the expression. */
	return nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info,
	    XT_ALIGN(sizeof(*info))) < 0 ? -1 : 0;
}

static int
add_matches(struct nftnl_rule *nr, const struct divert_rule *r,
    enum rule_verdict kind)
{
	uint16_t total = (uint16_t)(r->port_hi - r->port_lo + 1);
	int family = rule_family(r);
	uint8_t nfproto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
	uint8_t l4proto = (uint8_t)r->proto;
	uint32_t zero = 0;

	if (add_meta(nr, NFT_META_MARK) < 0 ||
	    add_mask(nr, &r->mark, sizeof(r->mark)) < 0 ||
	    add_cmp_eq(nr, &zero, sizeof(zero)) < 0 ||
	    (family != 0 &&
	    add_meta_cmp(nr, NFT_META_NFPROTO, &nfproto, 1) < 0) ||
	    (r->proto >= 0 &&
	    add_meta_cmp(nr, NFT_META_L4PROTO, &l4proto, 1) < 0) ||
	    add_addr_match(nr, r, false) < 0 ||
	    add_addr_match(nr, r, true) < 0 ||
	    add_port_match(nr, 0, r->sport_lo, r->sport_hi) < 0 ||
	    add_port_match(nr, 2, r->dport_lo, r->dport_hi) < 0 ||
	    add_ifname_match(nr, NFT_META_IIFNAME, r->iif) < 0 ||
	    add_ifname_match(nr, NFT_META_OIFNAME, r->oif) < 0 ||
	    add_mark_match(nr, r->mark_value, r->mark_mask) < 0 ||
	    add_id_match(nr, NFT_META_SKUID, r->uid_lo, r->uid_hi) < 0 ||
	    add_id_match(nr, NFT_META_SKGID, r->gid_lo, r->gid_hi) < 0 ||
	    add_cgroup_match(nr, r->cgroup_id, r->cgroup_level) < 0 ||
	    add_ct_matches(nr, r->ct_state, r->first) < 0 ||
	    /* So `nft list table inet divert` shows what each rule took. */
	    add_expr(nr, "counter") == NULL)
		return -1;
	return kind == RULE_QUEUE_NATIVE ? add_queue(nr, r, total) :
	    add_nfqueue_target(nr, r, total);
}

/* "mark | bit": reg 1 = (reg 1 & ~bit) ^ bit, as nft writes an or. */
static int
add_or(struct nftnl_rule *nr, uint32_t bit)
{
	struct nftnl_expr *e = add_expr(nr, "bitwise");
	uint32_t keep = ~bit;

	if (e == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(bit));
	if (nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &keep, sizeof(keep)) < 0 ||
	    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &bit, sizeof(bit)) < 0)
		return -1;
	return 0;
}

static int
add_tag_exprs(struct nftnl_rule *nr, uint32_t mark)
{
	struct nftnl_expr *e;

	if ((e = add_expr(nr, "socket")) == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_MARK);
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
	if (add_mask(nr, &mark, sizeof(mark)) < 0 ||
	    add_cmp_eq(nr, &mark, sizeof(mark)) < 0 ||
	    add_meta(nr, NFT_META_MARK) < 0 ||
	    add_or(nr, mark) < 0 ||
	    (e = add_expr(nr, "meta")) == NULL)
		return -1;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	return 0;
}

struct nftnl_rule *
rule_expr_tag_build(uint32_t mark)
{
	struct nftnl_rule *nr;

	if ((nr = nftnl_rule_alloc()) == NULL)
		return NULL;
	nftnl_rule_set_u32(nr, NFTNL_RULE_FAMILY, NFPROTO_INET);
	if (nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, DIVERT_TABLE) < 0 ||
	    nftnl_rule_set_str(nr, NFTNL_RULE_CHAIN, RULE_TAG_CHAIN) < 0 ||
	    add_tag_exprs(nr, mark) < 0) {
		nftnl_rule_free(nr);
		errno = ENOMEM;
		return NULL;
	}
	return nr;
}

/* The tag as the rule's comment, in the layout nft reads and prints. */
static int
set_tag(struct nftnl_rule *nr, uint64_t tag)
{
	struct nftnl_udata_buf *ud;
	char text[64];
	int ret = -1;

	if ((ud = nftnl_udata_buf_alloc(sizeof(text) + 8)) == NULL)
		return -1;
	snprintf(text, sizeof(text), TAG_FORMAT, tag);
	if (nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, text) &&
	    nftnl_rule_set_data(nr, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
	    nftnl_udata_buf_len(ud)) == 0)
		ret = 0;
	nftnl_udata_buf_free(ud);
	return ret;
}

struct nftnl_rule *
rule_expr_build(const struct divert_rule *r, const char *chain,
    enum rule_verdict kind)
{
	struct nftnl_rule *nr;

	if ((nr = nftnl_rule_alloc()) == NULL)
		return NULL;
	nftnl_rule_set_u32(nr, NFTNL_RULE_FAMILY, NFPROTO_INET);
	if (nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, DIVERT_TABLE) < 0 ||
	    nftnl_rule_set_str(nr, NFTNL_RULE_CHAIN, chain) < 0 ||
	    add_matches(nr, r, kind) < 0 ||
	    (r->tag != 0 && set_tag(nr, r->tag) < 0)) {
		nftnl_rule_free(nr);
		errno = ENOMEM;
		return NULL;
	}
	return nr;
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

/* A "cmp OP reg 1" of len bytes: its operand into out. */
static bool
read_cmp(const struct nftnl_expr *e, uint32_t op, void *out, uint32_t len)
{
	const void *data;
	uint32_t dlen;

	if (e == NULL || !u32_is(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1) ||
	    !u32_is(e, NFTNL_EXPR_CMP_OP, op))
		return false;
	data = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &dlen);
	if (data == NULL || dlen != len)
		return false;
	memcpy(out, data, len);
	return true;
}

/* A "cmp eq reg 1" of len bytes: copies the operand to out. */
static bool
read_cmp_eq(const struct nftnl_expr *e, void *out, uint32_t len)
{
	return read_cmp(e, NFT_CMP_EQ, out, len);
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

/* "mark & MARK == 0": the rule's loop-avoidance bit, into *mark. */
static bool
take_mark(struct cursor *c, uint32_t *mark)
{
	uint32_t mask, value;

	if (!is_meta(peek(c, 0, "meta"), NFT_META_MARK) ||
	    !read_mask(peek(c, 1, "bitwise"), &mask, 4) ||
	    !read_cmp_eq(peek(c, 2, "cmp"), &value, 4) || value != 0)
		return false;
	*mark = mask;
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

/* r's list for one side: a single prefix, on the heap. */
static bool
set_one_prefix(struct divert_rule *r, bool dst, const struct divert_rule_addr *a)
{
	struct divert_rule_addr *p = malloc(sizeof(*p));

	if (p == NULL)
		return false;
	*p = *a;
	if (dst) {
		r->dst = p;
		r->ndst = 1;
	} else {
		r->src = p;
		r->nsrc = 1;
	}
	return true;
}

/* "lookup reg 1 set NAME" (no map, not inverted): the set's name into sets. */
static bool
take_lookup(struct cursor *c, int k, char *name, size_t len)
{
	const struct nftnl_expr *e = peek(c, k, "lookup");
	const char *set;

	if (e == NULL || !u32_is(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1) ||
	    nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG) ||
	    (nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_FLAGS) &&
	    !u32_is(e, NFTNL_EXPR_LOOKUP_FLAGS, 0)) ||
	    (set = nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET)) == NULL ||
	    strlen(set) >= len || *set == '\0')
		return false;
	strcpy(name, set);
	return true;
}

static bool
take_addr(struct cursor *c, int family, bool dst, struct divert_rule *r,
    struct rule_sets *sets)
{
	uint32_t len = (uint32_t)rule_addr_len(family);
	uint8_t mask[16], addr[16];
	int k = 1, prefix = (int)len * 8;
	struct divert_rule_addr a;
	uint32_t i;

	if (!is_payload(peek(c, 0, "payload"), NFT_PAYLOAD_NETWORK_HEADER,
	    addr_offset(family, dst), len))
		return false;
	if (take_lookup(c, 1, sets->name[dst], sizeof(sets->name[dst]))) {
		sets->family = family;
		c->i += 2;
		return true;
	}
	memset(mask, 0xff, sizeof(mask));
	if (peek(c, 1, "bitwise") != NULL) {
		if (!read_mask(peek(c, 1, "bitwise"), mask, len) ||
		    (prefix = rule_mask_prefix(mask, len)) < 0)
			return false;
		k = 2;
	}
	if (!read_cmp_eq(peek(c, k, "cmp"), addr, len))
		return false;
	for (i = 0; i < len; i++)
		if (addr[i] & ~mask[i])
			return false;	/* could never match: not ours */
	memset(&a, 0, sizeof(a));
	a.family = family;
	memcpy(a.addr, addr, len);
	a.prefix = prefix;
	if (!set_one_prefix(r, dst, &a))
		return false;
	c->i += k + 1;
	return true;
}
static bool
is_hton(const struct nftnl_expr *e, uint32_t len)
{
	return e != NULL && u32_is(e, NFTNL_EXPR_BYTEORDER_SREG, NFT_REG_1) &&
	    u32_is(e, NFTNL_EXPR_BYTEORDER_DREG, NFT_REG_1) &&
	    u32_is(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON) &&
	    u32_is(e, NFTNL_EXPR_BYTEORDER_LEN, len) &&
	    u32_is(e, NFTNL_EXPR_BYTEORDER_SIZE, len);
}

/* What add_number_range wrote, after the load: lo..hi (host order). */
static bool
take_number_range(struct cursor *c, uint32_t len, uint64_t *lo, uint64_t *hi)
{
	uint64_t from = 0, to = 0;
	uint32_t v32;
	int k = 1;

	if (len == 4 && read_cmp_eq(peek(c, 0, "cmp"), &v32, 4)) {
		*lo = *hi = v32;
		c->i++;
		return true;
	}
	if (len == 8 && read_cmp_eq(peek(c, 0, "cmp"), &from, 8)) {
		*lo = *hi = from;
		c->i++;
		return true;
	}
	if (!is_hton(peek(c, 0, "byteorder"), len))
		return false;
	if (read_cmp(peek(c, 1, "cmp"), NFT_CMP_GTE, &from, len))
		k = 2;
	if (!read_cmp(peek(c, k, "cmp"), NFT_CMP_LTE, &to, len))
		return false;
	*lo = len == 8 ? be64toh(from) : ntohl((uint32_t)from);
	*hi = len == 8 ? be64toh(to) : ntohl((uint32_t)to);
	if (*lo >= *hi)
		return false;		/* add_number_range writes that as equality */
	c->i += k + 1;
	return true;
}

static bool
take_id(struct cursor *c, uint32_t key, long *lo, long *hi)
{
	struct cursor probe = *c;
	uint64_t from, to;

	if (!is_meta(peek(&probe, 0, "meta"), key))
		return false;
	probe.i++;
	if (!take_number_range(&probe, 4, &from, &to))
		return false;
	*lo = (long)from;
	*hi = (long)to;
	*c = probe;
	return true;
}

static bool
take_mark_match(struct cursor *c, uint32_t *value, uint32_t *mask)
{
	uint32_t m = UINT32_MAX, v;
	int k = 1;

	if (!is_meta(peek(c, 0, "meta"), NFT_META_MARK))
		return false;
	if (peek(c, 1, "bitwise") != NULL) {
		if (!read_mask(peek(c, 1, "bitwise"), &m, 4) || m == UINT32_MAX)
			return false;
		k = 2;
	}
	if (!read_cmp_eq(peek(c, k, "cmp"), &v, 4) || m == 0)
		return false;
	*value = v;
	*mask = m;
	c->i += k + 1;
	return true;
}

static bool
take_cgroup(struct cursor *c, uint64_t *id, uint32_t *level)
{
	const struct nftnl_expr *e = peek(c, 0, "socket");
	uint64_t v;

	if (e == NULL || !u32_is(e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_CGROUPV2) ||
	    !u32_is(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1) ||
	    !nftnl_expr_is_set(e, NFTNL_EXPR_SOCKET_LEVEL) ||
	    !read_cmp_eq(peek(c, 1, "cmp"), &v, 8) || v == 0)
		return false;
	*id = v;
	*level = nftnl_expr_get_u32(e, NFTNL_EXPR_SOCKET_LEVEL);
	c->i += 2;
	return true;
}

static bool
is_ct(const struct nftnl_expr *e, uint32_t key)
{
	return e != NULL && u32_is(e, NFTNL_EXPR_CT_KEY, key) &&
	    u32_is(e, NFTNL_EXPR_CT_DREG, NFT_REG_1) &&
	    !nftnl_expr_is_set(e, NFTNL_EXPR_CT_DIR);
}

static bool
take_ct_state(struct cursor *c, uint32_t *state)
{
	uint32_t bits, zero;

	if (!is_ct(peek(c, 0, "ct"), NFT_CT_STATE) ||
	    !read_mask(peek(c, 1, "bitwise"), &bits, 4) ||
	    !read_cmp(peek(c, 2, "cmp"), NFT_CMP_NEQ, &zero, 4) || zero != 0 ||
	    bits == 0)
		return false;
	*state = bits;
	c->i += 3;
	return true;
}

static bool
take_first(struct cursor *c, uint64_t *first)
{
	struct cursor probe = *c;
	uint64_t lo, hi;

	if (!is_ct(peek(&probe, 0, "ct"), NFT_CT_PKTS))
		return false;
	probe.i++;
	if (!take_number_range(&probe, 8, &lo, &hi) || lo != 0 || hi == 0)
		return false;
	*first = hi;
	*c = probe;
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
	char padded[IF_NAMESIZE];
	struct cursor probe = *c;

	if (!take_meta_cmp(&probe, key, padded, IF_NAMESIZE))
		return false;
	/* Only an exact, zero-padded name that we could have written. */
	if (padded[IF_NAMESIZE - 1] != '\0' || !rule_ifname_ok(padded))
		return false;
	strcpy(name, padded);
	*c = probe;
	return true;
}

static bool
take_verdict(struct cursor *c, struct divert_rule *r)
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
decode_exprs(struct nftnl_rule *nr, struct divert_rule *r, struct rule_sets *sets)
{
	struct cursor c = { .n = 0, .i = 0 };
	struct nftnl_expr *e;
	uint8_t nfproto, l4proto;

	if (nftnl_expr_foreach(nr, collect_expr, &c) < 0 ||
	    !take_mark(&c, &r->mark))
		return -1;
	if (take_meta_cmp(&c, NFT_META_NFPROTO, &nfproto, 1)) {
		if (nfproto != NFPROTO_IPV4 && nfproto != NFPROTO_IPV6)
			return -1;
		r->family = nfproto == NFPROTO_IPV4 ? AF_INET : AF_INET6;
	}
	if (take_meta_cmp(&c, NFT_META_L4PROTO, &l4proto, 1))
		r->proto = l4proto;
	if (r->family != 0) {
		take_addr(&c, r->family, false, r, sets);
		take_addr(&c, r->family, true, r, sets);
		/* An address says its family already: -4/-6 only without
		 * one, as the text reads. */
		if (r->nsrc > 0 || r->ndst > 0 || sets->family != 0)
			r->family = 0;
	}
	take_port(&c, 0, &r->sport_lo, &r->sport_hi);
	take_port(&c, 2, &r->dport_lo, &r->dport_hi);
	take_ifname(&c, NFT_META_IIFNAME, r->iif);
	take_ifname(&c, NFT_META_OIFNAME, r->oif);
	take_mark_match(&c, &r->mark_value, &r->mark_mask);
	take_id(&c, NFT_META_SKUID, &r->uid_lo, &r->uid_hi);
	take_id(&c, NFT_META_SKGID, &r->gid_lo, &r->gid_hi);
	take_cgroup(&c, &r->cgroup_id, &r->cgroup_level);
	take_ct_state(&c, &r->ct_state);
	take_first(&c, &r->first);
	if ((e = peek(&c, 0, "counter")) != NULL) {
		r->packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		r->bytes = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
		c.i++;
	}
	if (!take_verdict(&c, r) || c.i != c.n)
		return -1;
	return 0;
}

/* "reg 1 = (reg 1 & ~bit) ^ bit" (mark | bit): bit into *bit. */
static bool
read_or(const struct nftnl_expr *e, uint32_t *bit)
{
	const void *m, *x;
	uint32_t mlen, xlen, keep, set;

	if (e == NULL || !u32_is(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1) ||
	    !u32_is(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1) ||
	    !u32_is(e, NFTNL_EXPR_BITWISE_LEN, 4) ||
	    (nftnl_expr_is_set(e, NFTNL_EXPR_BITWISE_OP) &&
	    !u32_is(e, NFTNL_EXPR_BITWISE_OP, NFT_BITWISE_BOOL)))
		return false;
	m = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &mlen);
	x = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_XOR, &xlen);
	if (m == NULL || x == NULL || mlen != 4 || xlen != 4)
		return false;
	memcpy(&keep, m, 4);
	memcpy(&set, x, 4);
	if (keep != ~set)
		return false;
	*bit = set;
	return true;
}

int
rule_expr_tag_read(struct nftnl_rule *nr, uint32_t *mark)
{
	struct cursor c = { .n = 0, .i = 0 };
	const struct nftnl_expr *e;
	uint32_t mask, value, bit;

	if (nftnl_expr_foreach(nr, collect_expr, &c) < 0 || c.n != 6)
		return -1;
	e = peek(&c, 0, "socket");
	if (e == NULL || !u32_is(e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_MARK) ||
	    !u32_is(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1) ||
	    (nftnl_expr_is_set(e, NFTNL_EXPR_SOCKET_LEVEL) &&
	    !u32_is(e, NFTNL_EXPR_SOCKET_LEVEL, 0)) ||
	    !read_mask(peek(&c, 1, "bitwise"), &mask, 4) ||
	    !read_cmp_eq(peek(&c, 2, "cmp"), &value, 4) ||
	    !is_meta(peek(&c, 3, "meta"), NFT_META_MARK) ||
	    !read_or(peek(&c, 4, "bitwise"), &bit))
		return -1;
	e = peek(&c, 5, "meta");
	if (e == NULL || !u32_is(e, NFTNL_EXPR_META_KEY, NFT_META_MARK) ||
	    !u32_is(e, NFTNL_EXPR_META_SREG, NFT_REG_1) ||
	    nftnl_expr_is_set(e, NFTNL_EXPR_META_DREG))
		return -1;
	/* One bit throughout, or it is not a rule we made. */
	if (mask == 0 || value != mask || bit != mask)
		return -1;
	*mark = mask;
	return 0;
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
	return 0;
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

int
rule_expr_read(struct nftnl_rule *nr, int chain, int priority,
    struct divert_rule *r, struct rule_sets *sets)
{
	struct divert_rule d;

	divert_rule_init(r);
	memset(sets, 0, sizeof(*sets));
	r->handle = nftnl_rule_get_u64(nr, NFTNL_RULE_HANDLE);
	r->tag = read_tag(nr);
	if (chain == DIVERT_CHAIN_NONE)
		return -1;
	d = *r;
	d.chain = chain;
	d.priority = priority;
	/* Only what `add` would accept: never print a line that lies. */
	if (decode_exprs(nr, &d, sets) < 0 || divert_rule_check(&d, NULL) < 0) {
		free(d.src);
		free(d.dst);
		memset(sets, 0, sizeof(*sets));
		return -1;
	}
	*r = d;
	if (r->cgroup_id != 0)		/* NULL (gone) says so in the text */
		r->cgroup = rule_cgroup_path(r->cgroup_id, r->cgroup_level);
	return 0;
}

static int
count_elem(struct nftnl_set_elem *e, void *arg)
{
	(void)e;
	(*(size_t *)arg)++;
	return 0;
}

/* A set element: its key, and whether it ends a range (or starts one). */
struct elem {
	uint8_t	key[16];
	bool	end;
};

struct elems {
	struct elem	*v;
	size_t		 n, len;	/* len: the key's */
	bool		 bad;
};

static int
collect_elem(struct nftnl_set_elem *e, void *arg)
{
	struct elems *es = arg;
	const uint32_t *flags;
	const void *key;
	uint32_t klen;

	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
	if (key == NULL || klen != es->len || nftnl_set_elem_get(e,
	    NFTNL_SET_ELEM_DATA, &klen) != NULL) {
		es->bad = true;
		return 0;
	}
	memcpy(es->v[es->n].key, key, es->len);
	/* libnftnl's get_u32 of an attribute not there reads NULL. */
	flags = nftnl_set_elem_get(e, NFTNL_SET_ELEM_FLAGS, &klen);
	es->v[es->n].end = flags != NULL && klen == sizeof(uint32_t) &&
	    (*flags & NFT_SET_ELEM_INTERVAL_END) != 0;
	es->n++;
	return 0;
}

/* By key; at one key, an end (of the range before) first. */
static int
by_key(const void *x, const void *y, void *arg)
{
	const struct elem *a = x, *b = y;
	int d = memcmp(a->key, b->key, *(const size_t *)arg);

	return d != 0 ? d : (int)b->end - (int)a->end;
}

/* The ranges an interval set's elements make: -1 when they are not ours. */
static int
elems_ranges(struct elems *es, struct rule_range *rg, size_t *nr)
{
	bool open = false;
	size_t i;

	qsort_r(es->v, es->n, sizeof(*es->v), by_key, &es->len);
	*nr = 0;
	for (i = 0; i < es->n; i++) {
		if (!es->v[i].end) {
			if (open)
				return -1;	/* two starts: not what we send */
			memcpy(rg[*nr].lo, es->v[i].key, es->len);
			open = true;
		} else if (open) {
			memcpy(rg[*nr].hi, es->v[i].key, es->len);
			if (!rule_addr_prev(rg[*nr].hi, es->len))
				return -1;
			(*nr)++;
			open = false;
		}
	}
	if (open) {		/* to the last address */
		memset(rg[*nr].hi, 0xff, es->len);
		(*nr)++;
	}
	return *nr > 0 ? 0 : -1;
}

/* The prefixes of set s (family's addresses) as r's list for one side. */
static int
read_set(struct divert_rule *r, bool dst, int family, struct nftnl_set *s)
{
	struct elems es = { NULL, 0, rule_addr_len(family), false };
	struct divert_rule_addr *p;
	struct rule_range *rg;
	size_t nrg, np, max = 0;
	uint32_t want = NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL;
	int ret = -1;

	if (s == NULL || !nftnl_set_is_set(s, NFTNL_SET_FLAGS) ||
	    !nftnl_set_is_set(s, NFTNL_SET_KEY_LEN) ||
	    nftnl_set_is_set(s, NFTNL_SET_DATA_LEN) ||
	    nftnl_set_get_u32(s, NFTNL_SET_FLAGS) != want ||
	    nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) != es.len)
		return -1;
	nftnl_set_elem_foreach(s, count_elem, &max);
	if (max == 0 || (es.v = calloc(max, sizeof(*es.v))) == NULL ||
	    (rg = calloc(max, sizeof(*rg))) == NULL) {
		free(es.v);
		return -1;
	}
	nftnl_set_elem_foreach(s, collect_elem, &es);
	if (!es.bad && elems_ranges(&es, rg, &nrg) == 0 &&
	    rule_prefixes_of(family, rg, nrg, &p, &np) == 0) {
		if (dst) {
			r->dst = p;
			r->ndst = np;
		} else {
			r->src = p;
			r->nsrc = np;
		}
		ret = 0;
	}
	free(rg);
	free(es.v);
	return ret;
}

int
rule_expr_read_sets(struct divert_rule *r, const struct rule_sets *sets,
    struct nftnl_set *src, struct nftnl_set *dst)
{
	uint64_t handle = r->handle, tag = r->tag;

	if ((sets->name[0][0] == '\0' || read_set(r, false, sets->family, src) == 0) &&
	    (sets->name[1][0] == '\0' || read_set(r, true, sets->family, dst) == 0) &&
	    divert_rule_check(r, NULL) == 0)
		return 0;
	divert_rule_clear(r);
	r->handle = handle;
	r->tag = tag;
	return -1;
}
