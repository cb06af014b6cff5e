/* mark_users.c - warn of other rules that use the loop-avoidance mark bit. */
#include <err.h>
#include <inttypes.h>
#include <stdint.h>

#include <linux/netfilter.h>

#include "divert.h"
#include "mark_users.h"

/* nft's word for a table family. */
static const char *
family_word(int family)
{
	switch (family) {
	case NFPROTO_INET:	return "inet";
	case NFPROTO_IPV4:	return "ip";
	case NFPROTO_IPV6:	return "ip6";
	case NFPROTO_ARP:	return "arp";
	case NFPROTO_BRIDGE:	return "bridge";
	case NFPROTO_NETDEV:	return "netdev";
	default:		return "?";
	}
}

static int
warn_one_user(const struct divert_mark_user *u, void *arg)
{
	warnx("warning: rule %" PRIu64 " of chain %s in table %s %s also uses mark "
	    "bit 0x%08" PRIx32 ": packets it marks are not diverted (set DIVERT_MARK "
	    "to a bit nobody uses)", u->handle, u->chain, family_word(u->family),
	    u->table, *(const uint32_t *)arg);
	return 0;
}

void
warn_mark_users(uint32_t mark)
{
	char why[DIVERT_ERRBUF_SIZE];

	if (divert_mark_users(mark, warn_one_user, &mark, why) < 0)
		warnx("warning: cannot look for other users of mark bit 0x%08" PRIx32
		    ": %s", mark, why);
}

