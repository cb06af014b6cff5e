/* queue.c - bind an NFQUEUE, receive with recvmmsg, verdict in batches. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <sys/socket.h>

#include "tool.h"
#include "queue.h"

#define QUEUE_RCVBUF	(16 << 20)	/* socket buffer: bursts wait here */
#define MSG_SIZE	(0x10000 + 4096)	/* one packet message, payload and attributes */
#define VERDICT_SIZE	64		/* bytes one verdict message takes, rounded up */

struct queue {
	struct mnl_socket *nl;
	uint16_t	 num;
	uint32_t	 portid;
	size_t		 vlen;		/* bytes of verdicts waiting in vbuf */
	struct mmsghdr	 msgs[QUEUE_BATCH];
	struct iovec	 iov[QUEUE_BATCH];
	uint8_t		 vbuf[(QUEUE_BATCH * 2 + 1) * VERDICT_SIZE];
	/* Netlink attributes assume 4-byte alignment from the buffer's start. */
	uint8_t		 bufs[QUEUE_BATCH][MSG_SIZE] __attribute__((aligned(8)));
};

struct recv_ctx {
	void	(*cb)(uint32_t id, struct pkt *p, void *arg);
	void	*arg;
};

static int
send_verdicts(struct queue *q)
{
	size_t len = q->vlen;

	q->vlen = 0;
	if (len == 0)
		return 0;
	return mnl_socket_sendto(q->nl, q->vbuf, len) < 0 ? -1 : 0;
}

static int
put_verdict(struct queue *q, int type, uint32_t id, int verdict)
{
	struct nlmsghdr *nlh;

	if (q->vlen + VERDICT_SIZE > sizeof(q->vbuf) && send_verdicts(q) < 0)
		return -1;
	nlh = nfq_nlmsg_put((char *)q->vbuf + q->vlen, type, q->num);
	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	q->vlen += NLMSG_ALIGN(nlh->nlmsg_len);
	return 0;
}

int
queue_verdict(struct queue *q, uint32_t id, int verdict)
{
	return put_verdict(q, NFQNL_MSG_VERDICT, id, verdict);
}

int
queue_verdict_upto(struct queue *q, uint32_t last, int verdict)
{
	return put_verdict(q, NFQNL_MSG_VERDICT_BATCH, last, verdict);
}

int
queue_send(struct queue *q)
{
	return send_verdicts(q);
}

/* Metadata of one queued packet, in the stream's terms. */
static void
packet_meta(struct nlattr **attr, struct pkt *p)
{
	struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	struct nfqnl_msg_packet_timestamp ts;
	struct nfqnl_msg_packet_hw *hw;
	struct timespec now;
	int dev;

	/* Forwarded packets count as outgoing, on their out-interface (DESIGN). */
	p->a.dir = ph->hook <= NF_INET_LOCAL_IN ? DIVERT_IN : DIVERT_OUT;
	p->pkttype = p->a.dir == DIVERT_OUT ? SLL_OUTGOING : SLL_HOST;
	dev = p->a.dir == DIVERT_IN ? NFQA_IFINDEX_INDEV : NFQA_IFINDEX_OUTDEV;
	if (attr[dev] != NULL)
		p->a.ifindex = ntohl(mnl_attr_get_u32(attr[dev]));
	p->a.proto = ntohs(ph->hw_protocol);
	if (p->a.proto == 0)
		p->a.proto = pkt_ip_proto(p->data, p->len);
	if (attr[NFQA_HWADDR] != NULL && p->a.dir == DIVERT_IN) {
		hw = mnl_attr_get_payload(attr[NFQA_HWADDR]);
		p->a.halen = ntohs(hw->hw_addrlen) > 8 ? 8 : (uint8_t)ntohs(hw->hw_addrlen);
		memcpy(p->a.haddr, hw->hw_addr, p->a.halen);
	}
	if (attr[NFQA_TIMESTAMP] != NULL) {
		/* Attributes are only 4-byte aligned: copy the 64-bit fields out. */
		memcpy(&ts, mnl_attr_get_payload(attr[NFQA_TIMESTAMP]), sizeof(ts));
		p->a.ts.tv_sec = (time_t)be64toh(ts.sec);
		p->a.ts.tv_usec = (suseconds_t)be64toh(ts.usec);
	} else {
		clock_gettime(CLOCK_REALTIME, &now);
		p->a.ts.tv_sec = now.tv_sec;
		p->a.ts.tv_usec = now.tv_nsec / 1000;
	}
}

static int
packet_cb(const struct nlmsghdr *nlh, void *data)
{
	struct recv_ctx *ctx = data;
	struct nlattr *attr[NFQA_MAX + 1] = { NULL };
	struct nfqnl_msg_packet_hdr *ph;
	struct pkt p = { 0 };

	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
		return MNL_CB_OK;	/* not a packet: nothing to answer */
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	if (attr[NFQA_PAYLOAD] != NULL) {
		p.data = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		p.len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	}
	/* Longer than the copy range (a 64 KiB IPv6 packet on lo): say so. */
	if (attr[NFQA_CAP_LEN] != NULL && ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) > p.len)
		p.a.cut = ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) - p.len;
	packet_meta(attr, &p);
	ctx->cb(ntohl(ph->packet_id), &p, ctx->arg);
	return MNL_CB_OK;
}

int
queue_recv(struct queue *q, void (*cb)(uint32_t, struct pkt *, void *), void *arg)
{
	struct recv_ctx ctx = { cb, arg };
	int i, n;

	n = recvmmsg(mnl_socket_get_fd(q->nl), q->msgs, QUEUE_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	for (i = 0; i < n; i++) {
		/* A truncated message cannot be answered safely: skip it. */
		if (q->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
			continue;
		mnl_cb_run(q->bufs[i], q->msgs[i].msg_len, 0, q->portid, packet_cb, &ctx);
	}
	return n;
}

/* Packets that arrive while we bind are let through; only acks matter here. */
static int
config_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *attr[NFQA_MAX + 1] = { NULL };
	struct nfqnl_msg_packet_hdr *ph;

	if (nfq_nlmsg_parse(nlh, attr) == 0 && attr[NFQA_PACKET_HDR] != NULL) {
		ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
		queue_verdict(data, ntohl(ph->packet_id), NF_ACCEPT);
	}
	return MNL_CB_OK;
}

/* Bind the queue and set copy mode and length in one message; wait for its ack. */
static int
queue_bind(struct queue *q)
{
	uint8_t *buf = q->bufs[0];
	struct nlmsghdr *nlh;
	uint32_t seq = (uint32_t)time(NULL);
	ssize_t n;
	int rc;

	nlh = nfq_nlmsg_put((char *)buf, NFQNL_MSG_CONFIG, q->num);
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN);
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	do {
		n = mnl_socket_recvfrom(q->nl, buf, MSG_SIZE);
		if (n < 0)
			return -1;
		rc = mnl_cb_run(buf, (size_t)n, 0, q->portid, config_cb, q);
	} while (rc == MNL_CB_OK);
	if (rc < 0)
		return -1;
	return send_verdicts(q);
}

struct queue *
queue_open(uint16_t num)
{
	struct queue *q;
	int size = QUEUE_RCVBUF, fd, i, saved;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->num = num;
	if ((q->nl = mnl_socket_open(NETLINK_NETFILTER)) == NULL)
		goto fail;
	if (mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	q->portid = mnl_socket_get_portid(q->nl);
	fd = mnl_socket_get_fd(q->nl);
	/* Root may go past rmem_max; others get what the sysctl allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	for (i = 0; i < QUEUE_BATCH; i++) {
		q->iov[i] = (struct iovec){ q->bufs[i], MSG_SIZE };
		q->msgs[i].msg_hdr.msg_iov = &q->iov[i];
		q->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	if (queue_bind(q) < 0)
		goto fail;
	return q;
fail:
	saved = errno;
	if (q->nl != NULL)
		mnl_socket_close(q->nl);
	free(q);
	errno = saved;
	return NULL;
}

int
queue_fd(const struct queue *q)
{
	return mnl_socket_get_fd(q->nl);
}

uint64_t
queue_kernel_drops(const struct queue *q)
{
	struct queue_info qi;

	return queue_bound_in(q->num, q->num, &qi) == 1 ? qi.drops : 0;
}

void
queue_close(struct queue *q)
{
	struct nlmsghdr *nlh;

	if (q == NULL)
		return;
	send_verdicts(q);
	nlh = nfq_nlmsg_put((char *)q->vbuf, NFQNL_MSG_CONFIG, q->num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
	mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len);
	mnl_socket_close(q->nl);
	free(q);
}
