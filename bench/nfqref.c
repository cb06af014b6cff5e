/*
 * nfqref - the accept loop a user would write with libnetfilter_queue:
 *   nfqref QUEUE 1     one verdict per packet
 *   nfqref QUEUE 64    a batch verdict every 64 packets (and when idle)
 * Runs until SIGTERM/SIGINT; prints the number of packets accepted.
 */
#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

static volatile sig_atomic_t stop;
static unsigned long long count;
static int batch, pending;
static uint32_t last_id;

static void on_signal(int sig) { (void)sig; stop = 1; }

static int
cb(struct nfq_q_handle *qh, struct nfgenmsg *m, struct nfq_data *nfa, void *data)
{
	uint32_t id = ntohl(nfq_get_msg_packet_hdr(nfa)->packet_id);

	(void)m, (void)data;
	count++;
	if (batch <= 1)
		return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
	last_id = id;
	if (++pending >= batch) {
		pending = 0;
		return nfq_set_verdict_batch(qh, id, NF_ACCEPT);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	char buf[65536 + 4096];
	int fd, n;

	if (argc < 3)
		errx(64, "usage: nfqref QUEUE BATCH");
	batch = atoi(argv[2]);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((h = nfq_open()) == NULL)
		err(1, "nfq_open");
	if ((qh = nfq_create_queue(h, (uint16_t)atoi(argv[1]), cb, NULL)) == NULL)
		err(1, "nfq_create_queue");
	nfq_set_mode(qh, NFQNL_COPY_PACKET, 0xffff);
	nfq_set_queue_maxlen(qh, 8192);
	fd = nfq_fd(h);
	nfnl_rcvbufsiz(nfq_nfnlh(h), 16 << 20);
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
	printf("%llu\n", count);
	nfq_destroy_queue(qh);
	nfq_close(h);
	return 0;
}
