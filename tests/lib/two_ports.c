/*
 * two_ports: two divert handles in one process (tests/bats/lib.bats).
 *
 *	two_ports P1 N1 P2 N2
 *
 * Binds divert ports P1 and P2 and polls both.  P1's packets are taken in
 * place and accepted (divert_dispatch: zero copy, a verdict each); P2's are
 * received by copy and sent back (divert_recv, divert_send), its fd made
 * non-blocking.  Prints a line a packet on stdout: the handle's port, then
 * the packet's divert address (port, direction, interface) and IP protocol
 * and length.  Exits 0 once P1 has had N1 packets and P2 N2; 1 with a
 * message on stderr on any error.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include <divert.h>

struct port {
	struct divert	*h;
	int		 port;
	unsigned long	 want, got;
};

static void
show(const struct port *p, const struct divert_addr *a, const uint8_t *pkt, size_t len)
{
	int proto = -1;

	if (len >= 20 && pkt[0] >> 4 == 4)
		proto = pkt[9];
	else if (len >= 40 && pkt[0] >> 4 == 6)
		proto = pkt[6];
	printf("handle %d port %u %s %s proto %d len %zu\n", p->port, a->port,
	    a->dir == DIVERT_IN ? "in" : a->dir == DIVERT_OUT ? "out" : "unknown",
	    a->ifname, proto, len);
}

/* P1: each packet is shown and let go on, in place. */
static int
accept_cb(const struct divert_addr *from, uint8_t *pkt, size_t len, void *arg)
{
	struct port *p = arg;

	show(p, from, pkt, len);
	p->got++;
	return DIVERT_ACCEPT;
}

/* P2: each packet is copied out, shown and sent back where it was going. */
static void
recv_send(struct port *p)
{
	uint8_t pkt[65535 + 40];
	struct divert_addr from;
	ssize_t len;

	while ((len = divert_recv(p->h, pkt, sizeof(pkt), &from)) >= 0) {
		if ((size_t)len > sizeof(pkt))
			errx(1, "port %d: a packet of %zd bytes was cut", p->port, len);
		show(p, &from, pkt, len);
		p->got++;
		if (divert_send(p->h, pkt, len, &from) == -1)
			errx(1, "port %d: send: %s", p->port, divert_geterr(p->h));
	}
	if (errno != EAGAIN && errno != ENOBUFS)	/* ENOBUFS: losses, go on */
		errx(1, "port %d: receive: %s", p->port, divert_geterr(p->h));
}

static void
open_port(struct port *p, const char *port, const char *want)
{
	char errbuf[DIVERT_ERRBUF_SIZE];

	p->port = atoi(port);
	p->want = strtoul(want, NULL, 10);
	p->h = divert_open(p->port, DIVERT_MARK_DEFAULT, 0, errbuf);
	if (p->h == NULL)
		errx(1, "port %d: %s", p->port, errbuf);
}

int
main(int argc, char *argv[])
{
	struct port p1, p2;
	struct pollfd pfd[2];
	int fl;

	if (argc != 5)
		errx(64, "usage: two_ports P1 N1 P2 N2");
	setvbuf(stdout, NULL, _IOLBF, 0);
	open_port(&p1, argv[1], argv[2]);
	open_port(&p2, argv[3], argv[4]);
	if ((fl = fcntl(divert_fd(p2.h), F_GETFL)) == -1 ||
	    fcntl(divert_fd(p2.h), F_SETFL, fl | O_NONBLOCK) == -1)
		err(1, "fcntl");

	pfd[0] = (struct pollfd){ .fd = divert_fd(p1.h), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = divert_fd(p2.h), .events = POLLIN };
	while (p1.got < p1.want || p2.got < p2.want) {
		if (poll(pfd, 2, -1) == -1)
			err(1, "poll");
		if (pfd[0].revents && divert_dispatch(p1.h, accept_cb, &p1) == -1 &&
		    errno != ENOBUFS)
			errx(1, "port %d: dispatch: %s", p1.port, divert_geterr(p1.h));
		if (pfd[1].revents)
			recv_send(&p2);
	}
	divert_close(p1.h);
	divert_close(p2.h);
	return 0;
}
