/* rule_argp.c - the rule options as an argp child, parsed by libdivert. */
#include <argp.h>
#include <errno.h>
#include <stddef.h>

#include "divert.h"
#include "rule_argp.h"

enum {
	OPT_SPORT = 256, OPT_DPORT, OPT_PASS_THROUGH, OPT_PRIORITY, OPT_FANOUT,
	OPT_UID, OPT_GID, OPT_CGROUP, OPT_CT_STATE, OPT_FIRST, OPT_MARK,
};

static const struct argp_option rule_options[] = {
	{ NULL, 0, NULL, 0, "Rule options:", 1 },
	{ NULL, '4', NULL, 0, "Only IPv4 packets", 0 },
	{ NULL, '6', NULL, 0, "Only IPv6 packets", 0 },
	{ "src", 's', "ADDR[/LEN][,...]", 0,
	    "Source address or prefix, a comma list of them, or @FILE of them "
	    "(one a line); repeatable", 0 },
	{ "dst", 'd', "ADDR[/LEN][,...]", 0,
	    "Destination address or prefixes, as -s", 0 },
	{ "sport", OPT_SPORT, "N[-M]", 0,
	    "Source port or range (tcp, udp, sctp, udplite)", 0 },
	{ "dport", OPT_DPORT, "N[-M]", 0,
	    "Destination port or range (tcp, udp, sctp, udplite)", 0 },
	{ NULL, 'i', "IFACE", 0,
	    "Input interface (not on output, postrouting)", 0 },
	{ NULL, 'o', "IFACE", 0,
	    "Output interface (not on prerouting, input)", 0 },
	{ "pass-through", OPT_PASS_THROUGH, NULL, 0,
	    "Let packets go on while nobody listens on the port (default: "
	    "drop them)", 0 },
	{ "priority", OPT_PRIORITY, "N", 0,
	    "Chain priority (default -150 on prerouting and output, before "
	    "NAT; 0 elsewhere; -450 sees fragments before conntrack)", 0 },
	{ "fanout", OPT_FANOUT, NULL, 0,
	    "Spread a port range A-B by CPU (without it: by address pair)", 0 },
	{ "uid", OPT_UID, "USER|N[-M]", 0,
	    "Sent by a socket of this user (output, postrouting)", 0 },
	{ "gid", OPT_GID, "GROUP|N[-M]", 0,
	    "Sent by a socket of this group (output, postrouting)", 0 },
	{ "cgroup", OPT_CGROUP, "PATH", 0,
	    "Sent by a socket of this cgroup v2 or below it (output)", 0 },
	{ "ct-state", OPT_CT_STATE, "LIST", 0,
	    "Connection state: new, established, related, invalid, untracked", 0 },
	{ "first", OPT_FIRST, "N", 0,
	    "Only the first N packets of each connection (both directions)", 0 },
	{ "mark", OPT_MARK, "V[/M]", 0,
	    "Packet mark: mark & M == V (M default 0xffffffff)", 0 },
	{ 0 }
};

/* Each key as the rule's text spells the option. */
static const struct {
	int		 key;
	const char	*opt;
} spelled[] = {
	{ '4', "-4" }, { '6', "-6" }, { 's', "-s" }, { 'd', "-d" },
	{ OPT_SPORT, "--sport" }, { OPT_DPORT, "--dport" },
	{ 'i', "-i" }, { 'o', "-o" }, { OPT_PASS_THROUGH, "--pass-through" },
	{ OPT_PRIORITY, "--priority" }, { OPT_FANOUT, "--fanout" },
	{ OPT_UID, "--uid" }, { OPT_GID, "--gid" }, { OPT_CGROUP, "--cgroup" },
	{ OPT_CT_STATE, "--ct-state" }, { OPT_FIRST, "--first" }, { OPT_MARK, "--mark" },
};

static error_t
parse_rule_option(int key, char *arg, struct argp_state *state)
{
	char why[DIVERT_ERRBUF_SIZE];
	size_t i;

	for (i = 0; i < sizeof(spelled) / sizeof(spelled[0]); i++) {
		if (spelled[i].key != key)
			continue;
		if (divert_rule_option(state->input, spelled[i].opt, arg, why) < 0) {
			argp_error(state, "%s", why);
			return EINVAL;
		}
		return 0;
	}
	return ARGP_ERR_UNKNOWN;
}

const struct argp rule_argp = {
	rule_options, parse_rule_option, NULL, NULL, NULL, NULL, NULL
};
