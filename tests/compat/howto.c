/*
 * howto.c - a divert program in the style of the Linux divert sockets HOWTO
 * (its example for the old kernel patch), kept as such: it knows nothing of
 * libdivert.  Built with $(pkg-config --cflags divert-compat) only and run
 * under divert-run(1).
 *
 *	howto PORT [COUNT]
 *
 * Binds a divert socket to PORT and, for each packet, prints one line
 *
 *	SOURCE DESTINATION proto N via ADDRESS
 *
 * (ADDRESS: the receiving interface's address from the sockaddr, 0.0.0.0
 * for outbound packets), then sends the packet back with the same sockaddr.
 * After COUNT packets (if given) it exits 0.
 */
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <arpa/inet.h>

#define IPPROTO_DIVERT 254
#define BUFSIZE 65535

int
main(int argc, char **argv)
{
	int fd, n;
	long count = -1, seen = 0;
	struct sockaddr_in bindPort, sin;
	socklen_t sinlen;
	struct iphdr *hdr;
	unsigned char packet[BUFSIZE];
	struct in_addr addr;
	char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "Usage: %s <port number> [count]\n", argv[0]);
		exit(1);
	}
	if (argc == 3)
		count = atol(argv[2]);

	/* open a divert socket */
	fd = socket(AF_INET, SOCK_RAW, IPPROTO_DIVERT);
	if (fd == -1) {
		fprintf(stderr, "%s: socket: %s\n", argv[0], strerror(errno));
		exit(1);
	}

	memset(&bindPort, 0, sizeof(bindPort));
	bindPort.sin_family = AF_INET;
	bindPort.sin_port = htons(atol(argv[1]));
	bindPort.sin_addr.s_addr = 0;

	if (bind(fd, (struct sockaddr *)&bindPort, sizeof(struct sockaddr_in)) != 0) {
		fprintf(stderr, "%s: bind: %s\n", argv[0], strerror(errno));
		close(fd);
		exit(2);
	}

	fprintf(stderr, "%s: waiting for data on port %s\n", argv[0], argv[1]);
	while (count < 0 || seen < count) {
		sinlen = sizeof(struct sockaddr_in);
		n = recvfrom(fd, packet, BUFSIZE, 0, (struct sockaddr *)&sin, &sinlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: recvfrom: %s\n", argv[0], strerror(errno));
			exit(3);
		}
		hdr = (struct iphdr *)packet;

		addr.s_addr = hdr->saddr;
		inet_ntop(AF_INET, &addr, src, sizeof(src));
		addr.s_addr = hdr->daddr;
		inet_ntop(AF_INET, &addr, dst, sizeof(dst));
		printf("%s %s proto %d via %s\n", src, dst, hdr->protocol,
		    inet_ntoa(sin.sin_addr));
		fflush(stdout);

		/* reinjection */
		n = sendto(fd, packet, n, 0, (struct sockaddr *)&sin, sinlen);
		if (n <= 0) {
			fprintf(stderr, "%s: sendto: %s\n", argv[0], strerror(errno));
			exit(4);
		}
		seen++;
	}
	close(fd);
	return 0;
}
