/*
 * send_one: divert_send one packet, as a program would (tests/bats/copies.bats).
 *
 *	send_one [-n COUNT] [-m MARK [-c]] [-i IFNAME] [-x IFINDEX] in|out <PACKET
 *
 * Reads one whole IP packet (its raw bytes) from stdin and sends it COUNT
 * times (1 by default) on a send-only handle whose loop-avoidance bit is
 * DIVERT_MARK (the default bit without it), the divert address saying the
 * direction, the record's MARK (-c: MARK + i for the i-th packet, from 0),
 * IFNAME and IFINDEX.  Prints one line, "sent S refused R lookups L",
 * where L counts the library's calls of if_nametoindex for IFNAME: this
 * program defines that function, so the library's calls come here, and
 * passes them on to the C library's.  Exits 0 when
 * every packet was sent, 1 otherwise (the library's words for the last
 * refusal on stderr), 64 on a bad command line.
 */
#include <dlfcn.h>
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <divert.h>

#define PKT_MAX	65535

static unsigned long lookups;
static struct divert_addr to;	/* where the packets go: to.ifname is counted */

unsigned int
if_nametoindex(const char *name)
{
	static unsigned int (*real)(const char *);

	if (real == NULL && (real = (unsigned int (*)(const char *))dlsym(RTLD_NEXT,
	    "if_nametoindex")) == NULL)
		errx(1, "no if_nametoindex in the C library");
	if (strcmp(name, to.ifname) == 0)
		lookups++;
	return real(name);
}

static unsigned long
number(const char *s, const char *what)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || n > 0xffffffffUL)
		errx(64, "bad %s '%s'", what, s);
	return n;
}

static void
usage(void)
{
	fprintf(stderr, "usage: send_one [-n COUNT] [-m MARK [-c]] [-i IFNAME] "
	    "[-x IFINDEX] in|out <PACKET\n");
	exit(64);
}

/* The whole of stdin: one packet. */
static size_t
read_packet(uint8_t *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;

	while (len < size && (n = read(0, buf + len, size - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err(1, "stdin");
		len += (size_t)n;
	}
	if (len == 0 || len == size)
		errx(1, "want one IP packet of 1 to %d bytes on stdin", PKT_MAX);
	return len;
}

int
main(int argc, char **argv)
{
	static uint8_t pkt[PKT_MAX + 1], copy[PKT_MAX + 1];
	char errbuf[DIVERT_ERRBUF_SIZE];
	struct divert *h;
	unsigned long count = 1, i, sent = 0, refused = 0;
	const char *env = getenv("DIVERT_MARK");
	uint32_t mark;
	size_t len;
	int c, count_up = 0;

	memset(&to, 0, sizeof(to));
	while ((c = getopt(argc, argv, "n:m:ci:x:")) != -1) {
		switch (c) {
		case 'c': count_up = 1; break;
		case 'n': count = number(optarg, "count"); break;
		case 'm': to.mark = (uint32_t)number(optarg, "mark"); break;
		case 'x': to.ifindex = (uint32_t)number(optarg, "index"); break;
		case 'i':
			if (strlen(optarg) >= sizeof(to.ifname))
				errx(64, "bad interface name '%s'", optarg);
			strcpy(to.ifname, optarg);
			break;
		default: usage();
		}
	}
	if (optind != argc - 1 || (strcmp(argv[optind], "in") != 0 &&
	    strcmp(argv[optind], "out") != 0))
		usage();
	to.dir = strcmp(argv[optind], "in") == 0 ? DIVERT_IN : DIVERT_OUT;
	len = read_packet(pkt, sizeof(pkt));
	h = divert_open(DIVERT_PORT_NONE, env != NULL ? (uint32_t)number(env, "DIVERT_MARK") :
	    DIVERT_MARK_DEFAULT, 0, errbuf);
	if (h == NULL)
		errx(1, "%s", errbuf);
	mark = to.mark;
	for (i = 0; i < count; i++) {
		to.mark = count_up ? mark + (uint32_t)i : mark;
		memcpy(copy, pkt, len);		/* divert_send fixes the packet in place */
		if (divert_send(h, copy, len, &to) == 0) {
			sent++;
		} else {
			refused++;
			warnx("%s", divert_geterr(h));
		}
	}
	divert_close(h);
	printf("sent %lu refused %lu lookups %lu\n", sent, refused, lookups);
	return refused == 0 ? 0 : 1;
}
