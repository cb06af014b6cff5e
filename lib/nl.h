/*
 * nl.h - libdivert's one netlink conversation (internal): open a socket,
 * send a request and read its answers until the kernel acks it or a dump
 * ends, with the kernel's own words (extended ack) for a refusal.
 */
#ifndef DIVERT_NL_H
#define DIVERT_NL_H

#include <stddef.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

struct nl {
	struct mnl_socket *sock;
	uint32_t	   portid;
	uint32_t	   seq;		/* last sequence number used */
	int		   unread;	/* a conversation ended early: answers may be left */
};

/* Open and bind a netlink socket of bus (NETLINK_ROUTE, ...): 0 or -errno. */
int nl_open(struct nl *nl, int bus);

void nl_close(struct nl *nl);

/* The next sequence number, for a request built outside nl_talk (batches). */
uint32_t nl_next_seq(struct nl *nl);

/*
 * Send req (NLM_F_REQUEST | NLM_F_ACK and a sequence number are set here)
 * and hand each answer to cb (NULL: none expected) until the ack, the end
 * of a dump, or an error.  Answers are read into buf (size bytes; 8 KiB
 * holds any answer but a large dump's, which comes in parts).  Returns 0,
 * cb's error (MNL_CB_ERROR: -errno as cb set it, -EPROTO if it set none),
 * or -errno with the kernel's words, when it gave some, in why; errno
 * itself is left as anything.  What a conversation cut short left unread
 * is thrown away before the next request on the socket.
 */
int nl_talk(struct nl *nl, struct nlmsghdr *req, mnl_cb_t cb, void *arg,
    void *buf, size_t size, char *why, size_t whylen);

/*
 * Send a batch (len bytes of messages, each with its own flags and sequence
 * number from nl_next_seq) and hand every answer but the acks to cb (NULL:
 * none wanted).  Every answer is read, so the socket is clean for the next
 * request.  Returns 0, the kernel's first refusal as -errno with its words
 * in why, or cb's error.
 */
int nl_talk_batch(struct nl *nl, const void *batch, size_t len, mnl_cb_t cb,
    void *arg, void *buf, size_t size, char *why, size_t whylen);

#endif
