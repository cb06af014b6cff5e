/*
 * rule.h - divert rules: parse a rule spec, render it back, and add, delete,
 * list and flush rules in the toolkit's own nftables table (inet divert)
 * through libnftnl and libmnl.  Shared by divert-rule and divert-listen --rule.
 */
#ifndef DIVERT_RULE_H
#define DIVERT_RULE_H

#include <argp.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

enum rule_chain {
	CHAIN_PREROUTING, CHAIN_INPUT, CHAIN_FORWARD, CHAIN_OUTPUT,
	CHAIN_POSTROUTING, CHAIN_NONE = -1
};

struct rule_addr {
	int	family;			/* 0: no match, AF_INET or AF_INET6 */
	uint8_t	addr[16];		/* network order, host bits cleared */
	int	prefix;			/* 0..32 or 0..128 */
};

struct rule_spec {
	int		chain;		/* enum rule_chain */
	int		proto;		/* IPPROTO_*, -1: any protocol */
	int		family;		/* 0: both, AF_INET (-4), AF_INET6 (-6) */
	struct rule_addr src, dst;
	long		sport_lo, sport_hi;	/* -1: any */
	long		dport_lo, dport_hi;	/* -1: any */
	char		iif[IFNAMSIZ], oif[IFNAMSIZ];	/* "": any */
	int		pass_through;	/* NFQUEUE bypass when nobody listens */
	int		priority;	/* chain priority; rule_parse_words() puts
					 * the chain's default unless given */
	int		priority_set;	/* --priority given */
	int		fanout;		/* NFQ_FLAG_CPU_FANOUT over port_lo..port_hi */
	long		port_lo, port_hi;	/* divert port(s): NFQUEUE numbers */
	uint64_t	handle;		/* kernel handle once added or listed; 0 unknown */
	/*
	 * The tag rule_add() puts on the rule (a random number, in the rule's
	 * comment) and rule_list() reads back; 0: none.  rule_del() of a rule
	 * with a tag deletes only the rule carrying that tag, so a handle
	 * reused after a flush never names someone else's rule.
	 */
	uint64_t	tag;
	uint64_t	packets, bytes;	/* the rule's counter, as listed */
};

/* Reset a rule to "nothing chosen yet" (no chain, any proto, no port). */
void rule_init(struct rule_spec *r);

/*
 * argp child parsing the rule options (-4 -6 -s -d --sport --dport -i -o
 * --pass-through --priority --fanout) into the struct rule_spec that the
 * parent passes as its child input.
 */
extern const struct argp rule_options_argp;

/*
 * Take the positional words "CHAIN [PROTO] [PORT]" in order; returns 0, or -1
 * with a one-line reason in err.  want_port: PORT must be the last word.
 */
int rule_parse_words(struct rule_spec *r, char *const *words, int n,
    int want_port, char *err, size_t errlen);

/*
 * Parse a whole spec "CHAIN [PROTO] [options]" (divert-listen --rule); the
 * port is set by the caller.  Returns 0, or -1 with a reason in err.
 */
int rule_parse_string(struct rule_spec *r, const char *spec, char *err,
    size_t errlen);

/* Check the rule as a whole (ports need a protocol with ports, ...); 0 or -1 + err. */
int rule_check(const struct rule_spec *r, char *err, size_t errlen);

/* Render the rule in `add` syntax (no handle); returns snprintf's length. */
#define RULE_TEXT_MAX	512	/* room for any rule_format() output */
int rule_format(const struct rule_spec *r, char *buf, size_t len);

/* The default priority of a chain's hook (prerouting and output -150,
 * before NAT; the others 0), or 0 for CHAIN_NONE. */
int rule_default_priority(int chain);

/*
 * 1 when a listener is bound to one of the rule's divert ports now (its
 * queue shows in /proc/net/netfilter/nfnetlink_queue of this network
 * namespace), 0 when not, a negative errno when that cannot be read.
 */
int rule_has_listener(const struct rule_spec *r);

/*
 * Kernel operations.  All return 0 or a negative errno (-EPERM when not
 * root, -ENOENT when the rule or table does not exist).
 */
/* Sets r->handle and r->tag.  -EEXIST when the same rule is there already:
 * then r->handle is that rule's handle. */
int rule_add(struct rule_spec *r);
/* By handle if set, else the first rule of the same spec; with a tag, only
 * the rule that carries it (-ENOENT when that rule is gone). */
int rule_del(const struct rule_spec *r);
/* cb gets every rule of the table in order; one that is not a divert rule
 * comes with chain CHAIN_NONE and only its handle.  No table: no calls. */
int rule_list(int (*cb)(const struct rule_spec *r, void *arg), void *arg);
int rule_flush(void);				/* drops the whole table */

#endif
