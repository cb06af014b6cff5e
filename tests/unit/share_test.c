/*
 * share_test - a joined handle's verdicts are counted when they are sent,
 * not when they are buffered: a send that fails counts them lost
 * (divert_join_stats), and the listener hears only those that went.
 * lib/share.c is compiled in; the handle is put together by hand, with a
 * port socket that cannot send (/dev/null), then a netlink one.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../lib/share.c"
#include "tap.h"

/* A joined handle of port 5, session 9, whose port socket is qfd. */
static struct divert *
joined_handle(int qfd)
{
	struct divert *h = calloc(1, sizeof(*h));
	struct joined *j = calloc(1, sizeof(*j));

	if (h == NULL || j == NULL || (j->buf = malloc(JOIN_BUF)) == NULL)
		abort();
	h->port = 5;
	h->session = 9;
	h->join = j;
	j->fd = -1;
	j->qfd = qfd;
	j->state = JOIN_JOINED;
	j->limit = JOIN_BYTES;
	return h;
}

/* A record of a packet port 5 holds for session 9, taken now. */
static struct divert_addr
held(uint32_t id)
{
	struct divert_addr a = { .flags = DIVERT_ADDR_QUEUE, .port = 5, .holder = 9, .id = id };

	gettimeofday(&a.ts, NULL);
	return a;
}

int
main(void)
{
	static const uint8_t pkt[20] = { 0x45 };
	struct divert_join_stats st;
	struct divert_addr a;
	struct divert *h;
	int nl;

	h = joined_handle(open("/dev/null", O_WRONLY | O_CLOEXEC));
	a = held(1);
	ok(divert_verdict_in_place(h, &a, DIVERT_ACCEPT, pkt, sizeof(pkt)) == 0, "accept buffered");
	a = held(2);
	ok(divert_verdict_in_place(h, &a, DIVERT_DROP, NULL, 0) == 0, "drop buffered");
	ok(divert_join_stats(h, &st) == 0 && st.accepted == 0 && st.dropped == 0 &&
	    st.failed == 0, "buffered: counted nowhere yet");
	ok(divert_flush(h) < 0, "the send fails (%s)", divert_geterr(h));
	ok(divert_join_stats(h, &st) == 0 && st.accepted == 0 && st.dropped == 0 &&
	    st.failed == 2, "both lost, none given (%ju %ju %ju)", (uintmax_t)st.accepted,
	    (uintmax_t)st.dropped, (uintmax_t)st.failed);

	/* A socket that sends: the kernel's answer (no such queue) is not ours to read. */
	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	dup2(nl, h->join->qfd);
	close(nl);
	a = held(3);
	ok(divert_verdict_in_place(h, &a, DIVERT_ACCEPT, NULL, 0) == 0 && divert_flush(h) == 0,
	    "a verdict sent");
	ok(divert_join_stats(h, &st) == 0 && st.accepted == 1 && st.dropped == 0 &&
	    st.failed == 2, "counted once sent (%ju %ju %ju)", (uintmax_t)st.accepted,
	    (uintmax_t)st.dropped, (uintmax_t)st.failed);
	divert_close(h);
	h = calloc(1, sizeof(*h));
	ok(h != NULL && divert_join_stats(h, &st) < 0 && errno == EINVAL,
	    "not a joined handle: EINVAL");
	free(h);
	return tap_done();
}
