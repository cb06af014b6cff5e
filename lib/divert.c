/* divert.c - a libdivert handle: open, close, its fd, its errors and counters. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <net/if.h>
#include <sys/random.h>

#include "handle.h"

_Static_assert(DIVERT_IFNAMSIZ == IF_NAMESIZE, "divert.h names interfaces as the kernel does");

int
handle_fail(struct divert *h, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
	errno = err;
	return -1;
}

/*
 * A binding's session: random, never 0 (0 says "not held").  Without the
 * entropy pool (early boot), the clock and the process make one: it need
 * only differ from the port's earlier bindings.
 */
static uint64_t
new_session(void)
{
	struct timespec ts;
	uint64_t s = 0;

	while (s == 0) {
		if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != sizeof(s)) {
			clock_gettime(CLOCK_REALTIME, &ts);
			s = ((uint64_t)ts.tv_sec << 32 ^ (uint64_t)ts.tv_nsec) * 0x9e3779b97f4a7c15u ^
			    (uint64_t)getpid();
		}
	}
	return s;
}

/* Words for a failed open into errbuf (may be NULL); errno kept. */
static struct divert *
open_failed(struct divert *h, char *errbuf, const char *why)
{
	int saved = errno;
	size_t n = strnlen(why, DIVERT_ERRBUF_SIZE - 1);

	if (errbuf != NULL) {
		memcpy(errbuf, why, n);		/* cut to the caller's buffer */
		errbuf[n] = '\0';
	}
	if (h != NULL)
		divert_close(h);
	errno = saved;
	return NULL;
}

struct divert *
divert_open(int port, uint32_t mark, unsigned flags, char *errbuf)
{
	struct divert *h;

	if ((port < 0 || port > 65535) && port != DIVERT_PORT_NONE) {
		errno = EINVAL;
		return open_failed(NULL, errbuf, "a divert port is 0..65535");
	}
	if ((flags & ~(unsigned)DIVERT_HOLD) != 0) {
		errno = EINVAL;
		return open_failed(NULL, errbuf, "unknown flags");
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return open_failed(NULL, errbuf, "out of memory");
	h->port = port;
	h->mark = mark;
	h->flags = flags;
	/* IDs and fragment identifications start anywhere, as the kernel's do. */
	if (getrandom(&h->ident, sizeof(h->ident), GRND_NONBLOCK) != sizeof(h->ident))
		h->ident = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	if (port != DIVERT_PORT_NONE)
		h->session = new_session();
	/* A send-only handle is for sending: one that cannot says so now. */
	if (port == DIVERT_PORT_NONE) {
		if (send_open(h) < 0)
			return open_failed(h, errbuf, h->err);
	} else if ((h->q = queue_open((uint16_t)port, h->err, sizeof(h->err))) == NULL) {
		return open_failed(h, errbuf, h->err);
	}
	return h;
}

int
divert_fd(const struct divert *h)
{
	if (h->join != NULL)
		return joined_fd(h);
	return h->q != NULL ? queue_fd(h->q) : -1;
}

const char *
divert_geterr(const struct divert *h)
{
	return h->err;
}

int
divert_flush(struct divert *h)
{
	send_flush(h);
	if (h->join != NULL && join_flush(h) < 0)
		return -1;
	if (h->q != NULL && queue_flush(h->q) < 0)
		return handle_fail(h, errno, "verdict on divert port %d: %s", h->port,
		    strerror(errno));
	return 0;
}

void
divert_close(struct divert *h)
{
	if (h == NULL)
		return;
	offer_close(h);		/* no joiner may come for a port about to go */
	join_close(h);
	send_close(h);
	queue_close(h->q);
	free(h);
}

int
divert_stats(const struct divert *h, struct divert_stats *st)
{
	struct divert_port_info pi;

	memset(st, 0, sizeof(*st));
	if (h->q == NULL)
		return 0;
	queue_counts(h->q, &st->received, &st->overruns);
	if (divert_port_bound(h->port, h->port, &pi) < 0)
		return -1;
	st->kernel_drops = pi.drops;
	return 0;
}
