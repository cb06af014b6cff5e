/*
 * rule_mark.c - who else in the ruleset uses the loop-avoidance mark bit.
 *
 * Divert rules skip packets whose mark has the bit, and everything a
 * divert handle sends carries it.  A rule of another table that sets the
 * bit makes divert rules skip those packets; one that matches it treats
 * our reinjected packets as its own.  Either is a collision the user
 * should hear of (zapret, for one, uses 0x40000000 and 0x20000000).
 *
 * A rule "uses" the bit when it reads or writes the packet or conntrack
 * mark (meta mark, ct mark) and one of its constants -- a cmp or range
 * value, the bits a bitwise tests or changes, an immediate -- has the bit.  That is how
 * nft compiles `meta mark and B == B', `meta mark set meta mark or B' and
 * `ct mark set B'.  iptables-nft's xt mark match and MARK target carry
 * their values in opaque blobs and are not looked into; iptables-legacy
 * rules are not in nf_tables at all.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "nl.h"
#include "rule_expr.h"
#include "rule_text.h"

#define READ_SIZE	32768	/* what a dump answers at once */
#define REQ_SIZE	512

/* What the dump callback carries. */
struct walk {
	uint32_t	 bit;
	divert_mark_cb	 cb;
	void		*arg;
	int		 stop;		/* cb's value that ended the walk; 0 none */
};

/* Attribute type of e as a 32-bit constant: true and *v, or false. */
static bool
const_of(const struct nftnl_expr *e, uint16_t type, uint32_t *v)
{
	const void *data;
	uint32_t len = 0;

	if (!nftnl_expr_is_set(e, type) ||
	    (data = nftnl_expr_get(e, type, &len)) == NULL || len != sizeof(*v))
		return false;
	memcpy(v, data, sizeof(*v));
	return true;
}

static bool
const_has(const struct nftnl_expr *e, uint16_t type, uint32_t want)
{
	uint32_t v;

	return const_of(e, type, &v) && (v & want) != 0;
}

/*
 * The bits a bitwise (reg & mask) ^ xor is about.  A narrow mask picks
 * the bits it tests (`mark and B == B': mask B); a wide one keeps all but
 * the bits it clears or sets (`mark or B': mask ~B, xor B), so for it the
 * bits are those it does not keep.
 */
static bool
bitwise_has(const struct nftnl_expr *e, uint32_t want)
{
	uint32_t mask, xor = 0;

	if (!const_of(e, NFTNL_EXPR_BITWISE_MASK, &mask))
		return false;
	(void)const_of(e, NFTNL_EXPR_BITWISE_XOR, &xor);
	if (__builtin_popcount(mask) > 16)
		mask = ~mask;
	return ((mask | xor) & want) != 0;
}

/* Whether rule nr reads or writes a mark and has a constant with bit. */
static bool
uses_bit(struct nftnl_rule *nr, uint32_t bit)
{
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;
	bool mark = false, value = false;
	const char *name;

	if ((it = nftnl_expr_iter_create(nr)) == NULL)
		return false;
	while ((e = nftnl_expr_iter_next(it)) != NULL) {
		if ((name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME)) == NULL)
			continue;
		if (str_is(name, "meta"))
			mark |= nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_MARK;
		else if (str_is(name, "ct"))
			mark |= nftnl_expr_get_u32(e, NFTNL_EXPR_CT_KEY) == NFT_CT_MARK;
		else if (str_is(name, "cmp"))
			value |= const_has(e, NFTNL_EXPR_CMP_DATA, bit);
		else if (str_is(name, "range"))
			value |= const_has(e, NFTNL_EXPR_RANGE_FROM_DATA, bit) ||
			    const_has(e, NFTNL_EXPR_RANGE_TO_DATA, bit);
		else if (str_is(name, "bitwise"))
			value |= bitwise_has(e, bit);
		else if (str_is(name, "immediate"))
			value |= const_has(e, NFTNL_EXPR_IMM_DATA, bit);
	}
	nftnl_expr_iter_destroy(it);
	return mark && value;
}

static int
rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct walk *w = data;
	struct divert_mark_user u;
	struct nftnl_rule *nr;

	if (w->stop != 0)
		return MNL_CB_OK;	/* the rest of the dump, unread */
	if ((nr = nftnl_rule_alloc()) == NULL) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_rule_nlmsg_parse(nlh, nr) == 0 &&
	    !(nftnl_rule_get_u32(nr, NFTNL_RULE_FAMILY) == NFPROTO_INET &&
	    rule_table_ours(nftnl_rule_get_str(nr, NFTNL_RULE_TABLE))) &&
	    uses_bit(nr, w->bit)) {
		u.family = (int)nftnl_rule_get_u32(nr, NFTNL_RULE_FAMILY);
		u.table = nftnl_rule_get_str(nr, NFTNL_RULE_TABLE);
		u.chain = nftnl_rule_get_str(nr, NFTNL_RULE_CHAIN);
		u.handle = nftnl_rule_get_u64(nr, NFTNL_RULE_HANDLE);
		w->stop = w->cb(&u, w->arg);
	}
	nftnl_rule_free(nr);
	return MNL_CB_OK;
}

int
divert_mark_users(uint32_t bit, divert_mark_cb cb, void *arg, char *errbuf)
{
	struct walk w = { .bit = bit, .cb = cb, .arg = arg };
	char req[REQ_SIZE], why[128] = "";
	struct nl nl;
	void *buf;
	int ret;

	if ((buf = malloc(READ_SIZE)) == NULL)
		return rule_seterr(errbuf, ENOMEM, "cannot read the ruleset: %s",
		    strerror(ENOMEM));
	if ((ret = nl_open(&nl, NETLINK_NETFILTER)) == 0) {
		ret = nl_talk(&nl, nftnl_nlmsg_build_hdr(req, NFT_MSG_GETRULE,
		    NFPROTO_UNSPEC, NLM_F_DUMP, 0), rule_cb, &w, buf, READ_SIZE,
		    why, sizeof(why));
		nl_close(&nl);
	}
	free(buf);
	if (ret < 0)
		return rule_seterr(errbuf, -ret, "cannot read the ruleset: %s",
		    why[0] != '\0' ? why : strerror(-ret));
	return w.stop;
}
