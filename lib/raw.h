/*
 * raw.h - outbound sending (internal): header-included raw IPv4 and IPv6
 * sockets carrying the loop-avoidance mark, with packets batched into
 * sendmmsg() until a flush.  A packet whose divert address has a mark
 * (a.mark != 0) is sent, and routed, with that mark instead (raw.c).
 */
#ifndef DIVERT_RAW_H
#define DIVERT_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "divert.h"

#define RAW_BATCH	32	/* packets a sendmmsg() carries at most */

/* A packet to send: where to (its divert address), and its bytes. */
struct raw_pkt {
	struct divert_addr	 a;
	uint8_t			*data;
	size_t			 len;
};

/* How a queued packet went: err 0 sent, else an errno (EMSGSIZE: over the MTU). */
typedef void (*raw_done_fn)(const struct raw_pkt *p, int err, void *arg);

struct raw;

/*
 * Open the sockets, marked with mark (what packets without a mark of
 * their own carry).  done is called for every queued
 * packet, in order, when the batch is sent.  NULL with a message in why.
 */
struct raw *raw_open(uint32_t mark, raw_done_fn done, void *arg, char *why, size_t whylen);

/* Queue a copy of p (p->data: a whole IPv4 or IPv6 packet); sends when the batch is full. */
void raw_queue(struct raw *r, const struct raw_pkt *p);

/* Send everything queued, reporting each packet through done. */
void raw_flush(struct raw *r);

/* Send one packet now, unbatched: 0 or an errno. */
int raw_send(struct raw *r, const struct raw_pkt *p);

/* The route's MTU towards p's destination, as the kernel sees it; -errno. */
int raw_route_mtu(struct raw *r, const struct raw_pkt *p);

void raw_close(struct raw *r);

#endif
