/*
 * reasm.h - IPv4 and IPv6 fragment reassembly for a packet stream.
 *
 * Fragments are keyed as the kernel keys them (IPv4: source, destination,
 * protocol, ID; IPv6: source, destination, ID), plus the record's interface
 * and direction.  All memory (datagram state, stored fragments, hash table)
 * comes from one budget fixed at reasm_new: the pool is reserved address
 * space that becomes resident as it is used, the hash table grows with the
 * datagrams held.  When the pool is full, the oldest incomplete datagrams
 * are evicted.
 *
 * Time is the caller's clock in milliseconds (divert-defrag uses the stream
 * clock: record time stamps, advanced by wall time while the input is idle).
 * Everything reasm writes goes to one callback, in stream order: records
 * that are not fragments (unchanged), reassembled datagrams (with the
 * metadata of the fragment that completed them), and with keep_incomplete
 * the fragments of datagrams that expire, are evicted or are left at the end.
 */
#ifndef DIVERT_REASM_H
#define DIVERT_REASM_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

enum reasm_overlap {
	REASM_OVERLAP_LINUX,	/* the kernel's: a fragment inside one run held is
				   discarded, any other overlap drops the datagram */
	REASM_OVERLAP_RFC5722,	/* any overlap but an exact duplicate drops the
				   datagram, and its later fragments until timeout */
	REASM_OVERLAP_FIRST,	/* bytes that arrived first win */
	REASM_OVERLAP_LAST,	/* bytes that arrived last win */
};

#define REASM_BLOCK		128		/* pool unit: datagram state or fragment bytes */
#define REASM_MIN_MEMORY	(256 * 1024)
#define REASM_MAX_MEMORY	(64ULL << 30)	/* 64 GiB: slot indices are 32-bit */
#define REASM_MAX_FRAGS		8192		/* 64 KiB in 8-byte fragments */
#define REASM_MAX_V4		65535
#define REASM_MAX_V6		(65535 + 40)
#define REASM_MAX_L2		256		/* longest link header a stored fragment may
						   have: a longer one's record is not parsed */

struct reasm_config {
	size_t		max_memory;	/* bytes of pool, hash table included */
	uint64_t	timeout_ms;	/* age of an incomplete datagram at expiry */
	int		overlap;	/* enum reasm_overlap */
	int		keep_incomplete;/* write fragments of lost datagrams through */
	uint32_t	seed;		/* hash seed; 0: random */
};

struct reasm_stats {
	uint64_t	packets;	/* records in */
	uint64_t	passed;		/* records out unchanged: not fragments */
	uint64_t	unparsed;	/* ...of which headers were cut (passed) */
	uint64_t	fragments;	/* fragments in */
	uint64_t	reassembled;	/* whole datagrams out */
	uint64_t	atomic;		/* ...of which IPv6 atomic fragments */
	uint64_t	duplicates;	/* fragments adding nothing, discarded */
	uint64_t	overlaps;	/* linux, rfc5722: datagrams dropped; first/last:
					   fragments partly over held bytes */
	uint64_t	timed_out;	/* incomplete datagrams expired */
	uint64_t	evicted;	/* incomplete datagrams evicted for memory */
	uint64_t	oversize;	/* datagrams refused: longer than IP allows */
	uint64_t	too_many;	/* datagrams refused: more than REASM_MAX_FRAGS */
	uint64_t	invalid;	/* datagrams/fragments refused: lengths disagree,
					   no data, IPv6 off the 8-byte grid */
	uint64_t	ecn;		/* datagrams dropped: Not-ECT mixed with ECT/CE */
	uint64_t	trimmed;	/* IPv4 fragments cut to the 8-byte grid */
	uint64_t	badsum;		/* datagrams written with a wrong IPv4 header
					   checksum: a fragment of theirs had one */
	uint64_t	incomplete;	/* incomplete datagrams left at the end */
	uint64_t	kept;		/* fragments written through (keep_incomplete) */
	uint64_t	dropped;	/* fragments that went nowhere */
	uint64_t	bitmap_words;	/* bitmap words looked at for fragments out of
					   order: stays proportional to their lengths */
};

typedef void (*reasm_out_fn)(const struct pkt *p, void *arg);

/*
 * What hears of the records taken in that go nowhere (merged into a
 * datagram that goes as another record, duplicates, fragments of dropped or
 * lost datagrams), when their packet is held by a listener (a.holder): only
 * the queued packet's address (port, id, holder, time) is filled in.
 */
typedef void (*reasm_gone_fn)(const struct divert_addr *a, void *arg);

struct reasm;

/* A reassembler writing to out; NULL (errno) when the pool cannot be had. */
struct reasm *reasm_new(const struct reasm_config *cfg, reasm_out_fn out, void *arg);

/* Tell fn of every held record that goes nowhere (NULL: nobody). */
void reasm_set_gone(struct reasm *r, reasm_gone_fn fn, void *arg);

/* Take one record at time now (ms). */
void reasm_input(struct reasm *r, const struct pkt *p, uint64_t now);

/* Expire datagrams older than the timeout at time now. */
void reasm_expire(struct reasm *r, uint64_t now);

/* When the next datagram expires (ms); UINT64_MAX when none is held. */
uint64_t reasm_next_expiry(const struct reasm *r);

/* End of input: every incomplete datagram is counted (and written through). */
void reasm_flush(struct reasm *r);

/* Bytes reserved for the pool (what --max-memory bounds). */
size_t reasm_memory(const struct reasm *r);

/* Bytes of the pool holding datagrams and fragments now (0: nothing held). */
size_t reasm_held(const struct reasm *r);

/*
 * Tests and fuzzing: make an empty reassembler's pool nblocks blocks, fewer
 * than REASM_MIN_MEMORY gives, so that a few fragments fill it.  0, or -1
 * (EINVAL) when it holds anything or has fewer blocks than that.
 */
int reasm_shrink_pool(struct reasm *r, size_t nblocks);

/* Bytes of the pool in use now (hash table included), and the most ever in use. */
size_t reasm_in_use(const struct reasm *r);
size_t reasm_peak(const struct reasm *r);

const struct reasm_stats *reasm_stats(const struct reasm *r);

void reasm_free(struct reasm *r);

#endif
