/*
 * errors: libdivert returns its errors (NULL or -1, errno, words in the
 * errbuf or divert_geterr) and never prints them (tests/bats/lib.bats).
 *
 *	errors PORT
 *
 * Run as root in a network namespace of its own, with PORT unbound and no
 * divert rule.  Prints TAP on stdout; the test asserts that stderr stays
 * empty, so anything the library printed shows up as a failure.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <divert.h>

#include "tap.h"

/* An errbuf with a guard behind it: the library must stay within its size. */
struct errbuf {
	char	buf[DIVERT_ERRBUF_SIZE];
	char	guard[32];
};

static void
errbuf_reset(struct errbuf *e)
{
	memset(e->buf, 0, sizeof(e->buf));
	memset(e->guard, 0x5a, sizeof(e->guard));
}

/* Words, NUL-terminated within the buffer, nothing written past it. */
static int
has_words(const struct errbuf *e)
{
	size_t i;

	for (i = 0; i < sizeof(e->guard); i++)
		if (e->guard[i] != 0x5a)
			return 0;
	return e->buf[0] != '\0' && memchr(e->buf, '\0', sizeof(e->buf)) != NULL;
}

static void
open_errors(int port)
{
	struct errbuf e;
	struct divert *h, *h2;
	int err;

	errbuf_reset(&e);
	errno = 0;
	h = divert_open(70000, DIVERT_MARK_DEFAULT, 0, e.buf);
	err = errno;
	ok(h == NULL && err == EINVAL && has_words(&e),
	    "divert_open(70000): NULL, EINVAL (%s), \"%s\"", strerror(err), e.buf);

	errbuf_reset(&e);
	errno = 0;
	h = divert_open(-2, DIVERT_MARK_DEFAULT, 0, e.buf);
	err = errno;
	ok(h == NULL && err == EINVAL && has_words(&e),
	    "divert_open(-2): NULL, EINVAL (%s), \"%s\"", strerror(err), e.buf);

	errbuf_reset(&e);
	h = divert_open(port, DIVERT_MARK_DEFAULT, 0, e.buf);
	ok(h != NULL && divert_fd(h) >= 0, "divert_open(%d) binds it: \"%s\"", port, e.buf);
	if (h == NULL)
		return;
	errbuf_reset(&e);
	errno = 0;
	h2 = divert_open(port, DIVERT_MARK_DEFAULT, 0, e.buf);
	err = errno;
	ok(h2 == NULL && err == EPERM && has_words(&e),
	    "divert_open(%d) again, held by the first handle: NULL, EPERM (%s), \"%s\"",
	    port, strerror(err), e.buf);
	if (h2 != NULL)
		divert_close(h2);
	divert_close(h);
}

static void
send_errors(void)
{
	struct errbuf e;
	struct divert_addr to;
	struct divert *h;
	uint8_t junk[64];
	int ret, err;

	errbuf_reset(&e);
	h = divert_open(DIVERT_PORT_NONE, DIVERT_MARK_DEFAULT, 0, e.buf);
	ok(h != NULL && divert_fd(h) == -1, "a send-only handle opens, fd -1: \"%s\"", e.buf);
	if (h == NULL)
		return;

	memset(junk, 0, sizeof(junk));		/* IP version 0: not a packet */
	memset(&to, 0, sizeof(to));
	to.dir = DIVERT_OUT;
	errno = 0;
	ret = divert_send(h, junk, sizeof(junk), &to);
	err = errno;
	ok(ret == -1 && err != 0 && divert_geterr(h)[0] != '\0',
	    "divert_send of a non-IP packet: -1, errno %d (%s), \"%s\"", err,
	    strerror(err), divert_geterr(h));

	/* A good IPv4 header, inbound on an interface that does not exist. */
	memcpy(junk, "\x45\0\0\x40\0\0\0\0\x40\x11\0\0\x0a\x4d\0\x02\x0a\x4d\0\x01", 20);
	to.dir = DIVERT_IN;
	strcpy(to.ifname, "nosuch0");
	errno = 0;
	ret = divert_send(h, junk, sizeof(junk), &to);
	err = errno;
	ok(ret == -1 && err != 0 && divert_geterr(h)[0] != '\0',
	    "divert_send inbound on a missing interface: -1, errno %d (%s), \"%s\"", err,
	    strerror(err), divert_geterr(h));
	divert_close(h);
}

static void
rule_errors(int port)
{
	struct divert_rule r, r2;
	struct errbuf e;
	char text[64];
	int ret, err;

	errbuf_reset(&e);
	divert_rule_init(&r);
	ret = divert_rule_parse(&r, "sideways tcp 1", 0, e.buf);
	ok(ret == -1 && has_words(&e), "divert_rule_parse(\"sideways tcp 1\"): -1, \"%s\"",
	    e.buf);

	errbuf_reset(&e);
	divert_rule_init(&r);
	ret = divert_rule_parse(&r, "output tcp 70000", 0, e.buf);
	ok(ret == -1 && has_words(&e), "divert_rule_parse(\"output tcp 70000\"): -1, \"%s\"",
	    e.buf);

	snprintf(text, sizeof(text), "output icmp %d", port);
	errbuf_reset(&e);
	divert_rule_init(&r);
	ok(divert_rule_parse(&r, text, 0, e.buf) == 0, "divert_rule_parse(\"%s\")", text);
	r2 = r;

	errbuf_reset(&e);
	errno = 0;
	ret = divert_rule_del(&r, e.buf);
	err = errno;
	ok(ret == -1 && err == ENOENT && has_words(&e),
	    "divert_rule_del of a rule not there: -1, ENOENT (%s), \"%s\"", strerror(err),
	    e.buf);

	errbuf_reset(&e);
	ok(divert_rule_add(&r, e.buf) == 0 && r.handle != 0, "divert_rule_add: handle %ju",
	    (uintmax_t)r.handle);
	errbuf_reset(&e);
	errno = 0;
	ret = divert_rule_add(&r2, e.buf);
	err = errno;
	ok(ret == -1 && err == EEXIST && r2.handle == r.handle && has_words(&e),
	    "divert_rule_add of the same rule: -1, EEXIST (%s), its handle %ju, \"%s\"",
	    strerror(err), (uintmax_t)r2.handle, e.buf);
	errbuf_reset(&e);
	ok(divert_rule_flush(e.buf) == 0, "divert_rule_flush: \"%s\"", e.buf);
}

/* In place: joins to nobody, offers and answers where they cannot be. */
static void
inplace_errors(int port)
{
	struct errbuf e;
	struct divert *h, *j, *s;
	struct divert_addr a;
	int err, ret;

	errbuf_reset(&e);
	errno = 0;
	j = divert_join(port, DIVERT_JOIN_INJECT, e.buf);
	err = errno;
	ok(j == NULL && err == ECONNREFUSED && has_words(&e),
	    "divert_join of a port nobody offers: NULL, ECONNREFUSED (%s), \"%s\"",
	    strerror(err), e.buf);
	errbuf_reset(&e);
	errno = 0;
	j = divert_join(port, 0x80, e.buf);
	err = errno;
	ok(j == NULL && err == EINVAL && has_words(&e), "divert_join with unknown flags: EINVAL, "
	    "\"%s\"", e.buf);

	if ((s = divert_open(DIVERT_PORT_NONE, DIVERT_MARK_DEFAULT, 0, e.buf)) == NULL) {
		ok(0, "a send-only handle: %s", e.buf);
		return;
	}
	errno = 0;
	ret = divert_offer(s, 1000);
	err = errno;
	ok(ret == -1 && err == EINVAL && divert_geterr(s)[0] != '\0',
	    "divert_offer on a send-only handle: -1, EINVAL, \"%s\"", divert_geterr(s));
	memset(&a, 0, sizeof(a));
	errno = 0;
	ret = divert_verdict_in_place(s, &a, DIVERT_DROP, NULL, 0);
	err = errno;
	ok(ret == -1 && err == EINVAL, "divert_verdict_in_place on a send-only handle: EINVAL, "
	    "\"%s\"", divert_geterr(s));
	ok(divert_session(s) == 0 && divert_offer_fd(s) == -1,
	    "a send-only handle has no session and offers nothing");
	divert_close(s);

	if ((h = divert_open(port, DIVERT_MARK_DEFAULT, 0, e.buf)) == NULL) {
		ok(0, "bind port %d: %s", port, e.buf);
		return;
	}
	ok(divert_session(h) != 0, "a bound handle has a session");
	ok(divert_offer(h, 1000) == 0 && divert_offer_fd(h) >= 0, "divert_offer: a descriptor");
	errbuf_reset(&e);
	errno = 0;
	j = divert_join(port, DIVERT_JOIN_INJECT, e.buf);
	ok(j != NULL && divert_joined(j) == 0, "a join is sent: not answered yet (%s)", e.buf);
	ok(divert_offer_run(h) == 0, "the listener takes it in");
	ok(j != NULL && divert_joined(j) == 1 && divert_session(j) == divert_session(h) &&
	    divert_hold_timeout(j) == 1000, "joined: the listener's session and hold timeout");
	a.flags = DIVERT_ADDR_QUEUE;
	a.port = (uint16_t)port;
	a.id = 1;
	a.holder = divert_session(h) + 1;
	errno = 0;
	ret = j != NULL ? divert_verdict_in_place(j, &a, DIVERT_ACCEPT, NULL, 0) : 0;
	err = errno;
	ok(ret == -1 && err == ESRCH, "a packet another binding holds: ESRCH, \"%s\"",
	    j != NULL ? divert_geterr(j) : "");
	a.holder = divert_session(h);
	gettimeofday(&a.ts, NULL);
	a.ts.tv_sec -= 5;
	errno = 0;
	ret = j != NULL ? divert_verdict_in_place(j, &a, DIVERT_ACCEPT, NULL, 0) : 0;
	err = errno;
	ok(ret == -1 && err == ETIMEDOUT, "a packet held longer than the hold timeout: ETIMEDOUT, "
	    "\"%s\"", j != NULL ? divert_geterr(j) : "");
	divert_close(h);
	errno = 0;
	ret = j != NULL ? divert_joined(j) : 0;
	err = errno;
	ok(ret == -1 && err == EPIPE, "the listener gone: -1, EPIPE, \"%s\"",
	    j != NULL ? divert_geterr(j) : "");
	gettimeofday(&a.ts, NULL);
	errno = 0;
	ret = j != NULL ? divert_verdict_in_place(j, &a, DIVERT_ACCEPT, NULL, 0) : 0;
	err = errno;
	ok(ret == -1 && err == EPIPE, "then no verdict: EPIPE");
	divert_close(j);
}

int
main(int argc, char *argv[])
{
	int port = argc > 1 ? atoi(argv[1]) : 4321;

	open_errors(port);
	send_errors();
	rule_errors(port);
	inplace_errors(port);
	return tap_done();
}
