/*
 * divert-rule - add, delete, list and flush divert rules: nftables rules in
 * table inet divert that hand matching packets to a divert port (an
 * NFQUEUE number), where divert-listen picks them up.
 *
 *	divert-rule add output tcp 4321 -d 10.0.0.2
 *	divert-rule list
 *	divert-rule del output tcp 4321 -d 10.0.0.2
 */
#include <argp.h>
#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "divert.h"
#include "mark_users.h"
#include "owner.h"
#include "rule_argp.h"
#include "tool.h"

const char *argp_program_version = "divert-rule (divert) " DIVERT_VERSION;

enum { OPT_HANDLE = 512 };	/* clear of the rule options' keys */

struct args {
	const char		*command;
	char			**words;	/* CHAIN [PROTO] PORT */
	int			 nwords;
	int			 in_comment;	/* after a word "#" */
	struct divert_rule	 rule;
};

static const struct argp_option options[] = {
	{ "handle", OPT_HANDLE, "N", 0,
	    "del: the rule with this handle, as `list' shows it; "
	    "add: ignored, so a listed line can be added again", 0 },
	{ NULL, 0, NULL, 0, "A word starting with # ends the command line: the "
	    "rest of a listed line (packets, bytes, listener) is ignored.", 0 },
	{ 0 }
};

static error_t
parse_arg(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	long handle;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &a->rule;
		a->words = calloc((size_t)state->argc, sizeof(*a->words));
		if (a->words == NULL)
			err(EX_RUNTIME, "calloc");
		return 0;
	case OPT_HANDLE:
		handle = parse_ulong(arg, 1, LONG_MAX);
		if (handle < 0)
			argp_error(state, "bad --handle '%s': want the number "
			    "`list' shows", arg);
		a->rule.handle = (uint64_t)handle;
		return 0;
	case ARGP_KEY_ARG:
		/* `list' ends a line with "# packets N ...": a comment, as
		 * in the shell, so the line can be fed back word by word. */
		if (arg[0] == '#')
			a->in_comment = 1;
		if (a->in_comment)
			return 0;
		if (a->command == NULL)
			a->command = arg;
		else
			a->words[a->nwords++] = arg;
		return 0;
	case ARGP_KEY_NO_ARGS:
	case ARGP_KEY_END:	/* nothing but a comment, e.g. "# handle 5" */
		if (a->command == NULL)
			argp_error(state, "missing command: add, del, list "
			    "or flush");
		return 0;
	}
	return ARGP_ERR_UNKNOWN;
}

static const struct argp_child children[] = {
	{ &rule_argp, 0, NULL, 0 },
	{ 0 }
};

static const struct argp argp = {
	options, parse_arg,
	"add CHAIN [PROTO] PORT [OPTION...]\n"
	"del CHAIN [PROTO] PORT [OPTION...]\n"
	"del --handle N\n"
	"list\n"
	"flush",
	"Add, delete and list divert rules: nftables rules in table inet "
	"divert that take matching packets out of the IP stack and hand them "
	"to a divert port (an NFQUEUE number) for divert-listen.\v"
	"CHAIN: prerouting, input, forward, output or postrouting (any case).  "
	"PROTO: tcp, udp, icmp, icmpv6, sctp, udplite or 0..255; all when "
	"omitted.  PORT: 0..65535, or A-B: queues A..B, balanced by address "
	"pair (by CPU with --fanout).  Numbers may be 0x hex.  `list' prints "
	"each rule as `add' takes it, with its handle, then "
	"\"# packets N bytes N listener yes|no\".  "
	"Rules skip packets whose mark has the DIVERT_MARK bit (default "
	"0x10000000), which divert-inject sets.  Without --pass-through, "
	"packets are dropped while nobody listens on the port.",
	children, NULL, NULL
};

/*
 * "CHAIN [PROTO] PORT [options]", or "--handle N", as it was asked for:
 * malloc'd, as long as it takes (thousands of prefixes make a long line).
 */
static char *
describe(const struct divert_rule *r)
{
	char *text, *line;
	int n;

	if ((n = divert_rule_format(r, NULL, 0)) < 0 ||
	    (text = malloc((size_t)n + 1)) == NULL)
		err(EX_RUNTIME, "describing a rule");
	divert_rule_format(r, text, (size_t)n + 1);
	/* An owned table's handle names nothing del could reach. */
	if (r->handle == 0 || r->owner != 0)
		return text;
	if (asprintf(&line, "%s%s--handle %" PRIu64, text, n > 0 ? " " : "",
	    r->handle) < 0)
		err(EX_RUNTIME, "describing a rule");
	free(text);
	return line;
}

/* Rule options were given: a blank rule renders as nothing at all. */
static int
has_rule_options(const struct divert_rule *r)
{
	return divert_rule_format(r, NULL, 0) > 0;
}

static void
parse_rule_words(struct args *a)
{
	char why[DIVERT_ERRBUF_SIZE];

	if (divert_rule_words(&a->rule, a->words, a->nwords, 0, why) < 0 ||
	    divert_rule_check(&a->rule, why) < 0)
		usage_errx("%s: %s", a->command, why);
}

/* The library's errno, in the words the tools use. */
static void
fail(const char *command)
{
	errx(EX_RUNTIME, "%s: %s", command, errno_hint(errno));
}

/*
 * For a rule of a process's own table (divert_rules_open): the process, whose
 * exit removes the rule; "" for the shared table.
 */
static const char *
owner_text(const struct divert_rule *r)
{
	static char text[64 + 32];
	char comm[64];
	pid_t pid;

	if (r->owner == 0)
		return "";
	if ((pid = netlink_owner(r->owner, comm, sizeof(comm))) == 0)
		snprintf(text, sizeof(text), " owner netlink:%" PRIu32, r->owner);
	else
		snprintf(text, sizeof(text), " owner %s[%ld]", comm, (long)pid);
	return text;
}

static void
do_add(struct args *a)
{
	char why[DIVERT_ERRBUF_SIZE];

	parse_rule_words(a);
	a->rule.handle = 0;	/* a listed line's handle means nothing here */
	if (divert_rule_add(&a->rule, why) == 0) {
		warn_mark_users(a->rule.mark);
		return;
	}
	if (errno == EEXIST && a->rule.owner != 0)
		errx(EX_USAGE_ERR, "add: that rule exists already, for the "
		    "lifetime of process%s", owner_text(&a->rule) + strlen(" owner"));
	if (errno == EEXIST)
		errx(EX_USAGE_ERR, "add: that rule exists already (handle %"
		    PRIu64 ")", a->rule.handle);
	if (errno == ENOENT)
		errx(EX_RUNTIME, "add: the kernel has neither the nft queue "
		    "expression nor the xt NFQUEUE target (modprobe nft_queue "
		    "or xt_NFQUEUE)");
	fail("add");
}

static void
do_del(struct args *a)
{
	char why[DIVERT_ERRBUF_SIZE];

	if (a->nwords > 0)
		parse_rule_words(a);
	else if (a->rule.handle == 0)
		usage_errx("del: want CHAIN [PROTO] PORT [OPTION...] or "
		    "--handle N");
	else if (has_rule_options(&a->rule))
		usage_errx("del: rule options need CHAIN [PROTO] PORT");
	if (divert_rule_del(&a->rule, why) == 0)
		return;
	if (errno == ENOENT)
		errx(EX_USAGE_ERR, "no such rule: %s", describe(&a->rule));
	fail("del");
}

/* Whether a listener holds one of the rule's ports now (/proc says). */
static const char *
listener_text(const struct divert_rule *r)
{
	struct divert_port_info pi;

	switch (divert_port_bound(r->port_lo, r->port_hi, &pi)) {
	case 1:
		return "yes";
	case 0:
		return "no";
	default:
		return "unknown";	/* /proc unreadable: say so, list on */
	}
}

/*
 * The rule as `add' takes it, then a comment that add and del skip.  A rule
 * made under another DIVERT_MARK (arg: ours) would be re-added wrong.
 */
static int
print_rule(const struct divert_rule *r, void *arg)
{
	char *text;

	if (r->chain == DIVERT_CHAIN_NONE || r->mark != *(const uint32_t *)arg) {
		printf("# handle %" PRIu64 ": not a divert rule, left alone\n",
		    r->handle);
		return 0;
	}
	text = describe(r);
	printf("%s # packets %" PRIu64 " bytes %" PRIu64 " listener %s%s\n",
	    text, r->packets, r->bytes, listener_text(r), owner_text(r));
	free(text);
	return 0;
}

static void
no_arguments(const struct args *a)
{
	if (a->nwords > 0 || has_rule_options(&a->rule) || a->rule.handle != 0)
		usage_errx("%s takes no arguments", a->command);
}

static void
do_list(struct args *a)
{
	char why[DIVERT_ERRBUF_SIZE];

	no_arguments(a);
	if (divert_rule_list(print_rule, &a->rule.mark, why) < 0)
		fail("list");
	if (fflush(stdout) == EOF)
		err(EX_RUNTIME, "list: stdout");
}

static void
do_flush(struct args *a)
{
	char why[DIVERT_ERRBUF_SIZE];

	no_arguments(a);
	if (divert_rule_flush(why) < 0)	/* no table is no error */
		fail("flush");
}

static const struct {
	const char	*name;
	void		(*run)(struct args *);
} commands[] = {
	{ "add", do_add }, { "del", do_del },
	{ "list", do_list }, { "flush", do_flush },
};

int
main(int argc, char **argv)
{
	static struct args a;	/* static: its words stay reachable at any exit */
	size_t i;

	argp_err_exit_status = EX_USAGE_ERR;
	divert_rule_init(&a.rule);
	argp_parse(&argp, argc, argv, 0, NULL, &a);
	/* A bad DIVERT_MARK is a usage error, before any request. */
	a.rule.mark = mark_in_force();

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcasecmp(a.command, commands[i].name) == 0) {
			commands[i].run(&a);
			free(a.words);
			divert_rule_clear(&a.rule);
			return 0;
		}
	}
	usage_errx("unknown command '%s': want add, del, list or flush",
	    a.command);
}
