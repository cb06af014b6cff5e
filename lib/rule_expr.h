/*
 * rule_expr.h - a divert rule as nftables objects (libnftnl) and back
 * (internal): the base chain it lives in, and its expressions.  Pure code:
 * building and reading objects, no socket.
 */
#ifndef DIVERT_RULE_EXPR_H
#define DIVERT_RULE_EXPR_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <linux/netfilter/nf_tables.h>

#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "divert.h"

/* How the rule hands packets to its port. */
enum rule_verdict {
	RULE_QUEUE_NATIVE,	/* the nft queue expression */
	RULE_QUEUE_COMPAT,	/* the xtables NFQUEUE target (v3), via nft_compat */
};

/*
 * The loop tag chain: in table inet divert, hook output, before everything
 * (NF_IP_PRI_FIRST); a packet sent by a socket carrying a rule's mark gets
 * that mark too (rule_expr.c).  No divert rule may share its priority at
 * output: the kernel runs chains of one priority newest first.
 */
#define RULE_TAG_CHAIN		"loop_tag"
#define RULE_TAG_PRIORITY	INT32_MIN

/*
 * The base chain called name in table inet divert that r's rules go in:
 * r's hook and priority, type filter, policy accept (r passes
 * divert_rule_check).  NULL with errno (ENOMEM).
 */
struct nftnl_chain *rule_expr_chain(const struct divert_rule *r, const char *name);

/*
 * Which divert chain c is: a filter base chain at a hook we know
 * (DIVERT_CHAIN_*, with its priority in *priority), else DIVERT_CHAIN_NONE.
 */
int rule_expr_read_chain(const struct nftnl_chain *c, int *priority);

/*
 * r as an nftables rule in table inet divert, chain chain: its matches,
 * counter and queue verdict, and its tag as the rule's comment (when
 * r->tag is set).  r must pass divert_rule_check.  NULL with errno
 * (ENOMEM).  Several -s (-d) prefixes are matched by an anonymous set
 * that rule_expr_set makes and that goes before the rule in its batch.
 */
struct nftnl_rule *rule_expr_build(const struct divert_rule *r, const char *chain,
    enum rule_verdict kind);

/* The id of the set of -s (dst false) or -d in the batch that adds the rule. */
#define RULE_SET_ID(dst)	((dst) ? 2u : 1u)

/*
 * The anonymous set (flags anonymous, constant, interval) the rule's -s
 * (dst false) or -d prefixes need, with its elements: the ranges they
 * cover; *set NULL when the side has no set (no prefix, or one).  0, or
 * -1 with errno ENOMEM.
 */
int rule_expr_set(const struct divert_rule *r, bool dst, struct nftnl_set **set);

/* The sets a rule read back matches -s and -d with (name[0], name[1]; "": none). */
struct rule_sets {
	char	name[2][NFT_SET_MAXNAMELEN];
	int	family;		/* of their addresses */
};

/*
 * The divert rule nr is, in a chain that rule_expr_read_chain found to be
 * chain at priority: r gets nr's handle and tag always, and the rest (its
 * counter too) only when nr has exactly the shape rule_expr_build makes and
 * divert_rule_check accepts the result: 0.  Otherwise r->chain is
 * DIVERT_CHAIN_NONE: -1.  A cgroup is looked up by its id for its path.
 * When sets names a set, r's prefixes for it are still to come: from
 * rule_expr_read_sets.  r owns what it holds (divert_rule_clear).
 */
int rule_expr_read(struct nftnl_rule *nr, int chain, int priority,
    struct divert_rule *r, struct rule_sets *sets);

/*
 * The rest of a rule that rule_expr_read read: the sets (with their
 * elements) that sets names for -s and -d (NULL: not found) as its
 * prefixes.  0; -1 when they are not sets the rule could have been added
 * with: r is then not a divert rule (chain DIVERT_CHAIN_NONE, its handle
 * and tag kept).
 */
int rule_expr_read_sets(struct divert_rule *r, const struct rule_sets *sets,
    struct nftnl_set *src, struct nftnl_set *dst);

/* The loop tag chain (RULE_TAG_CHAIN); NULL with errno (ENOMEM). */
struct nftnl_chain *rule_expr_tag_chain(void);

/*
 * The loop tag chain's rule for mark: "socket mark & mark == mark meta mark
 * set meta mark | mark".  NULL with errno (ENOMEM).
 */
struct nftnl_rule *rule_expr_tag_build(uint32_t mark);

/* The mark of a rule of exactly rule_expr_tag_build's shape: 0; else -1. */
int rule_expr_tag_read(struct nftnl_rule *nr, uint32_t *mark);

/* s is want (and not NULL). */
static inline bool
str_is(const char *s, const char *want)
{
	return s != NULL && strcmp(s, want) == 0;
}

#endif
