/*
 * rule_prefix.h - the prefix lists of a rule's -s and -d (internal): one
 * prefix, a comma list or a file of them read into a list, and the
 * address ranges a list covers, which is what nftables' interval sets
 * hold.  Pure code, but for reading a prefix file.
 */
#ifndef DIVERT_RULE_PREFIX_H
#define DIVERT_RULE_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "divert.h"

/* The addresses lo..hi, both included, in network order (4 or 16 bytes used). */
struct rule_range {
	uint8_t	lo[16], hi[16];
};

/* One "ADDR[/LEN]" into *a, host bits cleared: 0, or -1 with EINVAL and words. */
int rule_parse_prefix(const char *s, struct divert_rule_addr *a, char *errbuf);

/*
 * The prefixes arg gives, appended to *list (*n of them): "A[/L]", a comma
 * list "A,B/L,...", or "@FILE" (one a line; '#' comments and blank lines
 * skipped).  All of one family, the list's too.  flag ("-d") names the
 * option in errors; a file's name the file and line.  0, or -1 with errno
 * (EINVAL, ENOMEM, or the file's) and words in errbuf; *list keeps what it
 * had before then.
 */
int rule_prefixes_add(struct divert_rule_addr **list, size_t *n, const char *flag,
    const char *arg, char *errbuf);

/*
 * The ranges n prefixes of one family cover, sorted, each one as long as
 * it can be (overlapping and adjacent ones merged): *out (malloc'd, *nout
 * of them; NULL when none).  0, or -1 with errno ENOMEM.
 */
int rule_ranges_of(const struct divert_rule_addr *p, size_t n,
    struct rule_range **out, size_t *nout);

/*
 * The fewest prefixes of family that cover exactly the n ranges, in order:
 * *out (malloc'd, *nout of them).  0, or -1 with errno ENOMEM.
 */
int rule_prefixes_of(int family, const struct rule_range *r, size_t n,
    struct divert_rule_addr **out, size_t *nout);

/* a + 1, in place (len bytes, network order); false when it wraps to 0. */
bool rule_addr_next(uint8_t *a, size_t len);

/* a - 1, in place; false when it wraps (a was 0). */
bool rule_addr_prev(uint8_t *a, size_t len);

/* Whether the range is exactly one prefix. */
bool rule_range_is_prefix(const struct rule_range *r, size_t len);

/* The canonical form of a list: the prefixes of its ranges.  As above. */
int rule_prefixes_canon(const struct divert_rule_addr *p, size_t n,
    struct divert_rule_addr **out, size_t *nout);

#endif
