/*
 * rule_text.h - what the rule grammar (rule_text.c) knows that libdivert's
 * other rule units share (internal): chain names and default priorities,
 * the family a rule matches, address prefixes, interface names, and the
 * error buffer's filler.
 */
#ifndef DIVERT_RULE_TEXT_H
#define DIVERT_RULE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "divert.h"

/* Words into errbuf (DIVERT_ERRBUF_SIZE; NULL: none), errno = err; returns -1. */
int rule_seterr(char *errbuf, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A chain's name ("output"), NULL for DIVERT_CHAIN_NONE or no chain. */
const char *rule_chain_name(int chain);

/*
 * The default priority of a chain's hook: prerouting and output -150,
 * before NAT; the others 0.  0 for DIVERT_CHAIN_NONE.
 */
int rule_default_priority(int chain);

/* The family the rule matches: -4/-6, else the one its addresses imply; 0 both. */
int rule_family(const struct divert_rule *r);

/* The length of an address of family (AF_INET: 4, else 16). */
size_t rule_addr_len(int family);

/* The mask of a prefix: len bytes, the first prefix bits set. */
void rule_prefix_mask(uint8_t *mask, size_t len, int prefix);

/* The prefix length a mask of len bytes stands for, -1 when not contiguous. */
int rule_mask_prefix(const uint8_t *mask, size_t len);

/* A name the kernel would take for an interface (as far as we can tell). */
bool rule_ifname_ok(const char *s);

/* Whether name is one of the toolkit's table names: DIVERT_TABLE, or "divert-<port id>" (divert_rules_open). */
bool rule_table_ours(const char *name);

/* r's text (divert_rule_format), malloc'd; NULL with errno ENOMEM. */
char *rule_text(const struct divert_rule *r);

/*
 * a and b are the same rule: the same text, and the same cgroup (by id:
 * one of the same path made again is another).  false too when out of
 * memory.
 */
bool rule_same_spec(const struct divert_rule *a, const struct divert_rule *b);

#endif
