/* raw.c - send whole IP packets out through IPPROTO_RAW sockets, in batches. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "frag.h"
#include "raw.h"

#define BATCH	32		/* packets a sendmmsg() carries at most */

union addr {
	struct sockaddr		sa;
	struct sockaddr_in	in4;
	struct sockaddr_in6	in6;
};

struct raw {
	int		 fd4, fd6;		/* IPPROTO_RAW, header included */
	int		 probe4, probe6;	/* UDP, connected only to ask for the route MTU */
	raw_done_fn	 done;
	void		*arg;
	int		 n;			/* packets queued */
	int		 fd;			/* the socket the queued ones go to */
	struct mmsghdr	 msg[BATCH];
	struct iovec	 iov[BATCH];
	union addr	 dst[BATCH];
	struct pkt	 meta[BATCH];
	uint8_t		*slot;			/* BATCH buffers of FRAG_MAX bytes */
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

struct raw *
raw_open(uint32_t mark, raw_done_fn done, void *arg, char *why, size_t whylen)
{
	struct raw *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->slot = malloc((size_t)BATCH * FRAG_MAX)) == NULL) {
		free(r);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	r->done = done;
	r->arg = arg;
	r->fd6 = r->probe6 = -1;
	r->fd4 = marked_socket(AF_INET, SOCK_RAW, IPPROTO_RAW, mark);
	r->probe4 = marked_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, mark);
	if (r->fd4 < 0 || r->probe4 < 0) {
		snprintf(why, whylen, "cannot open a raw IPv4 socket: %s",
		    errno == EPERM || errno == EACCES ?
		    "needs CAP_NET_RAW and CAP_NET_ADMIN: run as root" : strerror(errno));
		raw_close(r);
		return NULL;
	}
	/* A kernel without IPv6 still injects IPv4: IPv6 packets are then refused one by one. */
	r->fd6 = marked_socket(AF_INET6, SOCK_RAW, IPPROTO_RAW, mark);
	r->probe6 = marked_socket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, mark);
	return r;
}

/* The socket for p's IP version and its destination address; -1 (errno) if none. */
static int
destination(struct raw *r, const struct pkt *p, union addr *a, socklen_t *alen)
{
	memset(a, 0, sizeof(*a));
	if (p->data[0] >> 4 == 4) {
		a->in4.sin_family = AF_INET;
		memcpy(&a->in4.sin_addr, p->data + 16, 4);
		*alen = sizeof(a->in4);
		return r->fd4;
	}
	a->in6.sin6_family = AF_INET6;
	memcpy(&a->in6.sin6_addr, p->data + 24, 16);
	/* A link-scoped destination needs the interface it leaves by. */
	if (IN6_IS_ADDR_LINKLOCAL(&a->in6.sin6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&a->in6.sin6_addr))
		a->in6.sin6_scope_id = p->ifindex;
	*alen = sizeof(a->in6);
	if (r->fd6 < 0)
		errno = EAFNOSUPPORT;
	return r->fd6;
}

void
raw_queue(struct raw *r, const struct pkt *p)
{
	union addr a;
	socklen_t alen;
	uint8_t *buf;
	int fd, i;

	if ((fd = destination(r, p, &a, &alen)) < 0) {
		raw_flush(r);			/* keep the order of reports */
		r->done(p, errno, r->arg);
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
	r->meta[i].data = buf;
	r->meta[i].rec = NULL;		/* the stream's buffer is reused: keep only metadata */
	r->meta[i].l2len = 0;
	r->meta[i].dlt = 0;
	r->iov[i] = (struct iovec){ .iov_base = buf, .iov_len = p->len };
	r->msg[i].msg_hdr = (struct msghdr){ .msg_name = &r->dst[i], .msg_namelen = alen,
		.msg_iov = &r->iov[i], .msg_iovlen = 1 };
	if (r->n == BATCH)
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
		n = sendmmsg(r->fd, r->msg + i, (unsigned)(r->n - i), 0);
		if (n < 0 && errno == EINTR)
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
	r->n = 0;
}

int
raw_send(struct raw *r, const struct pkt *p)
{
	union addr a;
	socklen_t alen;
	int fd;

	if ((fd = destination(r, p, &a, &alen)) < 0)
		return errno;
	while (sendto(fd, p->data, p->len, 0, &a.sa, alen) < 0)
		if (errno != EINTR)
			return errno;
	return 0;
}

int
raw_route_mtu(struct raw *r, const struct pkt *p)
{
	union addr a;
	socklen_t alen, olen;
	int fd, mtu = 0, v4 = p->data[0] >> 4 == 4;

	if (destination(r, p, &a, &alen) < 0)
		return -errno;
	fd = v4 ? r->probe4 : r->probe6;
	if (fd < 0)
		return -EAFNOSUPPORT;
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
	if (r == NULL)
		return;
	if (r->fd4 >= 0) close(r->fd4);
	if (r->fd6 >= 0) close(r->fd6);
	if (r->probe4 >= 0) close(r->probe4);
	if (r->probe6 >= 0) close(r->probe6);
	free(r->slot);
	free(r);
}
