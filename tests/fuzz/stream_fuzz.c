/*
 * stream_fuzz - libFuzzer harness for the stream reader (common/stream.c).
 *
 * Input: byte 0 with bit 7 clear: the rest is the whole file (pcap or
 * pcapng, as libpcap reads them).  With bit 7 set, a valid pcap file header
 * is put before the rest: bits 0-3 of byte 0 pick the link type (every one
 * the reader supports, and one it does not), byte 1 the variant (bit 0
 * other byte order, bit 1 nanosecond magic, bits 2-3 the snapshot length).
 *
 * The file is an in-memory one (memfd) opened by path, as divert-* open
 * -r FILE.  Every record read must lie within the reader's buffer, its data
 * right after its link header; it is written back out (its own link type
 * in pcapng, SLL2 in classic pcap and in pcapng) to /dev/null, which
 * builds headers, interfaces and options from what was parsed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "stream.h"

/* Where every byte handed over is read, so ASan checks it is there. */
static volatile uint8_t sink;

static const uint32_t linktypes[] = {
	276,			/* LINUX_SLL2 */
	113,			/* LINUX_SLL */
	1,			/* ETHERNET */
	0,			/* NULL */
	108,			/* LOOP */
	101,			/* RAW */
	228,			/* IPV4 */
	229,			/* IPV6 */
	105,			/* IEEE802_11: not supported */
};
static const uint32_t snaplens[4] = { 262144, 65535, 64, 0 };

static void
put32le(uint8_t *b, uint32_t v, int swap)
{
	if (swap)
		b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16),
		b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
	else
		b[3] = (uint8_t)(v >> 24), b[2] = (uint8_t)(v >> 16),
		b[1] = (uint8_t)(v >> 8), b[0] = (uint8_t)v;
}

static void
put16le(uint8_t *b, uint16_t v, int swap)
{
	b[swap ? 0 : 1] = (uint8_t)(v >> 8);
	b[swap ? 1 : 0] = (uint8_t)v;
}

/* The 24-byte pcap file header for variant v and link type lt. */
static void
file_header(uint8_t *h, uint8_t v, uint32_t lt)
{
	int swap = v & 1;

	memset(h, 0, 24);
	put32le(h, v & 2 ? 0xa1b23c4d : 0xa1b2c3d4, swap);
	put16le(h + 4, 2, swap);
	put16le(h + 6, 4, swap);
	put32le(h + 16, snaplens[(v >> 2) & 3], swap);
	put32le(h + 20, lt, swap);
}

static void
check_record(struct stream_in *in, const struct pkt *p)
{
	size_t i;

	if (p->data != p->rec + p->l2len || p->l2len + p->len > STREAM_SNAPLEN + 256 ||
	    stream_in_room(in, p) < p->len)
		abort();
	for (i = 0; i < p->l2len + p->len; i++)
		sink ^= p->rec[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char path[64], err[512];
	struct stream_out *o1, *o2, *o3;
	struct stream_in *in;
	struct pkt p;
	uint8_t h[24];
	size_t skip = 1;
	int rc = 0, n;

	if (size < 2)
		return 0;
	if (fd < 0 && (fd = memfd_create("stream_fuzz", 0)) < 0)
		abort();
	if (ftruncate(fd, 0) < 0)
		abort();
	if (data[0] & 0x80) {
		file_header(h, data[1],
		    linktypes[(data[0] & 0x0f) % (sizeof(linktypes) / sizeof(linktypes[0]))]);
		if (pwrite(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
			abort();
		skip = 2;
	}
	if (pwrite(fd, data + skip, size - skip, data[0] & 0x80 ? 24 : 0) !=
	    (ssize_t)(size - skip))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((in = stream_in_open(path, err, sizeof(err))) == NULL)
		return 0;
	o1 = stream_out_open("/dev/null", stream_in_linktype(in), STREAM_PCAPNG, err, sizeof(err));
	o2 = stream_out_open("/dev/null", DLT_SLL2, STREAM_PCAP, err, sizeof(err));
	o3 = stream_out_open("/dev/null", DLT_SLL2, STREAM_PCAPNG, err, sizeof(err));
	for (n = 0; n < 100000 && (rc = stream_in_read(in, &p)) == 1; n++) {
		check_record(in, &p);
		if (o1 != NULL)
			stream_out_write(o1, &p);
		if (o2 != NULL)
			stream_out_write(o2, &p);
		if (o3 != NULL)
			stream_out_write(o3, &p);
	}
	if (rc < 0 && strlen(stream_in_error(in)) == 0)
		abort();
	stream_out_close(o1);
	stream_out_close(o2);
	stream_out_close(o3);
	stream_in_close(in);
	return 0;
}
