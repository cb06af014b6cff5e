/*
 * tun.h - inbound sending (internal) "as if it arrived on interface X" (divert(4),
 * WinDivert's IfIdx): one TUN device per target interface (and per mark a
 * record asks for), created on first use, whose ingress runs a cls_bpf
 * classifier that sets the mark (with the loop-avoidance bit) and a mirred
 * action that redirects the packet to X's ingress.  The stack then sees
 * iif = X (rp_filter passes) and divert rules skip it.
 *
 * Set up through rtnetlink (libmnl) and the bpf() syscall, no tc binary.
 * Every device goes away with its file descriptor: at exit, whatever ends
 * the process.  Targets are followed through link notifications: one that
 * is down or deleted has its packets refused, and a deleted one is picked
 * up again when an interface of the same name appears.
 */
#ifndef DIVERT_TUN_H
#define DIVERT_TUN_H

#include <stddef.h>
#include <stdint.h>

#define TUN_MAX		64	/* target interfaces one handle serves */
#define TUN_MARKS	32	/* paths for records' own marks (the rest: the bit alone) */

enum tun_result {
	TUN_OK = 0,
	TUN_E_NOIF = -1,	/* no such interface here (or too many): this packet is refused */
	TUN_E_WRITE = -2,	/* the TUN refused this packet */
	TUN_E_SYSTEM = -3,	/* the kernel lacks something or refuses us: nothing will work */
	TUN_E_DOWN = -4,	/* the interface is down: this packet is refused */
};

struct tun_set;

/* A set of inbound paths marking packets with mark; NULL with a message in why. */
struct tun_set *tun_open(uint32_t mark, char *why, size_t whylen);

/*
 * Make sure the path to ifindex exists (set it up on first use); an enum
 * tun_result (TUN_OK for an interface that is down: it may come up).
 */
int tun_prepare(struct tun_set *ts, uint32_t ifindex, char *why, size_t whylen);

/*
 * Inject a whole IP packet as arriving on *ifindex, marked mark | the
 * set's mark (while TUN_MARKS marks or fewer have been asked for: see
 * tun.c); an enum tun_result, words in why.  *ifindex becomes the index it went to (a target deleted
 * and made again under its name has a new one).  With TUN_E_NOIF, errno
 * says which: ENXIO no such interface here, ENODEV it went away, ENOSPC
 * too many; with TUN_E_WRITE, the write's.
 */
int tun_inject(struct tun_set *ts, uint32_t *ifindex, uint32_t mark, const uint8_t *data,
    size_t len, char *why, size_t whylen);

/*
 * The index of the interface called name (a NUL-terminated string), 0
 * when there is none here; remembered for a second, or until a link
 * changes, so that a stream naming its interfaces costs no system call a
 * packet.
 */
uint32_t tun_index_of(struct tun_set *ts, const char *name);

/*
 * Packets tun_inject reported injected that the kernel dropped after all:
 * written in the instant their target went down (*down) or away (*gone),
 * or while it had lost its carrier.  The kernel's count of failed
 * redirects tells, when a target stops; final: ask about every target now
 * (at the end).  The counts are reset.
 */
void tun_losses(struct tun_set *ts, int final, uint64_t *down, uint64_t *gone);

/* Remove every device (closing its descriptor does it). */
void tun_close(struct tun_set *ts);

#endif
