/*
 * flood - send small UDP datagrams as fast as sendmmsg allows.
 *   flood ADDR PORT SECONDS [SIZE]    prints the number sent
 */
#include <arpa/inet.h>
#include <err.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai;
	struct mmsghdr msgs[BATCH];
	struct iovec iov;
	char payload[1500] = "divert bench";
	unsigned long long sent = 0;
	double end;
	size_t size;
	int fd, i, n;

	if (argc < 4)
		errx(64, "usage: flood ADDR PORT SECONDS [SIZE]");
	size = argc > 4 ? (size_t)atoi(argv[4]) : 64;
	if (size > sizeof(payload))
		errx(64, "SIZE up to %zu", sizeof(payload));
	if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0)
		errx(64, "bad address %s", argv[1]);
	if ((fd = socket(ai->ai_family, SOCK_DGRAM, 0)) < 0 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		err(1, "socket");
	iov = (struct iovec){ payload, size };
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	end = now() + atof(argv[3]);
	while (now() < end) {
		if ((n = sendmmsg(fd, msgs, BATCH, 0)) > 0)
			sent += (unsigned)n;
	}
	printf("%llu\n", sent);
	return 0;
}
