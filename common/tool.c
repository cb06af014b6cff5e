/* divert.c - defaults and error reporting shared by every tool. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

const char *argp_program_bug_address = "the divert issue tracker";
volatile sig_atomic_t stop_signalled;
static volatile int unblock_fd = -1;
/*
 * Readable once a stop signal came (never drained): a poll that includes
 * it cannot sleep through a stop that came after the last look at
 * stop_signalled, with no signal masks to set and reset around each poll.
 */
static int stop_pipe[2] = { -1, -1 };

/*
 * A signal interrupts one blocked write, but the next write would block
 * again on a reader that stopped reading: make the output (a socket; pipes
 * never block, see stream.c) non-blocking so every write fails at once and
 * the tool reaches its clean-up.
 */
static void
on_stop_signal(int sig)
{
	int saved = errno, flags;
	ssize_t w = 0;

	(void)sig;
	stop_signalled = 1;
	if (stop_pipe[1] >= 0)
		w = write(stop_pipe[1], "", 1);	/* fails only when full: readable then */
	(void)w;
	if (unblock_fd >= 0 && (flags = fcntl(unblock_fd, F_GETFL)) >= 0)
		fcntl(unblock_fd, F_SETFL, flags | O_NONBLOCK);
	errno = saved;
}

void
stop_unblocks(int fd)
{
	unblock_fd = fd;
}

int
reader_gone(int err)
{
	return err == EPIPE || (stop_signalled && (err == EINTR || err == EAGAIN));
}

void
catch_stop_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		stop_pipe[0] = stop_pipe[1] = -1;	/* polls then wake on EINTR alone */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Read once: main() calls this among its option checks, before anything is
 * bound or written, so a bad value is a usage error with nothing to undo.
 */
uint32_t
mark_in_force(void)
{
	static uint32_t mark;
	const char *s;
	char *end;
	unsigned long v;

	if (mark != 0)
		return mark;
	s = getenv("DIVERT_MARK");
	if (s == NULL || *s == '\0')
		return mark = DIVERT_MARK_DEFAULT;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0' || v == 0 || v > 0xffffffffUL)
		usage_errx("DIVERT_MARK=%s: want a non-zero 32-bit mark, e.g. 0x10000000", s);
	return mark = (uint32_t)v;
}

void
usage_errx(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program_invocation_short_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' or '%s --usage' for more information.\n",
	    program_invocation_short_name, program_invocation_short_name);
	exit(EX_USAGE_ERR);
}

const char *
errno_hint(int err)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return "needs CAP_NET_ADMIN: run as root";
	case EBUSY:
		return "in use by another listener";
	case EPROTONOSUPPORT:
	case EAFNOSUPPORT:
		return "the kernel lacks nfnetlink support (modprobe nfnetlink_queue)";
	default:
		return strerror(err);
	}
}

int
same_file(const char *in, const char *out)
{
	struct stat si, so;
	int ri, ro;

	/* stdout is the input only through >> or <> (> has emptied it already). */
	ri = (in == NULL || strcmp(in, "-") == 0) ? fstat(0, &si) : stat(in, &si);
	ro = (out == NULL || strcmp(out, "-") == 0) ? fstat(1, &so) : stat(out, &so);
	return ri == 0 && ro == 0 && S_ISREG(si.st_mode) &&
	    si.st_dev == so.st_dev && si.st_ino == so.st_ino;
}

int
poll_unless_stopped(struct pollfd *pfd, nfds_t n, int ms, int ignore_stop)
{
	struct pollfd all[POLL_MAX + 1];
	nfds_t i, m = n;
	int rc;

	if (n > POLL_MAX)
		return errno = EINVAL, -1;
	if (!ignore_stop && stop_signalled)
		return errno = EINTR, -1;
	for (i = 0; i < n; i++)
		all[i] = pfd[i];
	if (!ignore_stop && stop_pipe[0] >= 0)
		all[m++] = (struct pollfd){ .fd = stop_pipe[0], .events = POLLIN };
	rc = poll(all, m, ms);
	for (i = 0; i < n; i++)
		pfd[i].revents = all[i].revents;
	if (!ignore_stop && stop_signalled)
		return errno = EINTR, -1;
	return rc;
}
