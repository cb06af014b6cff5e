/*
 * tool.h - what every divert tool agrees on: names, defaults, exit codes,
 * and the small helpers each main() uses to report problems.
 */
#ifndef DIVERT_TOOL_H
#define DIVERT_TOOL_H

#include <poll.h>
#include <signal.h>
#include <stdint.h>

#include "divert.h"	/* the tools are libdivert's clients: divert_port_bound, ... */
#include "num.h"

#define EX_USAGE_ERR	64	/* bad command line or bad request (sysexits EX_USAGE) */
#define EX_RUNTIME	1	/* the system said no; the message says why */

/*
 * The loop-avoidance mark bit in force (DIVERT_MARK or the default), read
 * once; call it among main()'s option checks so a bad value exits 64 early.
 */
uint32_t mark_in_force(void);

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
extern volatile sig_atomic_t stop_signalled;

/*
 * SIGINT, SIGTERM and SIGHUP set stop_signalled and interrupt blocking calls
 * (no SA_RESTART), so a tool ends its loop and still reports; SIGPIPE is
 * ignored, so a reader that leaves shows up as EPIPE on the next write.
 * Opens the pipe poll_unless_stopped watches.
 */
void catch_stop_signals(void);

/*
 * poll (at most POLL_MAX fds, ms < 0: no limit) that no stop signal can
 * sleep through, even one that came just before it (the signal also makes a
 * pipe of its own readable, polled along): -1 with errno EINTR on a stop
 * (unless ignore_stop), else poll's return.  No system call beyond poll.
 */
#define POLL_MAX	16
int poll_unless_stopped(struct pollfd *pfd, nfds_t n, int ms, int ignore_stop);

/* After a stop signal, make fd (a pipe we write) non-blocking: see reader_gone. */
void stop_unblocks(int fd);

/*
 * Whether a failed write of the stream just means "stop": the reader left
 * (EPIPE), or a stop signal cut short a write to a reader that had stopped
 * reading (EINTR, EAGAIN).
 */
int reader_gone(int err);

/* argp version string shared by all tools ("divert-x (divert) 0.1"). */
extern const char *argp_program_bug_address;

#endif
