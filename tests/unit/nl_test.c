/*
 * nl_test - lib/nl.c over a real rtnetlink socket (no root needed: link
 * queries are open to anyone): a conversation a callback cuts short leaves
 * the socket fit for the next one, and an error is the one that happened,
 * not a leftover errno.
 */
#include <errno.h>
#include <string.h>

#include <net/if.h>
#include <linux/rtnetlink.h>

#include "nl.h"
#include "tap.h"

#define LOOPBACK	1	/* lo's index in every namespace */

static char answers[16384];

/* Ask for link index (0: dump them all). */
static struct nlmsghdr *
get_link(void *buf, int index)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = index == 0 ? NLM_F_DUMP : 0;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = index;
	return nlh;
}

static int
count(const struct nlmsghdr *nlh, void *arg)
{
	(void)nlh;
	++*(int *)arg;
	return MNL_CB_OK;
}

/* Refuses the first answer with errno ENOENT. */
static int
refuse(const struct nlmsghdr *nlh, void *arg)
{
	(void)nlh;
	(void)arg;
	errno = ENOENT;
	return MNL_CB_ERROR;
}

/* Refuses without a word (errno untouched). */
static int
refuse_mute(const struct nlmsghdr *nlh, void *arg)
{
	(void)nlh;
	(void)arg;
	return MNL_CB_ERROR;
}

int
main(void)
{
	union { char buf[512]; struct nlmsghdr align; } req;
	struct nl nl;
	int n = 0, rc;

	if (nl_open(&nl, NETLINK_ROUTE) < 0) {
		ok(1, "# SKIP no rtnetlink socket here");
		return tap_done();
	}
	rc = nl_talk(&nl, get_link(req.buf, LOOPBACK), count, &n, answers, sizeof(answers),
	    NULL, 0);
	ok(rc == 0 && n == 1, "asking for lo: one answer, acked (rc %d, %d answers)", rc, n);

	/* The ack comes after the answer the callback refused: it stays unread. */
	errno = EAGAIN;
	rc = nl_talk(&nl, get_link(req.buf, LOOPBACK), refuse_mute, NULL, answers,
	    sizeof(answers), NULL, 0);
	ok(rc == -EPROTO, "a refusal without errno is EPROTO, not a leftover one (rc %d)", rc);
	n = 0;
	rc = nl_talk(&nl, get_link(req.buf, LOOPBACK), count, &n, answers, sizeof(answers),
	    NULL, 0);
	ok(rc == 0 && n == 1, "after one cut short: the next conversation works (rc %d)", rc);
	rc = nl_talk(&nl, get_link(req.buf, LOOPBACK), refuse, NULL, answers,
	    sizeof(answers), NULL, 0);
	ok(rc == -ENOENT, "a callback's refusal is its errno (rc %d)", rc);

	rc = nl_talk(&nl, get_link(req.buf, 0), refuse, NULL, answers, sizeof(answers),
	    NULL, 0);
	ok(rc == -ENOENT, "a dump cut short by its callback (rc %d)", rc);
	n = 0;
	rc = nl_talk(&nl, get_link(req.buf, 0), count, &n, answers, sizeof(answers), NULL, 0);
	ok(rc == 0 && n >= 1, "the next dump runs to its end (rc %d, %d links)", rc, n);

	rc = nl_talk(&nl, get_link(req.buf, 0x7fffffff), NULL, NULL, answers, sizeof(answers),
	    NULL, 0);
	ok(rc == -ENODEV, "the kernel's refusal is its own errno (rc %d)", rc);
	nl_close(&nl);
	return tap_done();
}
