/*
 * fortify.c - a divert program as distributions build them, with
 * -O2 -D_FORTIFY_SOURCE=2 (dpkg-buildflags; Ubuntu's compiler by default):
 * a read whose length the compiler cannot see is then glibc's checked
 * call, __recvfrom_chk, __recv_chk or __read_chk, not recvfrom, recv or read.
 *
 *	fortify PORT COUNT [SIZE]
 *
 * Reads COUNT packets (at most SIZE bytes each, a run-time length) from a divert socket, by turns with recvfrom(), recv()
 * and read(), printing "CALL LENGTH" for each, and writes each back (sendto()
 * with the address recvfrom gave, else send() or write(): out).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	static unsigned char buf[65535];
	struct sockaddr_in sin;
	socklen_t len;
	size_t size;
	long i, count;
	ssize_t n;
	int fd;

	if (argc != 3 && argc != 4)
		errx(64, "usage: fortify port count [size]");
	count = atol(argv[2]);
	size = argc == 4 ? strtoul(argv[3], NULL, 10) : sizeof(buf);

	if ((fd = socket(AF_INET, SOCK_RAW, IPPROTO_DIVERT)) == -1)
		err(1, "socket");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(atoi(argv[1]));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		err(2, "bind");
	fprintf(stderr, "fortify: bound\n");
	for (i = 0; i < count; i++) {
		switch (i % 3) {
		case 0:
			len = sizeof(sin);
			if ((n = recvfrom(fd, buf, size, 0, (struct sockaddr *)&sin, &len)) < 0)
				err(1, "recvfrom");
			printf("recvfrom %zd\n", n);
			if (sendto(fd, buf, n, 0, (struct sockaddr *)&sin, len) != n)
				err(1, "sendto");
			break;
		case 1:
			if ((n = recv(fd, buf, size, 0)) < 0)
				err(1, "recv");
			printf("recv %zd\n", n);
			if (send(fd, buf, n, 0) != n)
				err(1, "send");
			break;
		case 2:
			if ((n = read(fd, buf, size)) < 0)
				err(1, "read");
			printf("read %zd\n", n);
			if (write(fd, buf, n) != n)
				err(1, "write");
			break;
		}
		fflush(stdout);
	}
	return 0;
}
