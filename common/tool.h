/*
 * tool.h - what every divert tool agrees on: names, defaults, exit codes,
 * and the small helpers each main() uses to report problems.
 */
#ifndef DIVERT_TOOL_H
#define DIVERT_TOOL_H

#include <signal.h>
#include <stdint.h>

#include "num.h"

#define DIVERT_VERSION	"0.1"
#define DIVERT_TABLE	"divert"	/* the only nftables table we own */

/*
 * Loop avoidance: injected packets carry this mark bit, divert rules only
 * take packets that lack it.  DIVERT_MARK in the environment overrides it
 * for every tool at once.
 */
#define DIVERT_MARK_DEFAULT	0x20000000u

#define EX_USAGE_ERR	64	/* bad command line or bad request (sysexits EX_USAGE) */
#define EX_RUNTIME	1	/* the system said no; the message says why */

/*
 * The loop-avoidance mark bit in force (DIVERT_MARK or the default), read
 * once; call it among main()'s option checks so a bad value exits 64 early.
 */
uint32_t divert_mark(void);

/* Print "tool: message" and exit 64, after the usage hint (like errx). */
void usage_errx(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* Turn a netlink/socket errno into a hint for the user ("run as root"). */
const char *errno_hint(int err);

/*
 * Whether writing out would destroy the input in (NULL or "-": stdin, and
 * stdout): both are one regular file (same device and inode, whatever the
 * spelling).
 */
int same_file(const char *in, const char *out);

/* Set by SIGINT, SIGTERM or SIGHUP once catch_stop_signals() has run. */
extern volatile sig_atomic_t divert_stop;

/*
 * SIGINT, SIGTERM and SIGHUP set divert_stop and interrupt blocking calls
 * (no SA_RESTART), so a tool ends its loop and still reports; SIGPIPE is
 * ignored, so a reader that leaves shows up as EPIPE on the next write.
 */
void catch_stop_signals(void);

/* After a stop signal, make fd (a pipe we write) non-blocking: see reader_gone. */
void stop_unblocks(int fd);

/*
 * Whether a failed write of the stream just means "stop": the reader left
 * (EPIPE), or a stop signal cut short a write to a reader that had stopped
 * reading (EINTR, EAGAIN).
 */
int reader_gone(int err);

/* A bound queue (divert port), as /proc/net/netfilter/nfnetlink_queue shows it. */
struct queue_info {
	unsigned long	num;		/* the port */
	unsigned long	portid;		/* netlink portid of the socket that bound it */
	uint64_t	drops;		/* dropped by the kernel: queue full, failed send */
};

/*
 * The first queue bound in this network namespace with a number in [lo,hi],
 * into *qi: 1 when there is one, 0 when none (or nfnetlink_queue is not
 * loaded), -errno when the list cannot be read.
 */
int queue_bound_in(long lo, long hi, struct queue_info *qi);

/* argp version string shared by all tools ("divert-x (divert) 0.1"). */
extern const char *argp_program_bug_address;

#endif
