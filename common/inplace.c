/*
 * inplace.c - the divert ports a tool joined, and its verdicts there.
 *
 * An injector joins the listener up its pipeline (upstream.h), found
 * before the first packet, so that the listener holds every packet: never
 * a port merely named by a record, whose listener could be another
 * pipeline's (a stream from another namespace, host or time), which would
 * then hold packets nobody answers.  It leaves when the stream turns out
 * not to carry its listener's packets (the context lost on the way, by a
 * tool between that rewrites the stream), so that the listener takes them
 * again.
 *
 * A tool that only drops joins the port of the first held record it drops:
 * it never makes a listener hold, and the session check keeps its verdicts
 * to its own listener's packets.  A handful of ports at most: a small
 * table, whose slots not joined are reused, the one that failed longest ago
 * first.  A port whose join failed is tried again at most once a second, so
 * that a stream from elsewhere costs no connect a record.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/time.h>

#include <sys/socket.h>
#include <sys/stat.h>

#include "inplace.h"
#include "tool.h"
#include "upstream.h"

#define PORTS		8		/* ports joined at once, at most */
#define RETRY_MS	1000		/* a failed join is not tried again sooner */
#define FIND_MS		2000		/* the listener is looked for this long at start */
#define FIND_STEP_MS	50		/* ...this often, while the input is silent */
#define LOST_MS		1000		/* records this much younger than the join must be held */
#define EARLY_DROPS	64		/* drops kept for a listener that has not answered yet */

struct joined_port {
	int		 port;		/* -1: slot free */
	struct divert	*h;		/* NULL: the last join failed, at failed_at */
	uint64_t	 failed_at;	/* ms */
	uint64_t	 foreign;	/* a holder seen that is not its listener's session */
	/* Drops asked before the listener answered the join: given once it has. */
	struct divert_addr early[EARLY_DROPS];
	unsigned	 nearly;
};

struct inplace {
	int			fd;		/* the input */
	unsigned		flags;		/* DIVERT_JOIN_* */
	uint64_t		accepted, dropped;
	uint64_t		failed;		/* verdicts lost, of the ports left */
	/* An injector's listener, up the pipeline. */
	struct joined_port	*up;		/* NULL: none joined */
	int			 up_lost;	/* the stream lost its context: never again */
	int			 up_wanted;	/* none joined, and the stream has queue records */
	uint64_t		 up_tried;	/* ms of the last look for it */
	struct timeval		 up_since;	/* when its listener took the join (0: not yet) */
	struct joined_port	ports[PORTS];
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A live input comes from a process now: a pipe or a socket, not a file. */
static int
is_live(int fd)
{
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

struct inplace *
inplace_new(int fd, int injector)
{
	struct inplace *ip;
	int i;

	if (!is_live(fd) || (ip = calloc(1, sizeof(*ip))) == NULL)
		return NULL;
	ip->fd = fd;
	ip->flags = injector ? DIVERT_JOIN_INJECT : 0;
	for (i = 0; i < PORTS; i++)
		ip->ports[i].port = -1;
	return ip;
}

/* The verdicts a joined port lost (their send failed), with what is buffered sent. */
static uint64_t
lost_at(struct joined_port *jp)
{
	struct divert_join_stats st;

	if (jp->h == NULL)
		return 0;
	divert_flush(jp->h);
	return divert_join_stats(jp->h, &st) == 0 ? st.failed : 0;
}

/* Leave a port: its verdicts sent, its counts told, its socket closed. */
static void
leave(struct inplace *ip, struct joined_port *jp)
{
	ip->failed += lost_at(jp);
	if (jp->h != NULL)
		divert_close(jp->h);
	jp->h = NULL;
	jp->nearly = 0;
	jp->failed_at = now_ms();
}

/* The drops asked before the listener answered, now that it has (or refused). */
static void
early_drops(struct inplace *ip, struct joined_port *jp)
{
	unsigned i;

	if (jp->nearly == 0 || jp->h == NULL || divert_joined(jp->h) == 0)
		return;
	for (i = 0; i < jp->nearly; i++)
		if (divert_verdict_in_place(jp->h, &jp->early[i], DIVERT_DROP, NULL, 0) == 0)
			ip->dropped++;
	jp->nearly = 0;
}

/* A slot for port: its own, a free one, or the one not joined that failed longest ago. */
static struct joined_port *
slot_of(struct inplace *ip, int port)
{
	struct joined_port *jp, *reuse = NULL;
	int i;

	for (i = 0; i < PORTS; i++) {
		jp = &ip->ports[i];
		if (jp->port == port)
			return jp;
		if (jp->h != NULL || jp == ip->up)
			continue;
		if (reuse == NULL || jp->port < 0 ||
		    (reuse->port >= 0 && jp->failed_at < reuse->failed_at))
			reuse = jp;
	}
	if (reuse != NULL) {
		memset(reuse, 0, sizeof(*reuse));
		reuse->port = port;
	}
	return reuse;
}

/*
 * The slot of a's port, with its handle joined now if it is not and it is
 * time to try.  Whether the listener is still there is seen when verdicts
 * go (inplace_flush) and while the input is idle (inplace_wait): never a
 * system call a record.
 */
static struct joined_port *
join_for(struct inplace *ip, const struct divert_addr *a)
{
	struct joined_port *jp;

	if (ip == NULL || !(a->flags & DIVERT_ADDR_QUEUE) || (jp = slot_of(ip, a->port)) == NULL)
		return NULL;
	/*
	 * Another binding's records (another namespace's listener, an earlier
	 * one): its listener is not ours to make hold.
	 */
	if (jp->h != NULL && a->holder != 0 && divert_session(jp->h) != 0 &&
	    a->holder != divert_session(jp->h)) {
		jp->foreign = a->holder;
		leave(ip, jp);
	}
	/* An injector joins its listener up the pipeline only (inplace_see). */
	if (jp->h == NULL && !(ip->flags & DIVERT_JOIN_INJECT) &&
	    (jp->foreign == 0 || jp->foreign != a->holder) &&
	    (jp->failed_at == 0 || now_ms() - jp->failed_at >= RETRY_MS)) {
		jp->h = divert_join(a->port, ip->flags, NULL);
		if (jp->h == NULL)
			jp->failed_at = now_ms();
	}
	return jp->h != NULL ? jp : NULL;
}

/* Join the listener up the pipeline, if there is one: 1 when joined (its answer may be due). */
static int
find_listener(struct inplace *ip)
{
	struct joined_port *jp;
	int port;

	ip->up_tried = now_ms();
	if (upstream_listener(ip->fd, &port) == 0 || (jp = slot_of(ip, port)) == NULL)
		return 0;
	if (jp->h == NULL && (jp->h = divert_join(port, ip->flags, NULL)) == NULL)
		return 0;
	ip->up = jp;
	return 1;
}

void
inplace_find(struct inplace *ip)
{
	struct pollfd pfd;
	uint64_t start = now_ms();

	if (ip == NULL || !(ip->flags & DIVERT_JOIN_INJECT))
		return;
	pfd = (struct pollfd){ .fd = ip->fd, .events = POLLIN };
	/*
	 * The listener offers its port before it writes a byte: once the
	 * input is readable it is there to be found, if it is a listener's.
	 */
	while (!find_listener(ip) && now_ms() - start < FIND_MS)
		if (poll(&pfd, 1, FIND_STEP_MS) != 0) {
			find_listener(ip);
			return;
		}
}

/* Whether a is a record of the joined listener's (its session is known by now). */
static int
listeners(const struct joined_port *jp, const struct divert_addr *a)
{
	return (a->flags & DIVERT_ADDR_QUEUE) && a->port == jp->port &&
	    (a->holder == 0 || a->holder == divert_session(jp->h));
}

/* Whether a was taken by the listener well after it took the join. */
static int
after_join(const struct inplace *ip, const struct divert_addr *a)
{
	int64_t ms = ((int64_t)a->ts.tv_sec - ip->up_since.tv_sec) * 1000 +
	    ((int64_t)a->ts.tv_usec - ip->up_since.tv_usec) / 1000;

	return ip->up_since.tv_sec != 0 && ms > LOST_MS;
}

void
inplace_see(struct inplace *ip, const struct divert_addr *a)
{
	if (ip == NULL || !(ip->flags & DIVERT_JOIN_INJECT) || ip->up_lost)
		return;
	if (ip->up == NULL || ip->up->h == NULL) {
		ip->up = NULL;
		/*
		 * Not found at start (late, or gone and back): looked for again
		 * while the input is idle (inplace_wait), never a /proc walk
		 * a second while busy.
		 */
		if (a->flags & DIVERT_ADDR_QUEUE)
			ip->up_wanted = 1;
		return;
	}
	/*
	 * Its answer is taken here while it is due: under steady load the
	 * input is never idle, and a record not held is never answered.
	 */
	if (divert_session(ip->up->h) == 0 && divert_joined(ip->up->h) < 0) {
		leave(ip, ip->up);
		ip->up = NULL;
		return;
	}
	if (ip->up_since.tv_sec == 0 && divert_session(ip->up->h) != 0)
		gettimeofday(&ip->up_since, NULL);
	/*
	 * The stream lost its context on the way (a record the listener
	 * wrote after the join, not held by it): the listener would hold
	 * packets for nothing.  Leave, for good.
	 */
	if (after_join(ip, a) && !listeners(ip->up, a)) {
		leave(ip, ip->up);
		ip->up = NULL;
		ip->up_lost = 1;
	}
}

/*
 * Give a's held packet its verdict in place: 1; 2 for a drop kept until the
 * listener answers the join; or 0 when it is not for here.  A listener
 * found gone (or refusing) is left, to be joined again when one comes back.
 */
static int
verdict(struct inplace *ip, const struct divert_addr *a, int v, const uint8_t *pkt,
    size_t len)
{
	struct joined_port *jp;
	int rc, e;

	if (ip == NULL || !(a->flags & DIVERT_ADDR_QUEUE) || a->holder == 0 ||
	    (jp = join_for(ip, a)) == NULL)
		return 0;
	rc = divert_verdict_in_place(jp->h, a, v, pkt, len);
	e = errno;
	/* Joined now: the drops that waited go, not at the hold timeout under load. */
	if (jp->nearly > 0 && divert_session(jp->h) != 0)
		early_drops(ip, jp);
	if (rc == 0)
		return 1;
	/*
	 * Joined a moment ago (a tool that drops joins at its first drop):
	 * the drop waits for the answer, rather than for the hold timeout.
	 */
	if (e == EAGAIN && v == DIVERT_DROP && jp->nearly < EARLY_DROPS) {
		jp->early[jp->nearly++] = *a;
		return 2;
	}
	if (e == EPIPE || e == EPERM || e == EPROTO)
		leave(ip, jp);
	return 0;
}

int
inplace_accept(struct inplace *ip, const struct divert_addr *a, const uint8_t *pkt,
    size_t len)
{
	if (!verdict(ip, a, DIVERT_ACCEPT, pkt, len))
		return 0;
	ip->accepted++;
	return 1;
}

int
inplace_drop(struct inplace *ip, const struct divert_addr *a)
{
	switch (verdict(ip, a, DIVERT_DROP, NULL, 0)) {
	case 0:
		return 0;
	case 1:
		ip->dropped++;
		break;
	}
	return 1;		/* done, or to be done as soon as the listener answers */
}

void
inplace_flush(struct inplace *ip)
{
	int i;

	if (ip == NULL)
		return;
	for (i = 0; i < PORTS; i++) {
		early_drops(ip, &ip->ports[i]);
		if (ip->ports[i].h != NULL && divert_flush(ip->ports[i].h) < 0 &&
		    divert_joined(ip->ports[i].h) < 0)
			leave(ip, &ip->ports[i]);
	}
}

int
inplace_wait(struct inplace *ip, int ms)
{
	return inplace_wait_also(ip, ms, -1);
}

int
inplace_wait_also(struct inplace *ip, int ms, int also)
{
	struct pollfd pfd[2 + PORTS];
	int slot[2 + PORTS], n, i, rc, first;

	if (ip->up_wanted && ip->up == NULL && !ip->up_lost &&
	    now_ms() - ip->up_tried >= RETRY_MS && find_listener(ip))
		ip->up_wanted = 0;
	for (;;) {
		pfd[0] = (struct pollfd){ .fd = ip->fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = also, .events = POLLIN };	/* -1: ignored */
		first = 2;
		for (n = first, i = 0; i < PORTS; i++)
			if (ip->ports[i].h != NULL) {
				pfd[n] = (struct pollfd){ .fd = divert_fd(ip->ports[i].h),
				    .events = POLLIN };
				slot[n++] = i;
			}
		if ((rc = poll_unless_stopped(pfd, (nfds_t)n, ms, 0)) <= 0)
			return rc;
		/* The answer to a join, or a listener gone: divert_joined takes either. */
		for (i = first; i < n; i++)
			if (pfd[i].revents != 0 && divert_joined(ip->ports[slot[i]].h) < 0)
				leave(ip, &ip->ports[slot[i]]);
			else if (pfd[i].revents != 0 && ip->ports[slot[i]].nearly > 0)
				inplace_flush(ip);	/* the drops that waited for the answer */
		if (pfd[0].revents != 0)
			return 1;
		if (pfd[1].revents != 0)
			return 2;
		if (ms >= 0)
			return 0;	/* the caller's clock: it asks again */
	}
}

uint64_t
inplace_accepted(const struct inplace *ip)
{
	return ip != NULL ? ip->accepted : 0;
}

uint64_t
inplace_dropped(const struct inplace *ip)
{
	return ip != NULL ? ip->dropped : 0;
}

uint64_t
inplace_failed(struct inplace *ip)
{
	uint64_t n;
	int i;

	if (ip == NULL)
		return 0;
	for (n = ip->failed, i = 0; i < PORTS; i++)
		n += lost_at(&ip->ports[i]);
	return n;
}

void
inplace_free(struct inplace *ip)
{
	int i;

	if (ip == NULL)
		return;
	for (i = 0; i < PORTS; i++)
		if (ip->ports[i].h != NULL)
			divert_close(ip->ports[i].h);
	free(ip);
}
