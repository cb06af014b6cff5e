/*
 * handle.h - what a libdivert handle holds (internal): the bound port's
 * receive side (queue.c), the send side (send.c), the in-place side
 * (share.c: a port offered to joiners, or a joined one), and the words of
 * its last error.
 */
#ifndef DIVERT_HANDLE_H
#define DIVERT_HANDLE_H

#include <stdint.h>

#include "divert.h"

#define HANDLE_ERR_SIZE	512	/* the kernel's words for a refused tc request are long */

struct queue;
struct offer;
struct joined;
struct raw;
struct raw_pkt;
struct tun_set;

struct divert {
	int			 port;		/* bound port, or DIVERT_PORT_NONE */
	uint32_t		 mark;		/* loop avoidance: what it sends carries it */
	unsigned		 flags;		/* DIVERT_HOLD */
	struct queue		*q;		/* receiving (queue.c); NULL: send-only, joined */
	/*
	 * The binding's session (divert_session): bound, drawn at open; joined,
	 * the listener's once it answered; send-only, 0.
	 */
	uint64_t		 session;
	struct offer		*offer;		/* the port offered to joiners (share.c) */
	struct joined		*join;		/* a joined handle's side (share.c) */

	/* Sending (send.c): made at open for a send-only handle, else on first use. */
	struct raw		*raw;		/* outbound: raw sockets, batches */
	struct tun_set		*tun;		/* inbound: one TUN per target interface */
	uint32_t		 ident;		/* next IPv4 ID, next fragment identification */
	divert_report_fn	 report;
	void			*report_arg;
	divert_tap_fn		 tap;
	void			*tap_arg;
	const struct raw_pkt	*splitting;	/* the packet frag_split is cutting up */
	uint8_t			*fragbuf;	/* FRAG_MAX bytes: where it builds fragments */
	int			 frag_err;	/* errno of the fragment that failed */
	int			 result;	/* the last packet's fate (enum divert_result) */
	int			 error;		/* and its errno */

	char			 err[HANDLE_ERR_SIZE];
};

/* Words for the handle's error (printf-style) and errno = err; returns -1. */
int handle_fail(struct divert *h, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The receive side (queue.c). */
struct queue *queue_open(uint16_t port, char *why, size_t whylen);
int queue_fd(const struct queue *q);
/*
 * One verdict message (type NFQNL_MSG_VERDICT or _BATCH) for id, nf
 * (NF_DROP, NF_ACCEPT) into buf (VERDICT_SIZE bytes); with_payload: new
 * contents of len bytes follow it (the caller puts them, and NLA_ALIGN
 * padding, right after).  Returns the bytes written: with a payload, what
 * comes before the contents (the message's nlmsg_len counts them too).
 * The one place verdict messages are built, for the port's own handle and
 * for the joined ones.
 */
#define VERDICT_SIZE		64
#define VERDICT_PAYLOAD_MAX	(UINT16_MAX - 4)	/* a netlink attribute's room */
size_t verdict_msg(void *buf, int type, uint16_t port, uint32_t id, int nf,
    int with_payload, size_t len);
/* Send the verdicts buffered: 0, or -1 with errno. */
int queue_flush(struct queue *q);
/* Packets handed to the program, and receives that found messages lost. */
void queue_counts(const struct queue *q, uint64_t *received, uint64_t *overruns);
/* Send what is buffered, unbind (the kernel drops what is still queued), close. */
void queue_close(struct queue *q);

/* The in-place side (share.c): send a joined handle's verdicts; close either side. */
int join_flush(struct divert *h);
int joined_fd(const struct divert *h);
void join_close(struct divert *h);
void offer_close(struct divert *h);

/* The send side (send.c): open it (0, or -1 with words), flush it, close it. */
int send_open(struct divert *h);
void send_flush(struct divert *h);
void send_close(struct divert *h);

#endif
