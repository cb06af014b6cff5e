/*
 * sink - count UDP datagrams arriving on PORT (IPv4 or IPv6).
 *   sink PORT    prints the number received once 1 s passes without one
 *                (after the first); says "ready" on stderr when bound.
 */
#include <arpa/inet.h>
#include <err.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64

int
main(int argc, char **argv)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct timeval tv = { 1, 0 };
	static char bufs[BATCH][2048];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	unsigned long long got = 0;
	int fd, i, n, size = 32 << 20, zero = 0;

	if (argc < 2)
		errx(64, "usage: sink PORT");
	sa.sin6_port = htons((uint16_t)atoi(argv[1]));
	if ((fd = socket(AF_INET6, SOCK_DGRAM, 0)) < 0)
		err(1, "socket");
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		err(1, "bind");
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	fprintf(stderr, "sink: ready\n");
	for (;;) {
		n = recvmmsg(fd, msgs, BATCH, 0, NULL);
		if (n <= 0) {
			if (got > 0)
				break;		/* 1 s of silence after data */
			continue;
		}
		got += (unsigned)n;
	}
	printf("%llu\n", got);
	return 0;
}
