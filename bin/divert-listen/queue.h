/*
 * queue.h - one NFQUEUE (divert port) over libmnl: bind it, receive packets
 * in batches, and give verdicts in batches.
 */
#ifndef DIVERT_QUEUE_H
#define DIVERT_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define QUEUE_BATCH	64	/* packets per recvmmsg, and per batch verdict */
#define QUEUE_MAXLEN	8192	/* packets the kernel holds for us */

struct queue;

/* Bind queue num (copying whole packets); NULL with errno set. */
struct queue *queue_open(uint16_t num);

/* The netlink socket, for poll(). */
int queue_fd(const struct queue *q);

/*
 * Receive what is ready, without waiting: up to QUEUE_BATCH packets, each
 * handed to cb with its queue id and metadata (p->data points into the
 * queue's buffers).  Returns the number received, 0 when nothing is ready,
 * or -1 (errno; ENOBUFS means the kernel dropped messages: count, go on).
 */
int queue_recv(struct queue *q,
    void (*cb)(uint32_t id, struct pkt *p, void *arg), void *arg);

/* Add a verdict for one packet to those queue_send will send. */
int queue_verdict(struct queue *q, uint32_t id, int verdict);

/* Add a verdict for every packet still queued with id <= last (batch). */
int queue_verdict_upto(struct queue *q, uint32_t last, int verdict);

/* Send the added verdicts, in the order added, in one message. */
int queue_send(struct queue *q);

/* Packets the kernel dropped for this queue (queue full, or a failed send). */
uint64_t queue_kernel_drops(const struct queue *q);

/* Unbind and close; the kernel drops what is still queued (divert(4)). */
void queue_close(struct queue *q);

#endif
