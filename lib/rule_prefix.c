/*
 * rule_prefix.c - prefix lists for -s and -d: read from the command line
 * or a file, and turned into the ranges an nftables interval set holds,
 * and back.  A list's canonical form is the fewest prefixes covering the
 * same addresses: what `list' prints, whatever order, overlaps or
 * duplicates the list was given with, so that the line read back is the
 * same rule.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "num.h"
#include "rule_prefix.h"
#include "rule_text.h"

int
rule_parse_prefix(const char *s, struct divert_rule_addr *a, char *errbuf)
{
	char buf[INET6_ADDRSTRLEN + 8];
	uint8_t mask[16];
	char *slash;
	long prefix;
	size_t i, max;

	if (strlen(s) >= sizeof(buf))
		return rule_seterr(errbuf, EINVAL, "bad address '%.64s'", s);
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, buf, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, a->addr) == 1)
		a->family = AF_INET6;
	else
		return rule_seterr(errbuf, EINVAL, "bad address '%s': want an "
		    "IPv4 or IPv6 address, optionally /LEN", buf);
	max = rule_addr_len(a->family) * 8;
	prefix = slash != NULL ? parse_ulong(slash, 0, (long)max) : (long)max;
	if (prefix < 0)
		return rule_seterr(errbuf, EINVAL, "bad prefix length in '%s': "
		    "want 0..%zu", s, max);
	a->prefix = (int)prefix;
	/* Canonical form, as nft does: 10.1.2.3/8 is 10.0.0.0/8. */
	rule_prefix_mask(mask, rule_addr_len(a->family), a->prefix);
	for (i = 0; i < rule_addr_len(a->family); i++)
		a->addr[i] &= mask[i];
	return 0;
}

/* --- reading lists ---------------------------------------------------- */

/* A list being appended to: what it had, and what comes. */
struct growing {
	struct divert_rule_addr	*v;
	size_t			 n, room;
};

static int
append(struct growing *g, const struct divert_rule_addr *a)
{
	struct divert_rule_addr *more;
	size_t room;

	if (g->n == g->room) {
		room = g->room < 16 ? 16 : g->room * 2;
		if ((more = reallocarray(g->v, room, sizeof(*more))) == NULL)
			return -1;
		g->v = more;
		g->room = room;
	}
	g->v[g->n++] = *a;
	return 0;
}

/* where: "" on the command line, "FILE:LINE: " in a file. */
static int
add_one(struct growing *g, const char *flag, const char *where, const char *s,
    char *errbuf)
{
	char why[DIVERT_ERRBUF_SIZE];
	struct divert_rule_addr a;

	if (rule_parse_prefix(s, &a, why) < 0)
		return rule_seterr(errbuf, EINVAL, "%s%s: %s", where, flag, why);
	if (g->n > 0 && g->v[0].family != a.family)
		return rule_seterr(errbuf, EINVAL, "%s%s mixes IPv4 and IPv6 "
		    "prefixes (%s): use two rules", where, flag, s);
	if (append(g, &a) < 0)
		return rule_seterr(errbuf, ENOMEM, "out of memory");
	return 0;
}

/* "A,B/L,..." (a copy, cut up here). */
static int
add_words(struct growing *g, const char *flag, char *list, char *errbuf)
{
	char *word, *save;

	if (*list == '\0' || *list == ',' || list[strlen(list) - 1] == ',' ||
	    strstr(list, ",,") != NULL)
		return rule_seterr(errbuf, EINVAL, "%s: an empty prefix in '%s'",
		    flag, list);
	for (word = strtok_r(list, ",", &save); word != NULL;
	    word = strtok_r(NULL, ",", &save))
		if (add_one(g, flag, "", word, errbuf) < 0)
			return -1;
	return 0;
}

/* The line without its comment and surrounding blanks; "" when nothing is left. */
static char *
strip_line(char *line)
{
	char *end;

	line[strcspn(line, "#\r\n")] = '\0';
	line += strspn(line, " \t");
	end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return line;
}

static int
add_file(struct growing *g, const char *flag, const char *path, char *errbuf)
{
	char where[DIVERT_ERRBUF_SIZE / 2], *line = NULL, *s;
	size_t cap = 0, lineno = 0;
	int ret = 0, e;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		e = errno;
		return rule_seterr(errbuf, EINVAL, "%s @%s: %s", flag, path,
		    strerror(e));
	}
	while (ret == 0 && getline(&line, &cap, f) >= 0) {
		lineno++;
		s = strip_line(line);
		if (*s == '\0')
			continue;
		snprintf(where, sizeof(where), "%.80s:%zu: ", path, lineno);
		ret = add_one(g, flag, where, s, errbuf);
	}
	if (ret == 0 && ferror(f))
		ret = rule_seterr(errbuf, EINVAL, "%s @%s: read error", flag, path);
	else if (ret == 0 && g->n == 0)
		ret = rule_seterr(errbuf, EINVAL, "%s @%s: no prefix in the file",
		    flag, path);
	free(line);
	fclose(f);
	return ret;
}

int
rule_prefixes_add(struct divert_rule_addr **list, size_t *n, const char *flag,
    const char *arg, char *errbuf)
{
	struct growing g = { NULL, 0, 0 };
	char *copy;
	int ret;

	/* The new list is built aside: a bad one leaves the old untouched. */
	if (*n > 0) {
		if ((g.v = reallocarray(NULL, *n, sizeof(*g.v))) == NULL)
			return rule_seterr(errbuf, ENOMEM, "out of memory");
		memcpy(g.v, *list, *n * sizeof(*g.v));
		g.n = g.room = *n;
	}
	if (arg[0] == '@') {
		ret = add_file(&g, flag, arg + 1, errbuf);
	} else if ((copy = strdup(arg)) == NULL) {
		ret = rule_seterr(errbuf, ENOMEM, "out of memory");
	} else {
		ret = add_words(&g, flag, copy, errbuf);
		free(copy);
	}
	if (ret < 0) {
		free(g.v);
		return -1;
	}
	free(*list);
	*list = g.v;
	*n = g.n;
	return 0;
}

/* --- ranges ----------------------------------------------------------- */

/* The bits of a after the first plen set to ones (or cleared). */
static void
set_host_bits(uint8_t *a, size_t len, int plen, bool ones)
{
	uint8_t mask[16];
	size_t i;

	rule_prefix_mask(mask, len, plen);
	for (i = 0; i < len; i++)
		a[i] = ones ? a[i] | (uint8_t)~mask[i] : a[i] & mask[i];
}

bool
rule_addr_next(uint8_t *a, size_t len)
{
	size_t i = len;

	while (i-- > 0)
		if (++a[i] != 0)
			return true;
	return false;
}

bool
rule_addr_prev(uint8_t *a, size_t len)
{
	size_t i = len;

	while (i-- > 0)
		if (a[i]-- != 0)
			return true;
	return false;
}

/* Sorting ranges by their start (arg: the address length). */
static int
by_start(const void *x, const void *y, void *arg)
{
	return memcmp(((const struct rule_range *)x)->lo,
	    ((const struct rule_range *)y)->lo, *(const size_t *)arg);
}

int
rule_ranges_of(const struct divert_rule_addr *p, size_t n,
    struct rule_range **out, size_t *nout)
{
	struct rule_range *r, *cur;
	uint8_t next[16];
	size_t i, len, k = 0;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	if ((r = calloc(n, sizeof(*r))) == NULL)
		return -1;
	len = rule_addr_len(p[0].family);
	for (i = 0; i < n; i++) {
		memcpy(r[i].lo, p[i].addr, len);
		set_host_bits(r[i].lo, len, p[i].prefix, false);
		memcpy(r[i].hi, r[i].lo, len);
		set_host_bits(r[i].hi, len, p[i].prefix, true);
	}
	qsort_r(r, n, sizeof(*r), by_start, &len);
	/* Merge each range into the one before when they overlap or touch. */
	for (i = 1, cur = &r[0]; i < n; i++) {
		memcpy(next, cur->hi, len);
		if (!rule_addr_next(next, len) || memcmp(r[i].lo, next, len) <= 0) {
			if (memcmp(r[i].hi, cur->hi, len) > 0)
				memcpy(cur->hi, r[i].hi, len);
			continue;
		}
		cur = &r[++k];
		*cur = r[i];
	}
	*out = r;
	*nout = k + 1;
	return 0;
}

/* The shortest prefix length at lo whose block stays within hi. */
static int
widest_block(const uint8_t *lo, const uint8_t *hi, size_t len)
{
	uint8_t a[16];
	int plen;

	for (plen = 0; plen < (int)len * 8; plen++) {
		memcpy(a, lo, len);
		set_host_bits(a, len, plen, false);
		if (memcmp(a, lo, len) != 0)
			continue;		/* lo is not aligned to it */
		set_host_bits(a, len, plen, true);
		if (memcmp(a, hi, len) <= 0)
			return plen;
	}
	return plen;
}

bool
rule_range_is_prefix(const struct rule_range *r, size_t len)
{
	uint8_t end[16];

	memcpy(end, r->lo, len);
	set_host_bits(end, len, widest_block(r->lo, r->hi, len), true);
	return memcmp(end, r->hi, len) == 0;
}

int
rule_prefixes_of(int family, const struct rule_range *r, size_t n,
    struct divert_rule_addr **out, size_t *nout)
{
	struct growing g = { NULL, 0, 0 };
	struct divert_rule_addr a;
	size_t i, len = rule_addr_len(family);
	uint8_t at[16];

	for (i = 0; i < n; i++) {
		memcpy(at, r[i].lo, len);
		for (;;) {
			memset(&a, 0, sizeof(a));
			a.family = family;
			a.prefix = widest_block(at, r[i].hi, len);
			memcpy(a.addr, at, len);
			if (append(&g, &a) < 0) {
				free(g.v);
				return -1;
			}
			set_host_bits(at, len, a.prefix, true);
			if (memcmp(at, r[i].hi, len) >= 0 || !rule_addr_next(at, len))
				break;
		}
	}
	*out = g.v;
	*nout = g.n;
	return 0;
}

int
rule_prefixes_canon(const struct divert_rule_addr *p, size_t n,
    struct divert_rule_addr **out, size_t *nout)
{
	struct rule_range *r;
	size_t nr;
	int ret;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	if (rule_ranges_of(p, n, &r, &nr) < 0)
		return -1;
	ret = rule_prefixes_of(p[0].family, r, nr, out, nout);
	free(r);
	return ret;
}
