/* stream_test - the stream layer reads every link type and writes SLL2 faithfully. */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "tool.h"

#include "stream.h"
#include "tap.h"

static const uint8_t ip4[28] = {	/* IPv4 + UDP 10.0.0.1 -> 10.0.0.2, no payload */
	0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
	0x30, 0x39, 0, 53, 0, 8, 0, 0 };
static const uint8_t ip6[40] = { 0x60, 0, 0, 0, 0, 0, 59, 64,
	0xfd, 0x77, [23] = 1, 0xfd, 0x77, [39] = 2 };

static char path[] = "/tmp/stream_test.XXXXXX";

/* Write one capture of link type dlt holding the given records. */
static void
write_capture(int dlt, const uint8_t *const *recs, const size_t *lens, int n)
{
	pcap_t *p = pcap_open_dead(dlt, STREAM_SNAPLEN);
	pcap_dumper_t *d = pcap_dump_open(p, path);
	struct pcap_pkthdr h = { .ts = { 1, 2 } };
	int i;

	for (i = 0; i < n; i++) {
		h.caplen = h.len = (bpf_u_int32)lens[i];
		pcap_dump((u_char *)d, &h, recs[i]);
	}
	pcap_dump_close(d);
	pcap_close(p);
}

static struct stream_in *
open_capture(void)
{
	char err[256];
	struct stream_in *in = stream_in_open(path, err, sizeof(err));

	if (in == NULL)
		printf("# %s\n", err);
	return in;
}

/* One record with a link header hdr (hlen bytes) before the IPv4 packet. */
static int
read_one(int dlt, const uint8_t *hdr, size_t hlen, struct pkt *p, struct stream_in **inp)
{
	static uint8_t rec[256];
	const uint8_t *recs[1] = { rec };
	size_t lens[1] = { hlen + sizeof(ip4) };

	if (hlen > 0)
		memcpy(rec, hdr, hlen);
	memcpy(rec + hlen, ip4, sizeof(ip4));
	write_capture(dlt, recs, lens, 1);
	if ((*inp = open_capture()) == NULL)
		return -1;
	return stream_in_read(*inp, p);
}

static void
test_link_types(void)
{
	static const uint8_t sll2[20] = { 0x08, 0x00, 0, 0, 0, 0, 0, 7, 0, 1, 4, 0 };
	static const uint8_t sll[16] = { 0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00 };
	static const uint8_t eth[22] = { 1, 2, 3, 4, 5, 6, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf,
		0x81, 0x00, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x00 };
	static const uint8_t null[4] = { 2, 0, 0, 0 };
	struct stream_in *in;
	struct pkt p;

	ok(read_one(DLT_SLL2, sll2, 20, &p, &in) == 1 && p.a.dir == DIVERT_OUT &&
	    p.a.ifindex == 7 && p.a.proto == ETH_P_IP && p.len == sizeof(ip4) &&
	    memcmp(p.data, ip4, sizeof(ip4)) == 0, "SLL2: direction, ifindex, protocol, data");
	ok(stream_in_read(in, &p) == 0, "SLL2: clean end of stream");
	stream_in_close(in);

	ok(read_one(DLT_LINUX_SLL, sll, 16, &p, &in) == 1 && p.a.dir == DIVERT_IN &&
	    p.a.halen == 6 && p.a.haddr[5] == 6 && p.a.proto == ETH_P_IP && p.l2len == 16,
	    "SLL: inbound with source MAC");
	stream_in_close(in);

	ok(read_one(DLT_EN10MB, eth, 22, &p, &in) == 1 && p.a.dir == DIVERT_DIR_UNKNOWN &&
	    p.l2len == 22 && p.a.proto == ETH_P_IP && memcmp(p.data, ip4, 20) == 0,
	    "EN10MB: two VLAN tags skipped");
	stream_in_close(in);

	ok(read_one(DLT_NULL, null, 4, &p, &in) == 1 && p.a.proto == ETH_P_IP && p.l2len == 4,
	    "NULL: IPv4 after the family word");
	stream_in_close(in);

	ok(read_one(DLT_RAW, NULL, 0, &p, &in) == 1 && p.a.proto == ETH_P_IP && p.l2len == 0 &&
	    p.a.dir == DIVERT_DIR_UNKNOWN, "RAW: IPv4, no direction");
	stream_in_close(in);

	ok(read_one(DLT_IPV4, NULL, 0, &p, &in) == 1 && p.a.proto == ETH_P_IP, "IPV4 link type");
	stream_in_close(in);

	{
		const uint8_t *recs[2] = { sll2, sll2 };
		size_t lens[2] = { 12, 20 };

		write_capture(DLT_SLL2, recs, lens, 2);
		in = open_capture();
		ok(stream_in_read(in, &p) == 1 && p.a.proto == 0 && p.len == 0 &&
		    p.l2len == 12, "SLL2 record shorter than its header: whole, unparseable");
		ok(stream_in_read(in, &p) == 1 && p.a.proto == ETH_P_IP && p.len == 0,
		    "the stream goes on after it");
		stream_in_close(in);
	}
}

/* Records written to SLL2 from metadata read back with the same metadata. */
static void
test_write_sll2(void)
{
	char err[256];
	struct stream_out *out = stream_out_open(path, DLT_SLL2, STREAM_PCAP, err, sizeof(err));
	struct stream_in *in;
	struct pkt p = { .a.dir = DIVERT_IN, .a.ifindex = 42, .a.halen = 6,
		.a.haddr = { 2, 0, 0, 0, 0, 9 }, .data = (uint8_t *)ip6, .len = sizeof(ip6) };
	struct pkt q;

	ok(out != NULL, "open an SLL2 output");
	ok(stream_out_write(out, &p) == 0, "write an inbound IPv6 record");
	p.a.dir = DIVERT_OUT, p.a.ifindex = 3, p.a.halen = 0, p.data = (uint8_t *)ip4, p.len = sizeof(ip4);
	ok(stream_out_write(out, &p) == 0, "write an outbound IPv4 record");
	ok(stream_out_close(out) == 0, "close the output");

	in = open_capture();
	ok(in != NULL && stream_in_linktype(in) == DLT_SLL2, "read it back as SLL2");
	ok(stream_in_read(in, &q) == 1 && q.a.dir == DIVERT_IN && q.a.ifindex == 42 &&
	    q.a.proto == ETH_P_IPV6 && q.pkttype == SLL_HOST && q.a.halen == 6 &&
	    q.a.haddr[5] == 9 && q.len == sizeof(ip6), "inbound record's metadata survives");
	ok(stream_in_read(in, &q) == 1 && q.a.dir == DIVERT_OUT && q.a.ifindex == 3 &&
	    q.a.proto == ETH_P_IP && q.pkttype == SLL_OUTGOING &&
	    memcmp(q.data, ip4, sizeof(ip4)) == 0, "outbound record's metadata survives");
	stream_in_close(in);
}

/* Keeping the link type copies each record's own header byte for byte. */
static void
test_keep_linktype(void)
{
	static const uint8_t eth[14] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 8, 0 };
	uint8_t rec[14 + sizeof(ip4)], back[sizeof(rec)];
	const uint8_t *recs[1] = { rec };
	size_t lens[1] = { sizeof(rec) };
	char err[256], path2[] = "/tmp/stream_test2.XXXXXX";
	struct stream_in *in;
	struct stream_out *out;
	struct pkt p;
	FILE *fp;

	memcpy(rec, eth, 14);
	memcpy(rec + 14, ip4, sizeof(ip4));
	write_capture(DLT_EN10MB, recs, lens, 1);
	close(mkstemp(path2));
	in = open_capture();
	out = stream_out_open(path2, stream_in_linktype(in), STREAM_PCAP, err, sizeof(err));
	ok(stream_in_read(in, &p) == 1 && stream_out_write(out, &p) == 0 &&
	    stream_out_close(out) == 0, "copy an Ethernet record through");
	stream_in_close(in);
	fp = fopen(path2, "rb");
	ok(fp != NULL && fseek(fp, 24 + 16, SEEK_SET) == 0 &&
	    fread(back, 1, sizeof(back), fp) == sizeof(back) &&
	    memcmp(back, rec, sizeof(rec)) == 0, "the record is byte-identical");
	if (fp)
		fclose(fp);
	unlink(path2);
}

/* A stream cut in the middle of a record ends with an error, not a crash. */
static void
test_broken(void)
{
	const uint8_t *recs[2] = { ip4, ip4 };
	size_t lens[2] = { sizeof(ip4), sizeof(ip4) };
	struct stream_in *in;
	struct pkt p;
	char err[256];

	write_capture(DLT_RAW, recs, lens, 2);
	truncate(path, 24 + 16 + 28 + 16 + 10);
	in = open_capture();
	ok(in != NULL && stream_in_read(in, &p) == 1, "first record before the damage is read");
	ok(stream_in_read(in, &p) == -1 && strlen(stream_in_error(in)) > 0,
	    "truncated record: error (%s)", in ? stream_in_error(in) : "");
	stream_in_close(in);

	truncate(path, 10);
	ok(stream_in_open(path, err, sizeof(err)) == NULL && strstr(err, "pcap") != NULL,
	    "a short file is not a stream (%s)", err);
}

/* Read everything left in fd (a pipe whose writers are closed) after the first got bytes. */
static size_t
drain_pipe(int fd, uint8_t *buf, size_t got, size_t size)
{
	ssize_t n;

	while (got < size && (n = read(fd, buf + got, size - got)) > 0)
		got += (size_t)n;
	return got;
}

/* Records in a pcap image of len bytes; -1 when it ends inside one or is broken. */
static long
count_records(uint8_t *img, size_t len)
{
	char ebuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *d;
	FILE *fp = fmemopen(img, len, "rb");
	pcap_t *pc = fp ? pcap_fopen_offline(fp, ebuf) : NULL;
	long n = 0;
	int rc;

	if (pc == NULL)
		return -1;
	while ((rc = pcap_next_ex(pc, &h, &d)) == 1)
		n++;
	pcap_close(pc);
	return rc == PCAP_ERROR_BREAK ? n : -1;
}

/*
 * A stop signal with the pipe's reader stalled: the writer gives the pipe
 * what it takes at once, whole records only, whatever their sizes and
 * however much of the pipe was already read.  The reader then finds
 * exactly stream_out_records_out records and no broken one.
 */
static void
test_stop_on_record_boundary(void)
{
	static uint8_t data[65000], img[8 << 20];
	char err[256], dev[64];
	struct pkt p = { .a.dir = DIVERT_OUT, .data = data };
	struct stream_out *out;
	int round, fds[2], wrote_all, broken = 0, short_count = 0, uncut = 0;
	size_t got;
	long n;
	uint64_t taken;

	srand(9);
	memcpy(data, ip4, sizeof(ip4));
	for (round = 0; round < 24; round++) {
		if (pipe2(fds, O_CLOEXEC) < 0)
			break;
		snprintf(dev, sizeof(dev), "/dev/fd/%d", fds[1]);
		out = stream_out_open(dev, DLT_SLL2, STREAM_PCAP, err, sizeof(err));
		close(fds[1]);
		if (out == NULL) {
			printf("# %s\n", err);
			break;
		}
		/* Some rounds read part of the pipe first: a head page half read. */
		got = 0;
		stop_signalled = 1;	/* from here on, only what the pipe takes at once */
		taken = 0;
		for (wrote_all = 1; wrote_all; ) {
			/* Sizes from tiny to larger than a page, mixed. */
			p.len = round % 3 == 0 ? 28 + (size_t)rand() % 200 :
			    28 + (size_t)rand() % (sizeof(data) - 28);
			if (stream_out_write(out, &p) < 0)
				wrote_all = 0;
			else
				taken++;
			if (round % 2 && got == 0 && taken == 50) {
				stream_out_flush(out);
				got = (size_t)read(fds[0], img, 10001);
			}
		}
		if (stream_out_flush(out) == 0)
			uncut++;
		n = (long)stream_out_records_out(out);
		stream_out_close(out);
		got = drain_pipe(fds[0], img, got, sizeof(img));
		close(fds[0]);
		if (count_records(img, got) < 0)
			broken++;
		else if (count_records(img, got) != n || n == 0 || (uint64_t)n >= taken)
			short_count++;
	}
	stop_signalled = 0;
	ok(round == 24, "24 pipes set up");
	ok(broken == 0, "a stopped writer never leaves half a record in the pipe (%d broken)",
	    broken);
	ok(short_count == 0 && uncut == 0,
	    "the reader gets exactly the records counted out, some but not all");
}

int
main(void)
{
	close(mkstemp(path));
	test_link_types();
	test_write_sll2();
	test_keep_linktype();
	test_broken();
	test_stop_on_record_boundary();
	unlink(path);
	return tap_done();
}
