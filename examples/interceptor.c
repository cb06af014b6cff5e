/* interceptor: print each packet diverted to a port, and send it back. */
#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <divert.h>

/* One line a packet: direction, interface, addresses, length. */
static void
show(const struct divert_addr *a, const uint8_t *pkt, ssize_t len)
{
	char src[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?";
	int v6 = len > 0 && pkt[0] >> 4 == 6;
	int af = v6 ? AF_INET6 : AF_INET;
	ssize_t off = v6 ? 8 : 12, alen = v6 ? 16 : 4;

	if (len >= off + 2 * alen) {
		inet_ntop(af, pkt + off, src, sizeof(src));
		inet_ntop(af, pkt + off + alen, dst, sizeof(dst));
	}
	printf("%s %s %s > %s %zd\n", a->dir == DIVERT_IN ? "in" : "out",
	    a->ifname, src, dst, len);
}

int
main(int argc, char *argv[])
{
	char errbuf[DIVERT_ERRBUF_SIZE];
	uint8_t pkt[40 + 65535];	/* the largest IP packet */
	struct divert_addr from;
	struct divert *h;
	ssize_t len;

	if (argc != 2)
		errx(64, "usage: interceptor port");
	h = divert_open(atoi(argv[1]), DIVERT_MARK_DEFAULT, 0, errbuf);
	if (h == NULL)
		errx(1, "%s", errbuf);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		len = divert_recv(h, pkt, sizeof(pkt), &from);
		if (len == -1 && errno == ENOBUFS)
			continue;	/* the kernel lost some: go on */
		if (len == -1)
			errx(1, "%s", divert_geterr(h));
		if (len > (ssize_t)sizeof(pkt))
			continue;	/* cut: cannot go back whole */
		show(&from, pkt, len);
		/* Back on its way: out, or in by its interface. */
		if (divert_send(h, pkt, len, &from) == -1)
			warnx("%s", divert_geterr(h));
	}
}
