/* nl.c - one netlink request and its answers, over libmnl. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <linux/netlink.h>

#include "nl.h"

int
nl_open(struct nl *nl, int bus)
{
	int one = 1, e;

	nl->sock = mnl_socket_open2(bus, SOCK_CLOEXEC);
	if (nl->sock == NULL)
		return -errno;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		e = errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return -e;
	}
	/* Extended acks: the kernel says which part of a request it refused. */
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	nl->unread = 0;
	return 0;
}

void
nl_close(struct nl *nl)
{
	if (nl->sock != NULL)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
}

uint32_t
nl_next_seq(struct nl *nl)
{
	return ++nl->seq;
}

/* What one conversation carries through libmnl's callbacks. */
struct talk {
	mnl_cb_t	 cb;
	void		*arg;
	int		 error;		/* the kernel's, negative; 0 acked */
	int		 cb_error;	/* the callback's first, negative */
	char		*why;
	size_t		 whylen;
};

/* The kernel's extended-ack message in an error reply, or NULL. */
static const char *
extack_message(const struct nlmsghdr *nlh, const struct nlmsgerr *e)
{
	const struct nlattr *a;
	size_t off = sizeof(*e);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	mnl_attr_for_each(a, nlh, off)
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			return mnl_attr_get_str(a);
	return NULL;
}

/*
 * An error answer: its error (0 for an ack), noted in t when it is the
 * first refusal, with the kernel's words.
 */
static int
note_error(const struct nlmsghdr *nlh, struct talk *t)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const char *msg;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
		if (t->error == 0)
			t->error = -EBADMSG;
		return -EBADMSG;
	}
	if (e->error == 0 || t->error != 0)
		return e->error;
	t->error = e->error;
	if ((msg = extack_message(nlh, e)) != NULL && t->why != NULL)
		snprintf(t->why, t->whylen, "%s", msg);
	return e->error;
}

/* An ack (error 0) ends the conversation; a refusal too, with its words. */
static int
on_error(const struct nlmsghdr *nlh, void *data)
{
	return note_error(nlh, data) == 0 ? MNL_CB_STOP : MNL_CB_ERROR;
}

/*
 * The end of a dump.  With its own control callbacks libmnl has no default
 * for it: without this one a dump never ends.  A dump the kernel could not
 * finish says why in the message.
 */
static int
on_done(const struct nlmsghdr *nlh, void *data)
{
	struct talk *t = data;
	int error;

	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(error)) {
		memcpy(&error, mnl_nlmsg_get_payload(nlh), sizeof(error));
		if (error < 0) {
			t->error = error;
			return MNL_CB_ERROR;
		}
	}
	return MNL_CB_STOP;
}

/*
 * An answer for the caller's callback.  Its error is taken here, as it
 * stops, from the errno it set (EPROTO if none): errno read later could
 * be anything's.
 */
static int
on_data(const struct nlmsghdr *nlh, void *data)
{
	struct talk *t = data;
	int rc;

	if (t->cb == NULL)
		return MNL_CB_OK;
	errno = 0;
	if ((rc = t->cb(nlh, t->arg)) == MNL_CB_ERROR && t->cb_error == 0)
		t->cb_error = errno != 0 ? -errno : -EPROTO;
	return rc;
}

/*
 * Throw away what a conversation that ended early (a signal, an overrun, a
 * callback's error) left unread: its answers carry an older sequence
 * number, which would fail every later conversation's check, and a dump
 * still running makes the kernel refuse the next dump (EBUSY).  Reading a
 * dump's part makes the kernel queue the next: it is read to its end.  Only
 * then: a socket may also carry messages of its own (queued packets) that
 * are not ours to drop.
 */
static void
drain(struct nl *nl, void *buf, size_t size)
{
	int fd = mnl_socket_get_fd(nl->sock), e = errno;

	if (!nl->unread)
		return;
	while (recv(fd, buf, size, MSG_DONTWAIT | MSG_TRUNC) >= 0 || errno == EINTR ||
	    errno == ENOBUFS)
		;
	nl->unread = 0;
	errno = e;
}

int
nl_talk(struct nl *nl, struct nlmsghdr *req, mnl_cb_t cb, void *arg,
    void *buf, size_t size, char *why, size_t whylen)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = on_error, [NLMSG_DONE] = on_done,
	};
	struct talk t = { cb, arg, 0, 0, why, whylen };
	ssize_t n;
	int rc;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	req->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	req->nlmsg_seq = nl_next_seq(nl);
	drain(nl, buf, size);
	if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0)
		return -errno;
	nl->unread = 1;
	do {
		if ((n = mnl_socket_recvfrom(nl->sock, buf, size)) < 0)
			return -errno;
		/* Cleared: an error of libmnl's own (sequence, port, EINTR dump) sets it. */
		errno = 0;
		rc = mnl_cb_run2(buf, (size_t)n, req->nlmsg_seq, nl->portid, on_data, &t,
		    ctl, NLMSG_MIN_TYPE);
	} while (rc == MNL_CB_OK);
	if (rc != MNL_CB_ERROR || (t.error != 0 && t.cb_error == 0))
		nl->unread = 0;		/* the ack or the end of the dump was read */
	if (rc != MNL_CB_ERROR)
		return 0;
	if (t.error != 0 || t.cb_error != 0)
		return t.error != 0 ? t.error : t.cb_error;
	return errno != 0 ? -errno : -EPROTO;
}

/* In a batch, an ack or a refusal is one answer of many: read on. */
static int
on_batch_error(const struct nlmsghdr *nlh, void *data)
{
	note_error(nlh, data);
	return MNL_CB_OK;
}

/*
 * nfnetlink processes a batch inside sendmsg(), so every answer is queued
 * when it returns: read until the socket is empty rather than count acks
 * (a batch refused whole, as for EPERM, gets a single answer).
 */
int
nl_talk_batch(struct nl *nl, const void *batch, size_t len, mnl_cb_t cb,
    void *arg, void *buf, size_t size, char *why, size_t whylen)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = { [NLMSG_ERROR] = on_batch_error };
	struct talk t = { cb, arg, 0, 0, why, whylen };
	int mnl_error = 0;
	ssize_t n;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	drain(nl, buf, size);		/* what is read next is this batch's */
	if (mnl_socket_sendto(nl->sock, batch, len) < 0)
		return -errno;
	while ((n = recv(mnl_socket_get_fd(nl->sock), buf, size, MSG_DONTWAIT)) > 0) {
		errno = 0;
		if (mnl_cb_run2(buf, (size_t)n, 0, nl->portid, on_data, &t, ctl,
		    NLMSG_MIN_TYPE) == MNL_CB_ERROR && mnl_error == 0)
			mnl_error = errno != 0 ? -errno : -EPROTO;
	}
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		nl->unread = 1;		/* EINTR, ENOBUFS: answers may be left */
		return -errno;
	}
	if (t.error != 0 || t.cb_error != 0)
		return t.error != 0 ? t.error : t.cb_error;
	return mnl_error;
}
