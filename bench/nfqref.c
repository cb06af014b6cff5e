/*
 * nfqref - the accept loop a user would write with libnetfilter_queue:
 *   nfqref QUEUE 1     one verdict per packet
 *   nfqref QUEUE 64    a batch verdict every 64 packets (and when idle)
 *   nfqref QUEUE pipe  two processes: this one reads each packet and writes
 *                      (id, length, bytes) into a pipe; a forked second one
 *                      reads the pipe and accepts each packet with its bytes
 *                      as the verdict's payload, on the same queue handle.
 *                      The floor of any two-stage pipeline (listen | inject).
 * Runs until SIGTERM/SIGINT; prints the number of packets accepted (in pipe
 * mode, the number the reading process passed on).
 */
#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

struct rec {			/* what goes down the pipe, then len bytes */
	uint32_t id;
	uint32_t len;
};

static volatile sig_atomic_t stop;
static unsigned long long count;
static int batch, pending;
static uint32_t last_id;
static int pipe_w = -1;		/* pipe mode: the reader's end to write */
static unsigned char rbuf[sizeof(struct rec) + 65536];

static void on_signal(int sig) { (void)sig; stop = 1; }

/* Every byte, or -1: a signal or the other process gone ends the run. */
static int
write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, b, n)) < 0) {
			if (errno == EINTR && !stop)
				continue;
			return -1;
		}
		b += w, n -= (size_t)w;
	}
	return 0;
}

/* Every byte: 1; end of the pipe or a signal: 0. */
static int
read_all(int fd, void *p, size_t n)
{
	unsigned char *b = p;
	ssize_t r;

	while (n > 0) {
		if ((r = read(fd, b, n)) <= 0) {
			if (r < 0 && errno == EINTR && !stop)
				continue;
			return 0;
		}
		b += r, n -= (size_t)r;
	}
	return 1;
}

static int
cb(struct nfq_q_handle *qh, struct nfgenmsg *m, struct nfq_data *nfa, void *data)
{
	uint32_t id = ntohl(nfq_get_msg_packet_hdr(nfa)->packet_id);
	unsigned char *pkt;
	struct rec r;
	int len;

	(void)m, (void)data;
	count++;
	if (pipe_w >= 0) {
		/* One write a packet, as a stage writing a stream would. */
		if ((len = nfq_get_payload(nfa, &pkt)) < 0)
			len = 0;
		r = (struct rec){ id, (uint32_t)len };
		memcpy(rbuf, &r, sizeof(r));
		if (len > 0)
			memcpy(rbuf + sizeof(r), pkt, (size_t)len);
		if (write_all(pipe_w, rbuf, sizeof(r) + (size_t)len) < 0)
			stop = 1;	/* the verdict process is gone */
		return 0;
	}
	if (batch <= 1)
		return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
	last_id = id;
	if (++pending >= batch) {
		pending = 0;
		return nfq_set_verdict_batch(qh, id, NF_ACCEPT);
	}
	return 0;
}

/*
 * The second process: a verdict for every record, carrying the bytes back as
 * the packet's payload, as an injector does.  The netlink socket is the
 * parent's (inherited), so the kernel takes the verdicts as the queue's own.
 * It leaves the queue to the parent: no unbind, no stdio at exit.
 */
static void __attribute__((noreturn))
verdicts(struct nfq_q_handle *qh, int fd)
{
	static unsigned char pkt[65536];
	struct rec r;

	while (!stop && read_all(fd, &r, sizeof(r))) {
		if (r.len > sizeof(pkt) || !read_all(fd, pkt, r.len))
			break;
		nfq_set_verdict(qh, r.id, NF_ACCEPT, r.len, pkt);
	}
	_exit(0);
}

int
main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	char buf[65536 + 4096];
	int fd, n, p[2];
	pid_t child = -1;

	if (argc < 3)
		errx(64, "usage: nfqref QUEUE BATCH|pipe");
	batch = atoi(argv[2]);
	/* No SA_RESTART: a blocked recv, read or write returns to see stop. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);	/* a gone reader is EPIPE, and the count is printed */
	if ((h = nfq_open()) == NULL)
		err(1, "nfq_open");
	if ((qh = nfq_create_queue(h, (uint16_t)atoi(argv[1]), cb, NULL)) == NULL)
		err(1, "nfq_create_queue");
	nfq_set_mode(qh, NFQNL_COPY_PACKET, 0xffff);
	nfq_set_queue_maxlen(qh, 8192);
	fd = nfq_fd(h);
	nfnl_rcvbufsiz(nfq_nfnlh(h), 16 << 20);
	if (strcmp(argv[2], "pipe") == 0) {
		if (pipe(p) < 0)
			err(1, "pipe");
		if ((child = fork()) < 0)
			err(1, "fork");
		if (child == 0) {
			close(p[1]);
			verdicts(qh, p[0]);
		}
		close(p[0]);
		pipe_w = p[1];
	}
	fprintf(stderr, "nfqref: ready\n");
	while (!stop) {
		n = (int)recv(fd, buf, sizeof(buf), pending ? MSG_DONTWAIT : 0);
		if (n < 0 && errno == EAGAIN) {		/* idle: answer the rest */
			nfq_set_verdict_batch(qh, last_id, NF_ACCEPT);
			pending = 0;
			continue;
		}
		if (n < 0)
			continue;	/* EINTR, ENOBUFS */
		nfq_handle_packet(h, buf, n);
	}
	if (child > 0) {	/* end of the pipe ends the verdict process */
		close(pipe_w);
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	printf("%llu\n", count);
	nfq_destroy_queue(qh);
	nfq_close(h);
	return 0;
}
