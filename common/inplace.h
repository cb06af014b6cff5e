/*
 * inplace.h - a tool's answers in place: the divert ports it joined (found
 * by each record's own port), and the verdicts it gives there, batched.
 *
 * A record is answered in place when its packet is held by a listener of
 * this network namespace (holder, port, id) and the tool's input is live;
 * otherwise the tool does what it did before (a copy, or nothing).  An
 * injector joins the listener up its pipeline at start, so that it holds
 * the packets; a tool that only drops joins when it first drops a held
 * record (it never makes the listener hold).
 */
#ifndef DIVERT_INPLACE_H
#define DIVERT_INPLACE_H

#include <stddef.h>
#include <stdint.h>

#include "divert.h"

struct inplace;

/*
 * Answers in place for a tool whose input is fd (-1: a file named on the
 * command line, never live).  injector: it gives packets back
 * (DIVERT_JOIN_INJECT).  NULL when the input is not live (a file: its
 * records are from another time): every call below takes NULL and does
 * nothing then.
 */
struct inplace *inplace_new(int fd, int injector);

/*
 * An injector, before its first read: find the listener up the pipeline
 * and join it, so that it holds packets from the first one on (waiting a
 * little, while the input is silent, for a listener still starting).
 */
void inplace_find(struct inplace *ip);

/*
 * An injector sees each record first: a listener not found yet is looked
 * for again (by inplace_wait, while the input is idle, at most once a
 * second), and one whose packets the stream does not carry (it lost the
 * records' context on the way) is left.
 */
void inplace_see(struct inplace *ip, const struct divert_addr *a);

/*
 * Give a's held packet back with pkt as its contents (inplace_accept), or
 * drop it (inplace_drop): 1 when done in place, 0 when it is not for here
 * (not held, held elsewhere, too old, its listener gone...): the caller
 * then does what it does without.
 */
int inplace_accept(struct inplace *ip, const struct divert_addr *a, const uint8_t *pkt,
    size_t len);
int inplace_drop(struct inplace *ip, const struct divert_addr *a);

/* Send the verdicts batched (the input is idle). */
void inplace_flush(struct inplace *ip);

/*
 * Wait for the input to be readable (at most ms, -1: no limit), and
 * meanwhile for the listeners of the joined ports: one that leaves is left
 * at once (the port's socket closed).  poll's return for the input.
 */
int inplace_wait(struct inplace *ip, int ms);

/* The same, waking also when fd is readable (-1: none): 2 then (1: the input is). */
int inplace_wait_also(struct inplace *ip, int ms, int fd);

/* Packets accepted and dropped in place so far. */
uint64_t inplace_accepted(const struct inplace *ip);
uint64_t inplace_dropped(const struct inplace *ip);

/*
 * Verdicts lost so far (counted in place, but their send failed, or the
 * listener left before they went), with what is batched sent first.
 */
uint64_t inplace_failed(struct inplace *ip);

/* Send what is batched, leave every port (telling the listeners the counts), free. */
void inplace_free(struct inplace *ip);

#endif
