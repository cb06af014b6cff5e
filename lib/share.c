/*
 * share.c - in place across processes: a bound handle offers its port, and
 * other processes of the network namespace join it to answer the packets
 * it holds for them, on the port's own netlink socket.
 *
 * The meeting point is a SOCK_SEQPACKET Unix socket in the abstract
 * namespace, "\0divert/PORT": one per network namespace by construction
 * (as the port itself), gone with the process that made it.  One message a
 * datagram, struct share_msg, in host order (both ends are on this host):
 *
 *	joiner -> listener	JOIN  {flags}			at connect
 *	listener -> joiner	WELCOME {port, session, hold_ms}
 *				with the port's socket (SCM_RIGHTS)
 *			     or REFUSE {error}			and hangs up
 *	joiner -> listener	BYE {accepted, dropped}		before it closes
 *
 * A hangup either way ends the join: the joiner closes its copy of the
 * port's socket at once (while any process holds it the port stays bound
 * to it), the listener counts the joiner gone.  Only a process of the
 * listener's user, or root, may join: each end checks the other's
 * credentials (SO_PEERCRED), as an abstract socket has no permissions.
 *
 * A joiner never reads the port's socket (the listener alone does, and
 * skips the kernel's answers to failed verdicts); it sends verdicts
 * without NLM_F_ACK, several messages in one sendmsg, each with its new
 * contents.  Batch verdicts are no use to it: they answer every id up to
 * one, and the ids a joiner answers are interleaved with the listener's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#include "bytes.h"
#include "handle.h"
#include "l4sum.h"

#define SHARE_MAGIC	0x44565254u	/* "DVRT" */
#define SHARE_VERSION	1
#define SHARE_BACKLOG	16
#define PEERS_WAITING	16		/* connected, not joined yet: at most */
#define PEER_JOIN_MS	1000		/* a peer that has not joined by then is dropped */
#define ACCEPT_BACKOFF_MS 100		/* after a failed accept, the meeting point rests */
#define JOIN_MSGS	64		/* verdicts a joined handle sends at once, at most */
#define JOIN_BYTES	(160 << 10)	/* and bytes (the socket's send buffer bounds a send) */
#define JOIN_SLACK	64		/* what netlink keeps of the send buffer, and more */

enum { MSG_JOIN = 1, MSG_WELCOME, MSG_REFUSE, MSG_BYE };

struct share_msg {
	uint32_t	magic;
	uint16_t	version;
	uint16_t	type;
	uint32_t	flags;		/* JOIN: DIVERT_JOIN_* */
	uint32_t	hold_ms;	/* WELCOME */
	uint32_t	port;		/* WELCOME */
	int32_t		error;		/* REFUSE: an errno */
	uint64_t	session;	/* WELCOME */
	uint64_t	accepted;	/* BYE */
	uint64_t	dropped;	/* BYE */
};

/* ---- both ends -------------------------------------------------------- */

/* The meeting point of port: "\0divert/PORT"; its address length. */
static socklen_t
meeting_point(uint16_t port, struct sockaddr_un *sun)
{
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, "divert/%u", port);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* Whether the process at the other end of fd may share our port: our user, or root. */
static int
peer_trusted(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	return cred.uid == 0 || cred.uid == geteuid();
}

static void
msg_init(struct share_msg *m, int type)
{
	memset(m, 0, sizeof(*m));
	m->magic = SHARE_MAGIC;
	m->version = SHARE_VERSION;
	m->type = (uint16_t)type;
}

/*
 * Send m, with fd passed along when fd >= 0, never waiting (a peer that
 * does not read is not worth waiting for): 0, or -1 with errno.
 */
static int
msg_send(int sock, const struct share_msg *m, int fd)
{
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
	struct iovec iov = { (void *)m, sizeof(*m) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(*m) ? 0 : -1;
}

/*
 * Receive one message without waiting, and the descriptor passed with it
 * in *fd (-1 none; NULL: none wanted, any is closed).  1 for a message, 0
 * when the peer hung up, -1 with errno (EAGAIN: none yet; EPROTO: not one
 * of ours).
 */
static int
msg_recv(int sock, struct share_msg *m, int *fd)
{
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
	struct iovec iov = { m, sizeof(*m) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c;
	ssize_t n;
	int got = -1;

	if (fd != NULL)
		*fd = -1;
	n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(&got, CMSG_DATA(c), sizeof(int));
	if (fd != NULL)
		*fd = got;
	else if (got >= 0)
		close(got);
	if (n == 0)
		return 0;
	if ((size_t)n != sizeof(*m) || m->magic != SHARE_MAGIC || m->version != SHARE_VERSION ||
	    (msg.msg_flags & MSG_TRUNC)) {
		if (fd != NULL && *fd >= 0)
			close(*fd);
		if (fd != NULL)
			*fd = -1;
		errno = EPROTO;
		return -1;
	}
	return 1;
}

uint64_t
divert_session(const struct divert *h)
{
	return h->session;
}

/* ---- the listener's side ---------------------------------------------- */

/* A process that connected: it has asked to join (state JOINED) or not yet. */
struct peer {
	int		fd;
	int		joined;
	unsigned	flags;		/* DIVERT_JOIN_* */
	uint64_t	since;		/* ms (monotonic): when it connected */
};

struct offer {
	int		 lfd;		/* the meeting point, listening */
	int		 epfd;		/* lfd, tfd and every peer */
	int		 tfd;		/* a timer: the next peer to drop, the rest's end */
	unsigned	 hold_ms;
	struct peer	*peers;
	unsigned	 npeers, cap;
	unsigned	 joined, injectors;
	uint64_t	 joins, accepted, dropped;
	uint64_t	 resting_until;	/* ms: lfd out of epoll until then (0: in) */
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
no_offer(struct divert *h)
{
	return handle_fail(h, EINVAL, "divert port %d is not offered (divert_offer)", h->port);
}

int
divert_offer(struct divert *h, unsigned hold_ms)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct sockaddr_un sun;
	socklen_t len;
	struct offer *o;
	int e;

	if (h->q == NULL)
		return handle_fail(h, EINVAL, "only a bound handle can offer its port");
	if (h->offer != NULL)
		return 0;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return handle_fail(h, ENOMEM, "out of memory");
	o->hold_ms = hold_ms;
	o->epfd = o->tfd = -1;
	len = meeting_point((uint16_t)h->port, &sun);
	o->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (o->lfd < 0 || bind(o->lfd, (struct sockaddr *)&sun, len) < 0 ||
	    listen(o->lfd, SHARE_BACKLOG) < 0 ||
	    (o->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (o->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0)
		goto failed;
	ev.data.fd = o->lfd;
	if (epoll_ctl(o->epfd, EPOLL_CTL_ADD, o->lfd, &ev) < 0)
		goto failed;
	ev.data.fd = o->tfd;
	if (epoll_ctl(o->epfd, EPOLL_CTL_ADD, o->tfd, &ev) < 0)
		goto failed;
	h->offer = o;
	return 0;
failed:
	e = errno;
	if (o->lfd >= 0)
		close(o->lfd);
	if (o->epfd >= 0)
		close(o->epfd);
	if (o->tfd >= 0)
		close(o->tfd);
	free(o);
	if (e == EADDRINUSE)
		return handle_fail(h, e, "divert port %d is offered by another process in "
		    "this network namespace", h->port);
	return handle_fail(h, e, "cannot offer divert port %d: %s", h->port, strerror(e));
}

int
divert_offer_fd(const struct divert *h)
{
	return h->offer != NULL ? h->offer->epfd : -1;
}

static struct peer *
peer_of(struct offer *o, int fd)
{
	unsigned i;

	for (i = 0; i < o->npeers; i++)
		if (o->peers[i].fd == fd)
			return &o->peers[i];
	return NULL;
}

static void
peer_drop(struct offer *o, struct peer *p)
{
	if (p->joined) {
		o->joined--;
		if (p->flags & DIVERT_JOIN_INJECT)
			o->injectors--;
	}
	epoll_ctl(o->epfd, EPOLL_CTL_DEL, p->fd, NULL);
	close(p->fd);
	*p = o->peers[--o->npeers];
}

static void
peer_refuse(struct offer *o, struct peer *p, int error)
{
	struct share_msg m;

	msg_init(&m, MSG_REFUSE);
	m.error = error;
	msg_send(p->fd, &m, -1);
	peer_drop(o, p);
}

/* A connection not taken in: told why (it may be a joiner), and closed. */
static void
refuse_fd(int fd, int error)
{
	struct share_msg m;

	msg_init(&m, MSG_REFUSE);
	m.error = error;
	msg_send(fd, &m, -1);
	close(fd);
}

/* Peers connected that have not asked to join yet. */
static unsigned
peers_waiting(const struct offer *o)
{
	unsigned i, n = 0;

	for (i = 0; i < o->npeers; i++)
		n += !o->peers[i].joined;
	return n;
}

/* Peers that connected and said nothing for PEER_JOIN_MS: their place is wanted. */
static void
drop_silent_peers(struct offer *o, uint64_t now)
{
	unsigned i = 0;

	while (i < o->npeers)
		if (!o->peers[i].joined && now - o->peers[i].since >= PEER_JOIN_MS)
			peer_drop(o, &o->peers[i]);	/* the last one moves to i */
		else
			i++;
}

/*
 * The meeting point out of epoll for a while: a connection accept4 cannot
 * take (EMFILE, ENOBUFS ...) stays in the backlog, and would be reported
 * again at once, forever.
 */
static void
rest_meeting_point(struct offer *o, uint64_t now)
{
	struct epoll_event ev = { .events = 0, .data.fd = o->lfd };

	if (epoll_ctl(o->epfd, EPOLL_CTL_MOD, o->lfd, &ev) == 0)
		o->resting_until = now + ACCEPT_BACKOFF_MS;
}

static void
wake_meeting_point(struct offer *o, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = o->lfd };

	if (o->resting_until != 0 && now >= o->resting_until &&
	    epoll_ctl(o->epfd, EPOLL_CTL_MOD, o->lfd, &ev) == 0)
		o->resting_until = 0;
}

/*
 * The timer, for the next thing due without a word from anyone: a silent
 * peer's drop, the end of the meeting point's rest (the caller polls the
 * offer's descriptor: it wakes then).
 */
static void
set_timer(struct offer *o)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	uint64_t due = o->resting_until, at;
	unsigned i;

	for (i = 0; i < o->npeers; i++)
		if (!o->peers[i].joined && ((at = o->peers[i].since + PEER_JOIN_MS) < due ||
		    due == 0))
			due = at;
	if (due != 0) {		/* absolute, on the same clock as mono_ms */
		its.it_value.tv_sec = (time_t)(due / 1000);
		its.it_value.tv_nsec = (long)(due % 1000) * 1000000;
	}
	timerfd_settime(o->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Room for one more peer in o->peers: 0, or -1. */
static int
peer_room(struct offer *o)
{
	struct peer *p;

	if (o->npeers < o->cap)
		return 0;
	if ((p = reallocarray(o->peers, o->cap ? o->cap * 2 : 4, sizeof(*p))) == NULL)
		return -1;
	o->peers = p;
	o->cap = o->cap ? o->cap * 2 : 4;
	return 0;
}

/*
 * Take in the processes waiting at the meeting point (a backlog's worth at
 * most); they are heard from later.  Past PEERS_WAITING silent ones, a
 * newcomer is refused: silent peers cannot lock joiners out.
 */
static void
take_peers(struct offer *o, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd, i;

	for (i = 0; i < SHARE_BACKLOG; i++) {
		if ((fd = accept4(o->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				rest_meeting_point(o, now);
			return;
		}
		ev.data.fd = fd;
		if (peers_waiting(o) >= PEERS_WAITING || peer_room(o) < 0 ||
		    epoll_ctl(o->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			refuse_fd(fd, EBUSY);
			continue;
		}
		o->peers[o->npeers++] = (struct peer){ .fd = fd, .since = now };
		if (!peer_trusted(fd))
			peer_refuse(o, &o->peers[o->npeers - 1], EPERM);
	}
}

/* A join: the port's socket, the session and the hold timeout go to the peer. */
static void
welcome(struct divert *h, struct offer *o, struct peer *p, const struct share_msg *in)
{
	struct share_msg m;

	msg_init(&m, MSG_WELCOME);
	m.port = (uint32_t)h->port;
	m.session = h->session;
	m.hold_ms = o->hold_ms;
	if (msg_send(p->fd, &m, queue_fd(h->q)) < 0) {
		peer_drop(o, p);
		return;
	}
	p->joined = 1;
	p->flags = in->flags;
	o->joined++;
	o->joins++;
	if (p->flags & DIVERT_JOIN_INJECT)
		o->injectors++;
}

/* What a peer says: a join, or its counts as it leaves; or it hung up. */
static void
hear(struct divert *h, struct offer *o, struct peer *p)
{
	struct share_msg m;
	int rc;

	while ((rc = msg_recv(p->fd, &m, NULL)) == 1) {
		if (m.type == MSG_JOIN && !p->joined) {
			welcome(h, o, p, &m);
			if (!p->joined)
				return;		/* dropped */
		} else if (m.type == MSG_BYE && p->joined) {
			o->accepted += m.accepted;
			o->dropped += m.dropped;
			peer_drop(o, p);
			return;
		} else {
			peer_drop(o, p);	/* out of turn */
			return;
		}
	}
	if (rc == 0 || errno != EAGAIN)
		peer_drop(o, p);
}

/*
 * A few looks at the meeting point and the peers, so that a peer taken in
 * is heard in the same call (its JOIN is usually there already); bounded,
 * as a loop until nothing is readable would spin on anything that stays
 * readable (the caller comes back).
 */
#define OFFER_ROUNDS	4

int
divert_offer_run(struct divert *h)
{
	struct offer *o = h->offer;
	struct epoll_event ev[16];
	struct peer *p;
	uint64_t now, expiries;
	int n, i, round;

	if (o == NULL)
		return no_offer(h);
	now = mono_ms();
	drop_silent_peers(o, now);
	wake_meeting_point(o, now);
	for (round = 0; round < OFFER_ROUNDS; round++) {
		if ((n = epoll_wait(o->epfd, ev, 16, 0)) < 0) {
			if (errno == EINTR)
				break;
			return handle_fail(h, errno, "divert port %d: joiners: %s", h->port,
			    strerror(errno));
		}
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			if (ev[i].data.fd == o->lfd)
				take_peers(o, now);
			else if (ev[i].data.fd == o->tfd)
				while (read(o->tfd, &expiries, sizeof(expiries)) > 0)
					;
			else if ((p = peer_of(o, ev[i].data.fd)) != NULL)
				hear(h, o, p);
		}
	}
	set_timer(o);
	return 0;
}

int
divert_offer_info(const struct divert *h, struct divert_joiners *j)
{
	const struct offer *o = h->offer;

	memset(j, 0, sizeof(*j));
	if (o == NULL) {
		errno = EINVAL;
		return -1;
	}
	j->joined = o->joined;
	j->injectors = o->injectors;
	j->joins = o->joins;
	j->accepted = o->accepted;
	j->dropped = o->dropped;
	return 0;
}

void
offer_close(struct divert *h)
{
	struct offer *o = h->offer;

	if (o == NULL)
		return;
	while (o->npeers > 0)
		peer_drop(o, &o->peers[o->npeers - 1]);
	close(o->lfd);
	close(o->epfd);
	close(o->tfd);
	free(o->peers);
	free(o);
	h->offer = NULL;
}

/* ---- the joiner's side ------------------------------------------------ */

enum { JOIN_WAITING, JOIN_JOINED, JOIN_GONE };

struct joined {
	int		 fd;		/* to the listener */
	int		 qfd;		/* the port's socket; -1 before WELCOME, after a hangup */
	int		 state;		/* JOIN_* */
	int		 error;		/* why it is gone: EPERM, EPIPE ... */
	unsigned	 flags;		/* DIVERT_JOIN_* */
	unsigned	 hold_ms;
	uint64_t	 accepted, dropped;	/* verdicts sent */
	uint64_t	 failed;	/* verdicts lost: their send failed, or the listener left */
	size_t		 limit;		/* bytes one send may carry */
	size_t		 used;		/* bytes of verdicts in buf */
	unsigned	 n;		/* verdicts in buf */
	unsigned	 n_dropped;	/* ...of which drops */
	uint8_t		*buf;		/* JOIN_BYTES + one message of the largest */
};

#define JOIN_BUF	(JOIN_BYTES + VERDICT_SIZE + VERDICT_PAYLOAD_MAX + 8)

/* Fail an open of a joined handle with words in errbuf. */
static struct divert *
join_failed(struct divert *h, char *errbuf, int err, const char *fmt, int port)
{
	if (errbuf != NULL)
		snprintf(errbuf, DIVERT_ERRBUF_SIZE, fmt, port, strerror(err));
	divert_close(h);
	errno = err;
	return NULL;
}

struct divert *
divert_join(int port, unsigned flags, char *errbuf)
{
	struct sockaddr_un sun;
	struct share_msg m;
	struct divert *h;
	struct joined *j;
	socklen_t len;

	if (port < 0 || port > 65535 || (flags & ~(unsigned)DIVERT_JOIN_INJECT) != 0) {
		if (errbuf != NULL)
			snprintf(errbuf, DIVERT_ERRBUF_SIZE, port < 0 || port > 65535 ?
			    "a divert port is 0..65535" : "unknown flags");
		errno = EINVAL;
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL || (j = calloc(1, sizeof(*j))) == NULL) {
		free(h);
		if (errbuf != NULL)
			snprintf(errbuf, DIVERT_ERRBUF_SIZE, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	h->port = port;
	h->join = j;
	h->mark = DIVERT_MARK_DEFAULT;
	j->flags = flags;
	j->fd = j->qfd = -1;
	j->state = JOIN_WAITING;
	if ((j->buf = malloc(JOIN_BUF)) == NULL)
		return join_failed(h, errbuf, ENOMEM, "join divert port %d: %s", port);
	len = meeting_point((uint16_t)port, &sun);
	if ((j->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
		return join_failed(h, errbuf, errno, "join divert port %d: %s", port);
	if (connect(j->fd, (struct sockaddr *)&sun, len) < 0)
		return join_failed(h, errbuf, errno == ENOENT ? ECONNREFUSED : errno,
		    "join divert port %d: no listener offers it here (%s)", port);
	if (!peer_trusted(j->fd))
		return join_failed(h, errbuf, EPERM, "join divert port %d: its listener "
		    "is another user's (%s)", port);
	msg_init(&m, MSG_JOIN);
	m.flags = flags;
	if (msg_send(j->fd, &m, -1) < 0)
		return join_failed(h, errbuf, errno, "join divert port %d: %s", port);
	return h;
}

/* The joiner is out: its copy of the port's socket is closed at once. */
static int
join_gone(struct divert *h, int error)
{
	struct joined *j = h->join;

	if (j->qfd >= 0)
		close(j->qfd);
	j->qfd = -1;
	j->failed += j->n;
	j->used = 0;
	j->n = j->n_dropped = 0;
	j->state = JOIN_GONE;
	j->error = error;
	return -1;
}

/* The listener's answer: in, with the port's socket; or refused. */
static int
take_answer(struct divert *h)
{
	struct joined *j = h->join;
	struct share_msg m;
	int fd, rc, sndbuf;
	socklen_t len = sizeof(sndbuf);

	if ((rc = msg_recv(j->fd, &m, &fd)) < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 :
		    join_gone(h, errno);
	if (rc == 0)
		return join_gone(h, EPIPE);
	if (m.type == MSG_REFUSE) {
		if (fd >= 0)
			close(fd);
		return join_gone(h, m.error > 0 ? m.error : EPERM);
	}
	if (m.type != MSG_WELCOME || fd < 0 || m.port != (uint32_t)h->port || m.session == 0) {
		if (fd >= 0)
			close(fd);
		return join_gone(h, EPROTO);
	}
	j->qfd = fd;
	h->session = m.session;
	j->hold_ms = m.hold_ms;
	/* A netlink message to the kernel must fit the send buffer (less 32 bytes). */
	j->limit = JOIN_BYTES;
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 &&
	    (size_t)sndbuf < JOIN_BYTES + JOIN_SLACK)
		j->limit = sndbuf > JOIN_SLACK ? (size_t)sndbuf - JOIN_SLACK : 0;
	j->state = JOIN_JOINED;
	return 1;
}

/*
 * Whether the listener is still there, without waiting.  It never speaks
 * after its answer: anything to read is its hangup.
 */
static int
check_listener(struct divert *h)
{
	struct pollfd pfd = { .fd = h->join->fd, .events = POLLIN };

	if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
		return join_gone(h, EPIPE);
	return 1;
}

int
divert_joined(struct divert *h)
{
	struct joined *j = h->join;

	if (j == NULL)
		return handle_fail(h, EINVAL, "not a joined handle (divert_join)");
	switch (j->state) {
	case JOIN_WAITING:
		if (take_answer(h) < 0)
			break;
		return j->state == JOIN_JOINED;
	case JOIN_JOINED:
		if (check_listener(h) < 0)
			break;
		return 1;
	}
	return handle_fail(h, j->error, "divert port %d: %s", h->port,
	    j->error == EPIPE ? "its listener has left" : j->error == EPERM ?
	    "its listener refused this process" : strerror(j->error));
}

int
joined_fd(const struct divert *h)
{
	return h->join->fd;
}

unsigned
divert_hold_timeout(const struct divert *h)
{
	return h->join != NULL && h->join->state == JOIN_JOINED ? h->join->hold_ms : 0;
}

/*
 * Send the verdicts buffered, in one sendmsg; they are gone either way,
 * counted as given only once sent (the listener hears these counts).
 */
static int
join_send(struct joined *j)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	ssize_t n;

	if (j->used == 0)
		return 0;
	n = sendto(j->qfd, j->buf, j->used, MSG_DONTWAIT, (struct sockaddr *)&kernel,
	    sizeof(kernel));
	if (n < 0)
		j->failed += j->n;
	else {
		j->accepted += j->n - j->n_dropped;
		j->dropped += j->n_dropped;
	}
	j->used = 0;
	j->n = j->n_dropped = 0;
	return n < 0 ? -1 : 0;
}

int
join_flush(struct divert *h)
{
	struct joined *j = h->join;
	int rc = 0;

	/* Sent: a listener that left is heard when divert_fd polls readable. */
	if (j->state == JOIN_JOINED && (rc = join_send(j)) == 0)
		return 0;
	if (rc < 0)
		rc = handle_fail(h, errno, "verdicts on divert port %d: %s", h->port,
		    strerror(errno));
	if (j->state != JOIN_GONE)
		divert_joined(h);	/* a listener that left: close the socket now */
	return rc;
}

/* Whether a's packet is one this binding holds, and still may be answered. */
static int
held_here(struct divert *h, const struct divert_addr *a, unsigned hold_ms)
{
	struct timespec now;
	int64_t age;

	if (!(a->flags & DIVERT_ADDR_QUEUE) || a->port != h->port || a->holder == 0 ||
	    a->holder != h->session)
		return handle_fail(h, ESRCH, "not a packet divert port %d holds here",
		    h->port);
	clock_gettime(CLOCK_REALTIME, &now);
	age = ((int64_t)now.tv_sec - a->ts.tv_sec) * 1000 +
	    ((int64_t)now.tv_nsec / 1000 - a->ts.tv_usec) / 1000;
	if (hold_ms > 0 && age >= (int64_t)hold_ms)
		return handle_fail(h, ETIMEDOUT, "divert port %d: held %lld ms: over the "
		    "hold timeout (%u ms)", h->port, (long long)age, hold_ms);
	return 0;
}

/*
 * Put one verdict (and its new contents) in the joined handle's buffer.  A
 * GSO packet's UDP checksum goes back as the partial sum the kernel's
 * segmentation starts from (l4sum_udp_seed), not the whole one it was read with.
 */
static int
join_put(struct divert *h, uint32_t id, int nf, const void *pkt, size_t len, int gso)
{
	static const uint8_t pad[NLA_ALIGNTO];
	struct joined *j = h->join;
	size_t need = VERDICT_SIZE + (pkt != NULL ? NLA_ALIGN(len) : 0), hlen, off;
	uint16_t seed;

	if (j->n > 0 && (j->n == JOIN_MSGS || j->used + need > j->limit) && join_send(j) < 0)
		return handle_fail(h, errno, "verdicts on divert port %d: %s", h->port,
		    strerror(errno));
	hlen = verdict_msg(j->buf + j->used, NFQNL_MSG_VERDICT, (uint16_t)h->port, id, nf,
	    pkt != NULL, len);
	j->used += hlen;
	if (pkt != NULL) {
		memcpy(j->buf + j->used, pkt, len);
		memcpy(j->buf + j->used + len, pad, NLA_ALIGN(len) - len);
		if (gso && l4sum_udp_seed(j->buf + j->used, len, &off, &seed) == 0)
			put16(j->buf + j->used + off, seed);
		j->used += NLA_ALIGN(len);
	}
	j->n++;
	if (nf == NF_DROP)
		j->n_dropped++;
	return 0;
}

int
divert_verdict_in_place(struct divert *h, const struct divert_addr *a, int verdict,
    const void *pkt, size_t len)
{
	struct joined *j = h->join;
	int rc;

	if (verdict != DIVERT_DROP && verdict != DIVERT_ACCEPT)
		return handle_fail(h, EINVAL, "a verdict is DIVERT_DROP or DIVERT_ACCEPT");
	if (pkt != NULL && len > VERDICT_PAYLOAD_MAX)
		return handle_fail(h, EMSGSIZE, "verdict on divert port %d: new contents of "
		    "%zu bytes: at most %d", h->port, len, VERDICT_PAYLOAD_MAX);
	if (h->q != NULL) {		/* the listener answering for itself */
		if (held_here(h, a, h->offer != NULL ? h->offer->hold_ms : 0) < 0)
			return -1;
		return divert_verdict(h, a->id, verdict, pkt, len);
	}
	if (j == NULL)
		return handle_fail(h, EINVAL, "a send-only handle holds no packets");
	if (j->state == JOIN_WAITING && (rc = take_answer(h)) <= 0)
		return rc < 0 ? divert_joined(h) : handle_fail(h, EAGAIN, "divert port %d: "
		    "its listener has not answered yet", h->port);
	if (j->state == JOIN_GONE)
		return divert_joined(h);
	if (held_here(h, a, j->hold_ms) < 0)
		return -1;
	return join_put(h, a->id, verdict == DIVERT_DROP ? NF_DROP : NF_ACCEPT, pkt, len,
	    (a->flags & DIVERT_ADDR_GSO) != 0);
}

int
divert_join_stats(const struct divert *h, struct divert_join_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (h->join == NULL) {
		errno = EINVAL;
		return -1;
	}
	st->accepted = h->join->accepted;
	st->dropped = h->join->dropped;
	st->failed = h->join->failed;
	return 0;
}

void
join_close(struct divert *h)
{
	struct joined *j = h->join;
	struct share_msg m;

	if (j == NULL)
		return;
	if (j->state == JOIN_JOINED) {
		join_send(j);
		msg_init(&m, MSG_BYE);
		m.accepted = j->accepted;
		m.dropped = j->dropped;
		msg_send(j->fd, &m, -1);
	}
	if (j->qfd >= 0)
		close(j->qfd);
	if (j->fd >= 0)
		close(j->fd);
	free(j->buf);
	free(j);
	h->join = NULL;
}
