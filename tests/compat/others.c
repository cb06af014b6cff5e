/*
 * others.c - a divert socket and sockets that are not one, in one process.
 *
 *	others PORT
 *
 * Prints one line a check.  The lines starting with "divert" are about the
 * divert socket (bound to PORT) and depend on the preloaded library; every
 * other line must be the same with it and without it: the UDP, raw ICMP,
 * AF_XDP-numbered (44, FreeBSD's PF_DIVERT) and raw protocol 253 sockets,
 * and the socket() calls that only look like divert ones, are libc's.
 * Needs a loopback interface that is up (run in a namespace as root).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOOP	htonl(INADDR_LOOPBACK)

/* A result: "ok" or the errno's name and text (the text for unnamed ones). */
static const char *
res(int r)
{
	static char buf[128];
	static const struct { int e; const char *n; } names[] = {
		{ EPERM, "EPERM" }, { EINVAL, "EINVAL" }, { EAFNOSUPPORT, "EAFNOSUPPORT" },
		{ EPROTONOSUPPORT, "EPROTONOSUPPORT" }, { ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT" },
		{ EPROTOTYPE, "EPROTOTYPE" }, { EADDRINUSE, "EADDRINUSE" },
		{ EOPNOTSUPP, "EOPNOTSUPP" }, { ENOTCONN, "ENOTCONN" }, { EBADF, "EBADF" },
		{ EAGAIN, "EAGAIN" }, { EADDRNOTAVAIL, "EADDRNOTAVAIL" },
	};
	size_t i;

	if (r >= 0)
		return "ok";
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == errno)
			return names[i].n;
	snprintf(buf, sizeof(buf), "errno %d (%s)", errno, strerror(errno));
	return buf;
}

/* What the kernel says the socket is (or why not). */
static void
kind(const char *label, int fd)
{
	int dom = -1, type = -1, proto = -1;
	socklen_t l = sizeof(int);
	int r;

	r = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l);
	l = sizeof(int);
	r |= getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
	l = sizeof(int);
	r |= getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l);
	printf("%s kind: %s domain %d type %d protocol %d\n", label, res(r), dom, type, proto);
}

static int
readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static unsigned short
cksum(const void *data, size_t len)
{
	const unsigned char *p = data;
	unsigned long sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += p[0] << 8 | p[1];
	if (len)
		sum += p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

/* Two UDP sockets on loopback: a datagram from one to the other. */
static void
udp(const char *label)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, b, from;
	socklen_t l = sizeof(b), fl = sizeof(from);
	char buf[64];
	int u, v, d;
	ssize_t n;

	u = socket(AF_INET, SOCK_DGRAM, 0);
	v = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	printf("%s socket: %s %s cloexec %d %d\n", label, res(u), res(v),
	    (fcntl(u, F_GETFD) & FD_CLOEXEC) != 0, (fcntl(v, F_GETFD) & FD_CLOEXEC) != 0);
	if (u < 0 || v < 0)
		exit(1);
	kind(label, u);
	a.sin_addr.s_addr = LOOP;
	printf("%s bind: %s\n", label, res(bind(u, (struct sockaddr *)&a, sizeof(a))));
	getsockname(u, (struct sockaddr *)&b, &l);
	n = sendto(v, "hello", 5, 0, (struct sockaddr *)&b, sizeof(b));
	printf("%s sendto: %zd\n", label, n);
	d = dup(u);		/* received through a duplicate */
	if (!readable(d, 2000)) {
		printf("%s recvfrom: nothing\n", label);
	} else {
		n = recvfrom(d, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		printf("%s recvfrom: %zd '%.*s' from %s\n", label, n, (int)(n > 0 ? n : 0),
		    buf, inet_ntoa(from.sin_addr));
	}
	/* read() and write() on a connected pair. */
	connect(v, (struct sockaddr *)&b, sizeof(b));
	n = write(v, "again", 5);
	n = readable(u, 2000) ? read(u, buf, sizeof(buf)) : -1;
	printf("%s read: %zd '%.*s'\n", label, n, (int)(n > 0 ? n : 0), buf);
	close(d);
	close(u);
	close(v);
}

/* A raw ICMP socket: an echo request to 127.0.0.1, its reply received. */
static void
icmp(void)
{
	struct sockaddr_in to = { .sin_family = AF_INET }, from;
	unsigned char pkt[64], buf[1500];
	struct icmphdr *ic = (struct icmphdr *)pkt;
	socklen_t fl;
	int r, i, got = 0;
	ssize_t n;

	r = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	printf("icmp socket: %s\n", res(r));
	if (r < 0)
		return;
	kind("icmp", r);
	memset(pkt, 'i', sizeof(pkt));
	ic->type = ICMP_ECHO;
	ic->code = 0;
	ic->un.echo.id = htons(0x4242);
	ic->un.echo.sequence = htons(7);
	ic->checksum = 0;
	ic->checksum = cksum(pkt, sizeof(pkt));
	to.sin_addr.s_addr = LOOP;
	n = sendto(r, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to));
	printf("icmp sendto: %zd\n", n);
	/* Both the request (raw sockets see every ICMP packet) and the reply. */
	for (i = 0; i < 10 && !got && readable(r, 2000); i++) {
		struct iphdr *ip = (struct iphdr *)buf;
		struct icmphdr *h;

		fl = sizeof(from);
		n = recvfrom(r, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < (ssize_t)sizeof(*ip))
			break;
		h = (struct icmphdr *)(buf + ip->ihl * 4);
		if (h->type == ICMP_ECHOREPLY && h->un.echo.id == htons(0x4242)) {
			printf("icmp reply: %zd bytes from %s seq %d\n", n,
			    inet_ntoa(from.sin_addr), ntohs(h->un.echo.sequence));
			got = 1;
		}
	}
	if (!got)
		printf("icmp reply: none\n");
	close(r);
}

/* Raw protocol 253 (experimental): a packet to 127.0.0.1 comes back to it. */
static void
raw253(int port)
{
	struct sockaddr_in to = { .sin_family = AF_INET }, from;
	unsigned char buf[1500];
	socklen_t fl = sizeof(from);
	int r;
	ssize_t n;

	r = socket(AF_INET, SOCK_RAW, 253);
	printf("raw253 socket: %s\n", res(r));
	if (r < 0)
		return;
	kind("raw253", r);
	/* What a divert bind() looks like, on a socket that is none. */
	to.sin_port = htons(port);
	printf("raw253 bind port: %s\n", res(bind(r, (struct sockaddr *)&to, sizeof(to))));
	to.sin_port = 0;
	to.sin_addr.s_addr = LOOP;
	n = sendto(r, "proto 253", 9, 0, (struct sockaddr *)&to, sizeof(to));
	printf("raw253 sendto: %zd\n", n);
	if (!readable(r, 2000)) {
		printf("raw253 recvfrom: nothing\n");
	} else {
		struct iphdr *ip = (struct iphdr *)buf;

		n = recvfrom(r, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		printf("raw253 recvfrom: %zd proto %d '%.*s' from %s\n", n, ip->protocol,
		    (int)(n - ip->ihl * 4), buf + ip->ihl * 4, inet_ntoa(from.sin_addr));
	}
	close(r);
}

/* socket() calls that are not divert ones: libc's result, whatever it is. */
static void
lookalike(const char *label, int domain, int type, int proto, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int s;

	s = socket(domain, type, proto);
	printf("%s socket: %s\n", label, res(s));
	if (s < 0)
		return;
	kind(label, s);
	printf("%s bind port: %s\n", label, res(bind(s, (struct sockaddr *)&sin, sizeof(sin))));
	printf("%s close: %s\n", label, res(close(s)));
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int d, port;

	if (argc != 2) {
		fprintf(stderr, "usage: others port\n");
		return 64;
	}
	port = atoi(argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	d = socket(AF_INET, SOCK_RAW, IPPROTO_DIVERT);
	printf("divert socket: %s\n", res(d));
	sin.sin_port = htons(port);
	if (d >= 0) {
		socklen_t l = sizeof(sin);

		printf("divert bind: %s\n", res(bind(d, (struct sockaddr *)&sin, sizeof(sin))));
		memset(&sin, 0, sizeof(sin));
		printf("divert getsockname: %s", res(getsockname(d, (struct sockaddr *)&sin, &l)));
		printf(" family %d port %d\n", sin.sin_family, ntohs(sin.sin_port));
	}

	udp("udp");
	icmp();
	raw253(port);
	lookalike("xdp", 44, SOCK_RAW, 0, port);
	lookalike("dgram258", AF_INET, SOCK_DGRAM, IPPROTO_DIVERT, port);
	lookalike("stream254", AF_INET, SOCK_STREAM, 254, port);
	lookalike("inet6raw258", AF_INET6, SOCK_RAW, IPPROTO_DIVERT, port);
	lookalike("packet", AF_PACKET, SOCK_DGRAM, 0, port);

	if (d >= 0)
		printf("divert close: %s\n", res(close(d)));
	udp("udp after");	/* the fds the divert socket had, reused */
	return 0;
}
