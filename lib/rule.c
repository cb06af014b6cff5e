/*
 * rule.c - divert rules in the kernel: add, delete, list and flush the
 * rules of table inet divert, making the table and its base chains as
 * rules need them and removing them when they empty.  Every change is one
 * nf_tables batch, made against the generation of the ruleset it was
 * decided on (and tried again when that moved), over lib/nl.c.
 *
 * The table also holds the loop tag chain (rule_expr.h), with one rule
 * for each mark its divert rules use: added with the first rule of a
 * mark, deleted with the last, never listed, never a reason to keep the
 * table (it goes with the last divert rule).
 *
 * Rules a process adds for its own lifetime (divert_rules_open) go to a
 * table of their own, "divert-<port id>", made with NFT_TABLE_F_OWNER: it
 * belongs to one netlink socket, only that socket may change it, and the
 * kernel deletes it when the socket closes, however the process ends.
 * Its batches go through that socket; reads go through a fresh one each
 * time, as for the shared table (a dump cut short means a new socket).
 * Listing takes in the shared table and every owned one.
 *
 * A rule with several -s or -d prefixes matches them with an anonymous
 * set, sent in the rule's batch before it and gone with it; list reads
 * the set's elements back into the rule's prefixes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "nl.h"
#include "rule_expr.h"
#include "rule_text.h"

#define BATCH_LIMIT	8192	/* our batches are a few hundred bytes, but for sets */
#define ELEM_ROOM	64	/* what one set element takes in a message, at most */
#define MSG_ROOM	(128 * 1024)	/* past a batch's limit: one message (< 64 KiB) */
#define REQ_SIZE	512	/* a get or dump request */
#define READ_SIZE	32768	/* what a dump answers at once */
#define RETRIES		10	/* rereads when the ruleset changes under us */

/* One conversation with nf_tables, and room for what it sends and reads. */
struct conn {
	struct nl	nl;
	struct nl	*owner;		/* an owned table's socket: its batches; NULL: nl */
	char		table[NFT_TABLE_MAXNAMELEN];	/* the table changes go to */
	char		why[128];		/* the kernel's words for a refusal */
	char		answers[READ_SIZE];
	/* A message may run past the limit before mnl_nlmsg_batch_next()
	 * notices, hence twice the room. */
	char		batch[2 * BATCH_LIMIT];
	char		*big;			/* a batch with sets: malloc'd */
};

/* --- the conversation ------------------------------------------------- */

static int
conn_open(struct conn **cp)
{
	struct conn *c;
	int ret;

	if ((c = malloc(sizeof(*c))) == NULL)
		return -ENOMEM;
	c->why[0] = '\0';
	c->big = NULL;
	c->owner = NULL;
	snprintf(c->table, sizeof(c->table), "%s", DIVERT_TABLE);
	if ((ret = nl_open(&c->nl, NETLINK_NETFILTER)) < 0) {
		free(c);
		return ret;
	}
	*cp = c;
	return 0;
}

static void
conn_close(struct conn *c)
{
	nl_close(&c->nl);
	free(c->big);
	free(c);
}

/* A dump (or get) and its answers, each to cb. */
static int
query(struct conn *c, struct nlmsghdr *req, mnl_cb_t cb, void *arg)
{
	return nl_talk(&c->nl, req, cb, arg, c->answers, sizeof(c->answers),
	    c->why, sizeof(c->why));
}

/* -1 with errno = -ret, and words in errbuf: what failed, and why. */
static int
failed(const struct conn *c, int ret, const char *what, char *errbuf)
{
	const char *why = c != NULL && c->why[0] != '\0' ? c->why : strerror(-ret);

	return rule_seterr(errbuf, -ret, "%s: %s", what, why);
}

/* The end of an operation: close c, then 0, or -1 with errno = -ret. */
static int
finish(struct conn *c, int ret)
{
	conn_close(c);
	if (ret >= 0)
		return 0;
	errno = -ret;
	return -1;
}

/* --- batches ---------------------------------------------------------- */

/* The socket c's batches go through: an owned table's changes need its owner. */
static struct nl *
batch_nl(struct conn *c)
{
	return c->owner != NULL ? c->owner : &c->nl;
}

/*
 * A batch of up to limit bytes, in c->batch (or in c->big when larger);
 * the kernel refuses it (ERESTART) if the ruleset changed since
 * generation *genid (NULL: whatever it is).
 */
static struct mnl_nlmsg_batch *
batch_start_room(struct conn *c, const uint32_t *genid, size_t limit)
{
	struct mnl_nlmsg_batch *b;
	struct nlmsghdr *nlh;
	char *buf = c->batch;
	int size, fd = mnl_socket_get_fd(batch_nl(c)->sock);

	if (limit > BATCH_LIMIT) {
		free(c->big);
		if ((c->big = malloc(limit + MSG_ROOM)) == NULL)
			return NULL;
		buf = c->big;
		/* The kernel refuses a message larger than the socket's send
		 * buffer (EMSGSIZE): make room, as nft does. */
		size = limit + MSG_ROOM > INT32_MAX / 2 ? INT32_MAX / 2 :
		    (int)(limit + MSG_ROOM);
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
	if ((b = mnl_nlmsg_batch_start(buf, limit)) == NULL)
		return NULL;
	nlh = nftnl_batch_begin(mnl_nlmsg_batch_current(b), nl_next_seq(batch_nl(c)));
	if (genid != NULL)
		mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(*genid));
	mnl_nlmsg_batch_next(b);
	return b;
}

static struct mnl_nlmsg_batch *
batch_start(struct conn *c, const uint32_t *genid)
{
	return batch_start_room(c, genid, BATCH_LIMIT);
}

static struct nlmsghdr *
batch_msg(struct conn *c, struct mnl_nlmsg_batch *b, uint16_t type,
    uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), type,
	    NFPROTO_INET, flags | NLM_F_ACK, nl_next_seq(batch_nl(c)));
}

static int
put_table(struct conn *c, struct mnl_nlmsg_batch *b, uint16_t type,
    uint16_t flags)
{
	struct nftnl_table *t;

	if ((t = nftnl_table_alloc()) == NULL ||
	    nftnl_table_set_str(t, NFTNL_TABLE_NAME, c->table) < 0) {
		if (t != NULL)	/* libnftnl's free takes no NULL */
			nftnl_table_free(t);
		return -ENOMEM;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	if (c->owner != NULL && type == NFT_MSG_NEWTABLE)
		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, NFT_TABLE_F_OWNER);
	nftnl_table_nlmsg_build_payload(batch_msg(c, b, type, flags), t);
	nftnl_table_free(t);
	mnl_nlmsg_batch_next(b);
	return 0;
}

/* One chain per hook and priority: "output" at the hook's default
 * priority, "prerouting_-450" at another. */
static void
chain_name(const struct divert_rule *r, char *buf, size_t len)
{
	if (r->priority == rule_default_priority(r->chain))
		snprintf(buf, len, "%s", rule_chain_name(r->chain));
	else
		snprintf(buf, len, "%s_%d", rule_chain_name(r->chain), r->priority);
}

/* Create chain ch (built by rule_expr: NULL is out of memory) unless it is there; frees it. */
static int
put_chain(struct conn *c, struct mnl_nlmsg_batch *b, struct nftnl_chain *ch)
{
	if (ch == NULL || nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, c->table) < 0) {
		if (ch != NULL)
			nftnl_chain_free(ch);
		return -ENOMEM;
	}
	nftnl_chain_nlmsg_build_payload(batch_msg(c, b, NFT_MSG_NEWCHAIN,
	    NLM_F_CREATE), ch);
	nftnl_chain_free(ch);
	mnl_nlmsg_batch_next(b);
	return 0;
}

static int
put_new_chain(struct conn *c, struct mnl_nlmsg_batch *b,
    const struct divert_rule *r, const char *name)
{
	return put_chain(c, b, rule_expr_chain(r, name));
}

static int
put_del_chain(struct conn *c, struct mnl_nlmsg_batch *b, const char *name)
{
	struct nftnl_chain *ch;

	if ((ch = nftnl_chain_alloc()) == NULL ||
	    nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, c->table) < 0 ||
	    nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, name) < 0) {
		if (ch != NULL)	/* libnftnl's free takes no NULL */
			nftnl_chain_free(ch);
		return -ENOMEM;
	}
	nftnl_chain_nlmsg_build_payload(batch_msg(c, b, NFT_MSG_DELCHAIN, 0), ch);
	nftnl_chain_free(ch);
	mnl_nlmsg_batch_next(b);
	return 0;
}

static int
put_new_rule(struct conn *c, struct mnl_nlmsg_batch *b,
    const struct divert_rule *r, const char *chain, enum rule_verdict kind)
{
	struct nftnl_rule *nr;

	if ((nr = rule_expr_build(r, chain, kind)) == NULL)
		return -ENOMEM;
	if (nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, c->table) < 0) {
		nftnl_rule_free(nr);
		return -ENOMEM;
	}
	/* NLM_F_ECHO: the kernel sends the rule back, with its handle. */
	nftnl_rule_nlmsg_build_payload(batch_msg(c, b, NFT_MSG_NEWRULE,
	    NLM_F_CREATE | NLM_F_APPEND | NLM_F_ECHO), nr);
	nftnl_rule_free(nr);
	mnl_nlmsg_batch_next(b);
	return 0;
}

/*
 * The set (NULL: none), in c's table, and its elements, in as many
 * messages as they take (an attribute holds at most 64 KiB); frees it.
 */
static int
put_set(struct conn *c, struct mnl_nlmsg_batch *b, struct nftnl_set *s)
{
	struct nftnl_set_elems_iter *it;
	int more, ret = 0;

	if (s == NULL)
		return 0;
	if (nftnl_set_set_str(s, NFTNL_SET_TABLE, c->table) < 0) {
		nftnl_set_free(s);
		return -ENOMEM;
	}
	nftnl_set_nlmsg_build_payload(batch_msg(c, b, NFT_MSG_NEWSET,
	    NLM_F_CREATE), s);
	if (!mnl_nlmsg_batch_next(b) || (it = nftnl_set_elems_iter_create(s)) == NULL) {
		nftnl_set_free(s);
		return -EMSGSIZE;
	}
	do {
		more = nftnl_set_elems_nlmsg_build_payload_iter(batch_msg(c, b,
		    NFT_MSG_NEWSETELEM, NLM_F_CREATE), it);
		if (!mnl_nlmsg_batch_next(b))
			ret = -EMSGSIZE;
	} while (more > 0 && ret == 0);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return ret;
}

/* r's sets for -s and -d, those it needs. */
static int
put_sets(struct conn *c, struct mnl_nlmsg_batch *b, const struct divert_rule *r)
{
	struct nftnl_set *src, *dst;
	int ret;

	if (rule_expr_set(r, false, &src) < 0)
		return -ENOMEM;
	if (rule_expr_set(r, true, &dst) < 0) {
		if (src != NULL)
			nftnl_set_free(src);
		return -ENOMEM;
	}
	ret = put_set(c, b, src);
	if (ret == 0)
		return put_set(c, b, dst);
	if (dst != NULL)
		nftnl_set_free(dst);
	return ret;
}

/* The room r's batch needs: more than BATCH_LIMIT for its sets' elements. */
static size_t
batch_room(const struct divert_rule *r)
{
	/* A prefix is at most a range: a start and an end element. */
	return BATCH_LIMIT + (2 * (r->nsrc + r->ndst) + 2) * ELEM_ROOM;
}

/* The loop tag chain, and its rule for mark. */
static int
put_tag_chain(struct conn *c, struct mnl_nlmsg_batch *b)
{
	return put_chain(c, b, rule_expr_tag_chain());
}

static int
put_tag_rule(struct conn *c, struct mnl_nlmsg_batch *b, uint32_t mark)
{
	struct nftnl_rule *nr;

	if ((nr = rule_expr_tag_build(mark)) == NULL)
		return -ENOMEM;
	if (nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, c->table) < 0) {
		nftnl_rule_free(nr);
		return -ENOMEM;
	}
	nftnl_rule_nlmsg_build_payload(batch_msg(c, b, NFT_MSG_NEWRULE,
	    NLM_F_CREATE | NLM_F_APPEND), nr);
	nftnl_rule_free(nr);
	mnl_nlmsg_batch_next(b);
	return 0;
}

static int
put_del_rule(struct conn *c, struct mnl_nlmsg_batch *b, const char *chain,
    uint64_t handle)
{
	struct nftnl_rule *nr;

	/* Always with the chain: a DELRULE without one empties the table. */
	if ((nr = nftnl_rule_alloc()) == NULL ||
	    nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, c->table) < 0 ||
	    nftnl_rule_set_str(nr, NFTNL_RULE_CHAIN, chain) < 0) {
		if (nr != NULL)	/* libnftnl's free takes no NULL */
			nftnl_rule_free(nr);
		return -ENOMEM;
	}
	nftnl_rule_set_u64(nr, NFTNL_RULE_HANDLE, handle);
	nftnl_rule_nlmsg_build_payload(batch_msg(c, b, NFT_MSG_DELRULE, 0), nr);
	nftnl_rule_free(nr);
	mnl_nlmsg_batch_next(b);
	return 0;
}

/* The handle of the rule the kernel echoes back. */
static int
echo_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *nr;

	if (nlh->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE))
		return MNL_CB_OK;
	if ((nr = nftnl_rule_alloc()) == NULL) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_rule_nlmsg_parse(nlh, nr) == 0)
		*(uint64_t *)data = nftnl_rule_get_u64(nr, NFTNL_RULE_HANDLE);
	nftnl_rule_free(nr);
	return MNL_CB_OK;
}

/* Close the batch and send it: 0 or the first error; *handle (unless NULL)
 * gets the handle of the rule it added. */
static int
batch_send(struct conn *c, struct mnl_nlmsg_batch *b, uint64_t *handle)
{
	nftnl_batch_end(mnl_nlmsg_batch_current(b), nl_next_seq(batch_nl(c)));
	if (!mnl_nlmsg_batch_next(b))
		return -EMSGSIZE;
	return nl_talk_batch(batch_nl(c), mnl_nlmsg_batch_head(b),
	    mnl_nlmsg_batch_size(b), handle != NULL ? echo_cb : NULL, handle,
	    c->answers, sizeof(c->answers), c->why, sizeof(c->why));
}

/* What the table lacks for r's copies: the tag chain, its rule for r's mark. */
struct tag_need {
	bool	chain, rule;
};

/*
 * Table, tag chain and rule (as need says), chain and rule in one batch,
 * so nothing is left half made; the kernel refuses it (ERESTART) if the
 * ruleset is no longer generation genid, the one in which no copy of the
 * rule was found.
 */
static int
send_add(struct conn *c, struct divert_rule *r, const char *chain,
    enum rule_verdict kind, struct tag_need need, uint32_t genid)
{
	struct mnl_nlmsg_batch *b;
	int ret;

	if ((b = batch_start_room(c, &genid, batch_room(r))) == NULL)
		return -ENOMEM;
	if ((ret = put_table(c, b, NFT_MSG_NEWTABLE, NLM_F_CREATE)) == 0 &&
	    (!need.chain || (ret = put_tag_chain(c, b)) == 0) &&
	    (!need.rule || (ret = put_tag_rule(c, b, r->mark)) == 0) &&
	    (ret = put_new_chain(c, b, r, chain)) == 0 &&
	    (ret = put_sets(c, b, r)) == 0 &&
	    (ret = put_new_rule(c, b, r, chain, kind)) == 0)
		ret = batch_send(c, b, &r->handle);
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

/* A table a read takes in: the shared one, or one a process owns. */
struct table_info {
	char		name[NFT_TABLE_MAXNAMELEN];
	uint32_t	owner;		/* the owning socket's port id; 0: shared */
};

struct chain_info {
	char	name[NFT_CHAIN_MAXNAMELEN];
	size_t	table;		/* in ruleset.tables */
	int	chain;		/* enum divert_chain; NONE: not ours (or the tag chain) */
	int	priority;
	bool	tag;		/* the loop tag chain */
	size_t	nrules;
};

struct rule_info {
	struct divert_rule	 rule;	/* chain NONE: not decodable */
	struct rule_sets	 sets;	/* the sets its -s and -d read (rule_expr_read) */
	struct chain_info	*chain;	/* NULL: chain unknown */
	bool			 tag;	/* in the loop tag chain: not a divert rule */
	uint32_t		 tag_mark;	/* a tag rule's mark; 0: not of our shape */
};

/*
 * The tables a read took in, their chains and rules.  Counts and the tag
 * chain are those of home, the table changes go to (c->table).
 */
struct ruleset {
	const char		*home_name;
	bool			 all;		/* every divert table, not home alone */
	struct table_info	*tables;
	size_t			 ntables;
	struct chain_info	*chains;
	size_t			 nchains;
	struct rule_info	*rules;
	size_t			 nrules;	/* tag rules too */
	size_t			 ndivert;	/* home's rules that are not tag rules */
	bool			 has_tag_chain;	/* home has one */
	uint32_t		 genid;
};

static void
ruleset_free(struct ruleset *rs)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++)
		divert_rule_clear(&rs->rules[i].rule);
	free(rs->tables);
	free(rs->chains);
	free(rs->rules);
	memset(rs, 0, sizeof(*rs));
}

/* For a callback that runs out of memory: libmnl passes errno on. */
static int
cb_nomem(void)
{
	errno = ENOMEM;
	return MNL_CB_ERROR;
}

static int
genid_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *gen;

	if ((gen = nftnl_gen_alloc()) == NULL)
		return cb_nomem();
	if (nftnl_gen_nlmsg_parse(nlh, gen) == 0)
		*(uint32_t *)data = nftnl_gen_get_u32(gen, NFTNL_GEN_ID);
	nftnl_gen_free(gen);
	return MNL_CB_OK;
}

static int
get_genid(struct conn *c, uint32_t *genid)
{
	char buf[REQ_SIZE];

	return query(c, nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, 0,
	    0), genid_cb, genid);
}

/* Whether a read of rs takes in table t: home, or any divert table. */
static bool
in_scope(const struct ruleset *rs, struct nftnl_table *t)
{
	const char *name = nftnl_table_get_str(t, NFTNL_TABLE_NAME);
	uint32_t flags = nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS);

	if (name == NULL || nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY) != NFPROTO_INET)
		return false;
	if (str_is(name, rs->home_name))
		return true;
	/* An owned table's name without the flag is someone else's. */
	return rs->all && rule_table_ours(name) &&
	    (str_is(name, DIVERT_TABLE) || (flags & NFT_TABLE_F_OWNER));
}

static int
table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ruleset *rs = data;
	struct table_info *ti, *more;
	struct nftnl_table *t;

	if ((t = nftnl_table_alloc()) == NULL)
		return cb_nomem();
	if (nftnl_table_nlmsg_parse(nlh, t) < 0 || !in_scope(rs, t)) {
		nftnl_table_free(t);
		return MNL_CB_OK;
	}
	if ((more = reallocarray(rs->tables, rs->ntables + 1,
	    sizeof(*rs->tables))) == NULL) {
		nftnl_table_free(t);
		return cb_nomem();
	}
	rs->tables = more;
	ti = &rs->tables[rs->ntables++];
	snprintf(ti->name, sizeof(ti->name), "%s",
	    nftnl_table_get_str(t, NFTNL_TABLE_NAME));
	ti->owner = (nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS) & NFT_TABLE_F_OWNER) &&
	    nftnl_table_is_set(t, NFTNL_TABLE_OWNER) ?
	    nftnl_table_get_u32(t, NFTNL_TABLE_OWNER) : 0;
	nftnl_table_free(t);
	return MNL_CB_OK;
}

/* The index of the table called name in rs->tables; rs->ntables: none. */
static size_t
find_table(const struct ruleset *rs, const char *name)
{
	size_t i;

	for (i = 0; i < rs->ntables; i++)
		if (str_is(name, rs->tables[i].name))
			break;
	return i;
}

/* Whether chain ci is in the table changes go to. */
static bool
at_home(const struct ruleset *rs, const struct chain_info *ci)
{
	return ci != NULL && str_is(rs->tables[ci->table].name, rs->home_name);
}

static int
chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ruleset *rs = data;
	struct nftnl_chain *c;
	struct chain_info *ci, *more;
	size_t table;

	if ((c = nftnl_chain_alloc()) == NULL)
		return cb_nomem();
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0 ||
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY) != NFPROTO_INET ||
	    (table = find_table(rs, nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE))) ==
	    rs->ntables) {
		nftnl_chain_free(c);
		return MNL_CB_OK;
	}
	if ((more = reallocarray(rs->chains, rs->nchains + 1,
	    sizeof(*rs->chains))) == NULL) {
		nftnl_chain_free(c);
		return cb_nomem();
	}
	rs->chains = more;
	ci = &rs->chains[rs->nchains++];
	memset(ci, 0, sizeof(*ci));
	snprintf(ci->name, sizeof(ci->name), "%s",
	    nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	ci->table = table;
	ci->chain = rule_expr_read_chain(c, &ci->priority);
	if (str_is(ci->name, RULE_TAG_CHAIN)) {
		ci->tag = true;
		ci->chain = DIVERT_CHAIN_NONE;	/* no divert rule goes there */
		if (at_home(rs, ci))
			rs->has_tag_chain = true;
	}
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

/* Chain name of the table at index table, or NULL. */
static struct chain_info *
find_chain(struct ruleset *rs, size_t table, const char *name)
{
	size_t i;

	for (i = 0; i < rs->nchains; i++)
		if (rs->chains[i].table == table && str_is(name, rs->chains[i].name))
			return &rs->chains[i];
	return NULL;
}

static int
rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ruleset *rs = data;
	struct rule_info *ri, *more;
	struct nftnl_rule *nr;
	struct chain_info *ci;
	size_t table;

	if ((nr = nftnl_rule_alloc()) == NULL)
		return cb_nomem();
	if (nftnl_rule_nlmsg_parse(nlh, nr) < 0 ||
	    nftnl_rule_get_u32(nr, NFTNL_RULE_FAMILY) != NFPROTO_INET ||
	    (table = find_table(rs, nftnl_rule_get_str(nr, NFTNL_RULE_TABLE))) ==
	    rs->ntables) {
		nftnl_rule_free(nr);
		return MNL_CB_OK;
	}
	if ((more = reallocarray(rs->rules, rs->nrules + 1,
	    sizeof(*rs->rules))) == NULL) {
		nftnl_rule_free(nr);
		return cb_nomem();
	}
	rs->rules = more;
	ri = &rs->rules[rs->nrules++];
	ri->chain = ci = find_chain(rs, table, nftnl_rule_get_str(nr, NFTNL_RULE_CHAIN));
	ri->tag = ci != NULL && ci->tag;
	ri->tag_mark = 0;
	if (ci != NULL)
		ci->nrules++;
	rule_expr_read(nr, ci != NULL ? ci->chain : DIVERT_CHAIN_NONE,
	    ci != NULL ? ci->priority : 0, &ri->rule, &ri->sets);
	ri->rule.owner = rs->tables[table].owner;
	if (ri->tag && rule_expr_tag_read(nr, &ri->tag_mark) < 0)
		ri->tag_mark = 0;
	if (!ri->tag && str_is(rs->tables[table].name, rs->home_name))
		rs->ndivert++;
	nftnl_rule_free(nr);
	return MNL_CB_OK;
}

static int
dump_tables(struct conn *c, struct ruleset *rs)
{
	char buf[REQ_SIZE];

	return query(c, nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE,
	    NFPROTO_INET, NLM_F_DUMP, 0), table_cb, rs);
}

static int
dump_chains(struct conn *c, struct ruleset *rs)
{
	char buf[REQ_SIZE];

	return query(c, nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN,
	    NFPROTO_INET, NLM_F_DUMP, 0), chain_cb, rs);
}

/* The rules of one table. */
static int
dump_rules(struct conn *c, struct ruleset *rs, const char *table)
{
	char buf[REQ_SIZE];
	struct nftnl_rule *nr;
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET,
	    NLM_F_DUMP, 0);
	if ((nr = nftnl_rule_alloc()) == NULL ||
	    nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, table) < 0) {
		if (nr != NULL)	/* libnftnl's free takes no NULL */
			nftnl_rule_free(nr);
		return -ENOMEM;
	}
	nftnl_rule_nlmsg_build_payload(nlh, nr);
	nftnl_rule_free(nr);
	return query(c, nlh, rule_cb, rs);
}

/* The shared table first, so that lists show its rules first. */
static void
shared_first(struct ruleset *rs)
{
	struct table_info t;
	size_t i = find_table(rs, DIVERT_TABLE);

	if (i == 0 || i == rs->ntables)
		return;
	t = rs->tables[i];
	memmove(&rs->tables[1], &rs->tables[0], i * sizeof(*rs->tables));
	rs->tables[0] = t;
}

static int
set_cb(const struct nlmsghdr *nlh, void *data)
{
	nftnl_set_nlmsg_parse(nlh, data);
	return MNL_CB_OK;
}

static int
elems_cb(const struct nlmsghdr *nlh, void *data)
{
	nftnl_set_elems_nlmsg_parse(nlh, data);
	return MNL_CB_OK;
}

/* Set name of table, with its elements: *s (NULL: not there). */
static int
get_set(struct conn *c, const char *table, const char *name, struct nftnl_set **s)
{
	char buf[REQ_SIZE];
	struct nftnl_set *want;
	struct nlmsghdr *nlh;
	int ret;

	*s = NULL;
	if ((want = nftnl_set_alloc()) == NULL ||
	    nftnl_set_set_str(want, NFTNL_SET_TABLE, table) < 0 ||
	    nftnl_set_set_str(want, NFTNL_SET_NAME, name) < 0) {
		if (want != NULL)	/* libnftnl's free takes no NULL */
			nftnl_set_free(want);
		return -ENOMEM;
	}
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_INET, 0, 0);
	nftnl_set_nlmsg_build_payload(nlh, want);
	if ((ret = query(c, nlh, set_cb, want)) == 0) {
		nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET,
		    NLM_F_DUMP, 0);
		nftnl_set_elems_nlmsg_build_payload(nlh, want);
		ret = query(c, nlh, elems_cb, want);
	}
	if (ret == 0) {
		*s = want;
		return 0;
	}
	nftnl_set_free(want);
	return ret == -ENOENT ? 0 : ret;	/* gone: the rule is not ours */
}

/* The prefixes of the rules whose -s or -d are sets (rule_expr_read_sets). */
static int
read_sets(struct conn *c, struct ruleset *rs)
{
	struct nftnl_set *set[2];
	struct rule_info *ri;
	const char *table;
	size_t i;
	int k, ret = 0;

	for (i = 0; ret == 0 && i < rs->nrules; i++) {
		ri = &rs->rules[i];
		if (ri->chain == NULL || (ri->sets.name[0][0] == '\0' &&
		    ri->sets.name[1][0] == '\0'))
			continue;
		table = rs->tables[ri->chain->table].name;
		set[0] = set[1] = NULL;
		for (k = 0; ret == 0 && k < 2; k++)
			if (ri->sets.name[k][0] != '\0')
				ret = get_set(c, table, ri->sets.name[k], &set[k]);
		if (ret == 0)
			rule_expr_read_sets(&ri->rule, &ri->sets, set[0], set[1]);
		for (k = 0; k < 2; k++)
			if (set[k] != NULL)
				nftnl_set_free(set[k]);
	}
	return ret;
}

/* Tables, chains, then every table's rules (and their sets). */
static int
dump_all(struct conn *c, struct ruleset *rs)
{
	size_t i;
	int ret;

	if ((ret = dump_tables(c, rs)) < 0)
		return ret;
	shared_first(rs);
	if ((ret = dump_chains(c, rs)) < 0)
		return ret;
	for (i = 0; i < rs->ntables; i++)
		if ((ret = dump_rules(c, rs, rs->tables[i].name)) < 0)
			return ret;
	return read_sets(c, rs);
}

/*
 * Home (c->table), or with all every divert table, as one consistent
 * picture: if the generation moved between the dumps (someone added or
 * deleted meanwhile), read again.
 */
static int
read_ruleset(struct conn *c, struct ruleset *rs, bool all)
{
	uint32_t after;
	int ret, tries;

	for (tries = 0; tries < RETRIES; tries++) {
		memset(rs, 0, sizeof(*rs));
		rs->home_name = c->table;
		rs->all = all;
		if ((ret = get_genid(c, &rs->genid)) < 0 ||
		    (ret = dump_all(c, rs)) < 0 ||
		    (ret = get_genid(c, &after)) < 0) {
			ruleset_free(rs);
			if (ret != -EINTR)
				return ret;
			/* A dump cut short by a change leaves its tail
			 * queued: go on with a fresh socket (never an owned
			 * table's: reads do not go through it). */
			nl_close(&c->nl);
			if ((ret = nl_open(&c->nl, NETLINK_NETFILTER)) < 0)
				return ret;
			continue;
		}
		if (after == rs->genid)
			return 0;
		ruleset_free(rs);
	}
	return -EAGAIN;
}

/* --- the operations --------------------------------------------------- */

int
divert_rule_list(divert_rule_cb cb, void *arg, char *errbuf)
{
	struct ruleset rs;
	struct conn *c;
	size_t i;
	int ret;

	if ((ret = conn_open(&c)) < 0)
		return failed(NULL, ret, "cannot list rules", errbuf);
	if ((ret = read_ruleset(c, &rs, true)) < 0) {
		failed(c, ret, "cannot list rules", errbuf);
		return finish(c, ret);
	}
	conn_close(c);
	for (i = 0; ret == 0 && i < rs.nrules; i++)
		if (!rs.rules[i].tag)	/* the toolkit's own: not a divert rule */
			ret = cb(&rs.rules[i].rule, arg);
	ruleset_free(&rs);
	return ret;
}

/*
 * The rule r names: by handle (and then its spec too, if it has one), or
 * else the first rule whose spec and mark are the same.
 */
static struct rule_info *
find_rule(struct ruleset *rs, const struct divert_rule *r)
{
	struct rule_info *ri;
	size_t i;

	for (i = 0; i < rs->nrules; i++) {
		ri = &rs->rules[i];
		if (ri->tag)		/* never listed: never named */
			continue;
		if (r->handle != 0 && ri->rule.handle != r->handle)
			continue;
		/* Tagged: that very rule, not one that reads the same. */
		if (r->tag != 0 && ri->rule.tag != r->tag)
			continue;
		if (r->chain == DIVERT_CHAIN_NONE)
			return ri->chain != NULL ? ri : NULL;
		/* Another mark: another program's rule. */
		if (ri->rule.chain == DIVERT_CHAIN_NONE || ri->rule.mark != r->mark)
			continue;
		if (rule_same_spec(&ri->rule, r))
			return ri;
	}
	return NULL;
}

/* Whether a divert rule of home other than except uses mark. */
static bool
mark_in_use(const struct ruleset *rs, uint32_t mark, const struct rule_info *except)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++)
		if (&rs->rules[i] != except && !rs->rules[i].tag &&
		    at_home(rs, rs->rules[i].chain) &&
		    rs->rules[i].rule.chain != DIVERT_CHAIN_NONE &&
		    rs->rules[i].rule.mark == mark)
			return true;
	return false;
}

/* Delete the tag rules of the victim's mark, unless another rule uses it. */
static int
put_del_tags(struct conn *c, struct mnl_nlmsg_batch *b, struct ruleset *rs,
    const struct rule_info *victim)
{
	uint32_t mark = victim->rule.mark;
	size_t i;
	int ret = 0;

	if (victim->rule.chain == DIVERT_CHAIN_NONE || mark_in_use(rs, mark, victim))
		return 0;
	for (i = 0; ret == 0 && i < rs->nrules; i++)
		if (rs->rules[i].tag && rs->rules[i].tag_mark == mark &&
		    at_home(rs, rs->rules[i].chain))
			ret = put_del_rule(c, b, RULE_TAG_CHAIN, rs->rules[i].rule.handle);
	return ret;
}

/*
 * Delete the rule, then what it leaves empty: its chain, and its mark's
 * tag rule, or, when it was the last divert rule, the whole table (tag
 * chain and all).  Empty chains left by others go too.
 */
static int
send_del(struct conn *c, struct ruleset *rs, struct rule_info *victim)
{
	struct mnl_nlmsg_batch *b;
	size_t i;
	int ret;

	if ((b = batch_start(c, &rs->genid)) == NULL)
		return -ENOMEM;
	ret = put_del_rule(c, b, victim->chain->name, victim->rule.handle);
	victim->chain->nrules--;
	if (ret == 0 && rs->ndivert == 1)
		ret = put_table(c, b, NFT_MSG_DELTABLE, 0);
	else if (ret == 0)
		ret = put_del_tags(c, b, rs, victim);
	if (ret == 0 && rs->ndivert > 1)
		for (i = 0; ret == 0 && i < rs->nchains; i++)
			/* Base chains only: nothing can jump to them. */
			if (rs->chains[i].nrules == 0 &&
			    rs->chains[i].chain != DIVERT_CHAIN_NONE &&
			    at_home(rs, &rs->chains[i]))
				ret = put_del_chain(c, b, rs->chains[i].name);
	if (ret == 0)
		ret = batch_send(c, b, NULL);
	mnl_nlmsg_batch_stop(b);
	return ret;
}

int
divert_rule_del(const struct divert_rule *r, char *errbuf)
{
	struct rule_info *victim;
	struct ruleset rs;
	struct conn *c;
	int ret, tries;

	if (r->chain == DIVERT_CHAIN_NONE && r->handle == 0)
		return rule_seterr(errbuf, EINVAL, "del: want a rule or a handle");
	if ((ret = conn_open(&c)) < 0)
		return failed(NULL, ret, "cannot delete rule", errbuf);
	/* ERESTART: the ruleset changed between reading and deleting. */
	for (tries = 0, ret = -ERESTART; ret == -ERESTART && tries < RETRIES;
	    tries++) {
		if ((ret = read_ruleset(c, &rs, false)) < 0)
			break;
		victim = find_rule(&rs, r);
		ret = victim != NULL ? send_del(c, &rs, victim) : -ENOENT;
		ruleset_free(&rs);
	}
	if (ret == -ENOENT)
		rule_seterr(errbuf, ENOENT, "no such rule");
	else if (ret < 0)
		failed(c, ret, "cannot delete rule", errbuf);
	return finish(c, ret);
}

/* A rule of the same spec and mark as r (handle and tag aside), or NULL. */
static struct rule_info *
find_same(struct ruleset *rs, const struct divert_rule *r)
{
	struct divert_rule spec = *r;

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
pick_chain(struct ruleset *rs, const struct divert_rule *r, char *buf,
    size_t len)
{
	size_t i;

	for (i = 0; i < rs->nchains; i++)
		if (at_home(rs, &rs->chains[i]) && rs->chains[i].chain == r->chain &&
		    rs->chains[i].priority == r->priority) {
			snprintf(buf, len, "%s", rs->chains[i].name);
			return;
		}
	chain_name(r, buf, len);
	if (find_chain(rs, find_table(rs, rs->home_name), buf) != NULL)
		snprintf(buf, len, "%s_%d", rule_chain_name(r->chain), r->priority);
}

/* What the table lacks for copies sent under mark (see tag_need). */
static struct tag_need
tag_needs(const struct ruleset *rs, uint32_t mark)
{
	struct tag_need need = { .chain = !rs->has_tag_chain, .rule = true };
	size_t i;

	for (i = 0; i < rs->nrules; i++)
		if (rs->rules[i].tag && rs->rules[i].tag_mark == mark &&
		    at_home(rs, rs->rules[i].chain))
			need.rule = false;
	return need;
}

/* One try: refuse a copy of a rule that is there, else add it. */
static int
add_unless_there(struct conn *c, struct divert_rule *r)
{
	char chain[NFT_CHAIN_MAXNAMELEN];
	struct rule_info *same;
	struct ruleset rs;
	struct tag_need need;
	int ret;

	/* Every divert table: a copy in another would take packets twice. */
	if ((ret = read_ruleset(c, &rs, true)) < 0)
		return ret;
	if ((same = find_same(&rs, r)) != NULL) {
		r->handle = same->rule.handle;
		r->owner = same->rule.owner;
		ret = -EEXIST;
	} else {
		pick_chain(&rs, r, chain, sizeof(chain));
		need = tag_needs(&rs, r->mark);
		ret = send_add(c, r, chain, RULE_QUEUE_NATIVE, need, rs.genid);
		/* No nft queue expression in this kernel (CONFIG_NFT_QUEUE
		 * unset): the xtables NFQUEUE target through nft_compat
		 * does the same. */
		if (ret == -ENOENT || ret == -EOPNOTSUPP)
			ret = send_add(c, r, chain, RULE_QUEUE_COMPAT, need, rs.genid);
	}
	ruleset_free(&rs);
	return ret;
}

/* Add r through c (its table): 0 or -1 with errno and words in errbuf. */
static int
add_through(struct conn *c, struct divert_rule *r, char *errbuf)
{
	int ret, tries;

	r->handle = 0;
	r->owner = 0;
	r->tag = new_tag();
	/* ERESTART: the ruleset changed between reading and adding. */
	for (tries = 0, ret = -ERESTART; ret == -ERESTART && tries < RETRIES;
	    tries++)
		ret = add_unless_there(c, r);
	if (ret == 0 && c->owner != NULL)
		r->owner = c->owner->portid;
	if (ret == -EEXIST)
		rule_seterr(errbuf, EEXIST, "that rule exists already (handle %llu%s)",
		    (unsigned long long)r->handle, r->owner != 0 ?
		    ", held by another process for its lifetime" : "");
	else if (ret == -ENOENT)
		rule_seterr(errbuf, ENOENT, "the kernel has neither the nft queue "
		    "expression nor the xt NFQUEUE target (modprobe nft_queue or "
		    "xt_NFQUEUE)");
	else if (ret < 0)
		failed(c, ret, "cannot add rule", errbuf);
	return ret;
}

int
divert_rule_add(struct divert_rule *r, char *errbuf)
{
	struct conn *c;
	int ret;

	if (divert_rule_check(r, errbuf) < 0)
		return -1;
	if ((ret = conn_open(&c)) < 0)
		return failed(NULL, ret, "cannot add rule", errbuf);
	return finish(c, add_through(c, r, errbuf));
}

/* --- rules for a process's lifetime ------------------------------------ */

/* A rule added to the shared table, for divert_rules_close to remove. */
struct added {
	uint64_t	handle, tag;
};

struct divert_rules {
	struct nl	 own;		/* owns the table: closing it removes it */
	char		 table[NFT_TABLE_MAXNAMELEN];
	bool		 owned;		/* false: the kernel has no owned tables */
	struct added	*added;		/* shared table: what close removes */
	size_t		 nadded;
};

/* A conversation whose changes go to o's table (through its owner). */
static int
conn_for(struct divert_rules *o, struct conn **cp)
{
	int ret;

	if ((ret = conn_open(cp)) < 0 || !o->owned)
		return ret;
	(*cp)->owner = &o->own;
	snprintf((*cp)->table, sizeof((*cp)->table), "%s", o->table);
	return 0;
}

/* Make o's table, owned by o->own; 0 or -errno. */
static int
make_owned_table(struct divert_rules *o)
{
	struct mnl_nlmsg_batch *b;
	struct conn *c;
	int ret;

	if ((ret = conn_for(o, &c)) < 0)
		return ret;
	if ((b = batch_start(c, NULL)) == NULL)
		ret = -ENOMEM;
	else {
		if ((ret = put_table(c, b, NFT_MSG_NEWTABLE, NLM_F_CREATE)) == 0)
			ret = batch_send(c, b, NULL);
		mnl_nlmsg_batch_stop(b);
	}
	conn_close(c);
	return ret;
}

struct divert_rules *
divert_rules_open(char *errbuf)
{
	struct divert_rules *o;
	int ret;

	if ((o = calloc(1, sizeof(*o))) == NULL) {
		rule_seterr(errbuf, ENOMEM, "cannot open rules: %s", strerror(ENOMEM));
		return NULL;
	}
	if ((ret = nl_open(&o->own, NETLINK_NETFILTER)) < 0) {
		free(o);
		failed(NULL, ret, "cannot open rules", errbuf);
		return NULL;
	}
	snprintf(o->table, sizeof(o->table), "%s-%u", DIVERT_TABLE, o->own.portid);
	o->owned = true;
	ret = make_owned_table(o);
	/* Before 5.12 the kernel refuses the owner flag: the shared table,
	 * and close removes what was added (nothing does after SIGKILL). */
	if (ret == -EOPNOTSUPP || ret == -EINVAL) {
		o->owned = false;
		nl_close(&o->own);
		ret = 0;
	}
	if (ret < 0) {
		nl_close(&o->own);
		free(o);
		failed(NULL, ret, "cannot open rules", errbuf);
		return NULL;
	}
	return o;
}

int
divert_rules_owned(const struct divert_rules *o)
{
	return o->owned;
}

int
divert_rules_add(struct divert_rules *o, struct divert_rule *r, char *errbuf)
{
	struct added *more;
	struct conn *c;
	int ret;

	if (divert_rule_check(r, errbuf) < 0)
		return -1;
	if (!o->owned) {	/* room to note it for close */
		if ((more = reallocarray(o->added, o->nadded + 1,
		    sizeof(*o->added))) == NULL)
			return rule_seterr(errbuf, ENOMEM, "cannot add rule: %s",
			    strerror(ENOMEM));
		o->added = more;
	}
	if ((ret = conn_for(o, &c)) < 0)
		return failed(NULL, ret, "cannot add rule", errbuf);
	if ((ret = add_through(c, r, errbuf)) == 0 && !o->owned)
		o->added[o->nadded++] = (struct added){ r->handle, r->tag };
	return finish(c, ret);
}

void
divert_rules_close(struct divert_rules *o)
{
	char why[DIVERT_ERRBUF_SIZE];
	struct divert_rule r;

	if (o == NULL)
		return;
	if (o->owned)
		nl_close(&o->own);	/* the kernel deletes the table */
	/* Newest first; a rule someone deleted meanwhile is no error. */
	while (o->nadded > 0) {
		divert_rule_init(&r);
		r.handle = o->added[o->nadded - 1].handle;
		r.tag = o->added[--o->nadded].tag;
		(void)divert_rule_del(&r, why);
	}
	free(o->added);
	free(o);
}

int
divert_rule_flush(char *errbuf)
{
	struct mnl_nlmsg_batch *b;
	struct conn *c;
	int ret;

	if ((ret = conn_open(&c)) < 0)
		return failed(NULL, ret, "cannot flush rules", errbuf);
	if ((b = batch_start(c, NULL)) == NULL)
		ret = -ENOMEM;
	else {
		if ((ret = put_table(c, b, NFT_MSG_DELTABLE, 0)) == 0)
			ret = batch_send(c, b, NULL);
		mnl_nlmsg_batch_stop(b);
	}
	if (ret == -ENOENT)	/* no table: nothing to flush */
		ret = 0;
	if (ret < 0)
		failed(c, ret, "cannot flush rules", errbuf);
	return finish(c, ret);
}
