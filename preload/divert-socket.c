/*
 * divert-socket.c - libdivert-socket.so: BSD divert(4) sockets for programs
 * that know nothing of libdivert, by LD_PRELOAD (divert-run(1)).
 *
 * socket(AF_INET, SOCK_RAW, 258 or 254) and socket(PF_DIVERT, SOCK_RAW, 0)
 * give a netlink socket standing in for the divert socket; bind() opens the
 * divert port with libdivert and puts the port's own socket on the same
 * descriptor (dup3), so select, poll and epoll see its packets arrive.
 * Reads hand out one IP packet with divert(4)'s sockaddr_in; writes send
 * one back: in place when it is a packet read and not yet answered (the
 * kernel's own packet goes on, changed or not), else as a copy, out or in
 * as the address says.  Every other call on every other descriptor goes to
 * libc untouched, after one look at a table that is empty in most programs.
 *
 * The descriptor is always non-blocking underneath; the program's own
 * O_NONBLOCK is kept here (fcntl, ioctl FIONBIO) and honoured by waiting in
 * poll().  One lock a socket: a thread blocked reading does not hold it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/netlink.h>
#include <linux/close_range.h>
#include <time.h>
#include <unistd.h>

#include "csum.h"
#include "divert.h"
#include "divert-compat.h"

#define IPPROTO_DIVERT_LINUX	254	/* the old Linux patch's, the HOWTO's */
#define IPPROTO_DIVERT_BSD	258	/* FreeBSD's before 14 */
#define HELD_MAX	256	/* packets read and not yet written back, a socket */
#define HOLD_MS		1000	/* a packet not written back by then is dropped */
#define PKT_MAX		65535
#define ADDRS		8	/* interface addresses remembered, a socket */
#define ADDR_TTL_MS	1000

#define EXPORT	__attribute__((visibility("default")))

/* What identifies a packet read when it is written back (addresses may not change). */
struct key {
	uint8_t		v, proto;
	uint16_t	ipid;		/* IPv4 */
	uint32_t	flow;		/* IPv6: flow label */
	uint8_t		src[16], dst[16];
	uint8_t		l4[4];		/* ports; ICMP echo: id and sequence */
};

struct held {
	uint32_t	id;
	uint64_t	when;		/* ms, monotonic */
	uint8_t		dir;
	uint32_t	ifindex;
	struct key	key;
	int		keyed;		/* the read gave enough of the header */
};

struct dsock {
	int		refs;		/* descriptors naming it (dup) */
	int		domain, proto;	/* as socket() was called */
	int		port;		/* bound port, -1 before bind */
	int		nonblock;	/* the program's O_NONBLOCK */
	pid_t		owner;		/* the process that bound it: a child's close does not unbind */
	unsigned	forks;		/* forks when bound: one since, and the port is shared */
	int		rcvbuf;		/* SO_RCVBUF asked before bind (0: none), for the port's socket */
	int		rcvbuf_force;	/* ...as SO_RCVBUFFORCE */
	struct divert	*h;		/* the port, or a send-only handle */
	pthread_mutex_t	lock;
	struct held	held[HELD_MAX];	/* a ring, oldest first */
	unsigned	head, n;
	struct {
		uint32_t	ifindex;
		uint64_t	until;	/* ms */
		struct in_addr	addr;
	}		addrs[ADDRS];
	uint8_t		buf[PKT_MAX];	/* a packet on its way out, fixed up */
};

/*
 * The descriptor table.  Read without a lock (a signal handler's write(),
 * a child just forked, must not wait on one): a table is published whole
 * and never freed when a larger one replaces it; changes take table_lock.
 */
struct table {
	int			 size;
	struct dsock *_Atomic	 slot[];	/* by descriptor */
};
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct table *_Atomic table;
static _Atomic int nsocks;		/* 0: every call passes straight through */
static _Atomic unsigned forks;		/* fork()s so far (pthread_atfork) */
static int ctl_fd = -1;			/* divert-run's end: rules for each bound port */

/* libc's own functions, found once. */
#define REAL(name) \
	static __typeof__(name) *real_##name; \
	if (real_##name == NULL) \
		real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct dsock *lookup(int fd);

/* Whether fd is still divert-run's socket pair: a Unix SOCK_SEQPACKET socket, not ours. */
static int
is_ctl(int fd)
{
	int domain = 0, type = 0;
	socklen_t len = sizeof(int);

	REAL(getsockopt);
	if (lookup(fd) != NULL ||
	    real_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
		return 0;
	len = sizeof(int);
	return real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_SEQPACKET;
}

/*
 * divert-run's end of a socket pair, named in DIVERT_RUN_FD: taken at the
 * first bind, not at load (a shell script between divert-run and the program
 * loads this library too), and left for the program's children.
 */
static int
ctl(void)
{
	const char *s;
	char *end;
	long fd;

	if (ctl_fd >= 0 || (s = getenv("DIVERT_RUN_FD")) == NULL)
		return ctl_fd;
	fd = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || fd < 0 || fd >= INT_MAX || !is_ctl((int)fd))
		return -1;	/* closed, or its number reused: no rules, rather than a stranger's socket */
	return ctl_fd = (int)fd;
}

/* ---- the descriptor table ------------------------------------------- */

static struct dsock *
lookup(int fd)
{
	struct table *t;

	if (nsocks == 0 || fd < 0 || (t = atomic_load(&table)) == NULL || fd >= t->size)
		return NULL;
	return atomic_load(&t->slot[fd]);
}

static int
table_put(int fd, struct dsock *d)
{
	struct table *t, *nt;
	int size, i;

	pthread_mutex_lock(&table_lock);
	t = atomic_load(&table);
	if (t == NULL || fd >= t->size) {
		for (size = t != NULL ? t->size : 64; size <= fd; size *= 2)
			;
		if ((nt = calloc(1, sizeof(*nt) + (size_t)size * sizeof(nt->slot[0]))) == NULL) {
			pthread_mutex_unlock(&table_lock);
			return errno = ENOMEM, -1;
		}
		nt->size = size;
		for (i = 0; t != NULL && i < t->size; i++)
			atomic_store(&nt->slot[i], atomic_load(&t->slot[i]));
		atomic_store(&table, nt);	/* the old one stays: a reader may hold it */
		t = nt;
	}
	atomic_store(&t->slot[fd], d);
	d->refs++;
	nsocks++;
	pthread_mutex_unlock(&table_lock);
	return 0;
}

/* Forget fd; the socket goes with its last descriptor. */
static void
table_drop(int fd)
{
	struct dsock *d = NULL;
	struct table *t;

	pthread_mutex_lock(&table_lock);
	t = atomic_load(&table);
	if (fd >= 0 && t != NULL && fd < t->size && (d = atomic_load(&t->slot[fd])) != NULL) {
		atomic_store(&t->slot[fd], NULL);
		nsocks--;
		if (--d->refs > 0)
			d = NULL;
	}
	pthread_mutex_unlock(&table_lock);
	if (d == NULL)
		return;
	/*
	 * Shared with another process (a fork since it was bound, or this is
	 * the child): the port stays bound for the other, as a socket's last
	 * close is not this process's to make.  Only this descriptor goes.
	 */
	if (d->owner != getpid() || d->forks != forks)
		return;
	if (d->h != NULL)
		divert_close(d->h);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static void
count_fork(void)
{
	forks++;
}

__attribute__((constructor)) static void
watch_forks(void)
{
	pthread_atfork(NULL, count_fork, count_fork);
}

/* ---- packets read and not yet written back ---------------------------- */

/* The first bytes of the transport header that tell flows apart (ports, echo id). */
static void
key_l4(struct key *k, const uint8_t *p, size_t len, size_t off)
{
	switch (k->proto) {
	case IPPROTO_TCP: case IPPROTO_UDP: case IPPROTO_UDPLITE: case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		break;
	case IPPROTO_ICMP: case IPPROTO_ICMPV6:
		off += 4;	/* echo: identifier and sequence number */
		break;
	default:
		return;
	}
	if (off + sizeof(k->l4) <= len)
		memcpy(k->l4, p + off, sizeof(k->l4));
}

/*
 * The identity of the packet at p (len bytes): what a program that writes
 * a packet back does not change (addresses, protocol, ports, IPv4 ID, IPv6
 * flow label); 0 when too short to tell.
 */
static int
key_of(const uint8_t *p, size_t len, struct key *k)
{
	size_t hl;

	memset(k, 0, sizeof(*k));
	if (len >= 20 && p[0] >> 4 == 4 && (hl = (size_t)(p[0] & 0x0f) * 4) >= 20) {
		k->v = 4;
		k->proto = p[9];
		k->ipid = (uint16_t)(p[4] << 8 | p[5]);
		memcpy(k->src, p + 12, 4);
		memcpy(k->dst, p + 16, 4);
		if ((p[6] & 0x1f) == 0 && p[7] == 0)	/* not a later fragment */
			key_l4(k, p, len, hl);
		return 1;
	}
	if (len >= 40 && p[0] >> 4 == 6) {
		k->v = 6;
		k->proto = p[6];
		k->flow = (uint32_t)(p[1] & 0x0f) << 16 | (uint32_t)p[2] << 8 | p[3];
		memcpy(k->src, p + 8, 16);
		memcpy(k->dst, p + 24, 16);
		key_l4(k, p, len, 40);
		return 1;
	}
	return 0;
}

static struct held *
held_at(struct dsock *d, unsigned i)
{
	return &d->held[(d->head + i) % HELD_MAX];
}

/* Drop the oldest held packet (the kernel's verdict is buffered). */
static void
drop_oldest(struct dsock *d)
{
	divert_verdict(d->h, d->held[d->head].id, DIVERT_DROP, NULL, 0);
	d->head = (d->head + 1) % HELD_MAX;
	d->n--;
}

/* A packet read is the program's: dropped unless written back within HOLD_MS. */
static void
expire(struct dsock *d)
{
	uint64_t now = now_ms();
	int dropped = 0;

	while (d->n > 0 && d->held[d->head].when + HOLD_MS <= now) {
		drop_oldest(d);
		dropped = 1;
	}
	if (dropped)
		divert_flush(d->h);
}

static void
remember(struct dsock *d, const struct divert_addr *a, const uint8_t *p, size_t len)
{
	struct held *e;

	if (d->n == HELD_MAX) {
		drop_oldest(d);
		divert_flush(d->h);
	}
	e = held_at(d, d->n++);
	e->id = a->id;
	e->when = now_ms();
	e->dir = a->dir;
	e->ifindex = a->ifindex;
	e->keyed = key_of(p, len, &e->key);
}

/* The oldest packet held that p is, going back the way it came; -1 none. */
static int
find_held(struct dsock *d, const struct divert_addr *to, const uint8_t *p, size_t len)
{
	struct key k;
	struct held *e;
	unsigned i;

	if (!key_of(p, len, &k))
		return -1;
	for (i = 0; i < d->n; i++) {
		e = held_at(d, i);
		if (e->keyed && e->dir == to->dir && memcmp(&e->key, &k, sizeof(k)) == 0 &&
		    (to->dir != DIVERT_IN || e->ifindex == to->ifindex))
			return (int)i;
	}
	return -1;
}

/* Take entry i out of the ring, keeping the order of the others. */
static void
forget(struct dsock *d, unsigned i)
{
	for (; i + 1 < d->n; i++)
		*held_at(d, i) = *held_at(d, i + 1);
	d->n--;
}

/* ---- addresses -------------------------------------------------------- */

/* The first IPv4 address of interface ifindex (divert(4)'s "receiving interface"). */
static struct in_addr
lookup_address(uint32_t ifindex)
{
	struct in_addr a = { INADDR_ANY };
	struct ifaddrs *ifs, *i;

	if (ifindex == 0 || getifaddrs(&ifs) < 0)
		return a;
	for (i = ifs; i != NULL; i = i->ifa_next)
		if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET &&
		    if_nametoindex(i->ifa_name) == ifindex) {
			a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			break;
		}
	freeifaddrs(ifs);
	return a;
}

/* The same, remembered a second (an address dump a packet would be slow). */
static struct in_addr
address_of(struct dsock *d, uint32_t ifindex)
{
	uint64_t now = now_ms();
	unsigned i, slot = 0;

	for (i = 0; i < ADDRS; i++) {
		if (d->addrs[i].ifindex == ifindex && now < d->addrs[i].until)
			return d->addrs[i].addr;
		if (d->addrs[i].until < d->addrs[slot].until)
			slot = i;
	}
	d->addrs[slot].ifindex = ifindex;
	d->addrs[slot].until = now + ADDR_TTL_MS;
	d->addrs[slot].addr = lookup_address(ifindex);
	return d->addrs[slot].addr;
}

/* The interface owning IPv4 address a: its index and name; 0 none. */
static uint32_t
interface_with(struct in_addr a, char name[DIVERT_IFNAMSIZ])
{
	struct ifaddrs *ifs, *i;
	uint32_t ifindex = 0;

	if (getifaddrs(&ifs) < 0)
		return 0;
	for (i = ifs; i != NULL; i = i->ifa_next)
		if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET &&
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a.s_addr) {
			snprintf(name, DIVERT_IFNAMSIZ, "%s", i->ifa_name);
			ifindex = if_nametoindex(i->ifa_name);
			break;
		}
	freeifaddrs(ifs);
	return ifindex;
}

/*
 * divert(4)'s source address: the port; for a packet coming in, the address
 * of its interface; the name of the interface it came in by (a forwarded
 * packet's in-interface) in sin_zero when it fits with its NUL.
 */
static void
fill_from(struct dsock *d, const struct divert_addr *a, struct sockaddr *sa,
    socklen_t *salen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)d->port) };
	const char *name = a->dir == DIVERT_IN ? a->ifname : a->other_ifname;

	if (a->dir == DIVERT_IN)
		sin.sin_addr = address_of(d, a->ifindex);
	if (strlen(name) < sizeof(sin.sin_zero))
		memcpy(sin.sin_zero, name, strlen(name));
	if (sa != NULL && salen != NULL) {
		memcpy(sa, &sin, *salen < sizeof(sin) ? *salen : sizeof(sin));
		*salen = sizeof(sin);
	}
}

/*
 * Where divert(4) sends a packet written with address sin: INADDR_ANY: out;
 * else in, on the interface named in sin_zero (a name with its NUL), or
 * else the one owning sin_addr.  No address: out.
 */
static int
aim(const struct sockaddr *sa, socklen_t salen, struct divert_addr *to)
{
	struct sockaddr_in sin;
	char name[sizeof(sin.sin_zero)];

	memset(to, 0, sizeof(*to));
	to->dir = DIVERT_OUT;
	if (sa == NULL)
		return 0;
	if (salen < sizeof(sin) || sa->sa_family != AF_INET)
		return errno = EINVAL, -1;
	memcpy(&sin, sa, sizeof(sin));
	if (sin.sin_addr.s_addr == INADDR_ANY)
		return 0;
	to->dir = DIVERT_IN;
	memcpy(name, sin.sin_zero, sizeof(name));
	if (name[0] != '\0' && memchr(name, '\0', sizeof(name)) != NULL &&
	    (to->ifindex = if_nametoindex(name)) != 0)
		snprintf(to->ifname, sizeof(to->ifname), "%s", name);
	else
		to->ifindex = interface_with(sin.sin_addr, to->ifname);
	return to->ifindex != 0 ? 0 : (errno = EADDRNOTAVAIL, -1);
}

/* ---- the divert socket's calls ----------------------------------------- */

/* The mark the toolkit agrees on (DIVERT_MARK, as the tools read it). */
static int
mark_of_env(uint32_t *mark)
{
	const char *s = getenv("DIVERT_MARK");
	unsigned long v;
	char *end;

	*mark = DIVERT_MARK_DEFAULT;
	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0' || v == 0 || v > 0xffffffffUL)
		return errno = EINVAL, -1;
	*mark = (uint32_t)v;
	return 0;
}

/*
 * What a port needs: CAP_NET_ADMIN in effect (divert(4): root).  A root
 * without it (a container's) is refused here, not later with a bind error
 * that would say something else.
 */
static int
may_divert(void)
{
	FILE *f;
	char line[256];
	unsigned long long caps = 0;

	if ((f = fopen("/proc/self/status", "re")) == NULL)
		return geteuid() == 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return (caps >> 12) & 1;	/* CAP_NET_ADMIN */
}

/* divert-run adds the program's rules for port before bind returns: 0, or an errno. */
static int
rules_for(int port)
{
	char msg[32];
	int err = 0;
	ssize_t n;

	if (ctl() < 0)
		return 0;
	n = snprintf(msg, sizeof(msg), "bind %d", port);
	if (send(ctl_fd, msg, (size_t)n, MSG_NOSIGNAL) != n)
		return 0;	/* divert-run gone: nothing to add */
	while ((n = recv(ctl_fd, msg, sizeof(msg) - 1, 0)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return 0;
	msg[n] = '\0';
	sscanf(msg, "%d", &err);
	return err;
}

static int
divert_bind(struct dsock *d, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct sockaddr_in sin;
	struct divert_port_info pi;
	struct divert *h;
	uint32_t mark;
	int port, flags, fdflags, err;

	if (sa == NULL || salen < sizeof(sin))
		return errno = EINVAL, -1;
	memcpy(&sin, sa, sizeof(sin));
	if (sin.sin_family != AF_INET)
		return errno = EAFNOSUPPORT, -1;
	if ((port = ntohs(sin.sin_port)) == 0 || d->port >= 0)
		return errno = EINVAL, -1;
	if (mark_of_env(&mark) < 0)
		return -1;
	if (divert_port_bound(port, port, &pi) == 1)
		return errno = EADDRINUSE, -1;
	if ((h = divert_open(port, mark, DIVERT_HOLD, NULL)) == NULL)
		return errno = errno == EPERM ? EADDRINUSE : errno, -1;
	/* The program's descriptor becomes the port's socket, its flags kept (libc's calls). */
	REAL(fcntl);
	REAL(dup3);
	fdflags = real_fcntl(fd, F_GETFD);
	flags = real_fcntl(fd, F_GETFL);
	if (real_dup3(divert_fd(h), fd, fdflags >= 0 && (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0 ||
	    real_fcntl(fd, F_SETFL, O_NONBLOCK | (flags >= 0 ? flags : 0)) < 0) {
		err = errno;
		divert_close(h);
		return errno = err, -1;
	}
	if (d->rcvbuf > 0)	/* asked of the stand-in: the port's socket gets it */
		setsockopt(fd, SOL_SOCKET, d->rcvbuf_force ? SO_RCVBUFFORCE : SO_RCVBUF,
		    &d->rcvbuf, sizeof(d->rcvbuf));
	if ((err = rules_for(port)) != 0) {
		divert_close(h);
		return errno = err, -1;
	}
	pthread_mutex_lock(&d->lock);
	if (d->h != NULL)
		divert_close(d->h);	/* a send-only handle from before */
	d->h = h;
	d->port = port;
	d->nonblock = flags >= 0 && (flags & O_NONBLOCK);
	d->forks = forks;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* ms until the oldest held packet is due to be dropped; -1 none held. */
static int
expiry_in(struct dsock *d)
{
	uint64_t now = now_ms(), due;

	if (d->n == 0)
		return -1;
	due = d->held[d->head].when + HOLD_MS;
	return due > now ? (int)(due - now) : 0;
}

/* The program's SO_RCVTIMEO in ms; -1 none. */
static int
rcvtimeo(int fd)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	REAL(getsockopt);
	if (real_getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) < 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0))
		return -1;
	return tv.tv_sec > 86400 ? 86400000 : (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
}

/*
 * Wait for fd to be readable, as a blocking read would, at most ms (-1: no
 * limit): 1 readable, 0 not yet, -1 with errno (EINTR).
 */
static int
wait_readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms);
}

static ssize_t
divert_read(struct dsock *d, int fd, void *buf, size_t len, int flags, struct sockaddr *from,
    socklen_t *fromlen, size_t *full)
{
	struct divert_addr a;
	ssize_t n;
	int timeo = -2, ms;	/* -2: SO_RCVTIMEO not read yet */
	uint64_t until = 0, now;

	if (flags & ~(MSG_DONTWAIT | MSG_TRUNC | MSG_WAITALL | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC))
		return errno = EOPNOTSUPP, -1;	/* MSG_PEEK, MSG_OOB, MSG_ERRQUEUE */
	for (;;) {
		pthread_mutex_lock(&d->lock);
		if (d->port < 0)
			n = (errno = EAGAIN, -1);	/* unbound: nothing ever comes */
		else {
			expire(d);
			if ((n = divert_recv(d->h, buf, len, &a)) >= 0) {
				remember(d, &a, buf, (size_t)n < len ? (size_t)n : len);
				fill_from(d, &a, from, fromlen);
			}
		}
		ms = expiry_in(d);	/* asleep, held packets still expire on time */
		pthread_mutex_unlock(&d->lock);
		if (n >= 0)
			break;
		if (errno == ENOBUFS)	/* the kernel dropped some: a socket says nothing */
			continue;
		if (errno != EAGAIN)
			return -1;
		if (d->nonblock || (flags & MSG_DONTWAIT))
			return errno = EAGAIN, -1;
		/* ...and SO_RCVTIMEO counts, read once a call. */
		if (timeo == -2 && (timeo = rcvtimeo(fd)) >= 0)
			until = now_ms() + (uint64_t)timeo;
		if (until != 0) {
			if ((now = now_ms()) >= until)
				return errno = EAGAIN, -1;
			if (ms < 0 || until - now < (uint64_t)ms)
				ms = (int)(until - now);
		}
		if (wait_readable(fd, ms) < 0)
			return -1;
	}
	if (full != NULL)
		*full = (size_t)n;
	return (flags & MSG_TRUNC) || (size_t)n < len ? n : (ssize_t)len;
}

/* The length fields and IPv4 header checksum from len, as divert(4) fixes them. */
static void
fix_lengths(uint8_t *p, size_t len)
{
	size_t hl;

	if (len >= 20 && p[0] >> 4 == 4 && (hl = (size_t)(p[0] & 0x0f) * 4) >= 20 && hl <= len) {
		p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
		p[10] = p[11] = 0;
		uint16_t c = csum(p, hl);
		p[10] = (uint8_t)(c >> 8), p[11] = (uint8_t)c;
	} else if (len >= 40 && p[0] >> 4 == 6) {
		p[4] = (uint8_t)((len - 40) >> 8), p[5] = (uint8_t)(len - 40);
	}
}

/*
 * Write one packet (the buffers of iov, gathered): back in place when it is
 * a packet read and not yet answered, going back the way it came; else a
 * copy, out or in as the address says.
 */
static ssize_t
divert_write(struct dsock *d, const struct iovec *iov, size_t iovcnt, const struct sockaddr *sa,
    socklen_t salen)
{
	struct divert_addr to;
	uint32_t mark;
	size_t i, len = 0;
	int held, rc;

	if (aim(sa, salen, &to) < 0)
		return -1;
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > sizeof(d->buf) - len) {
			pthread_mutex_unlock(&d->lock);
			return errno = EMSGSIZE, -1;
		}
		memcpy(d->buf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	if (d->h == NULL &&	/* never bound: a handle that only sends */
	    (mark_of_env(&mark) < 0 || (d->h = divert_open(DIVERT_PORT_NONE, mark, 0, NULL)) == NULL)) {
		pthread_mutex_unlock(&d->lock);
		return -1;
	}
	if (d->port >= 0)
		expire(d);
	if (d->port >= 0 && (held = find_held(d, &to, d->buf, len)) >= 0) {
		fix_lengths(d->buf, len);
		rc = divert_verdict(d->h, held_at(d, (unsigned)held)->id, DIVERT_ACCEPT, d->buf, len);
		if (rc == 0)
			forget(d, (unsigned)held);
		else if (errno == EMSGSIZE)	/* too large for a verdict: the copy goes */
			rc = divert_send(d->h, d->buf, len, &to);
	} else
		rc = divert_send(d->h, d->buf, len, &to);
	pthread_mutex_unlock(&d->lock);
	return rc < 0 ? -1 : (ssize_t)len;
}

/* One buffer, as an iovec. */
static ssize_t
write_one(struct dsock *d, const void *buf, size_t len, const struct sockaddr *sa,
    socklen_t salen)
{
	struct iovec iov = { (void *)buf, len };

	return divert_write(d, &iov, 1, sa, salen);
}

/* ---- the interposed calls ---------------------------------------------- */

static int
is_divert(int domain, int type, int proto)
{
	if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_RAW)
		return 0;
	if (domain == PF_DIVERT)
		return proto == 0;
	return domain == AF_INET && (proto == IPPROTO_DIVERT_BSD || proto == IPPROTO_DIVERT_LINUX);
}

EXPORT int
socket(int domain, int type, int protocol)
{
	struct dsock *d;
	int fd, err;

	REAL(socket);
	if (!is_divert(domain, type, protocol))
		return real_socket(domain, type, protocol);
	if (!may_divert())
		return errno = EPERM, -1;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return errno = ENOMEM, -1;
	d->domain = domain, d->proto = protocol, d->port = -1, d->owner = getpid();
	d->forks = forks;
	d->nonblock = (type & SOCK_NONBLOCK) != 0;
	pthread_mutex_init(&d->lock, NULL);
	/* A stand-in until bind: a netlink socket, as the port's will be. */
	fd = real_socket(AF_NETLINK, SOCK_RAW | (type & (SOCK_CLOEXEC | SOCK_NONBLOCK)),
	    NETLINK_NETFILTER);
	if (fd < 0 || table_put(fd, d) < 0) {
		REAL(close);
		err = errno;
		if (fd >= 0)
			real_close(fd);
		pthread_mutex_destroy(&d->lock);
		free(d);
		return errno = err, -1;
	}
	return fd;
}

EXPORT int
bind(int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct dsock *d = lookup(fd);

	REAL(bind);
	return d == NULL ? real_bind(fd, sa, salen) : divert_bind(d, fd, sa, salen);
}

EXPORT int
getsockname(int fd, struct sockaddr *sa, socklen_t *salen)
{
	struct dsock *d = lookup(fd);
	struct sockaddr_in sin = { .sin_family = AF_INET };

	REAL(getsockname);
	if (d == NULL)
		return real_getsockname(fd, sa, salen);
	if (sa == NULL || salen == NULL)
		return errno = EFAULT, -1;
	sin.sin_port = htons((uint16_t)(d->port >= 0 ? d->port : 0));
	memcpy(sa, &sin, *salen < sizeof(sin) ? *salen : sizeof(sin));
	*salen = sizeof(sin);
	return 0;
}

EXPORT int
getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct dsock *d = lookup(fd);
	int v;

	REAL(getsockopt);
	if (d == NULL || level != SOL_SOCKET ||
	    (name != SO_TYPE && name != SO_PROTOCOL && name != SO_DOMAIN))
		return real_getsockopt(fd, level, name, val, len);
	if (val == NULL || len == NULL || *len < sizeof(int))
		return errno = EINVAL, -1;
	v = name == SO_TYPE ? SOCK_RAW : name == SO_PROTOCOL ? d->proto : d->domain;
	memcpy(val, &v, sizeof(v));
	*len = sizeof(v);
	return 0;
}

/* SO_RCVBUF before bind is the port's, once bound (the stand-in is replaced). */
EXPORT int
setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct dsock *d = lookup(fd);
	int rc;

	REAL(setsockopt);
	rc = real_setsockopt(fd, level, name, val, len);
	if (rc == 0 && d != NULL && d->port < 0 && level == SOL_SOCKET &&
	    (name == SO_RCVBUF || name == SO_RCVBUFFORCE) && val != NULL && len >= sizeof(int)) {
		memcpy(&d->rcvbuf, val, sizeof(int));
		d->rcvbuf_force = name == SO_RCVBUFFORCE;
	}
	return rc;
}

EXPORT ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	struct dsock *d = lookup(fd);

	REAL(recvfrom);
	if (d == NULL)
		return real_recvfrom(fd, buf, len, flags, from, fromlen);
	return divert_read(d, fd, buf, len, flags, from, fromlen, NULL);
}

EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	struct dsock *d = lookup(fd);

	REAL(recv);
	if (d == NULL)
		return real_recv(fd, buf, len, flags);
	return divert_read(d, fd, buf, len, flags, NULL, NULL, NULL);
}

EXPORT ssize_t
read(int fd, void *buf, size_t len)
{
	struct dsock *d = lookup(fd);

	REAL(read);
	if (d == NULL)
		return real_read(fd, buf, len);
	return divert_read(d, fd, buf, len, 0, NULL, NULL, NULL);
}

/*
 * The checked reads _FORTIFY_SOURCE compiles read, recv and recvfrom into:
 * a length over the buffer goes to libc's, which stops the program.
 */
ssize_t __read_chk(int, void *, size_t, size_t);
ssize_t __recv_chk(int, void *, size_t, size_t, int);
ssize_t __recvfrom_chk(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);

EXPORT ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	struct dsock *d = lookup(fd);

	REAL(__read_chk);
	if (d == NULL || len > buflen)
		return real___read_chk(fd, buf, len, buflen);
	return divert_read(d, fd, buf, len, 0, NULL, NULL, NULL);
}

EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	struct dsock *d = lookup(fd);

	REAL(__recv_chk);
	if (d == NULL || len > buflen)
		return real___recv_chk(fd, buf, len, buflen, flags);
	return divert_read(d, fd, buf, len, flags, NULL, NULL, NULL);
}

EXPORT ssize_t
__recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags, struct sockaddr *from,
    socklen_t *fromlen)
{
	struct dsock *d = lookup(fd);

	REAL(__recvfrom_chk);
	if (d == NULL || len > buflen)
		return real___recvfrom_chk(fd, buf, len, buflen, flags, from, fromlen);
	return divert_read(d, fd, buf, len, flags, from, fromlen, NULL);
}

EXPORT ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct dsock *d = lookup(fd);
	socklen_t namelen;
	size_t full = 0;
	ssize_t n;

	REAL(recvmsg);
	if (d == NULL)
		return real_recvmsg(fd, msg, flags);
	if (msg->msg_iovlen != 1)
		return errno = EOPNOTSUPP, -1;	/* one buffer: a packet is not scattered */
	namelen = msg->msg_namelen;
	n = divert_read(d, fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len, flags,
	    msg->msg_name, msg->msg_name != NULL ? &namelen : NULL, &full);
	if (n < 0)
		return -1;
	msg->msg_namelen = msg->msg_name != NULL ? namelen : 0;
	msg->msg_controllen = 0;
	msg->msg_flags = full > msg->msg_iov[0].iov_len ? MSG_TRUNC : 0;
	return n;
}

EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
    socklen_t tolen)
{
	struct dsock *d = lookup(fd);

	REAL(sendto);
	if (d == NULL)
		return real_sendto(fd, buf, len, flags, to, tolen);
	return write_one(d, buf, len, to, tolen);
}

EXPORT ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	struct dsock *d = lookup(fd);

	REAL(send);
	if (d == NULL)
		return real_send(fd, buf, len, flags);
	return write_one(d, buf, len, NULL, 0);
}

EXPORT ssize_t
write(int fd, const void *buf, size_t len)
{
	struct dsock *d = lookup(fd);

	REAL(write);
	if (d == NULL)
		return real_write(fd, buf, len);
	return write_one(d, buf, len, NULL, 0);
}

EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct dsock *d = lookup(fd);

	REAL(sendmsg);
	if (d == NULL)
		return real_sendmsg(fd, msg, flags);
	return divert_write(d, msg->msg_iov, (size_t)msg->msg_iovlen, msg->msg_name,
	    msg->msg_namelen);
}

EXPORT int
close(int fd)
{
	REAL(close);
	if (lookup(fd) != NULL)
		table_drop(fd);
	return real_close(fd);
}

/* Descriptors closed in a range (closefrom, close_range) are forgotten too. */
static void
drop_range(unsigned first, unsigned last)
{
	struct table *t = atomic_load(&table);
	unsigned fd;

	if (nsocks == 0 || t == NULL)
		return;
	for (fd = first; fd <= last && fd < (unsigned)t->size; fd++)
		if (atomic_load(&t->slot[fd]) != NULL)
			table_drop((int)fd);
}

int close_range(unsigned int, unsigned int, int);

EXPORT int
close_range(unsigned int first, unsigned int last, int flags)
{
	int rc;

	REAL(close_range);
	if ((rc = real_close_range(first, last, flags)) == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
		drop_range(first, last);
	return rc;
}

EXPORT void
closefrom(int lowfd)
{
	REAL(closefrom);
	real_closefrom(lowfd);
	if (lowfd >= 0)
		drop_range((unsigned)lowfd, UINT_MAX);
}

/* A new descriptor for the same divert socket. */
static int
also(int oldfd, int newfd)
{
	struct dsock *d;

	if (newfd >= 0 && newfd != oldfd && lookup(newfd) != NULL)
		table_drop(newfd);	/* replaced (dup2): its old socket is gone here */
	if (newfd < 0 || (d = lookup(oldfd)) == NULL)
		return newfd;
	if (table_put(newfd, d) < 0) {
		REAL(close);
		real_close(newfd);
		return -1;
	}
	return newfd;
}

EXPORT int
dup(int fd)
{
	REAL(dup);
	return also(fd, real_dup(fd));
}

EXPORT int
dup2(int fd, int newfd)
{
	REAL(dup2);
	return fd == newfd ? real_dup2(fd, newfd) : also(fd, real_dup2(fd, newfd));
}

EXPORT int
dup3(int fd, int newfd, int flags)
{
	REAL(dup3);
	return also(fd, real_dup3(fd, newfd, flags));
}

/*
 * fcntl: duplicates are divert sockets too; O_NONBLOCK is the program's own
 * (the socket underneath never blocks).
 */
static int
divert_fcntl(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	struct dsock *d = lookup(fd);
	int flags;

	if (d == NULL)
		return real(fd, cmd, arg);
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return also(fd, real(fd, cmd, arg));
	case F_GETFL:
		if ((flags = real(fd, F_GETFL)) < 0 || d->port < 0)
			return flags;
		return d->nonblock ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	case F_SETFL:
		if (d->port < 0)
			return real(fd, cmd, arg);
		d->nonblock = ((int)(intptr_t)arg & O_NONBLOCK) != 0;
		return real(fd, F_SETFL, (void *)(intptr_t)((int)(intptr_t)arg | O_NONBLOCK));
	default:
		return real(fd, cmd, arg);
	}
}

EXPORT int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	REAL(fcntl);
	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return divert_fcntl(real_fcntl, fd, cmd, arg);
}

EXPORT int
fcntl64(int fd, int cmd, ...)
{
	static int (*real_fcntl64)(int, int, ...);
	va_list ap;
	void *arg;

	if (real_fcntl64 == NULL)
		real_fcntl64 = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl64");
	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return divert_fcntl(real_fcntl64, fd, cmd, arg);
}

/* ioctl: FIONBIO is O_NONBLOCK (Python sets timeouts with it). */
EXPORT int
ioctl(int fd, unsigned long req, ...)
{
	struct dsock *d;
	va_list ap;
	void *arg;

	REAL(ioctl);
	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req != FIONBIO || (d = lookup(fd)) == NULL || d->port < 0)
		return real_ioctl(fd, req, arg);
	if (arg == NULL)
		return errno = EFAULT, -1;
	d->nonblock = *(int *)arg != 0;
	return 0;
}
