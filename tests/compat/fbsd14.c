/*
 * fbsd14.c - a divert program as one is written for FreeBSD 14 and later
 * (PF_DIVERT, select() with a timeout, a non-blocking recvfrom(), sendto()
 * back), kept as such: it knows nothing of libdivert.  Built with
 * $(pkg-config --cflags divert-compat) and run under divert-run(1).
 *
 *	fbsd14 PORT MAXPACKETS IDLESECONDS
 *
 * One line a packet on stdout,
 *
 *	N SOURCE > DESTINATION proto P len L addr ADDRESS if NAME
 *
 * (ADDRESS and NAME: what recvfrom() put in sin_addr and sin_zero, NAME "-"
 * when empty), each packet sent back with the sockaddr it came with.  Stops
 * after MAXPACKETS packets or IDLESECONDS seconds without one, and prints
 * "count N".
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/select.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/in_systm.h>
#include <netinet/ip.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long
number(const char *s, const char *what)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < 0)
		errx(64, "bad %s: %s", what, s);
	return n;
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in sin;
	socklen_t len;
	struct timeval tv;
	fd_set rset;
	unsigned char buf[IP_MAXPACKET];
	char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN], addr[INET_ADDRSTRLEN];
	char zero[sizeof(sin.sin_zero) + 1], ifname[sizeof(zero)];
	long port, maxpackets, idlemax, idle = 0, count = 0;
	int fd, rcvbuf = 256 * 1024;
	ssize_t n;

	if (argc != 4) {
		fprintf(stderr, "usage: fbsd14 port maxpackets idleseconds\n");
		exit(64);
	}
	port = number(argv[1], "port");
	maxpackets = number(argv[2], "packet count");
	idlemax = number(argv[3], "idle time");

	if ((fd = socket(PF_DIVERT, SOCK_RAW, 0)) == -1)
		err(1, "socket");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == -1)
		warn("setsockopt SO_RCVBUF");

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = INADDR_ANY;
	sin.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		err(2, "bind");

	len = sizeof(sin);
	memset(&sin, 0, sizeof(sin));
	if (getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		err(1, "getsockname");
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
		err(1, "fcntl");
	fprintf(stderr, "fbsd14: bound to port %d\n", ntohs(sin.sin_port));

	while (count < maxpackets && idle < idlemax) {
		FD_ZERO(&rset);
		FD_SET(fd, &rset);
		tv.tv_sec = 1;
		tv.tv_usec = 0;
		switch (select(fd + 1, &rset, NULL, NULL, &tv)) {
		case -1:
			if (errno == EINTR)
				continue;
			err(1, "select");
		case 0:
			idle++;
			continue;
		}
		idle = 0;
		/* Everything that is there, until the socket would block. */
		while (count < maxpackets) {
			struct ip *ip = (struct ip *)buf;

			len = sizeof(sin);
			n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&sin, &len);
			if (n == -1) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				if (errno == EINTR)
					continue;
				err(1, "recvfrom");
			}
			count++;
			memcpy(zero, sin.sin_zero, sizeof(sin.sin_zero));
			zero[sizeof(sin.sin_zero)] = '\0';
			strlcpy(ifname, zero[0] != '\0' ? zero : "-", sizeof(ifname));
			inet_ntop(AF_INET, &ip->ip_src, src, sizeof(src));
			inet_ntop(AF_INET, &ip->ip_dst, dst, sizeof(dst));
			inet_ntop(AF_INET, &sin.sin_addr, addr, sizeof(addr));
			printf("%ld %s > %s proto %d len %zd addr %s if %s\n", count, src,
			    dst, ip->ip_p, n, addr, ifname);
			fflush(stdout);
			if (sendto(fd, buf, n, 0, (struct sockaddr *)&sin, len) != n)
				err(1, "sendto");
		}
	}
	printf("count %ld\n", count);
	close(fd);
	return 0;
}
