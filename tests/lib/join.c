/*
 * join - libdivert's in place across processes, as a program meets it.
 *
 *	join PORT N HOLD_MS
 *
 * The parent binds PORT, offers it, and hands each packet to the child
 * through a pipe (address and bytes); the child joins PORT as an injector
 * and answers each packet in place with its IPv4 TTL set to 7 (the header
 * checksum fixed), in one batch per burst.  The parent holds a packet for
 * the child (DIVERT_HOLD_SHARED, holder = its session) once the child has
 * joined, and takes the ones before out of the stack.  After N packets the
 * parent stops, waits for the child to leave, and prints on stdout:
 *
 *	held H stolen S accepted A dropped D joins J
 *
 * and the child, as it leaves, "child in place K refused R".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <divert.h>

struct rec {
	struct divert_addr	a;
	uint32_t		len;
	uint8_t			data[1500];
};

struct parent {
	struct divert	*h;
	int		 out;
	long		 left;
	long		 held, stolen;
};

static void
fail(const char *what, const char *why)
{
	fprintf(stderr, "join: %s: %s\n", what, why);
	exit(1);
}

static int
on_packet(const struct divert_addr *from, uint8_t *pkt, size_t len, void *arg)
{
	struct parent *p = arg;
	struct divert_joiners j;
	struct rec r;

	if (p->left <= 0)
		return DIVERT_ACCEPT;
	p->left--;
	divert_offer_run(p->h);
	divert_offer_info(p->h, &j);
	memset(&r, 0, sizeof(r));
	r.a = *from;
	r.len = (uint32_t)(len < sizeof(r.data) ? len : sizeof(r.data));
	memcpy(r.data, pkt, r.len);
	r.a.holder = j.injectors > 0 ? divert_session(p->h) : 0;
	if (write(p->out, &r, sizeof(r)) != sizeof(r))
		fail("write", strerror(errno));
	if (r.a.holder == 0) {
		p->stolen++;
		return DIVERT_DROP;
	}
	p->held++;
	return DIVERT_HOLD_SHARED;
}

static uint16_t
csum(const uint8_t *b, size_t n)
{
	uint32_t s = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* The child: join, answer in place what is held, flush when the pipe is idle. */
static int
child(int port, int in)
{
	char errbuf[DIVERT_ERRBUF_SIZE];
	struct pollfd pfd = { .fd = in, .events = POLLIN };
	struct divert *j;
	struct rec r;
	long done = 0, refused = 0;
	size_t hl;
	int tries;

	/* The parent binds and offers meanwhile: try again until it does. */
	for (tries = 0; (j = divert_join(port, DIVERT_JOIN_INJECT, errbuf)) == NULL; tries++) {
		if (errno != ECONNREFUSED || tries == 100)
			fail("divert_join", errbuf);
		usleep(50000);
	}
	while (read(in, &r, sizeof(r)) == sizeof(r)) {
		if (r.a.holder != 0) {
			hl = (size_t)(r.data[0] & 0xf) * 4;
			r.data[8] = 7;
			r.data[10] = r.data[11] = 0;
			r.data[10] = (uint8_t)(csum(r.data, hl) >> 8);
			r.data[11] = (uint8_t)csum(r.data, hl);
			if (divert_verdict_in_place(j, &r.a, DIVERT_ACCEPT, r.data, r.len) == 0)
				done++;
			else
				refused++;
		}
		if (poll(&pfd, 1, 0) == 0)
			divert_flush(j);
	}
	printf("child in place %ld refused %ld\n", done, refused);
	fflush(stdout);
	divert_close(j);
	return 0;
}

int
main(int argc, char **argv)
{
	char errbuf[DIVERT_ERRBUF_SIZE];
	struct parent p = { 0 };
	struct divert_joiners j;
	struct pollfd pfd[2];
	int port, fds[2], st;
	unsigned hold;
	pid_t pid;

	if (argc != 4)
		fail("usage", "join PORT N HOLD_MS");
	port = atoi(argv[1]);
	p.left = atol(argv[2]);
	hold = (unsigned)atoi(argv[3]);
	if (pipe(fds) < 0 || (pid = fork()) < 0)
		fail("fork", strerror(errno));
	if (pid == 0) {
		close(fds[1]);
		return child(port, fds[0]);
	}
	close(fds[0]);
	if ((p.h = divert_open(port, DIVERT_MARK_DEFAULT, 0, errbuf)) == NULL)
		fail("divert_open", errbuf);
	if (divert_offer(p.h, hold) < 0)
		fail("divert_offer", divert_geterr(p.h));
	p.out = fds[1];
	pfd[0] = (struct pollfd){ .fd = divert_fd(p.h), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = divert_offer_fd(p.h), .events = POLLIN };
	while (p.left > 0) {
		if (poll(pfd, 2, 100) < 0 && errno != EINTR)
			fail("poll", strerror(errno));
		divert_offer_run(p.h);
		if (divert_dispatch(p.h, on_packet, &p) < 0 && errno != ENOBUFS)
			fail("divert_dispatch", divert_geterr(p.h));
		divert_verdict_expired(p.h, hold, DIVERT_DROP);
	}
	close(p.out);
	/* The child leaves once the pipe ends: its counts come as it goes. */
	do {
		poll(&pfd[1], 1, 100);
		divert_offer_run(p.h);
		divert_offer_info(p.h, &j);
	} while (j.joined > 0);
	waitpid(pid, &st, 0);
	printf("held %ld stolen %ld accepted %ju dropped %ju joins %ju\n", p.held, p.stolen,
	    (uintmax_t)j.accepted, (uintmax_t)j.dropped, (uintmax_t)j.joins);
	divert_close(p.h);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
