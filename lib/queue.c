/*
 * queue.c - a handle's receive side: bind the divert port (an NFQUEUE),
 * receive with recvmmsg, hand each packet out with its divert address, and
 * answer them with as few verdict messages as is safe.
 *
 * A batch verdict (NFQNL_MSG_VERDICT_BATCH) answers every packet the
 * kernel still queues with an id up to N.  Ids grow in the order packets
 * are queued, and so handed out; so consecutive packets given the same
 * verdict (a run) take one batch message, unless a packet the program
 * holds is older than the run's last: then each takes its own.
 *
 * Packets held for the port's joiners (DIVERT_HOLD_SHARED, share.c) are
 * answered by other processes on this same socket: this side never learns
 * which were.  They stay listed, with the time they were held, until they
 * expire (divert_verdict_expired): a batch verdict then answers those still
 * queued, and leaves alone the ids the kernel no longer has.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "bytes.h"
#include "handle.h"
#include "l4sum.h"
#include "nl.h"

#define MSG_SIZE	(0x10000 + 4096)	/* one packet message, payload and attributes */
#define RCVBUF_MIN	(256 << 10)	/* socket buffer: at least this (errors, acks) */
#define RCVBUF_MAX	(64 << 20)	/* ...and at most this (a long queue of small packets) */
#define NAMES		16		/* interface names remembered */
#define NAME_TTL	1		/* seconds a remembered name is trusted (renames) */

#define HELD_GONE	0x1		/* answered: a hole */
#define HELD_SHARED	0x2		/* held for the joiners (DIVERT_HOLD_SHARED) */
#define HELD_GSO	0x4		/* a GSO packet (DIVERT_ADDR_GSO) */

/*
 * The ids of held packets, oldest first: appended as packets are held,
 * answered ones left as holes until the oldest is answered (or the end
 * is reached, when the holes are squeezed out).  The kernel queues at most
 * DIVERT_QUEUE_MAXLEN packets, but a fixed room that size is not enough:
 * the ids of packets the kernel dropped itself (their device went away)
 * stay until the program answers them, and one id left out would be
 * answered by the next batch.  So the list grows, by doubling, when
 * squeezing would not free half of it.
 */
struct held {
	uint32_t	*id;
	uint64_t	*when;			/* ms (monotonic) it was held */
	uint8_t		*st;			/* HELD_* */
	unsigned	 head, tail;		/* the ids are in [head, tail) */
	unsigned	 live;			/* ids in [head, tail) not gone */
	unsigned	 shared;		/* ...of which held for the joiners */
	unsigned	 cap;
};

/* An interface's name, as last looked up. */
struct name {
	uint32_t	index;
	time_t		when;
	char		name[IF_NAMESIZE];	/* "": none */
};

/* Consecutive packets given the same verdict, not yet in the buffer. */
struct run {
	uint32_t	id[DIVERT_BATCH];
	int		n;
	int		verdict;		/* NF_DROP, NF_ACCEPT */
};

struct queue {
	struct nl	 nl;
	int		 fd;
	uint16_t	 port;
	int		 nmsg, next;		/* datagrams received, the next to read */
	int		 off;			/* where in it */
	int		 in_cb, answered;	/* in dispatch's callback; it gave cur a verdict */
	uint32_t	 cur;			/* the packet last read (the callback's) */
	int		 cur_gso;		/* ...is a GSO packet */
	uint64_t	 received, overruns;
	time_t		 now;			/* coarse clock, read at each receive */
	uint64_t	 now_ms;		/* the same in ms: when packets are held */
	struct name	 names[NAMES];		/* by ifindex, direct-mapped */
	struct run	 run;
	struct held	 held;
	size_t		 vlen;			/* bytes of verdicts waiting in vbuf */
	uint8_t		 vbuf[(DIVERT_BATCH * 2 + 1) * VERDICT_SIZE] __attribute__((aligned(8)));
	struct mmsghdr	 msgs[DIVERT_BATCH];
	struct iovec	 iov[DIVERT_BATCH];
	/* Netlink attributes assume 4-byte alignment from the buffer's start. */
	uint8_t		 bufs[DIVERT_BATCH][MSG_SIZE] __attribute__((aligned(8)));
};

/* Whether packet id a was queued before b (ids wrap). */
static int
before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static void
held_squeeze(struct held *s)
{
	unsigned i, k = 0;

	for (i = s->head; i < s->tail; i++)
		if (!(s->st[i] & HELD_GONE)) {
			s->id[k] = s->id[i];
			s->when[k] = s->when[i];
			s->st[k++] = s->st[i];
		}
	s->head = 0;
	s->tail = k;
}

static int
held_grow(struct held *s)
{
	unsigned cap = s->cap ? s->cap * 2 : DIVERT_BATCH;
	uint32_t *id;
	uint64_t *when;
	uint8_t *st;

	if ((id = reallocarray(s->id, cap, sizeof(*id))) == NULL)
		return -1;
	s->id = id;
	if ((when = reallocarray(s->when, cap, sizeof(*when))) == NULL)
		return -1;
	s->when = when;
	if ((st = realloc(s->st, cap)) == NULL)
		return -1;
	s->st = st;
	s->cap = cap;
	return 0;
}

/* 0, or -1 with ENOMEM: id is not listed.  flags: 0 or HELD_SHARED. */
static int
held_add(struct held *s, uint32_t id, uint64_t when, uint8_t flags)
{
	if (s->tail == s->cap) {
		if (s->cap > 0 && s->live <= s->cap / 2)
			held_squeeze(s);
		else if (held_grow(s) < 0)
			return -1;
	}
	s->id[s->tail] = id;
	s->when[s->tail] = when;
	s->st[s->tail++] = flags;
	s->live++;
	if (flags & HELD_SHARED)
		s->shared++;
	return 0;
}

static void
held_free(struct held *s)
{
	free(s->id);
	free(s->when);
	free(s->st);
	memset(s, 0, sizeof(*s));
}

/* Skip the answered ones at the front. */
static void
held_trim(struct held *s)
{
	while (s->head < s->tail && (s->st[s->head] & HELD_GONE))
		s->head++;
	if (s->head == s->tail)
		s->head = s->tail = 0;
}

/* Entry i answered. */
static void
held_gone(struct held *s, unsigned i)
{
	if (!(s->st[i] & HELD_GONE)) {
		s->live--;
		if (s->st[i] & HELD_SHARED)
			s->shared--;
	}
	s->st[i] |= HELD_GONE;
}

/* Where id is listed (not answered yet), or s->tail. */
static unsigned
held_find(const struct held *s, uint32_t id)
{
	unsigned lo = s->head, hi = s->tail, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (s->id[mid] == id)
			return s->st[mid] & HELD_GONE ? s->tail : mid;
		if (before(s->id[mid], id))
			lo = mid + 1;
		else
			hi = mid;
	}
	return s->tail;
}

static void
held_remove(struct held *s, uint32_t id)
{
	unsigned i = held_find(s, id);

	if (i < s->tail) {
		held_gone(s, i);
		held_trim(s);
	}
}

/* Whether entry i is held by the program itself (not answered, not the joiners'). */
static int
held_own(const struct held *s, unsigned i)
{
	return !(s->st[i] & (HELD_GONE | HELD_SHARED));
}

/*
 * The newest id the program holds up to id in *last, how far the list
 * goes up to it in *end, and whether a packet held for the joiners is
 * older than *last in *mixed (a batch up to *last would answer it): 1, or
 * 0 if the program holds none.
 */
static int
held_upto(const struct held *s, uint32_t id, uint32_t *last, unsigned *end, int *mixed)
{
	unsigned i;
	int any = 0, shared = 0;

	*mixed = 0;
	for (i = s->head; i < s->tail && !before(id, s->id[i]); i++) {
		if (held_own(s, i)) {
			*last = s->id[i];
			*mixed = shared;
			any = 1;
		} else if (!(s->st[i] & HELD_GONE)) {
			shared = 1;
		}
	}
	*end = i;
	return any;
}

/* Forget the ids the program held before end (a batch verdict answered them). */
static void
held_forget_own(struct held *s, unsigned end)
{
	unsigned i;

	for (i = s->head; i < end; i++)
		if (held_own(s, i))
			held_gone(s, i);
	held_trim(s);
}

/* Whether a batch verdict up to id would answer a held packet too. */
static int
held_covers(const struct held *s, uint32_t id)
{
	return s->head < s->tail && !before(id, s->id[s->head]);
}

/* The first entry held for the joiners, or s->tail when none is. */
static unsigned
held_first_shared(const struct held *s)
{
	unsigned i;

	for (i = s->head; i < s->tail; i++)
		if ((s->st[i] & (HELD_GONE | HELD_SHARED)) == HELD_SHARED)
			break;
	return i;
}

static uint64_t
mono_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* Send the verdicts buffered; on failure they stay, for the next flush to retry. */
static int
send_verdicts(struct queue *q)
{
	if (q->vlen == 0)
		return 0;
	/* A netlink message to the kernel goes whole or not at all. */
	if (mnl_socket_sendto(q->nl.sock, q->vbuf, q->vlen) < 0)
		return -1;
	q->vlen = 0;
	return 0;
}

size_t
verdict_msg(void *buf, int type, uint16_t port, uint32_t id, int nf, int with_payload,
    size_t len)
{
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, type, port);
	struct nlattr *payload;
	size_t hlen;

	nfq_nlmsg_verdict_put(nlh, (int)id, nf);
	if (!with_payload)
		return NLMSG_ALIGN(nlh->nlmsg_len);
	payload = (struct nlattr *)((char *)buf + NLMSG_ALIGN(nlh->nlmsg_len));
	payload->nla_type = NFQA_PAYLOAD;
	payload->nla_len = (uint16_t)(NLA_HDRLEN + len);
	hlen = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_HDRLEN;
	nlh->nlmsg_len = (uint32_t)(hlen + NLA_ALIGN(len));
	return hlen;
}

static int
put_verdict(struct queue *q, int type, uint32_t id, int verdict)
{
	if (q->vlen + VERDICT_SIZE > sizeof(q->vbuf) && send_verdicts(q) < 0)
		return -1;
	q->vlen += verdict_msg(q->vbuf + q->vlen, type, q->port, id, verdict, 0, 0);
	return 0;
}

/*
 * Put the run's verdicts in the buffer: one batch message when nothing held
 * is older.  On failure what was not put stays in the run, to be retried.
 */
static int
end_run(struct queue *q)
{
	struct run *r = &q->run;
	int i;

	if (r->n > 1 && !held_covers(&q->held, r->id[r->n - 1])) {
		if (put_verdict(q, NFQNL_MSG_VERDICT_BATCH, r->id[r->n - 1], r->verdict) < 0)
			return -1;
		r->n = 0;
		return 0;
	}
	for (i = 0; i < r->n; i++)
		if (put_verdict(q, NFQNL_MSG_VERDICT, r->id[i], r->verdict) < 0) {
			memmove(r->id, r->id + i, (size_t)(r->n - i) * sizeof(r->id[0]));
			r->n -= i;
			return -1;
		}
	r->n = 0;
	return 0;
}

/*
 * List id as held (flags: HELD_SHARED for the joiners); with no memory left
 * for it, let it go on rather than lose it.
 */
static int
hold(struct queue *q, uint32_t id, uint8_t flags)
{
	/* Held as it was just read: a GSO packet stays one, for divert_verdict. */
	if (id == q->cur && q->cur_gso)
		flags |= HELD_GSO;
	if (held_add(&q->held, id, q->now_ms, flags) == 0)
		return 0;
	put_verdict(q, NFQNL_MSG_VERDICT, id, NF_ACCEPT);
	errno = ENOMEM;
	return -1;
}

/*
 * Packet id's verdict, as the program gave it.  A held packet ends the run
 * (a batch past it would answer it), so held ids are all older than the run
 * (unless the run could not be ended: held_covers still sees them).  -1
 * with errno when the verdict could not be buffered: the packet is then
 * held, so that no later batch answers it with another verdict.
 */
static int
answer(struct queue *q, uint32_t id, int verdict)
{
	int nf = verdict == DIVERT_DROP ? NF_DROP : NF_ACCEPT, rc = 0, saved;

	if (verdict == DIVERT_HOLD_IT || verdict == DIVERT_HOLD_SHARED) {
		if (q->run.n > 0)
			rc = end_run(q);	/* failed: the run stays, to be retried */
		return hold(q, id, verdict == DIVERT_HOLD_SHARED ? HELD_SHARED : 0) < 0 ?
		    -1 : rc;
	}
	if (q->run.n > 0 && (q->run.verdict != nf || q->run.n == DIVERT_BATCH) &&
	    end_run(q) < 0) {
		saved = errno;
		if (hold(q, id, 0) == 0)
			errno = saved;
		return -1;
	}
	q->run.verdict = nf;
	q->run.id[q->run.n++] = id;
	return 0;
}

int
queue_flush(struct queue *q)
{
	if (q->run.n > 0 && end_run(q) < 0)
		return -1;
	return send_verdicts(q);
}

/* ifindex's name, remembered for NAME_TTL seconds; "" when it has none. */
static void
name_of(struct queue *q, uint32_t index, char *name)
{
	struct ifreq ifr;
	struct name *n = &q->names[index % NAMES];

	if (n->index != index || q->now - n->when >= NAME_TTL) {
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_ifindex = (int)index;
		/* Any socket takes the interface ioctls: ours saves opening one. */
		if (ioctl(q->fd, SIOCGIFNAME, &ifr) == 0)
			memcpy(n->name, ifr.ifr_name, IF_NAMESIZE);
		else
			n->name[0] = '\0';
		n->name[IF_NAMESIZE - 1] = '\0';
		n->index = index;
		n->when = q->now;
	}
	memcpy(name, n->name, IF_NAMESIZE);
}

/* The divert address of a queued packet from its attributes. */
static void
fill_addr(struct queue *q, struct nlattr **attr, const uint8_t *data, size_t len,
    struct divert_addr *a)
{
	struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	struct nfqnl_msg_packet_timestamp ts;
	struct nfqnl_msg_packet_hw *hw;
	struct timespec now;
	uint32_t in = 0, out = 0;

	memset(a, 0, sizeof(*a));
	a->id = ntohl(ph->packet_id);
	a->port = q->port;
	a->flags = DIVERT_ADDR_QUEUE;
	a->hook = ph->hook;
	/* Forwarded packets count as outgoing, on their out-interface (DESIGN). */
	a->dir = ph->hook <= NF_INET_LOCAL_IN ? DIVERT_IN : DIVERT_OUT;
	if (attr[NFQA_IFINDEX_INDEV] != NULL)
		in = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV]));
	if (attr[NFQA_IFINDEX_OUTDEV] != NULL)
		out = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_OUTDEV]));
	a->ifindex = a->dir == DIVERT_IN ? in : out;
	a->other_ifindex = a->dir == DIVERT_OUT ? in : 0;
	if (attr[NFQA_MARK] != NULL)
		a->mark = ntohl(mnl_attr_get_u32(attr[NFQA_MARK]));
	a->proto = ntohs(ph->hw_protocol);
	if (a->proto == 0 && len > 0)
		a->proto = data[0] >> 4 == 4 ? ETH_P_IP : data[0] >> 4 == 6 ? ETH_P_IPV6 : 0;
	if (attr[NFQA_HWADDR] != NULL && a->dir == DIVERT_IN) {
		hw = mnl_attr_get_payload(attr[NFQA_HWADDR]);
		a->halen = ntohs(hw->hw_addrlen) > 8 ? 8 : (uint8_t)ntohs(hw->hw_addrlen);
		memcpy(a->haddr, hw->hw_addr, a->halen);
	}
	/* Longer than the copy range (a 64 KiB IPv6 packet on lo): say so. */
	if (attr[NFQA_CAP_LEN] != NULL && ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) > len)
		a->cut = ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) - (uint32_t)len;
	if (attr[NFQA_TIMESTAMP] != NULL) {
		/* Attributes are only 4-byte aligned: copy the 64-bit fields out. */
		memcpy(&ts, mnl_attr_get_payload(attr[NFQA_TIMESTAMP]), sizeof(ts));
		a->ts.tv_sec = (time_t)be64toh(ts.sec);
		a->ts.tv_usec = (suseconds_t)be64toh(ts.usec);
	} else {
		clock_gettime(CLOCK_REALTIME, &now);
		a->ts.tv_sec = now.tv_sec;
		a->ts.tv_usec = now.tv_nsec / 1000;
	}
	if (a->ifindex != 0)
		name_of(q, a->ifindex, a->ifname);
	if (a->other_ifindex != 0)
		name_of(q, a->other_ifindex, a->other_ifname);
}

/*
 * What the kernel says of a packet taken with GSO on: a GSO packet is
 * flagged so, and an L4 checksum left partial (for the device to finish)
 * is summed here, so that what is read, written to a stream, edited and
 * given back is the packet as it goes on the wire, but for its size.  A
 * packet given back with bytes is no longer partial for the kernel
 * (nfqnl_mangle makes it CHECKSUM_NONE): a TCP GSO packet's sum is then
 * done again as it is cut (tcp4_gso_segment), a UDP one's starts from the
 * field, which the verdict puts back (l4sum_udp_seed), and any other is
 * checked whole by its receiver.
 */
static void
skb_info(struct nlattr **attr, uint8_t *data, size_t len, struct divert_addr *a)
{
	uint32_t info;

	if (attr[NFQA_SKB_INFO] == NULL)
		return;
	info = ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO]));
	if (info & NFQA_SKB_GSO)
		a->flags |= DIVERT_ADDR_GSO;
	/* What l4sum_complete cannot sum (see there) goes on as it came. */
	if ((info & NFQA_SKB_CSUMNOTREADY) && a->cut == 0)
		(void)l4sum_complete(data, len);
}

/*
 * The next packet of the last receive, its bytes and address; 0 when none
 * is left.  A truncated datagram cannot be answered safely, and messages
 * that are not packets (the kernel's errors for verdicts) need no answer:
 * both are skipped.
 */
static int
next_packet(struct queue *q, struct divert_addr *a, uint8_t **data, size_t *len)
{
	struct nlattr *attr[NFQA_MAX + 1];
	const struct nlmsghdr *nlh;
	struct mmsghdr *m;
	int left;

	while (q->next < q->nmsg) {
		m = &q->msgs[q->next];
		left = (int)m->msg_len - q->off;
		nlh = (const void *)(q->bufs[q->next] + q->off);
		if ((m->msg_hdr.msg_flags & MSG_TRUNC) || !mnl_nlmsg_ok(nlh, left)) {
			q->next++;
			q->off = 0;
			continue;
		}
		q->off += (int)NLMSG_ALIGN(nlh->nlmsg_len);
		memset(attr, 0, sizeof(attr));
		if (nlh->nlmsg_type != (NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET) ||
		    nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
			continue;
		*data = NULL;
		*len = 0;
		if (attr[NFQA_PAYLOAD] != NULL) {
			*data = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
			*len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
		}
		fill_addr(q, attr, *data, *len, a);
		skb_info(attr, *data, *len, a);
		q->cur = a->id;
		q->cur_gso = (a->flags & DIVERT_ADDR_GSO) != 0;
		return 1;
	}
	return 0;
}

/*
 * Read up to vlen datagrams that are ready; when none is and wait is set,
 * send the verdicts buffered and wait for one (unless the fd is
 * non-blocking): 0, or -1 with errno (EAGAIN: nothing ready).
 */
static int
receive(struct queue *q, unsigned vlen, int wait)
{
	struct timespec now;
	int n;

	n = recvmmsg(q->fd, q->msgs, vlen, MSG_DONTWAIT, NULL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait) {
		if (queue_flush(q) < 0)
			return -1;
		n = recvmmsg(q->fd, q->msgs, vlen, 0, NULL);
	}
	if (n < 0) {
		if (errno == ENOBUFS)
			q->overruns++;
		return -1;
	}
	q->nmsg = n;
	q->next = 0;
	q->off = 0;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	q->now = now.tv_sec;
	q->now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	return 0;
}

/* Words for a failed receive. */
static int
receive_failed(struct divert *h)
{
	if (errno == ENOBUFS)
		return handle_fail(h, ENOBUFS, "divert port %d: the kernel dropped packets "
		    "for want of room in the socket", h->port);
	return handle_fail(h, errno, "receive from divert port %d: %s", h->port,
	    strerror(errno));
}

static int
no_port(struct divert *h)
{
	if (h->join != NULL)
		return handle_fail(h, EINVAL, "a joined handle receives nothing and answers "
		    "with divert_verdict_in_place");
	return handle_fail(h, EINVAL, "a send-only handle has no divert port");
}

int
divert_dispatch(struct divert *h, divert_cb cb, void *arg)
{
	struct queue *q = h->q;
	struct divert_addr a;
	uint8_t *data;
	size_t len;
	int n = 0, verdict, failed = 0;

	if (q == NULL)
		return no_port(h);
	/*
	 * What a divert_recv left is handed out first; what is read here is
	 * handed out whole (a datagram is a packet: at most DIVERT_BATCH), so
	 * nothing ready waits in the handle where poll() cannot see it.
	 */
	if (q->next >= q->nmsg && receive(q, DIVERT_BATCH, 0) < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : receive_failed(h);
	while (next_packet(q, &a, &data, &len)) {
		n++;
		q->received++;
		q->cur = a.id;
		q->in_cb = 1;
		q->answered = 0;
		verdict = cb(&a, data, len, arg);
		q->in_cb = 0;
		/* Go on: what is left of the batch would wait unseen by poll(). */
		if (!q->answered && answer(q, a.id, verdict) < 0 && failed == 0)
			failed = errno;
	}
	if (queue_flush(q) < 0 && failed == 0)
		failed = errno;
	if (failed != 0)
		return handle_fail(h, failed, "verdict on divert port %d: %s", h->port,
		    strerror(failed));
	return n;
}

ssize_t
divert_recv(struct divert *h, void *buf, size_t size, struct divert_addr *from)
{
	struct queue *q = h->q;
	struct divert_addr a;
	uint8_t *data;
	size_t len;

	if (q == NULL)
		return no_port(h);
	/* One datagram at a time: what poll() says is ready is all there is. */
	while (!next_packet(q, &a, &data, &len))
		if (receive(q, 1, 1) < 0)
			return receive_failed(h);
	q->received++;
	if (len > 0)
		memcpy(buf, data, len < size ? len : size);
	if (from != NULL)
		*from = a;
	if (answer(q, a.id, h->flags & DIVERT_HOLD ? DIVERT_HOLD_IT : DIVERT_DROP) < 0)
		return handle_fail(h, errno, "verdict on divert port %d: %s", h->port,
		    strerror(errno));
	return (ssize_t)len;
}

/* Whether the packet id, read last or held, is a GSO packet. */
static int
is_gso(const struct queue *q, uint32_t id)
{
	unsigned i;

	if (id == q->cur)
		return q->cur_gso;
	i = held_find(&q->held, id);
	return i < q->held.tail && (q->held.st[i] & HELD_GSO);
}

/*
 * A verdict carrying the packet's new contents, sent at once without
 * copying them; len fits a netlink attribute (divert_verdict checks).  A
 * GSO packet's UDP checksum goes back as the partial sum the kernel's
 * segmentation starts from (l4sum_udp_seed): the bytes around it as they are.
 */
static int
send_with_payload(struct queue *q, uint32_t id, int nf, const void *pkt, size_t len)
{
	static const uint8_t pad[NLA_ALIGNTO];
	union { char buf[VERDICT_SIZE]; struct nlmsghdr align; } hdr;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct iovec iov[5];
	struct msghdr msg = { .msg_name = &kernel, .msg_namelen = sizeof(kernel),
		.msg_iov = iov };
	size_t hlen = verdict_msg(hdr.buf, NFQNL_MSG_VERDICT, q->port, id, nf, 1, len), off;
	uint8_t seed[2];
	uint16_t v;

	iov[0] = (struct iovec){ hdr.buf, hlen };
	if (is_gso(q, id) && l4sum_udp_seed(pkt, len, &off, &v) == 0) {
		put16(seed, v);
		iov[1] = (struct iovec){ (void *)pkt, off };
		iov[2] = (struct iovec){ seed, 2 };
		iov[3] = (struct iovec){ (uint8_t *)pkt + off + 2, len - off - 2 };
		msg.msg_iovlen = 4;
	} else {
		iov[1] = (struct iovec){ (void *)pkt, len };
		msg.msg_iovlen = 2;
	}
	iov[msg.msg_iovlen++] = (struct iovec){ (void *)pad, NLA_ALIGN(len) - len };
	return sendmsg(q->fd, &msg, 0) < 0 ? -1 : 0;
}

int
divert_verdict(struct divert *h, uint32_t id, int verdict, const void *pkt, size_t len)
{
	struct queue *q = h->q;
	int nf = verdict == DIVERT_DROP ? NF_DROP : NF_ACCEPT, rc;

	if (q == NULL)
		return no_port(h);
	if (verdict != DIVERT_DROP && verdict != DIVERT_ACCEPT)
		return handle_fail(h, EINVAL, "a verdict is DIVERT_DROP or DIVERT_ACCEPT");
	if (pkt != NULL && len > VERDICT_PAYLOAD_MAX)
		return handle_fail(h, EMSGSIZE, "verdict on divert port %d: new contents of "
		    "%zu bytes: at most %d", h->port, len, VERDICT_PAYLOAD_MAX);
	if (pkt == NULL)
		rc = put_verdict(q, NFQNL_MSG_VERDICT, id, nf);
	else
		rc = send_verdicts(q) < 0 ? -1 : send_with_payload(q, id, nf, pkt, len);
	/* Failed: the packet stays as it was (held, or the callback's to answer). */
	if (rc < 0)
		return handle_fail(h, errno, "verdict on divert port %d: %s", h->port,
		    strerror(errno));
	if (q->in_cb && id == q->cur)
		q->answered = 1;	/* the callback's return value no longer counts */
	else
		held_remove(&q->held, id);
	return 0;
}

/* Verdicts one by one for what the program holds in [head, end): 0, or -1. */
static int
answer_own(struct queue *q, unsigned end, int nf)
{
	struct held *s = &q->held;
	unsigned i;

	for (i = s->head; i < end; i++)
		if (held_own(s, i)) {
			if (put_verdict(q, NFQNL_MSG_VERDICT, s->id[i], nf) < 0)
				return -1;
			held_gone(s, i);
		}
	held_trim(s);
	return 0;
}

int
divert_verdict_upto(struct divert *h, uint32_t id, int verdict)
{
	struct queue *q = h->q;
	int nf = verdict == DIVERT_DROP ? NF_DROP : NF_ACCEPT, mixed, rc;
	uint32_t last;
	unsigned end;

	if (q == NULL)
		return no_port(h);
	if (verdict != DIVERT_DROP && verdict != DIVERT_ACCEPT)
		return handle_fail(h, EINVAL, "a verdict is DIVERT_DROP or DIVERT_ACCEPT");
	/*
	 * Up to the newest held id, not past it: every packet up to there is
	 * held or answered (a run is younger than what is held).  Packets held
	 * for the joiners are theirs: with one among them, one message each.
	 */
	if (!held_upto(&q->held, id, &last, &end, &mixed))
		return 0;
	if (mixed)
		rc = answer_own(q, end, nf);
	else if ((rc = put_verdict(q, NFQNL_MSG_VERDICT_BATCH, last, nf)) == 0)
		held_forget_own(&q->held, end);
	if (rc < 0)
		return handle_fail(h, errno, "verdict on divert port %d: %s", h->port,
		    strerror(errno));
	return 0;
}

long
divert_held_age(const struct divert *h)
{
	const struct held *s;
	unsigned i;
	uint64_t now;

	if (h->q == NULL)
		return -1;
	s = &h->q->held;
	/* Called twice a loop: without joiners' packets (the usual case), no walk. */
	if (s->shared == 0 || (i = held_first_shared(s)) == s->tail)
		return -1;
	now = mono_ms();
	return now > s->when[i] ? (long)(now - s->when[i]) : 0;
}

int
divert_verdict_expired(struct divert *h, unsigned ms, int verdict)
{
	struct queue *q = h->q;
	struct held *s;
	int nf = verdict == DIVERT_DROP ? NF_DROP : NF_ACCEPT, own = 0, n = 0;
	unsigned i, end, last = 0;
	uint64_t now = mono_ms();

	if (q == NULL)
		return no_port(h);
	if (verdict != DIVERT_DROP && verdict != DIVERT_ACCEPT)
		return handle_fail(h, EINVAL, "a verdict is DIVERT_DROP or DIVERT_ACCEPT");
	s = &q->held;
	/* Times grow along the list: the expired ones are a prefix of it. */
	for (end = s->head; end < s->tail && s->when[end] + ms <= now; end++)
		if ((s->st[end] & (HELD_GONE | HELD_SHARED)) == HELD_SHARED)
			last = end + 1;
	if (last == 0)
		return 0;
	for (i = s->head; i < last; i++)
		own |= held_own(s, i);
	/* What a run owes goes first: the batch must not overtake it. */
	if (q->run.n > 0 && end_run(q) < 0)
		goto failed;
	if (!own && put_verdict(q, NFQNL_MSG_VERDICT_BATCH, s->id[last - 1], nf) < 0)
		goto failed;
	for (i = s->head; i < last; i++) {
		if ((s->st[i] & (HELD_GONE | HELD_SHARED)) != HELD_SHARED)
			continue;
		/* A program's own packet among them: one message each. */
		if (own && put_verdict(q, NFQNL_MSG_VERDICT, s->id[i], nf) < 0)
			goto failed;
		held_gone(s, i);
		n++;
	}
	held_trim(s);
	return n;
failed:
	held_trim(s);
	return handle_fail(h, errno, "verdict on divert port %d: %s", h->port,
	    strerror(errno));
}

/*
 * The receive buffer for a queue of n packets: n messages of the largest
 * copy fit (the kernel doubles what is asked, for its own accounting).  The
 * socket only ever holds messages for packets the queue holds, so more room
 * would never be used, and less would make the socket, not the queue, the
 * limit: the kernel would drop packets (ENOBUFS) the queue had room for.
 */
static int
rcvbuf_for(uint32_t n)
{
	uint64_t size = (uint64_t)n * MSG_SIZE;

	if (size < RCVBUF_MIN)
		return RCVBUF_MIN;
	return size > RCVBUF_MAX ? RCVBUF_MAX : (int)size;
}

/* Root may go past rmem_max; others get what the sysctl allows. */
static void
size_rcvbuf(struct queue *q, uint32_t n)
{
	int size = rcvbuf_for(n);

	if (setsockopt(q->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(q->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

/* Packets that arrive while we bind are let through; only the ack matters here. */
static int
config_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *attr[NFQA_MAX + 1] = { NULL };
	struct nfqnl_msg_packet_hdr *ph;

	if (nfq_nlmsg_parse(nlh, attr) == 0 && attr[NFQA_PACKET_HDR] != NULL) {
		ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
		put_verdict(data, NFQNL_MSG_VERDICT, ntohl(ph->packet_id), NF_ACCEPT);
	}
	return MNL_CB_OK;
}

/* Bind the port, copying whole packets, in one request; 0 or -1 with errno. */
static int
bind_port(struct queue *q, char *why, size_t whylen)
{
	union { char buf[256]; struct nlmsghdr align; } req;
	struct nlmsghdr *nlh = nfq_nlmsg_put(req.buf, NFQNL_MSG_CONFIG, q->port);
	int rc;

	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, DIVERT_QUEUE_MAXLEN);
	if ((rc = nl_talk(&q->nl, nlh, config_cb, q, q->bufs[0], MSG_SIZE, why, whylen)) < 0) {
		errno = -rc;
		return -1;
	}
	return send_verdicts(q);
}

struct queue *
queue_open(uint16_t port, char *why, size_t whylen)
{
	char kernel[128];
	struct queue *q;
	int i, rc, saved;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	q->port = port;
	if ((rc = nl_open(&q->nl, NETLINK_NETFILTER)) < 0) {
		errno = -rc;
		snprintf(why, whylen, "cannot open a netfilter socket: %s", strerror(errno));
		goto fail;
	}
	q->fd = mnl_socket_get_fd(q->nl.sock);
	size_rcvbuf(q, DIVERT_QUEUE_MAXLEN);
	for (i = 0; i < DIVERT_BATCH; i++) {
		q->iov[i] = (struct iovec){ q->bufs[i], MSG_SIZE };
		q->msgs[i].msg_hdr.msg_iov = &q->iov[i];
		q->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	if (bind_port(q, kernel, sizeof(kernel)) < 0) {
		snprintf(why, whylen, "cannot bind divert port %u: %s%s%s", port, strerror(errno),
		    kernel[0] ? ": " : "", kernel);
		goto fail;
	}
	return q;
fail:
	saved = errno;
	nl_close(&q->nl);
	free(q);
	errno = saved;
	return NULL;
}

int
queue_fd(const struct queue *q)
{
	return q->fd;
}

void
queue_counts(const struct queue *q, uint64_t *received, uint64_t *overruns)
{
	*received = q->received;
	*overruns = q->overruns;
}

void
queue_close(struct queue *q)
{
	union { char buf[128]; struct nlmsghdr align; } req;
	struct nlmsghdr *nlh;

	if (q == NULL)
		return;
	queue_flush(q);
	nlh = nfq_nlmsg_put(req.buf, NFQNL_MSG_CONFIG, q->port);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
	mnl_socket_sendto(q->nl.sock, nlh, nlh->nlmsg_len);
	nl_close(&q->nl);
	held_free(&q->held);
	free(q);
}

/*
 * Send a config message for the port and take the kernel's answer: 0, or an
 * errno with the kernel's words in kernel.  What comes meanwhile is let
 * through (config_cb), answered here.
 */
static int
configure(struct queue *q, struct nlmsghdr *nlh, char *kernel, size_t kernlen)
{
	int rc;

	if ((rc = nl_talk(&q->nl, nlh, config_cb, q, q->bufs[0], MSG_SIZE, kernel,
	    kernlen)) < 0)
		return -rc;
	return send_verdicts(q) < 0 ? errno : 0;
}

int
divert_set_queue_len(struct divert *h, uint32_t n)
{
	union { char buf[128]; struct nlmsghdr align; } req;
	struct queue *q = h->q;
	struct nlmsghdr *nlh;
	char kernel[128];
	int rc;

	if (q == NULL)
		return no_port(h);
	if (n == 0)
		return handle_fail(h, EINVAL, "a queue holds 1 packet or more");
	nlh = nfq_nlmsg_put(req.buf, NFQNL_MSG_CONFIG, q->port);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, n);
	if ((rc = configure(q, nlh, kernel, sizeof(kernel))) != 0)
		return handle_fail(h, rc, "divert port %d: cannot set the queue length to %u: "
		    "%s%s%s", h->port, n, strerror(rc), kernel[0] ? ": " : "", kernel);
	size_rcvbuf(q, n);
	return 0;
}

/* Turn one of the queue's NFQA_CFG_F_* flags on or off; the others stay as they are. */
static int
set_flag(struct divert *h, uint32_t flag, int on, const char *what)
{
	union { char buf[128]; struct nlmsghdr align; } req;
	struct queue *q = h->q;
	struct nlmsghdr *nlh;
	char kernel[128];
	int rc;

	if (q == NULL)
		return no_port(h);
	nlh = nfq_nlmsg_put(req.buf, NFQNL_MSG_CONFIG, q->port);
	/* The mask says which flags this message sets. */
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(on ? flag : 0));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flag));
	if ((rc = configure(q, nlh, kernel, sizeof(kernel))) != 0)
		return handle_fail(h, rc, "divert port %d: cannot turn %s %s: %s%s%s",
		    h->port, what, on ? "on" : "off", strerror(rc), kernel[0] ? ": " : "", kernel);
	return 0;
}

int
divert_set_fail_open(struct divert *h, int on)
{
	return set_flag(h, NFQA_CFG_F_FAIL_OPEN, on, "fail-open");
}

int
divert_set_gso(struct divert *h, int on)
{
	return set_flag(h, NFQA_CFG_F_GSO, on, "GSO");
}
