/* stream.c - read any capture into struct pkt, write SLL2 or keep the link type. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <err.h>
#include <linux/if_ether.h>
#include <net/if_arp.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bytes.h"
#include "ether.h"
#include "pcapng.h"
#include "tool.h"
#include "stream.h"

#define STREAM_BUF	(1 << 16)	/* stdio buffer: one default pipe's worth */
#define PIPE_BUF_BYTES	(1 << 20)	/* pipe-max-size's default */
#define NG_READ_BUF	(1 << 18)	/* pcapng reader's buffer, to start with */
#define NG_MAX_IFS	(1 << 16)	/* interfaces a pcapng section may describe */

/*
 * A record's address before its link header and options say more.  Copied
 * from a template the compiler cannot prove zero, not memset: GCC makes a
 * memset (or a copy of a const zero) a rep stos, whose start-up cost was an
 * eighth of divert-mangle's time a record (perf).
 */
static struct divert_addr no_addr = { .hook = DIVERT_HOOK_UNKNOWN };	/* not const: see above */

struct stream_in {
	enum stream_format format;
	int		 fd, close_fd;
	int		 dlt;		/* pcapng: the first interface's */
	int		 dlt_known;	/* pcapng: an interface was described */
	size_t		 caplen;	/* of the record last read */
	char		 error[PCAP_ERRBUF_SIZE + 64];
	/*
	 * Classic pcap: libpcap reads a stdio stream over fd that first gives
	 * back the bytes read to tell the formats apart.
	 */
	pcap_t		*pcap;
	FILE		*fp;
	uint8_t		 magic[4];
	size_t		 nmagic, magic_given;
	/* pcapng: our blocks, read into buf, records handed out where they lie */
	uint8_t		*buf;
	size_t		 size, start, end;	/* bytes buffered: [start, end) */
	int		 eof, swap;		/* swap: the section's byte order is not ours */
	struct pcapng_if *ifs;		/* the section's interfaces */
	size_t		 nifs, ifcap;
	char		 iobuf[STREAM_BUF];		/* stdio's buffer for fp */
};

uint16_t
pkt_ip_proto(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	switch (data[0] >> 4) {
	case 4:
		return ETH_P_IP;
	case 6:
		return ETH_P_IPV6;
	default:
		return 0;
	}
}

/* Fill p's metadata from the link header of a record of type dlt; 0 or -1. */
static int
parse_link(int dlt, struct pkt *p, size_t caplen)
{
	const uint8_t *r = p->rec;
	uint16_t type = 0;

	switch (dlt) {
	case DLT_SLL2:
		if (caplen < SLL2_HDRLEN)
			return -1;
		p->l2len = SLL2_HDRLEN;
		p->a.proto = get16(r);
		p->a.ifindex = get32(r + 4);
		p->a.hatype = get16(r + 8);
		p->pkttype = r[10];
		p->a.halen = r[11] > 8 ? 8 : r[11];
		memcpy(p->a.haddr, r + 12, 8);
		p->a.dir = p->pkttype == SLL_OUTGOING ? DIVERT_OUT : DIVERT_IN;
		return 0;
	case DLT_LINUX_SLL:
		if (caplen < 16)
			return -1;
		p->l2len = 16;
		p->pkttype = (uint8_t)get16(r);
		p->a.hatype = get16(r + 2);
		p->a.halen = get16(r + 4) > 8 ? 8 : (uint8_t)get16(r + 4);
		memcpy(p->a.haddr, r + 6, 8);
		p->a.proto = get16(r + 14);
		p->a.dir = p->pkttype == SLL_OUTGOING ? DIVERT_OUT : DIVERT_IN;
		return 0;
	case DLT_EN10MB:
		p->l2len = ether_hdrlen(r, caplen, &type);
		if (p->l2len == 0)
			return -1;
		p->a.proto = type;
		p->a.halen = 6;
		memcpy(p->a.haddr, r + 6, 6);
		return 0;
	case DLT_NULL:
	case DLT_LOOP:
		/* The family's byte order varies with the writer: trust the IP version. */
		if (caplen < 4)
			return -1;
		p->l2len = 4;
		p->a.proto = pkt_ip_proto(r + 4, caplen - 4);
		return 0;
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		p->l2len = 0;
		p->a.proto = pkt_ip_proto(r, caplen);
		return 0;
	default:
		return -1;
	}
}

static int
dlt_supported(int dlt)
{
	switch (dlt) {
	case DLT_SLL2: case DLT_LINUX_SLL: case DLT_EN10MB: case DLT_NULL:
	case DLT_LOOP: case DLT_RAW: case DLT_IPV4: case DLT_IPV6:
		return 1;
	default:
		return 0;
	}
}

/* Set the record's link fields from its link header; shared by both formats. */
static void
take_record(struct stream_in *in, struct pkt *p, int dlt, uint8_t *rec, size_t caplen)
{
	p->pkttype = 0;
	p->dlt = dlt;
	p->rec = rec;
	in->caplen = caplen;
	if (parse_link(dlt, p, caplen) < 0) {
		p->l2len = caplen;		/* unparseable: all of it is "header" */
		p->a.proto = 0;
	}
	p->data = p->rec + p->l2len;
	p->len = caplen - p->l2len;
}

/* ---- classic pcap, through libpcap ------------------------------------ */

/* stdio's reads: the bytes that told the format first, then the fd's. */
static ssize_t
magic_then_fd(void *cookie, char *buf, size_t size)
{
	struct stream_in *in = cookie;
	size_t n = in->nmagic - in->magic_given;
	ssize_t r;

	if (n > 0) {
		n = n < size ? n : size;
		memcpy(buf, in->magic + in->magic_given, n);
		in->magic_given += n;
		return (ssize_t)n;
	}
	if (stop_signalled)	/* see fill() */
		return errno = EINTR, -1;
	while ((r = read(in->fd, buf, size)) < 0 && errno == EINTR && !stop_signalled)
		;
	return r;
}

static int
classic_open(struct stream_in *in, const char *name, char *err, size_t errlen)
{
	static const cookie_io_functions_t io = { .read = magic_then_fd };
	char ebuf[PCAP_ERRBUF_SIZE] = "";

	in->format = STREAM_PCAP;
	if ((in->fp = fopencookie(in, "rb", io)) == NULL) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return -1;
	}
	/* glibc ignores setvbuf's size unless given the buffer: we give it one. */
	setvbuf(in->fp, in->iobuf, _IOFBF, STREAM_BUF);
	/*
	 * One thread uses the stream: without this every fread libpcap makes
	 * (two a record) takes and drops stdio's lock, atomics that took
	 * nearly a third of divert-mangle's time.
	 */
	__fsetlocking(in->fp, FSETLOCKING_BYCALLER);
	if ((in->pcap = pcap_fopen_offline(in->fp, ebuf)) == NULL) {
		snprintf(err, errlen, "%s: not a pcap stream: %s", name, ebuf);
		return -1;
	}
	in->dlt = pcap_datalink(in->pcap);
	return 0;
}

static int
classic_read(struct stream_in *in, struct pkt *p)
{
	struct pcap_pkthdr *h;
	const u_char *data;
	int rc;

	rc = pcap_next_ex(in->pcap, &h, &data);
	if (rc == PCAP_ERROR_BREAK)
		return 0;
	if (rc != 1) {
		snprintf(in->error, sizeof(in->error), "broken stream: %s",
		    pcap_geterr(in->pcap));
		return -1;
	}
	p->a = no_addr;		/* not memset(p) either: only the address starts empty */
	p->a.ts = h->ts;
	p->a.cut = h->len > h->caplen ? h->len - h->caplen : 0;
	/*
	 * pcap_next_ex is zero-copy: the record is edited in libpcap's own
	 * buffer, which nothing reads again until the next read refills it.
	 */
	take_record(in, p, in->dlt, (uint8_t *)data, h->caplen);
	return 1;
}

/* ---- pcapng, ours ----------------------------------------------------- */

static int
broken(struct stream_in *in, const char *why)
{
	snprintf(in->error, sizeof(in->error), "broken stream: %s", why);
	return -1;
}

/* A non-blocking input with nothing yet: wait for it. */
static int
wait_readable(struct stream_in *in)
{
	struct pollfd pfd = { .fd = in->fd, .events = POLLIN };

	return poll_unless_stopped(&pfd, 1, -1, 0) < 0 &&
	    (errno != EINTR || stop_signalled) ? -1 : 0;
}

/* Room for n bytes from in->start on: the buffered bytes moved to the front, or a larger buffer. */
static int
make_room(struct stream_in *in, size_t n)
{
	uint8_t *nb;
	size_t size;

	if (n > in->size) {
		for (size = in->size; size < n; size *= 2)
			;
		if ((nb = realloc(in->buf, size)) == NULL)
			return broken(in, "out of memory");
		in->buf = nb, in->size = size;
	}
	memmove(in->buf, in->buf + in->start, in->end - in->start);
	in->end -= in->start;
	in->start = 0;
	return 0;
}

/*
 * At least n bytes buffered from in->start (read as large as the buffer
 * takes: few reads, and a record handed out stays where it lies until the
 * next call).  1, 0 when the stream ends first, -1 on a read error.
 */
static int
fill(struct stream_in *in, size_t n)
{
	ssize_t r;

	if (in->end - in->start >= n)
		return 1;
	if (in->start == in->end)
		in->start = in->end = 0;
	if (in->start + n > in->size && make_room(in, n) < 0)
		return -1;
	while (in->end - in->start < n) {
		if (in->eof)
			return 0;
		/*
		 * A stop signal that came while the last read returned data
		 * interrupts no read: do not start one that may wait for ever.
		 */
		if (stop_signalled)
			return broken(in, strerror(EINTR));
		r = read(in->fd, in->buf + in->end, in->size - in->end);
		if (r > 0)
			in->end += (size_t)r;
		else if (r == 0)
			in->eof = 1;
		else if (errno == EINTR && !stop_signalled)
			continue;
		else if (errno == EAGAIN && wait_readable(in) == 0)
			continue;
		else
			return broken(in, strerror(errno));
	}
	return 1;
}

/* fill(), with a stream that ends early called truncated. */
static int
fill_all(struct stream_in *in, size_t n)
{
	int rc = fill(in, n);

	return rc == 0 ? broken(in, "truncated block") : rc;
}

static int
wanted_block(uint32_t type)
{
	return type == PCAPNG_SHB || type == PCAPNG_IDB || type == PCAPNG_EPB ||
	    type == PCAPNG_SPB;
}

/* Pass over len bytes of a block we do not read, whatever its size; then its trailer. */
static int
skip_block(struct stream_in *in, uint32_t len)
{
	size_t left = len - 4, n;

	while (left > 0) {
		if (in->end == in->start && fill_all(in, 1) < 0)
			return -1;
		n = in->end - in->start < left ? in->end - in->start : left;
		in->start += n;
		left -= n;
	}
	if (fill_all(in, 4) < 0)
		return -1;
	if (pcapng_u32(in->buf + in->start, in->swap) != len)
		return broken(in, "a block's two lengths differ");
	in->start += 4;
	return 0;
}

/*
 * The next block: whole in the buffer (*b, *len) when the reader reads
 * its type, else skipped (*b NULL).  1, 0 at a clean end, -1 (in->error).
 */
static int
next_block(struct stream_in *in, uint32_t *type, uint8_t **b, uint32_t *len)
{
	uint32_t magic;
	int rc, swap = in->swap;

	if ((rc = fill(in, 8)) <= 0)
		return rc < 0 ? -1 : in->end == in->start ? 0 :
		    broken(in, "the stream ends inside a block header");
	*type = pcapng_u32(in->buf + in->start, swap);
	*b = NULL;
	if (*type == PCAPNG_SHB) {
		/* A section says its own byte order, its length's too. */
		if (fill_all(in, 12) < 0)
			return -1;
		memcpy(&magic, in->buf + in->start + 8, 4);
		if (magic != PCAPNG_MAGIC && magic != __builtin_bswap32(PCAPNG_MAGIC))
			return broken(in, "bad byte-order magic in a section header");
		swap = magic != PCAPNG_MAGIC;
	}
	*len = pcapng_u32(in->buf + in->start + 4, swap);
	if (*len < 12 || *len % 4 != 0)
		return broken(in, "bad block length");
	if (!wanted_block(*type))
		return skip_block(in, *len) < 0 ? -1 : 1;
	if (*len > PCAPNG_BLOCK_MAX)
		return broken(in, "block too large");
	if (fill_all(in, *len) < 0)
		return -1;
	*b = in->buf + in->start;
	if (pcapng_u32(*b + *len - 4, swap) != *len)
		return broken(in, "a block's two lengths differ");
	in->start += *len;
	return 1;
}

static int
new_section(struct stream_in *in, const uint8_t *b, uint32_t len)
{
	const char *why;

	if (pcapng_read_shb(b, len, &in->swap, &why) < 0)
		return broken(in, why);
	in->nifs = 0;			/* interface ids start again */
	return 0;
}

static int
new_interface(struct stream_in *in, const uint8_t *b, uint32_t len)
{
	struct pcapng_if *n;
	const char *why;
	size_t cap;

	if (in->nifs == in->ifcap) {
		if (in->ifcap >= NG_MAX_IFS)
			return broken(in, "too many interfaces");
		cap = in->ifcap ? in->ifcap * 2 : 8;
		if ((n = realloc(in->ifs, cap * sizeof(*n))) == NULL)
			return broken(in, "out of memory");
		in->ifs = n, in->ifcap = cap;
	}
	if (pcapng_read_idb(b, len, in->swap, &in->ifs[in->nifs], &why) < 0)
		return broken(in, why);
	/*
	 * The stream has one link type, its first interface's, in every
	 * section (libpcap refuses the same way): a reader sees records of
	 * stream_in_linktype only.
	 */
	if (in->dlt_known && in->ifs[in->nifs].dlt != in->dlt)
		return broken(in, "interfaces of different link types");
	in->dlt = in->ifs[in->nifs].dlt;
	in->dlt_known = 1;
	in->nifs++;
	return 0;
}

/* A packet block into p: the link header's fields, then the interface's and options'. */
static int
take_packet(struct stream_in *in, uint32_t type, uint8_t *b, uint32_t len, struct pkt *p)
{
	const struct pcapng_if *ifc;
	struct pcapng_pkt pk;
	const char *why = "a packet on an interface not described";
	uint32_t caplen;

	if (type == PCAPNG_EPB ? pcapng_read_epb(b, len, in->swap, &pk, &why) < 0 :
	    in->nifs == 0 || pcapng_read_spb(b, len, in->swap, in->ifs[0].snaplen, &pk,
	    &why) < 0)
		return broken(in, why);
	if (pk.ifid >= in->nifs)
		return broken(in, why);
	ifc = &in->ifs[pk.ifid];
	caplen = pk.caplen > STREAM_SNAPLEN ? STREAM_SNAPLEN : pk.caplen;
	p->a = no_addr;
	pcapng_time(ifc, pk.ts, &p->a.ts);
	p->a.cut = pk.origlen > caplen ? pk.origlen - caplen : 0;
	take_record(in, p, ifc->dlt, b + pk.data, caplen);
	if (ifc->name[0] != '\0')
		memcpy(p->a.ifname, ifc->name, sizeof(p->a.ifname));
	if (ifc->has_ifindex)
		p->a.ifindex = ifc->ifindex;
	if (type == PCAPNG_EPB)
		pcapng_epb_options(b + pk.opts, pk.optlen, in->swap, &p->a);
	return 1;
}

/* The next block that is a packet; section and interface blocks are taken in on the way. */
static int
pcapng_next(struct stream_in *in, struct pkt *p)
{
	uint32_t type, len;
	uint8_t *b;
	int rc;

	for (;;) {
		if ((rc = next_block(in, &type, &b, &len)) <= 0)
			return rc;
		if (b == NULL)
			continue;		/* a block we skip */
		if (type == PCAPNG_SHB)
			rc = new_section(in, b, len);
		else if (type == PCAPNG_IDB)
			rc = new_interface(in, b, len);
		else
			return take_packet(in, type, b, len, p);
		if (rc < 0)
			return -1;
	}
}

/*
 * Read up to the first interface description: its link type is the
 * stream's.  A stream that ends before it is empty (and SLL2); a packet
 * before it is an error.
 */
static int
pcapng_open(struct stream_in *in, const char *name, char *err, size_t errlen)
{
	uint32_t type, len;
	uint8_t *b;
	int rc;

	in->format = STREAM_PCAPNG;
	in->dlt = DLT_SLL2;
	if ((in->buf = malloc(NG_READ_BUF)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	in->size = NG_READ_BUF;
	memcpy(in->buf, in->magic, in->nmagic);
	in->end = in->nmagic;
	while (in->nifs == 0) {
		if ((rc = next_block(in, &type, &b, &len)) == 0)
			return 0;
		if (rc > 0 && b != NULL) {
			if (type == PCAPNG_SHB)
				rc = new_section(in, b, len);
			else if (type == PCAPNG_IDB)
				rc = new_interface(in, b, len);
			else
				rc = broken(in, "a packet before any interface description");
		}
		if (rc < 0) {
			snprintf(err, errlen, "%s: %s", name, in->error);
			return -1;
		}
	}
	in->dlt = in->ifs[0].dlt;
	return 0;
}

/* Read up to n bytes, fewer only at the end; bytes read, or -1 (a stop signal: EINTR). */
static ssize_t
read_upto(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (stop_signalled)	/* one that came while a read returned data */
			return errno = EINTR, -1;
		r = read(fd, buf + got, n - got);
		if (r == 0)
			break;
		if (r < 0 && (errno != EINTR || stop_signalled))
			return -1;
		if (r > 0)
			got += (size_t)r;
	}
	return (ssize_t)got;
}

struct stream_in *
stream_in_open(const char *path, char *err, size_t errlen)
{
	int stdin_ = path == NULL || strcmp(path, "-") == 0;
	const char *name = stdin_ ? "standard input" : path;
	struct stream_in *in;
	ssize_t n;
	int rc;

	if ((in = calloc(1, sizeof(*in))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->fd = stdin_ ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (in->fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(in);
		return NULL;
	}
	in->close_fd = !stdin_;
	if ((n = read_upto(in->fd, in->magic, sizeof(in->magic))) < 0) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		stream_in_close(in);
		return NULL;
	}
	in->nmagic = (size_t)n;
	if (n == 4 && pcapng_u32(in->magic, 0) == PCAPNG_SHB)
		rc = pcapng_open(in, name, err, errlen);
	else
		rc = classic_open(in, name, err, errlen);
	if (rc == 0 && !dlt_supported(in->dlt)) {
		snprintf(err, errlen, "link type %s is not supported (want SLL2, SLL, "
		    "RAW, IPV4, IPV6, EN10MB, NULL or LOOP)",
		    pcap_datalink_val_to_name(in->dlt) ?: "unknown");
		rc = -1;
	}
	if (rc < 0) {
		stream_in_close(in);
		return NULL;
	}
	return in;
}

int
stream_in_linktype(const struct stream_in *in)
{
	return in->dlt;
}

enum stream_format
stream_in_format(const struct stream_in *in)
{
	return in->format;
}

int
stream_in_read(struct stream_in *in, struct pkt *p)
{
	return in->format == STREAM_PCAPNG ? pcapng_next(in, p) : classic_read(in, p);
}

size_t
stream_in_room(const struct stream_in *in, const struct pkt *p)
{
	return in->caplen - (size_t)(p->data - p->rec);
}

const char *
stream_in_error(const struct stream_in *in)
{
	return in->error;
}

/* A whole block waits in the pcapng reader's buffer. */
static int
block_buffered(const struct stream_in *in)
{
	size_t have = in->end - in->start;
	uint32_t len;

	if (have < 12)
		return 0;
	len = pcapng_u32(in->buf + in->start + 4, in->swap);
	return len >= 12 && have >= len;
}

int
stream_in_idle(struct stream_in *in)
{
	struct pollfd pfd = { .fd = in->fd, .events = POLLIN };

	/*
	 * A record already read into a buffer is waiting, not idleness.  For
	 * stdio (classic) glibc has no call that says so; gnulib's
	 * freadahead reads the same two FILE fields.
	 */
	if (in->format == STREAM_PCAPNG ? block_buffered(in) :
	    in->fp->_IO_read_ptr < in->fp->_IO_read_end)
		return 0;
	return poll(&pfd, 1, 0) == 0;
}

void
stream_in_close(struct stream_in *in)
{
	if (in == NULL)
		return;
	if (in->pcap != NULL)
		pcap_close(in->pcap);		/* closes fp */
	else if (in->fp != NULL)
		fclose(in->fp);
	if (in->close_fd)
		close(in->fd);
	free(in->buf);
	free(in->ifs);
	free(in);
}

/*
 * The writer owns its output buffer: each record is formatted into buf
 * (pcapng: by pcapng.c, an interface's description block, when new, and
 * the packet block; classic pcap: by libpcap, pcap_dump into a stdio FILE
 * whose flushes land in buf), and whole records go out with write(2):
 * where each record ends in buf is counted, not parsed.  So the stream
 * never ends inside a record: a stop
 * signal ends it after the last record the reader could take at once, and
 * the records not written are counted, not lost in a stdio buffer.
 *
 * A pipe takes a write whole only if it has room for it; a write that finds
 * too little room leaves part of a record behind.  Linux has no call that
 * says how much room a pipe has, but it can be worked out: the pipe holds
 * at most F_GETPIPE_SZ / PAGE_SIZE pages, a page is freed once read, and
 * where our bytes lie in pages follows from our writes (fs/pipe.c: a
 * write's remainder, len % PAGE_SIZE, is added to the last page if it
 * fits there, then whole pages follow; otherwise whole pages, then the
 * remainder on a page of its own).  FIONREAD says how many bytes are
 * unread, so the pages holding them are known.  Where the model and the
 * kernel differ (the kernel never adds to a page once the pipe was empty)
 * the difference lies in bytes already read, or the model counts more.
 * A write that fits in the pages left is taken whole, without waiting
 * (RWF_NOWAIT or O_NONBLOCK).
 */
#define FLUSH_AT	STREAM_BUF	/* bytes buffered before a write(2) */
#define NAP_MAX_MS	16		/* longest nap while a pipe drains */
#define TORN_WAIT_MS	1000		/* to finish a started record after a stop */

/*
 * pcapng: an interface described in the stream, and the record whose
 * block came after its description (a record discarded takes it along).
 */
struct ng_iface {
	uint32_t	 ifindex;
	char		 name[DIVERT_IFNAMSIZ];	/* zero padded: compared whole */
	uint64_t	 rec;			/* the record's number (appended) */
};

struct stream_out {
	enum stream_format format;
	pcap_t		*pcap;		/* classic */
	pcap_dumper_t	*dump;
	FILE		*fp;		/* libpcap's view: appends to buf */
	int		 fd, close_fd;
	int		 dlt;
	int		(*wait_fn)(void *);	/* run on every wait (stream_out_set_wait_hook) */
	void		*wait_arg;
	struct ng_iface	*ifs;		/* pcapng: in the order described, ids */
	size_t		 nifs, ifcap, last_if;
	uint32_t	*ifhash;	/* id + 1 of each interface, open addressing */
	size_t		 hashmask;
	int		 is_pipe, nowait;	/* RWF_NOWAIT works on fd */
	int		 foreign;		/* pipe: another writer seen (FIONREAD) */
	int		 set_nonblock;		/* we set O_NONBLOCK: undo at close */
	int		 err;			/* errno of a failed append: sticky */
	int		 started;		/* the header went out */
	int		 torn;		/* a record is partly written */
	uint8_t		*buf;		/* records formatted, not yet written */
	size_t		 len, size, sent;	/* bytes in buf, room, bytes written */
	size_t		 pending;	/* bytes libpcap gave stdio, not yet in buf */
	size_t		*ends;		/* end offset in buf of each record */
	size_t		 nrec, recsize;
	uint64_t	 appended, out;	/* records given, records written whole */
	uint64_t	 total;		/* bytes written to fd */
	size_t		 page, slots;	/* pipe: page size, capacity in pages */
	uint64_t	*pages;		/* pipe: stream offset where each page ends */
	size_t		 npages;	/* pages that may hold unread bytes */
	size_t		 tail_fill;	/* bytes on the last page */
	uint8_t		 rec[SLL2_HDRLEN + STREAM_SNAPLEN];
	char		 iobuf[STREAM_BUF];	/* stdio's buffer in front of buf */
};

/* Classic pcap's record header: time stamp, caplen, len (4 x 32 bits). */
#define PCAP_RECHDR_LEN	16

/* Room for n more bytes in buf; -1 (ENOMEM) without. */
static int
buf_reserve(struct stream_out *out, size_t n)
{
	size_t size;
	uint8_t *nb;

	if (out->len + n <= out->size)
		return 0;
	for (size = out->size ? out->size : STREAM_BUF; size < out->len + n; size *= 2)
		;
	if ((nb = realloc(out->buf, size)) == NULL)
		return errno = ENOMEM, -1;
	out->buf = nb, out->size = size;
	return 0;
}

/*
 * stdio's buffer flushes into buf: whole records or not, as it fills (a
 * record's end in buf is known by arithmetic, see stream_out_write).
 */
static ssize_t
buf_append(void *cookie, const char *data, size_t n)
{
	struct stream_out *out = cookie;

	if (buf_reserve(out, n) < 0) {
		out->err = ENOMEM;
		return -1;
	}
	memcpy(out->buf + out->len, data, n);
	out->len += n;
	out->pending -= n < out->pending ? n : out->pending;
	return (ssize_t)n;
}

/*
 * Move what stdio holds into buf.  Its bytes must be exactly the records
 * counted: anything else (a lost chunk) would misplace every record end.
 */
static int
drain_stdio(struct stream_out *out)
{
	if (out->pending != 0 && pcap_dump_flush(out->dump) < 0 && out->err == 0)
		out->err = EIO;
	if (out->err == 0 && out->pending != 0)
		out->err = EIO;
	return out->err != 0 ? (errno = out->err, -1) : 0;
}

/* Room for one more record end. */
static int
ends_reserve(struct stream_out *out)
{
	size_t n;
	size_t *ne;

	if (out->nrec < out->recsize)
		return 0;
	n = out->recsize ? out->recsize * 2 : 1024;
	if ((ne = realloc(out->ends, n * sizeof(*ne))) == NULL)
		return errno = ENOMEM, -1;
	out->ends = ne, out->recsize = n;
	return 0;
}

static int
add_record_end(struct stream_out *out)
{
	if (ends_reserve(out) < 0)
		return -1;
	out->ends[out->nrec++] = out->len + out->pending;
	return 0;
}

/* Forget the pages the reader has emptied; return the pages left free. */
static size_t
pipe_free_pages(struct stream_out *out)
{
	uint64_t readpos;
	size_t i;
	int unread;

	if (ioctl(out->fd, FIONREAD, &unread) < 0 || unread < 0)
		return 0;
	if ((uint64_t)unread > out->total) {
		/* Someone else writes here too: their bytes fill pages at best. */
		out->foreign = 1;
		i = ((size_t)unread + out->page - 1) / out->page + 1;
		return i >= out->slots ? 0 : out->slots - i;
	}
	readpos = out->total - (uint64_t)unread;
	for (i = 0; i < out->npages && out->pages[i] <= readpos; i++)
		;
	memmove(out->pages, out->pages + i, (out->npages - i) * sizeof(*out->pages));
	out->npages -= i;
	return out->npages >= out->slots ? 0 : out->slots - out->npages;
}

/* Whether a write of n bytes would add its remainder to the last page. */
static int
pipe_merges(const struct stream_out *out, size_t n)
{
	size_t chars = n % out->page;

	return chars != 0 && out->npages > 0 && out->tail_fill + chars <= out->page;
}

/* Pages a write of n bytes would take (see above). */
static size_t
pipe_pages_for(const struct stream_out *out, size_t n)
{
	return pipe_merges(out, n) ? n / out->page : (n + out->page - 1) / out->page;
}

/* Lay n bytes just written (at stream offset total - n) into pages. */
static void
pipe_wrote(struct stream_out *out, size_t n)
{
	uint64_t end = out->total - n;
	size_t take;

	if (pipe_merges(out, n)) {
		out->pages[out->npages - 1] += n % out->page;
		out->tail_fill += n % out->page;
		end += n % out->page;
		n -= n % out->page;
	}
	while (n > 0) {
		take = n < out->page ? n : out->page;
		end += take;
		if (out->npages < out->slots)
			out->pages[out->npages++] = end;
		else	/* more than the pipe holds: cannot be; stay on the safe side */
			out->pages[out->npages - 1] = end;
		out->tail_fill = take;
		n -= take;
	}
}

/*
 * A pipe: a large buffer (1 MiB instead of 64 KiB lets a writer run ahead of
 * a busy reader instead of sleeping; best effort), its page accounting, and
 * writes that never wait in the kernel (RWF_NOWAIT, else O_NONBLOCK).
 * A socket: a stop signal makes it non-blocking, so a stalled reader cannot
 * hold the writer past SIGTERM.  (A terminal's flags are shared with the
 * shell: left alone.)
 */
static int
setup_output(struct stream_out *out)
{
	struct stat st;
	int sz;

	if (fstat(out->fd, &st) < 0)
		return -1;
	if (!S_ISFIFO(st.st_mode)) {
		if (S_ISSOCK(st.st_mode))
			stop_unblocks(out->fd);
		return 0;
	}
	if (fcntl(out->fd, F_GETPIPE_SZ) < PIPE_BUF_BYTES)	/* grow, never shrink */
		fcntl(out->fd, F_SETPIPE_SZ, PIPE_BUF_BYTES);
	out->page = (size_t)sysconf(_SC_PAGESIZE);
	if ((sz = fcntl(out->fd, F_GETPIPE_SZ)) <= 0)
		return 0;		/* not a pipe after all: plain writes */
	out->slots = (size_t)sz / out->page;
	if ((out->pages = calloc(out->slots, sizeof(*out->pages))) == NULL)
		return -1;
	out->is_pipe = 1;
	out->nowait = 1;	/* until the kernel says otherwise (EOPNOTSUPP) */
	return 0;
}

/* ---- pcapng interfaces ------------------------------------------------ */

static int
same_iface(const struct ng_iface *x, const struct ng_iface *y)
{
	return x->ifindex == y->ifindex && memcmp(x->name, y->name, sizeof(x->name)) == 0;
}

static size_t
iface_hash(const struct ng_iface *k)
{
	uint32_t h = k->ifindex * 0x9e3779b1u;
	size_t i;

	for (i = 0; i < sizeof(k->name) && k->name[i] != '\0'; i++)
		h = (h ^ (uint8_t)k->name[i]) * 0x01000193u;
	return h;
}

/* Put interface id into the hash table (which has room). */
static void
iface_hash_in(struct stream_out *out, size_t id)
{
	size_t i = iface_hash(&out->ifs[id]) & out->hashmask;

	while (out->ifhash[i] != 0)
		i = (i + 1) & out->hashmask;
	out->ifhash[i] = (uint32_t)id + 1;
}

static void
iface_rehash(struct stream_out *out)
{
	size_t id;

	memset(out->ifhash, 0, (out->hashmask + 1) * sizeof(*out->ifhash));
	for (id = 0; id < out->nifs; id++)
		iface_hash_in(out, id);
	out->last_if = 0;
}

/* Room for twice the interfaces (the table half full at most). */
static int
iface_grow(struct stream_out *out)
{
	size_t cap = out->ifcap ? out->ifcap * 2 : 8;
	struct ng_iface *n;
	uint32_t *h;

	if ((n = realloc(out->ifs, cap * sizeof(*n))) == NULL)
		return errno = ENOMEM, -1;
	out->ifs = n;
	if ((h = calloc(2 * cap, sizeof(*h))) == NULL)
		return errno = ENOMEM, -1;
	free(out->ifhash);
	out->ifhash = h, out->hashmask = 2 * cap - 1, out->ifcap = cap;
	iface_rehash(out);
	return 0;
}

/*
 * The id of a's interface (ifindex, name) in the stream; one not yet
 * described is described now, in buf (which has room), as part of the
 * record being added.  -1 (ENOMEM).
 */
static long
iface_id(struct stream_out *out, const struct divert_addr *a)
{
	struct ng_iface k = { .ifindex = a->ifindex };
	size_t n = strnlen(a->ifname, sizeof(a->ifname)), i;

	if (n < sizeof(k.name))		/* one that fills it is no Linux name */
		memcpy(k.name, a->ifname, n);
	if (out->nifs > 0 && same_iface(&out->ifs[out->last_if], &k))
		return (long)out->last_if;
	for (i = iface_hash(&k) & out->hashmask; out->ifhash[i] != 0; i = (i + 1) & out->hashmask)
		if (same_iface(&out->ifs[out->ifhash[i] - 1], &k))
			return (long)(out->last_if = out->ifhash[i] - 1);
	if (out->nifs == out->ifcap && iface_grow(out) < 0)
		return -1;
	k.rec = out->appended;
	out->ifs[out->nifs] = k;
	iface_hash_in(out, out->nifs);
	out->len += pcapng_put_idb(out->buf + out->len, out->dlt, k.name, k.ifindex);
	out->last_if = out->nifs++;
	return (long)out->last_if;
}

/* Records from number kept on are gone: so are the interfaces they described. */
static void
iface_forget(struct stream_out *out, uint64_t kept)
{
	size_t n = out->nifs;

	while (out->nifs > 0 && out->ifs[out->nifs - 1].rec >= kept)
		out->nifs--;
	if (out->nifs != n)
		iface_rehash(out);
}

/* ---- opening ---------------------------------------------------------- */

/* pcapng: the section header into buf, as the first "record". */
static int
pcapng_start(struct stream_out *out)
{
	char appl[128];

	snprintf(appl, sizeof(appl), "%s (divert) %s", program_invocation_short_name,
	    DIVERT_VERSION);
	if (iface_grow(out) < 0 || buf_reserve(out, PCAPNG_SHB_MAX) < 0)
		return -1;
	out->len += pcapng_put_shb(out->buf + out->len, appl);
	return add_record_end(out);
}

/* Classic: libpcap's dumper, writing into buf through a stdio FILE; its header. */
static int
pcap_start(struct stream_out *out, char *err, size_t errlen)
{
	static const cookie_io_functions_t io = { .write = buf_append };

	if ((out->fp = fopencookie(out, "w", io)) == NULL) {
		snprintf(err, errlen, "cannot start the stream: %s", strerror(errno));
		return -1;
	}
	setvbuf(out->fp, out->iobuf, _IOFBF, sizeof(out->iobuf));
	__fsetlocking(out->fp, FSETLOCKING_BYCALLER);	/* as the reader's */
	out->pcap = pcap_open_dead(out->dlt, STREAM_SNAPLEN);
	if (out->pcap == NULL || (out->dump = pcap_dump_fopen(out->pcap, out->fp)) == NULL) {
		snprintf(err, errlen, "cannot start the stream: %s",
		    out->pcap ? pcap_geterr(out->pcap) : "out of memory");
		return -1;
	}
	out->fp = NULL;			/* the dumper owns it now */
	if (pcap_dump_flush(out->dump) < 0 || add_record_end(out) < 0) {
		snprintf(err, errlen, "cannot write the stream: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct stream_out *
stream_out_open(const char *path, int dlt, enum stream_format fmt, char *err,
    size_t errlen)
{
	struct stream_out *out;

	if ((out = calloc(1, sizeof(*out))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	out->dlt = dlt;
	out->format = fmt;
	if (path == NULL || strcmp(path, "-") == 0)
		out->fd = STDOUT_FILENO;
	else if ((out->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0666)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(out);
		return NULL;
	}
	out->close_fd = 1;
	if (setup_output(out) < 0) {
		snprintf(err, errlen, "cannot start the stream: %s", strerror(errno));
		goto fail;
	}
	if (fmt == STREAM_PCAPNG && pcapng_start(out) < 0) {
		snprintf(err, errlen, "cannot start the stream: %s", strerror(errno));
		goto fail;
	}
	if (fmt == STREAM_PCAP && pcap_start(out, err, errlen) < 0)
		goto fail;
	/* The header goes out now, so a reader (tcpdump -r -) starts at once. */
	if (stream_out_flush(out) < 0) {
		snprintf(err, errlen, "cannot write the stream: %s", strerror(errno));
		goto fail;
	}
	out->appended = out->out = 0;	/* the header is no record */
	out->started = 1;
	return out;
fail:
	stream_out_close(out);
	return NULL;
}

/* Build the SLL2 header (what a divert socket's sockaddr carried) into hdr. */
static void
sll2_header(uint8_t *hdr, const struct pkt *p)
{
	uint16_t hatype = p->a.hatype ? p->a.hatype : p->a.halen == 6 ? ARPHRD_ETHER : ARPHRD_NONE;
	uint16_t proto = htons(p->a.proto ? p->a.proto : pkt_ip_proto(p->data, p->len));
	uint32_t ifindex = htonl(p->a.ifindex);
	uint8_t pkttype = p->a.dir == DIVERT_OUT ? SLL_OUTGOING :
	    p->a.dir == DIVERT_IN ? p->pkttype : SLL_HOST;

	if (p->a.dir == DIVERT_IN && pkttype == SLL_OUTGOING)
		pkttype = SLL_HOST;
	hatype = htons(hatype);
	memset(hdr, 0, SLL2_HDRLEN);
	memcpy(hdr, &proto, 2);
	memcpy(hdr + 4, &ifindex, 4);
	memcpy(hdr + 8, &hatype, 2);
	hdr[10] = pkttype;
	hdr[11] = p->a.halen;
	memcpy(hdr + 12, p->a.haddr, p->a.halen > 8 ? 8 : p->a.halen);
}

int
pkt_make_sll2(struct pkt *p, uint8_t *buf, size_t size)
{
	if (SLL2_HDRLEN + p->len > size)
		return errno = EMSGSIZE, -1;
	memmove(buf + SLL2_HDRLEN, p->data, p->len);
	sll2_header(buf, p);
	p->rec = buf;
	p->dlt = DLT_SLL2;
	p->l2len = SLL2_HDRLEN;
	p->data = buf + SLL2_HDRLEN;
	return 0;
}

/* Bytes of link header a record of type dlt gets when built from metadata; -1 if none can be. */
static int
built_hdrlen(int dlt)
{
	switch (dlt) {
	case DLT_SLL2:
		return SLL2_HDRLEN;
	case DLT_RAW: case DLT_IPV4: case DLT_IPV6:
		return 0;
	default:
		return -1;
	}
}

/*
 * Wait until fd may take more (POLLOUT), or nap ms when with_fd is 0: a
 * pipe with some room but less than the next record needs (poll cannot say
 * how much).  No stop signal is missed (poll_unless_stopped).  -1 with
 * errno EINTR on a stop.
 */
static int
wait_writable(struct stream_out *out, int with_fd, int ms, int ignore_stop)
{
	struct pollfd pfd = { .fd = out->fd, .events = POLLOUT };
	int rc;

	rc = poll_unless_stopped(with_fd ? &pfd : NULL, with_fd ? 1 : 0, ms, ignore_stop);
	if (rc < 0 && errno != EINTR)
		return -1;
	if (stop_signalled && !ignore_stop)
		return errno = EINTR, -1;
	return 0;
}

/* Bytes from buf + sent that end on a record boundary and fit: room bytes, or free pages. */
static size_t
whole_records(const struct stream_out *out, size_t room, size_t free_pages)
{
	size_t i, len, n = 0;

	for (i = 0; i < out->nrec; i++) {
		len = out->ends[i] - out->sent;
		if (out->is_pipe ? pipe_pages_for(out, len) > free_pages : len > room)
			break;
		n = len;
	}
	return n;
}

/* O_NONBLOCK on a pipe that does not take RWF_NOWAIT (one opened by name). */
static void
set_nonblock(struct stream_out *out)
{
	int flags;

	out->nowait = 0;
	if ((flags = fcntl(out->fd, F_GETFL)) >= 0 && !(flags & O_NONBLOCK)) {
		fcntl(out->fd, F_SETFL, flags | O_NONBLOCK);
		out->set_nonblock = 1;
	}
}

static ssize_t
write_some(struct stream_out *out, const uint8_t *p, size_t n)
{
	struct iovec iov = { (void *)p, n };
	ssize_t w;

	if (out->nowait) {
		if ((w = pwritev2(out->fd, &iov, 1, -1, RWF_NOWAIT)) >= 0 ||
		    errno != EOPNOTSUPP)
			return w;
		set_nonblock(out);
	}
	return write(out->fd, p, n);
}

/* Account n bytes written: records completed, pipe pages, buffer space. */
static void
wrote(struct stream_out *out, size_t n)
{
	size_t i, done;

	out->sent += n;
	out->total += n;
	if (out->is_pipe)
		pipe_wrote(out, n);
	for (done = 0; done < out->nrec && out->ends[done] <= out->sent; done++)
		;
	out->torn = done == 0 || out->ends[done - 1] != out->sent;
	out->out += done;
	memmove(out->ends, out->ends + done, (out->nrec - done) * sizeof(*out->ends));
	out->nrec -= done;
	if (out->sent == out->len || out->sent >= STREAM_BUF) {
		/* Keep what is left at the start of buf. */
		memmove(out->buf, out->buf + out->sent, out->len - out->sent);
		for (i = 0; i < out->nrec; i++)
			out->ends[i] -= out->sent;
		out->len -= out->sent;
		out->sent = 0;
	}
}

/*
 * How much to write now: whole records that fit, or the rest of a torn one.
 * *full: the pipe had no room at all (wait for POLLOUT, not a nap).
 */
static size_t
next_write(struct stream_out *out, int *full)
{
	size_t first = out->ends[0] - out->sent, freep = 0, room = SIZE_MAX, n;

	if (out->is_pipe) {
		/*
		 * The pages not known to be read may still leave room for all
		 * there is: then no need to ask how much the reader took.
		 */
		freep = out->npages < out->slots ? out->slots - out->npages : 0;
		if (out->foreign || pipe_pages_for(out, out->len - out->sent) > freep)
			freep = pipe_free_pages(out);
		room = freep * out->page;	/* at least this much, in fresh pages */
	}
	*full = out->is_pipe && freep == 0;
	if (out->torn)
		return first < room ? first : room;
	if ((n = whole_records(out, room, freep)) > 0)
		return n;
	/* A record larger than the whole pipe can only go in pieces. */
	if (out->is_pipe && first > out->slots * out->page)
		return room;
	return 0;
}

/*
 * How long a wait for the reader may last: a pipe's nap, no limit for
 * others; less if the wait hook says so.
 */
static int
wait_ms(struct stream_out *out, int nap)
{
	int ms = out->is_pipe ? nap : -1, most;

	if (out->wait_fn == NULL || (most = out->wait_fn(out->wait_arg)) < 0)
		return ms;
	return ms < 0 || most < ms ? most : ms;
}

void
stream_out_set_wait_hook(struct stream_out *out, int (*fn)(void *), void *arg)
{
	out->wait_fn = fn;
	out->wait_arg = arg;
}

/*
 * Write buffered records, whole ones only, waiting for the reader as long
 * as no stop signal came.  After a stop, only what the output takes at once
 * goes; a record already begun (possible only where a write can be cut
 * short: sockets, a record larger than the pipe) is finished with a little
 * patience, so the stream ends on a record boundary.  0 when everything went
 * out; -1 with errno (EPIPE: reader gone; EAGAIN: stopped, records left).
 */
static int
push(struct stream_out *out)
{
	int nap = 1, patience = TORN_WAIT_MS, full, with_fd, polled_full = 0;
	ssize_t w;
	size_t n;

	if (drain_stdio(out) < 0)
		return -1;
	while (out->sent < out->len) {
		n = next_write(out, &full);
		/*
		 * A pipe the model calls full waits for POLLOUT; if POLLOUT came
		 * and the model still says full (another writer's bytes, a model
		 * that counts more than the kernel holds), nap instead of spinning.
		 */
		with_fd = !out->is_pipe || (full && !polled_full);
		polled_full = full && with_fd;
		if (n > 0) {
			w = write_some(out, out->buf + out->sent, n);
			if (w > 0) {
				wrote(out, (size_t)w);
				nap = 1;
				polled_full = 0;
				continue;
			}
			if (w == 0)
				return errno = EIO, -1;
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -1;
			with_fd = 1;
		}
		if (stop_signalled && !out->torn)
			return errno = EAGAIN, -1;
		if (stop_signalled) {
			/* Finishing a begun record: a little patience, then give up. */
			if ((patience -= nap) < 0)
				return errno = EAGAIN, -1;
			if (wait_writable(out, with_fd, nap, 1) < 0)
				return -1;
		} else if (wait_writable(out, with_fd, wait_ms(out, nap), 0) < 0 &&
		    errno != EINTR)
			return -1;
		if (nap < NAP_MAX_MS)
			nap *= 2;
	}
	return 0;
}

/*
 * pcapng: the record formatted straight into buf, its interface's
 * description first when new.  Everything that may fail is done before
 * the first byte goes in, so a record that fails is not taken.
 */
static int
pcapng_write(struct stream_out *out, const struct pkt *p)
{
	uint8_t sll2[SLL2_HDRLEN];
	const uint8_t *hdr = sll2;
	size_t l2len;
	long id;

	if (p->rec != NULL && p->dlt == out->dlt) {
		hdr = p->rec;		/* the record's own header, byte for byte */
		l2len = p->l2len;
	} else {
		if (built_hdrlen(out->dlt) < 0)
			return errno = EPROTOTYPE, -1;
		l2len = (size_t)built_hdrlen(out->dlt);
		if (l2len == SLL2_HDRLEN)
			sll2_header(sll2, p);
	}
	if (l2len + p->len > SLL2_HDRLEN + STREAM_SNAPLEN)
		return errno = EMSGSIZE, -1;
	/* A full buffer goes out first: a record that fails is not taken. */
	if (out->len - out->sent >= FLUSH_AT && push(out) < 0)
		return -1;
	if (out->err != 0)
		return errno = out->err, -1;
	if (buf_reserve(out, PCAPNG_IDB_MAX + PCAPNG_EPB_EXTRA + l2len + p->len) < 0 ||
	    ends_reserve(out) < 0 || (id = iface_id(out, &p->a)) < 0)
		return -1;
	out->len += pcapng_put_epb(out->buf + out->len, (uint32_t)id, &p->a, hdr, l2len,
	    p->data, p->len);
	out->ends[out->nrec++] = out->len;
	out->appended++;
	return 0;
}

int
stream_out_write(struct stream_out *out, const struct pkt *p)
{
	struct pcap_pkthdr h = { .ts = p->a.ts };
	const uint8_t *rec = out->rec;
	size_t l2len;

	if (out->format == STREAM_PCAPNG)
		return pcapng_write(out, p);
	if (p->rec != NULL && p->dlt == out->dlt) {
		/* Same link type: the record's own header, byte for byte. */
		l2len = p->l2len;
		if (p->data == p->rec + l2len)
			rec = p->rec;
		else if (l2len + p->len <= sizeof(out->rec))
			memcpy(out->rec, p->rec, l2len);
		else
			return errno = EMSGSIZE, -1;
	} else {
		if (built_hdrlen(out->dlt) < 0)
			return errno = EPROTOTYPE, -1;
		l2len = (size_t)built_hdrlen(out->dlt);
		if (l2len + p->len > sizeof(out->rec))
			return errno = EMSGSIZE, -1;
		if (l2len == SLL2_HDRLEN)
			sll2_header(out->rec, p);
	}
	if (rec == out->rec)
		memcpy(out->rec + l2len, p->data, p->len);
	/* A full buffer goes out first: a record that fails is not taken. */
	if (out->len + out->pending - out->sent >= FLUSH_AT && push(out) < 0)
		return -1;
	if (out->err != 0)
		return errno = out->err, -1;
	h.caplen = (bpf_u_int32)(l2len + p->len);
	h.len = (bpf_u_int32)(h.caplen + p->a.cut);
	out->pending += PCAP_RECHDR_LEN + h.caplen;	/* before: stdio may flush within */
	pcap_dump((u_char *)out->dump, &h, rec);
	if (out->err == 0 && add_record_end(out) < 0)
		out->err = ENOMEM;
	if (out->err != 0)
		return errno = out->err, -1;	/* out of memory: the stream is lost */
	out->appended++;
	return 0;
}

int
stream_out_flush(struct stream_out *out)
{
	return push(out);
}

uint64_t
stream_out_records_out(const struct stream_out *out)
{
	return out->out;
}

uint64_t
stream_out_discard(struct stream_out *out)
{
	uint64_t n;

	(void)drain_stdio(out);
	n = out->nrec - (out->torn ? 1 : 0);
	/* A torn record stays: its rest may still go, and it is counted out then. */
	out->nrec = out->torn ? 1 : 0;
	out->len = out->torn ? out->ends[0] : out->sent;
	out->appended -= n;
	iface_forget(out, out->appended);
	return n;
}

/*
 * libpcap (tcpdump, tshark) refuses a pcapng stream that describes no
 * interface, where an empty classic one is just empty: a stream that
 * ends without one gets one (the link type, nothing else), so an empty
 * stream reads as empty everywhere.
 */
static void
describe_one_iface(struct stream_out *out)
{
	if (out->format != STREAM_PCAPNG || !out->started || out->nifs > 0 || out->err != 0 ||
	    buf_reserve(out, PCAPNG_IDB_MAX) < 0 || ends_reserve(out) < 0)
		return;
	out->len += pcapng_put_idb(out->buf + out->len, out->dlt, NULL, 0);
	out->ends[out->nrec++] = out->len;
}

int
stream_out_close(struct stream_out *out)
{
	int rc, saved, flags;

	if (out == NULL)
		return 0;
	describe_one_iface(out);
	rc = push(out);
	saved = errno;
	stream_out_discard(out);
	if (out->dump != NULL)
		pcap_dump_close(out->dump);	/* closes the cookie FILE: nothing to write */
	else if (out->fp != NULL)
		fclose(out->fp);
	if (out->pcap != NULL)
		pcap_close(out->pcap);
	if (out->set_nonblock && (flags = fcntl(out->fd, F_GETFL)) >= 0)
		fcntl(out->fd, F_SETFL, flags & ~O_NONBLOCK);
	if (out->close_fd && close(out->fd) < 0 && rc == 0)
		rc = -1, saved = errno;
	free(out->pages);
	free(out->ends);
	free(out->buf);
	free(out->ifs);
	free(out->ifhash);
	free(out);
	errno = saved;
	return rc;
}

int
stream_out_finish(struct stream_out *out, int err, const char *what)
{
	if (stream_out_close(out) < 0 && err == 0)
		err = errno;
	if (err == 0 || reader_gone(err) || what == NULL)
		return 0;
	errno = err;
	warn("writing %s", what);
	return EX_RUNTIME;
}
