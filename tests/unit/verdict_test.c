/*
 * verdict_test - libdivert's verdict messages: runs of equal verdicts go as
 * one batch message only when no held packet is older (a batch answers
 * every queued id up to its own); held packets are answered one by one or
 * up to the newest held id.  lib/queue.c is compiled in; the messages are
 * read from its buffer before they would be sent.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/queue.c"
#include "tap.h"

/* One verdict message: type, id, verdict. */
struct msg {
	int		type;		/* NFQNL_MSG_VERDICT, NFQNL_MSG_VERDICT_BATCH */
	uint32_t	id;
	uint32_t	verdict;
};

/* The messages buffered, as text ("B5d V7a": batch up to 5 drop, 7 accept); emptied. */
static const char *
taken(struct queue *q)
{
	static char text[512];
	const struct nlmsghdr *nlh;
	const struct nlattr *a;
	struct nfqnl_msg_verdict_hdr vh;
	int left = (int)q->vlen, n = 0;

	end_run(q);
	left = (int)q->vlen;
	text[0] = '\0';
	for (nlh = (const void *)q->vbuf; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
		mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
			if (mnl_attr_get_type(a) == NFQA_VERDICT_HDR) {
				memcpy(&vh, mnl_attr_get_payload(a), sizeof(vh));
				n += snprintf(text + n, sizeof(text) - (size_t)n, "%s%c%u%c",
				    n ? " " : "",
				    (nlh->nlmsg_type & 0xff) == NFQNL_MSG_VERDICT_BATCH ? 'B' : 'V',
				    ntohl(vh.id), ntohl(vh.verdict) == NF_DROP ? 'd' : 'a');
			}
	q->vlen = 0;
	return text;
}

/* The same verdict for ids from..to, as dispatch's callback would return it. */
static void
give(struct queue *q, uint32_t from, uint32_t to, int verdict)
{
	uint32_t n = to - from + 1;	/* ids wrap */

	for (; n > 0; n--, from++)
		answer(q, from, verdict);
}

/* A socket whose sends fail (ENOTSOCK): a netlink one with /dev/null in its place. */
static struct mnl_socket *
failing_socket(void)
{
	struct mnl_socket *sock = mnl_socket_open(NETLINK_NETFILTER);
	int null = open("/dev/null", O_WRONLY);

	if (sock == NULL || null < 0 || dup2(null, mnl_socket_get_fd(sock)) < 0)
		return NULL;
	close(null);
	return sock;
}

/* Fill the verdict buffer to the brim, so that the next verdict must send. */
static void
fill(struct queue *q)
{
	uint32_t id = 900000;

	while (q->vlen + VERDICT_SIZE <= sizeof(q->vbuf))
		put_verdict(q, NFQNL_MSG_VERDICT, id++, NF_DROP);
}

/* Put a packet message for id in the queue's receive buffers, as recvmmsg would. */
static void
queue_packet(struct queue *q, uint32_t id)
{
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(id), .hook = NF_INET_LOCAL_IN };
	struct nlmsghdr *nlh = (void *)(q->bufs[0] + q->msgs[0].msg_len);

	nlh = nfq_nlmsg_put((char *)nlh, NFQNL_MSG_PACKET, q->port);
	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	q->msgs[0].msg_len += NLMSG_ALIGN(nlh->nlmsg_len);
	q->nmsg = 1;
}

/* dispatch's callback: odd ids accepted, even ones dropped; counts the calls. */
static int
alternate(const struct divert_addr *from, uint8_t *pkt, size_t len, void *arg)
{
	(void)pkt;
	(void)len;
	++*(int *)arg;
	return from->id % 2 ? DIVERT_ACCEPT : DIVERT_DROP;
}

int
main(void)
{
	struct queue *q = calloc(1, sizeof(*q));
	struct divert h = { .q = q, .port = 1 };
	uint32_t id;
	const char *t;
	int n;

	q->port = 1;

	give(q, 1, 5, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "B5d") == 0, "five drops, nothing held: one batch (%s)", t);

	give(q, 6, 7, DIVERT_DROP);
	give(q, 8, 9, DIVERT_ACCEPT);
	give(q, 10, 10, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "B7d B9a V10d") == 0, "a run ends where the verdict changes (%s)", t);

	give(q, 11, 12, DIVERT_DROP);
	give(q, 13, 13, DIVERT_HOLD_IT);
	give(q, 14, 15, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "B12d V14d V15d") == 0,
	    "a held packet ends the run; after it each goes alone (%s)", t);

	ok(divert_verdict_upto(&h, 100, DIVERT_ACCEPT) == 0, "verdict_upto succeeds");
	t = taken(q);
	ok(strcmp(t, "B13a") == 0, "verdict_upto stops at the newest held id (%s)", t);

	give(q, 16, 17, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "B17d") == 0, "nothing held any more: batches again (%s)", t);

	ok(divert_verdict_upto(&h, 100, DIVERT_DROP) == 0 && strcmp(taken(q), "") == 0,
	    "verdict_upto with nothing held sends nothing");

	give(q, 18, 18, DIVERT_HOLD_IT);
	give(q, 19, 19, DIVERT_HOLD_IT);
	give(q, 20, 21, DIVERT_ACCEPT);
	divert_verdict(&h, 18, DIVERT_ACCEPT, NULL, 0);
	give(q, 22, 23, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "V18a V20a V21a V22d V23d") == 0,
	    "one held packet left (19) keeps the later runs apart (%s)", t);
	divert_verdict(&h, 19, DIVERT_DROP, NULL, 0);
	give(q, 24, 25, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "V19d B25d") == 0, "once it is answered, runs batch again (%s)", t);

	give(q, 26, 26, DIVERT_HOLD_IT);
	give(q, 27, 28, DIVERT_HOLD_IT);
	ok(divert_verdict_upto(&h, 27, DIVERT_DROP) == 0 && strcmp(taken(q), "B27d") == 0,
	    "verdict_upto 27 answers 26 and 27");
	give(q, 29, 30, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "V29d V30d") == 0, "28 is still held (%s)", t);
	divert_verdict(&h, 28, DIVERT_ACCEPT, NULL, 0);
	taken(q);

	/* In dispatch's callback, a verdict for the packet in hand replaces the return value. */
	q->in_cb = 1;
	q->cur = 31;
	divert_verdict(&h, 31, DIVERT_ACCEPT, NULL, 0);
	q->in_cb = 0;
	ok(q->answered && strcmp(taken(q), "V31a") == 0,
	    "a verdict from the callback answers the packet in hand");

	ok(divert_verdict(&h, 32, DIVERT_HOLD_IT, NULL, 0) < 0 && errno == EINVAL,
	    "DIVERT_HOLD_IT is no verdict to give");

	/* Ids wrap: a run across 2^32 still batches, and a held one before it still counts. */
	give(q, 0xfffffffe, 0xffffffff, DIVERT_DROP);
	give(q, 0, 1, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "B1d") == 0, "a run across the wrap of ids is one batch (%s)", t);
	give(q, 0xfffffff0, 0xfffffff0, DIVERT_HOLD_IT);
	give(q, 2, 3, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "V2d V3d") == 0, "a held id from before the wrap is older (%s)", t);
	ok(divert_verdict_upto(&h, 3, DIVERT_DROP) == 0 && strcmp(taken(q), "B4294967280d") == 0,
	    "verdict_upto after the wrap finds it");

	/* A full queue's worth held, all but the first answered: room for more, none lost. */
	for (id = 1000; id < 1000 + DIVERT_QUEUE_MAXLEN; id++)
		held_add(&q->held, id, 0, 0);
	for (id = 1001; id < 1000 + DIVERT_QUEUE_MAXLEN; id++)
		held_remove(&q->held, id);
	held_add(&q->held, 1000 + DIVERT_QUEUE_MAXLEN, 0, 0);
	ok(q->held.live == 2 && q->held.tail - q->held.head == 2,
	    "answered ids leave room: %u held", q->held.tail - q->held.head);
	ok(held_covers(&q->held, 1000) && !held_covers(&q->held, 999),
	    "the oldest held id still bounds batches");

	/* A verdict that fails leaves its packet as it was: held, or the callback's. */
	static uint8_t big[70000];
	struct mnl_socket *sock;
	int calls = 0;

	divert_verdict_upto(&h, 1000 + DIVERT_QUEUE_MAXLEN, DIVERT_DROP);
	taken(q);
	give(q, 40, 40, DIVERT_HOLD_IT);
	ok(divert_verdict(&h, 40, DIVERT_ACCEPT, big, sizeof(big)) < 0 && errno == EMSGSIZE,
	    "new contents over 64 KiB are refused");
	give(q, 41, 42, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "V41d V42d") == 0, "a refused verdict leaves the packet held (%s)", t);
	divert_verdict(&h, 40, DIVERT_DROP, NULL, 0);
	taken(q);
	q->in_cb = 1;
	q->cur = 43;
	q->answered = 0;
	ok(divert_verdict(&h, 43, DIVERT_ACCEPT, big, sizeof(big)) < 0 && !q->answered,
	    "in the callback, a refused verdict leaves the return value counting");
	q->in_cb = 0;

	/* Held ids past the kernel's queue length (ids it dropped) are not lost. */
	for (id = 2000; id <= 2000 + DIVERT_QUEUE_MAXLEN; id++)
		give(q, id, id, DIVERT_HOLD_IT);
	ok(divert_verdict_upto(&h, id, DIVERT_DROP) == 0 &&
	    (t = taken(q)) != NULL && (uint32_t)strtoul(t + 1, NULL, 10) == id - 1,
	    "verdict_upto answers every held id, the last that came too (%s)", t);
	give(q, id, id + 1, DIVERT_DROP);
	t = taken(q);
	ok(t[0] == 'B' && (uint32_t)strtoul(t + 1, NULL, 10) == id + 1,
	    "nothing held: batches again (%s)", t);

	/*
	 * Held for the joiners: they answer on the same socket, unseen.  Runs
	 * still stop at them; verdict_upto leaves them; they expire by time.
	 */
	q->now_ms = mono_ms();			/* as a receive sets it */
	give(q, 3000, 3000, DIVERT_HOLD_SHARED);
	give(q, 3001, 3001, DIVERT_HOLD_IT);
	give(q, 3002, 3003, DIVERT_DROP);
	t = taken(q);
	ok(strcmp(t, "V3002d V3003d") == 0, "a packet held for the joiners ends runs (%s)", t);
	ok(divert_verdict_upto(&h, 3001, DIVERT_DROP) == 0 && strcmp((t = taken(q)), "V3001d") == 0,
	    "verdict_upto past a joiners' packet answers the program's one by one (%s)", t);
	ok(divert_held_age(&h) >= 0 && divert_held_age(&h) < 1000,
	    "the joiners' packet is listed, just held (%ld ms)", divert_held_age(&h));
	ok(divert_verdict_expired(&h, 60000, DIVERT_DROP) == 0 && strcmp(taken(q), "") == 0,
	    "nothing has waited a minute: nothing expires");
	give(q, 3004, 3004, DIVERT_HOLD_IT);
	ok(divert_verdict_upto(&h, 3004, DIVERT_DROP) == 0 && strcmp((t = taken(q)), "V3004d") == 0,
	    "a joiners' packet older than the program's keeps verdict_upto from batching (%s)", t);
	q->held.when[q->held.head] -= 5000;	/* 3000 was held 5 s ago */
	give(q, 3005, 3005, DIVERT_HOLD_SHARED);
	ok(divert_held_age(&h) >= 5000, "the oldest joiners' packet has waited %ld ms",
	    divert_held_age(&h));
	ok(divert_verdict_expired(&h, 1000, DIVERT_DROP) == 1 && strcmp((t = taken(q)), "B3000d") == 0,
	    "the one held over the timeout expires, in one batch (%s)", t);
	ok(divert_held_age(&h) >= 0 && divert_held_age(&h) < 1000 && held_covers(&q->held, 3005) &&
	    !held_covers(&q->held, 3004), "the younger one is still listed");
	/* An own packet older than expiring joiners' ones: they go one by one. */
	give(q, 3006, 3006, DIVERT_HOLD_IT);
	give(q, 3007, 3008, DIVERT_HOLD_SHARED);
	for (n = (int)q->held.head; n < (int)q->held.tail; n++)
		q->held.when[n] -= 5000;
	ok(divert_verdict_expired(&h, 1000, DIVERT_DROP) == 3 &&
	    strcmp((t = taken(q)), "V3005d V3007d V3008d") == 0,
	    "with a packet of the program's among them, expired ones go one by one (%s)", t);
	ok(divert_verdict_upto(&h, 3006, DIVERT_ACCEPT) == 0 && strcmp((t = taken(q)), "B3006a") == 0,
	    "and the program's own is still its own (%s)", t);
	ok(divert_held_age(&h) == -1 && q->held.live == 0 && q->held.shared == 0,
	    "nothing listed any more, none for the joiners counted");
	give(q, 3009, 3009, DIVERT_HOLD_SHARED);
	ok(divert_verdict(&h, 3009, DIVERT_ACCEPT, NULL, 0) == 0 && divert_held_age(&h) == -1 &&
	    strcmp(taken(q), "V3009a") == 0, "the listener may answer a joiners' packet itself");

	if ((sock = failing_socket()) == NULL) {
		for (n = 0; n < 5; n++)
			ok(1, "# SKIP no netlink socket here");
		goto out;
	}
	q->nl.sock = sock;
	give(q, 50, 51, DIVERT_DROP);
	ok(queue_flush(q) < 0 && strcmp(taken(q), "B51d") == 0,
	    "a failed send keeps the verdicts for the next flush");

	give(q, 60, 60, DIVERT_HOLD_IT);
	fill(q);
	ok(divert_verdict(&h, 60, DIVERT_DROP, NULL, 0) < 0 && held_covers(&q->held, 60),
	    "a verdict that cannot be buffered leaves the packet held");
	ok(divert_verdict_upto(&h, 60, DIVERT_DROP) < 0 && held_covers(&q->held, 60),
	    "so does a verdict_upto");
	q->vlen = 0;
	divert_verdict(&h, 60, DIVERT_DROP, NULL, 0);
	q->vlen = 0;

	/* dispatch hands out the whole batch even when a verdict fails. */
	queue_packet(q, 70);
	queue_packet(q, 71);
	queue_packet(q, 72);
	fill(q);
	n = divert_dispatch(&h, alternate, &calls);
	ok(n < 0 && calls == 3 && q->next >= q->nmsg,
	    "a failed verdict in dispatch: every packet still handed out (%d calls)", calls);
	q->vlen = 0;
	t = taken(q);
	ok(held_covers(&q->held, 71) && strcmp(t, "V70d V72d") == 0,
	    "and the packet whose verdict failed is not left to a batch (%s)", t);
	mnl_socket_close(sock);
	q->nl.sock = NULL;
out:
	held_free(&q->held);
	free(q);
	return tap_done();
}
