/* divert.c - defaults and error reporting shared by every tool. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tool.h"

const char *argp_program_bug_address = "the divert issue tracker";
volatile sig_atomic_t stop_signalled;
static volatile int unblock_fd = -1;

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

	(void)sig;
	stop_signalled = 1;
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
		usage_errx("DIVERT_MARK=%s: want a non-zero 32-bit mark, e.g. 0x20000000", s);
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
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	sigset_t stop, old;
	int rc;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigprocmask(SIG_BLOCK, &stop, &old);
	if (stop_signalled && !ignore_stop)
		rc = (errno = EINTR, -1);
	else
		rc = ppoll(pfd, n, ms >= 0 ? &ts : NULL, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
