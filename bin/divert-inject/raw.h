/*
 * raw.h - outbound injection: header-included raw IPv4 and IPv6 sockets
 * carrying the loop-avoidance mark, with packets batched into sendmmsg()
 * while the input has more ready.
 */
#ifndef DIVERT_INJECT_RAW_H
#define DIVERT_INJECT_RAW_H

#include <stdint.h>

#include "stream.h"

/* How a queued packet went: err 0 sent, else an errno (EMSGSIZE: over the MTU). */
typedef void (*raw_done_fn)(const struct pkt *p, int err, void *arg);

struct raw;

/*
 * Open the sockets, marked with mark.  done is called for every queued
 * packet, in order, when the batch is sent.  NULL with a message in why.
 */
struct raw *raw_open(uint32_t mark, raw_done_fn done, void *arg, char *why, size_t whylen);

/* Queue a copy of p (p->data: a whole IPv4 or IPv6 packet); sends when the batch is full. */
void raw_queue(struct raw *r, const struct pkt *p);

/* Send everything queued, reporting each packet through done. */
void raw_flush(struct raw *r);

/* Send one packet now, unbatched: 0 or an errno. */
int raw_send(struct raw *r, const struct pkt *p);

/* The route's MTU towards p's destination, as the kernel sees it; -errno. */
int raw_route_mtu(struct raw *r, const struct pkt *p);

void raw_close(struct raw *r);

#endif
