/*
 * raw.c - send whole IP packets out through IPPROTO_RAW sockets, in batches.
 *
 * Sends never block.  A packet to a neighbour whose address never resolves
 * waits in the kernel's unresolved queue, charged to the socket that sent
 * it, until ARP or neighbour discovery gives up (about 3 s): a flood of them
 * fills that socket's send buffer, and a shared socket would then refuse
 * every destination.  So:
 *
 *  - normally all packets of a family share one socket and go in batches;
 *  - after each batch the shared socket's unsent bytes are checked (on a
 *    healthy path the kernel lets go of a packet as it is transmitted):
 *    above a quarter of its buffer, something is stuck, and from then on
 *    each destination address gets a socket of its own (the POOL most
 *    recently used ones), so a dead neighbour fills only its own buffer and
 *    what it cannot take is refused at once (EAGAIN), while every other
 *    destination goes on;
 *  - once the shared sockets have drained, destinations whose own socket
 *    is empty go back to sharing; the stuck ones keep theirs until it is.
 *
 * A full socket is not always a stuck one: on a link slower than the input
 * (a capture replayed onto a shaped or slow device) the kernel lets go of
 * packets as they leave.  So a send that finds its socket full waits while
 * the socket's unsent bytes go down, DRAIN_MS at a time, and is refused
 * only when a wait brings no progress; that socket is then taken as stuck
 * and refuses at once until the next tidy, so a dead neighbour costs one
 * wait per 100 ms, not one per packet.
 *
 * Marks.  Every socket's own SO_MARK is the handle's loop-avoidance bit.  A
 * packet whose record has a mark of its own is sent with that mark instead
 * (a per-packet SO_MARK control message): the kernel routes it by exactly
 * that mark, so an `ip rule fwmark N` meant for the original still matches
 * the copy, and the toolkit table's tag chain (lib/rule.c: at the output
 * hook, before any divert chain) adds the bit back, having recognised the
 * packet by its socket's mark.  A record without a mark (0: a crafted
 * packet, a capture that does not say) is sent with the socket's mark, as
 * it always was.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ifaddrs.h>
#include <poll.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "frag.h"
#include "raw.h"

#define POOL	64		/* destinations with a socket of their own */
#define LOOPBACK_INDEX	1	/* the loopback device's, in every namespace (since Linux 3.x) */
#define DRAIN_MS	20	/* a full socket's wait for progress */

union addr {
	struct sockaddr		sa;
	struct sockaddr_in	in4;
	struct sockaddr_in6	in6;
};

/* A packet's control messages: the interface to leave by, its own mark. */
union control {
	char		 buf[CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(uint32_t))];
	struct cmsghdr	 align;
};

/* A destination address and its socket. */
struct dest {
	union addr	 addr;			/* family, address, scope: the key */
	socklen_t	 alen;
	int		 fd;			/* IPPROTO_RAW, header included */
	uint64_t	 used;			/* the clock when last used: LRU */
};

struct raw {
	uint32_t	 mark;
	int		 v6;			/* the kernel has IPv6 */
	int		 fd4, fd6;		/* the shared sockets (fd6 -1 without IPv6) */
	int		 stuck;			/* bytes held in a shared socket that mean trouble */
	int		 nostall[4];		/* sockets found stuck since the last tidy */
	int		 nnostall;
	int		 isolate;		/* new destinations get sockets of their own */
	struct timespec	 tidied;		/* when the pool was last looked at */
	int		 probe4, probe6;	/* UDP, connected only to ask for the route MTU */
	raw_done_fn	 done;
	void		*arg;
	struct dest	 dest[POOL];
	int		 ndest, last;		/* last: the slot the previous packet used */
	uint64_t	 clock;
	struct {				/* the last local link-local address looked up */
		struct in6_addr	addr;
		uint32_t	index;
		time_t		when;
	} scope;
	int		 n;			/* packets queued */
	int		 fd;			/* the socket the queued ones go to */
	struct mmsghdr	 msg[RAW_BATCH];
	struct iovec	 iov[RAW_BATCH];
	union addr	 dst[RAW_BATCH];
	union control	 ctl[RAW_BATCH];
	struct raw_pkt	 meta[RAW_BATCH];
	uint8_t		*slot;			/* RAW_BATCH buffers of FRAG_MAX bytes */
};

/* A socket of type, protocol and family, marked; -1 with errno. */
static int
marked_socket(int family, int type, int proto, uint32_t mark)
{
	int fd = socket(family, type | SOCK_CLOEXEC, proto);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * A raw socket for family: marked; IPv4 ones may send to broadcast
 * addresses (a reinjected broadcast is otherwise refused with EACCES).
 */
static int
raw_socket(int family, uint32_t mark)
{
	int fd = marked_socket(family, SOCK_RAW, IPPROTO_RAW, mark), one = 1;

	if (fd >= 0 && family == AF_INET &&
	    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

struct raw *
raw_open(uint32_t mark, raw_done_fn done, void *arg, char *why, size_t whylen)
{
	struct raw *r = calloc(1, sizeof(*r));
	socklen_t olen;
	int sndbuf;

	if (r == NULL || (r->slot = malloc((size_t)RAW_BATCH * FRAG_MAX)) == NULL) {
		free(r);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	r->mark = mark;
	r->done = done;
	r->arg = arg;
	r->fd6 = r->probe6 = -1;
	r->fd4 = raw_socket(AF_INET, mark);
	r->probe4 = marked_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, mark);
	if (r->fd4 < 0 || r->probe4 < 0) {
		snprintf(why, whylen, "cannot open a raw IPv4 socket: %s",
		    errno == EPERM || errno == EACCES ?
		    "needs CAP_NET_RAW and CAP_NET_ADMIN: run as root" : strerror(errno));
		raw_close(r);
		return NULL;
	}
	olen = sizeof(sndbuf);
	if (getsockopt(r->fd4, SOL_SOCKET, SO_SNDBUF, &sndbuf, &olen) < 0 || sndbuf <= 0)
		sndbuf = 212992;
	/* Below the kernel's own cap on one neighbour's queue (unres_qlen_bytes, 212992). */
	r->stuck = sndbuf / 4;
	/* A kernel without IPv6 still injects IPv4: IPv6 packets are then refused one by one. */
	r->fd6 = raw_socket(AF_INET6, mark);
	r->v6 = r->fd6 >= 0;
	r->probe6 = marked_socket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, mark);
	return r;
}

/* The interface holding the local address a; 0 when it is not ours. */
static uint32_t
owner_of(const struct in6_addr *a)
{
	struct ifaddrs *ifs, *i;
	uint32_t index = 0;

	if (getifaddrs(&ifs) < 0)
		return 0;
	for (i = ifs; i != NULL && index == 0; i = i->ifa_next)
		if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET6 &&
		    IN6_ARE_ADDR_EQUAL(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, a))
			index = if_nametoindex(i->ifa_name);
	freeifaddrs(ifs);
	return index;
}

/* owner_of, remembered for a second (a flow repeats it packet after packet). */
static uint32_t
cached_owner(struct raw *r, const struct in6_addr *a)
{
	time_t now = time(NULL);

	if (r->scope.when != now || !IN6_ARE_ADDR_EQUAL(&r->scope.addr, a)) {
		r->scope.addr = *a;
		r->scope.index = owner_of(a);
		r->scope.when = now;
	}
	return r->scope.index;
}

/*
 * The interface a link-scoped IPv6 destination is reached by.  The record's
 * out-interface, except for a packet to one of our own link-local addresses:
 * that one left by the loopback device, on whose link the address does not
 * exist (the kernel answers ENETUNREACH): its scope is the interface holding
 * the destination, or else the source, address.
 */
static uint32_t
link_scope(struct raw *r, const struct raw_pkt *p, const struct in6_addr *dst)
{
	struct in6_addr src;
	uint32_t index;

	if (p->a.ifindex != 0 && p->a.ifindex != LOOPBACK_INDEX)
		return p->a.ifindex;
	if ((index = cached_owner(r, dst)) != 0)
		return index;
	memcpy(&src, p->data + 8, 16);
	if (IN6_IS_ADDR_LINKLOCAL(&src) && (index = cached_owner(r, &src)) != 0)
		return index;
	return p->a.ifindex;
}

/* p's destination as a socket address (a link-scoped IPv6 one with its interface). */
static socklen_t
address_of(struct raw *r, const struct raw_pkt *p, union addr *a)
{
	memset(a, 0, sizeof(*a));
	if (p->data[0] >> 4 == 4) {
		a->in4.sin_family = AF_INET;
		memcpy(&a->in4.sin_addr, p->data + 16, 4);
		return sizeof(a->in4);
	}
	a->in6.sin6_family = AF_INET6;
	memcpy(&a->in6.sin6_addr, p->data + 24, 16);
	if (IN6_IS_ADDR_LINKLOCAL(&a->in6.sin6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&a->in6.sin6_addr))
		a->in6.sin6_scope_id = link_scope(r, p, &a->in6.sin6_addr);
	return sizeof(a->in6);
}

/*
 * The socket for a: its own if it has one, else the shared one, or while
 * isolating a new one of its own (the least recently used one remade when
 * the pool is full); -1, errno.
 */
static int
socket_for(struct raw *r, const union addr *a, socklen_t alen)
{
	struct dest *d = &r->dest[r->last];
	int i, fd;

	r->clock++;
	if (r->ndest > 0 && d->alen == alen && memcmp(&d->addr, a, alen) == 0) {
		d->used = r->clock;
		return d->fd;
	}
	for (i = 0; i < r->ndest; i++) {
		d = &r->dest[i];
		if (d->alen == alen && memcmp(&d->addr, a, alen) == 0) {
			d->used = r->clock;
			r->last = i;
			return d->fd;
		}
	}
	if (a->sa.sa_family == AF_INET6 && !r->v6) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	if (!r->isolate)
		return a->sa.sa_family == AF_INET ? r->fd4 : r->fd6;
	if ((fd = raw_socket(a->sa.sa_family, r->mark)) < 0)
		return -1;
	if (r->ndest < POOL) {
		i = r->ndest++;
	} else {
		for (i = 0, d = &r->dest[1]; d < r->dest + POOL; d++)
			if (d->used < r->dest[i].used)
				i = (int)(d - r->dest);
		/* A socket about to carry a queued batch is never the least recently used. */
		close(r->dest[i].fd);
		r->nnostall = 0;	/* its number may come back: forget what was stuck */
	}
	r->dest[i] = (struct dest){ .addr = *a, .alen = alen, .fd = fd, .used = r->clock };
	r->last = i;
	return fd;
}

/* The socket for p's destination, whose address goes to a; -1 (errno) if none. */
static int
destination(struct raw *r, const struct raw_pkt *p, union addr *a, socklen_t *alen)
{
	*alen = address_of(r, p, a);
	return socket_for(r, a, *alen);
}

/* Bytes of packets sent through fd that the kernel still holds. */
static int
held(int fd)
{
	int n = 0;

	return fd >= 0 && ioctl(fd, SIOCOUTQ, &n) == 0 ? n : 0;
}

/* Milliseconds from a to b. */
static long
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

static int
found_stuck(const struct raw *r, int fd)
{
	int i;

	for (i = 0; i < r->nnostall; i++)
		if (r->nostall[i] == fd)
			return 1;
	return 0;
}

/*
 * fd refused a send (EAGAIN): wait while the kernel is letting go of its
 * packets.  1: try again; 0: no progress, refuse (and remember fd as stuck).
 * errno is left as it came (EAGAIN): the caller reports it.
 */
static int
drained(struct raw *r, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int before, after, n, e = errno;

	if (found_stuck(r, fd))
		return 0;
	before = held(fd);
	/* A signal is no verdict on the socket: wait again (EINTR must not be reported). */
	while ((n = poll(&pfd, 1, DRAIN_MS)) < 0 && errno == EINTR)
		;
	errno = e;
	if (n > 0 && (pfd.revents & POLLOUT))
		return 1;
	after = held(fd);
	errno = e;
	if (after < before)
		return 1;
	if (r->nnostall < (int)(sizeof(r->nostall) / sizeof(r->nostall[0])))
		r->nostall[r->nnostall++] = fd;
	return 0;
}

/*
 * Every 100 ms: once the shared sockets have drained, stop isolating, and
 * give back the own sockets of destinations that hold nothing (called with
 * nothing queued, before the next packet's socket is chosen).
 */
static void
tidy(struct raw *r)
{
	struct timespec now;
	int i, k;

	if (r->ndest == 0 && !r->isolate)
		return;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (ms_between(&r->tidied, &now) < 100)
		return;
	r->tidied = now;
	r->nnostall = 0;
	if (r->isolate && held(r->fd4) + held(r->fd6) < r->stuck / 4)
		r->isolate = 0;
	if (r->isolate)
		return;
	for (i = k = 0; i < r->ndest; i++) {
		if (held(r->dest[i].fd) == 0)
			close(r->dest[i].fd);
		else
			r->dest[k++] = r->dest[i];
	}
	r->ndest = k;
	r->last = 0;
}

/*
 * An IPv4 limited broadcast or multicast leaves by the record's interface
 * (IP_PKTINFO): the routing table may have no route for it, or another
 * interface.  Other packets are routed by their destination.
 */
static int
leaves_by_record(const struct raw_pkt *p)
{
	const uint8_t *dst = p->data + 16;

	return p->data[0] >> 4 == 4 && p->a.ifindex != 0 && p->a.ifindex != LOOPBACK_INDEX &&
	    ((dst[0] & 0xf0) == 0xe0 || memcmp(dst, "\xff\xff\xff\xff", 4) == 0);
}

/* The mark p is sent with: its record's, or the sockets' own when it has none. */
static uint32_t
mark_of(const struct raw *r, const struct raw_pkt *p)
{
	return p->a.mark != 0 ? p->a.mark : r->mark;
}

/* Append a control message of level and type with len bytes of data to m. */
static void
put_control(struct msghdr *m, int level, int type, const void *data, size_t len)
{
	struct cmsghdr *c = (struct cmsghdr *)((char *)m->msg_control + m->msg_controllen);

	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
	m->msg_controllen += CMSG_SPACE(len);
}

/*
 * p's control messages, in ctl: the interface it leaves by (leaves_by_record),
 * and its record's mark when that is not the socket's (routing then uses
 * exactly that mark, see the top of this file).
 */
static void
set_controls(struct msghdr *m, union control *ctl, const struct raw *r,
    const struct raw_pkt *p)
{
	struct in_pktinfo info = { .ipi_ifindex = (int)p->a.ifindex };
	uint32_t mark = mark_of(r, p);

	m->msg_control = ctl->buf;
	m->msg_controllen = 0;
	if (leaves_by_record(p))
		put_control(m, IPPROTO_IP, IP_PKTINFO, &info, sizeof(info));
	if (mark != r->mark)
		put_control(m, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	if (m->msg_controllen == 0)
		m->msg_control = NULL;
}

void
raw_queue(struct raw *r, const struct raw_pkt *p)
{
	union addr a;
	socklen_t alen;
	uint8_t *buf;
	int fd, i, e;

	if (r->n == 0)
		tidy(r);		/* not later: it may close the socket found for p */
	if ((fd = destination(r, p, &a, &alen)) < 0) {
		/* raw_flush runs the caller's code and system calls: keep the reason first. */
		e = errno;
		raw_flush(r);			/* keep the order of reports */
		r->done(p, e, r->arg);
		return;
	}
	if (r->n > 0 && fd != r->fd)
		raw_flush(r);			/* one sendmmsg() is one socket */
	i = r->n++;
	r->fd = fd;
	r->dst[i] = a;
	buf = r->slot + (size_t)i * FRAG_MAX;
	memcpy(buf, p->data, p->len);
	r->meta[i] = *p;
	r->meta[i].data = buf;		/* the caller's buffer is reused: keep a copy */
	r->iov[i] = (struct iovec){ .iov_base = buf, .iov_len = p->len };
	r->msg[i].msg_hdr = (struct msghdr){ .msg_name = &r->dst[i], .msg_namelen = alen,
		.msg_iov = &r->iov[i], .msg_iovlen = 1 };
	set_controls(&r->msg[i].msg_hdr, &r->ctl[i], r, p);
	if (r->n == RAW_BATCH)
		raw_flush(r);
}

/*
 * sendmmsg() stops at the first packet the kernel refuses and, when others
 * went before it, returns their count and drops the error: the next call
 * starts with the refused packet, which then fails alone and tells why.
 */
void
raw_flush(struct raw *r)
{
	int i = 0, n, k;

	while (i < r->n) {
		n = sendmmsg(r->fd, r->msg + i, (unsigned)(r->n - i), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || (errno == EAGAIN && drained(r, r->fd))))
			continue;
		if (n < 0) {
			r->done(&r->meta[i], errno, r->arg);
			i++;
			continue;
		}
		for (k = i; k < i + n; k++)
			r->done(&r->meta[k], 0, r->arg);
		i += n;
	}
	if (r->n > 0 && !r->isolate && (r->fd == r->fd4 || r->fd == r->fd6) &&
	    held(r->fd) > r->stuck)
		r->isolate = 1;
	r->n = 0;
}

int
raw_send(struct raw *r, const struct raw_pkt *p)
{
	union control ctl;
	struct iovec iov = { .iov_base = p->data, .iov_len = p->len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	union addr a;
	socklen_t alen;
	int fd;

	if ((fd = destination(r, p, &a, &alen)) < 0)
		return errno;
	msg.msg_name = &a;
	msg.msg_namelen = alen;
	set_controls(&msg, &ctl, r, p);
	while (sendmsg(fd, &msg, MSG_DONTWAIT) < 0)
		if (errno != EINTR && !(errno == EAGAIN && drained(r, fd)))
			return errno;
	return 0;
}

int
raw_route_mtu(struct raw *r, const struct raw_pkt *p)
{
	union addr a;
	socklen_t alen, olen;
	uint32_t mark = mark_of(r, p);
	int fd, mtu = 0, v4 = p->data[0] >> 4 == 4;

	alen = address_of(r, p, &a);
	fd = v4 ? r->probe4 : r->probe6;
	if (fd < 0)
		return -EAFNOSUPPORT;
	/* The route the packet takes is the one its mark chooses. */
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
		return -errno;
	if (v4)
		a.in4.sin_port = htons(9);
	else
		a.in6.sin6_port = htons(9);
	/* connect() on UDP only looks the route up: nothing is sent. */
	if (connect(fd, &a.sa, alen) < 0)
		return -errno;
	olen = sizeof(mtu);
	if (getsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_MTU : IPV6_MTU, &mtu, &olen) < 0)
		return -errno;
	return mtu;
}

void
raw_close(struct raw *r)
{
	int i;

	if (r == NULL)
		return;
	for (i = 0; i < r->ndest; i++)
		close(r->dest[i].fd);
	if (r->fd4 >= 0) close(r->fd4);
	if (r->fd6 >= 0) close(r->fd6);
	if (r->probe4 >= 0) close(r->probe4);
	if (r->probe6 >= 0) close(r->probe6);
	free(r->slot);
	free(r);
}
