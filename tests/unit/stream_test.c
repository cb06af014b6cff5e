/*
 * stream_test - the stream layer reads every link type and both formats,
 * writes SLL2 faithfully, and carries the divert address through pcapng.
 */
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

/* ---- pcapng ------------------------------------------------------------ */

/* A pcapng image built by hand, in the host's byte order or the other one. */
struct img {
	uint8_t		b[16384];
	size_t		len, blk;
	int		swap;
};

static void
img_u16(struct img *m, uint16_t v)
{
	v = m->swap ? __builtin_bswap16(v) : v;
	memcpy(m->b + m->len, &v, 2);
	m->len += 2;
}

static void
img_u32(struct img *m, uint32_t v)
{
	v = m->swap ? __builtin_bswap32(v) : v;
	memcpy(m->b + m->len, &v, 4);
	m->len += 4;
}

static void
img_u64(struct img *m, uint64_t v)
{
	v = m->swap ? __builtin_bswap64(v) : v;
	memcpy(m->b + m->len, &v, 8);
	m->len += 8;
}

static void
img_bytes(struct img *m, const void *v, size_t n)
{
	memcpy(m->b + m->len, v, n);
	m->len += n;
	while (m->len % 4)
		m->b[m->len++] = 0;
}

static void
blk_begin(struct img *m, uint32_t type)
{
	m->blk = m->len;
	img_u32(m, type);
	img_u32(m, 0);
}

static void
blk_end(struct img *m)
{
	uint32_t len = (uint32_t)(m->len - m->blk + 4);
	size_t at = m->len;

	img_u32(m, len);
	m->len = m->blk + 4;
	img_u32(m, len);
	m->len = at + 4;
}

static void
opt_bytes(struct img *m, uint16_t code, const void *v, uint16_t n)
{
	img_u16(m, code);
	img_u16(m, n);
	img_bytes(m, v, n);
}

static void
opt_u32(struct img *m, uint16_t code, uint32_t v)
{
	img_u16(m, code);
	img_u16(m, 4);
	img_u32(m, v);
}

static void
opt_u64(struct img *m, uint16_t code, uint64_t v)
{
	img_u16(m, code);
	img_u16(m, 8);
	img_u64(m, v);
}

static void
opt_end(struct img *m)
{
	img_u32(m, 0);
}

static void
shb(struct img *m, int swap)
{
	m->swap = swap;
	blk_begin(m, 0x0A0D0D0A);
	img_u32(m, 0x1A2B3C4D);
	img_u16(m, 1);
	img_u16(m, 0);
	img_u64(m, UINT64_MAX);
	blk_end(m);
}

/* An IDB: link type, name (NULL: none), ifindex TLV (0: none), if_tsresol (0: none). */
static void
idb(struct img *m, uint16_t dlt, const char *name, uint32_t ifindex, uint8_t tsresol)
{
	uint8_t c[16];
	uint32_t pen = m->swap ? __builtin_bswap32(32473) : 32473;
	uint32_t v = m->swap ? __builtin_bswap32(ifindex) : ifindex;

	blk_begin(m, 1);
	img_u16(m, dlt);
	img_u16(m, 0);
	img_u32(m, 0);
	if (name != NULL)
		opt_bytes(m, 2, name, (uint16_t)strlen(name));
	if (tsresol != 0)
		opt_bytes(m, 9, &tsresol, 1);
	opt_u32(m, 99, 12345);			/* an option nobody knows */
	if (ifindex != 0) {
		memcpy(c, &pen, 4);
		c[4] = 77, c[5] = 2, c[6] = 1, c[7] = 2;	/* an unknown TLV first */
		c[8] = 8, c[9] = 4;
		memcpy(c + 10, &v, 4);
		opt_bytes(m, 2989, c, 14);
	}
	opt_end(m);
	blk_end(m);
}

/* An EPB's head (interface, time, lengths, data); options follow, then blk_end. */
static void
epb_head(struct img *m, uint32_t ifid, uint64_t ts, const void *data, uint32_t caplen,
    uint32_t origlen)
{
	blk_begin(m, 6);
	img_u32(m, ifid);
	img_u32(m, (uint32_t)(ts >> 32));
	img_u32(m, (uint32_t)ts);
	img_u32(m, caplen);
	img_u32(m, origlen);
	img_bytes(m, data, caplen);
}

static void
img_save(const struct img *m, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	if (fd < 0 || write(fd, m->b, len) != (ssize_t)len)
		printf("# cannot write %s\n", path);
	if (fd >= 0)
		close(fd);
}

/* Blocks of type t in the pcapng file at path (host order, as ours are). */
static int
count_blocks(const char *file, uint32_t t)
{
	static uint8_t b[1 << 16];
	FILE *fp = fopen(file, "rb");
	size_t n = fp ? fread(b, 1, sizeof(b), fp) : 0, o = 0;
	uint32_t type, len;
	int count = 0;

	if (fp)
		fclose(fp);
	while (o + 8 <= n) {
		memcpy(&type, b + o, 4);
		memcpy(&len, b + o + 4, 4);
		if (len < 12 || o + len > n)
			return -1;
		count += type == t;
		o += len;
	}
	return o == n ? count : -1;
}

/* The whole divert address survives pcapng: written, read back. */
static void
test_pcapng_roundtrip(void)
{
	char err[256], ebuf[PCAP_ERRBUF_SIZE];
	struct stream_out *out = stream_out_open(path, DLT_SLL2, STREAM_PCAPNG, err, sizeof(err));
	struct pkt p = { .a = { .ts = { 1700000000, 123456 }, .dir = DIVERT_OUT,
		.hook = DIVERT_HOOK_FORWARD, .port = 4321, .id = 99, .ifindex = 7,
		.other_ifindex = 3, .mark = 0x42, .cut = 5, .ifname = "eth7",
		.other_ifname = "eth3", .holder = 0x1122334455667788ull, .uid = 1000,
		.gid = 100, .flags = DIVERT_ADDR_QUEUE | DIVERT_ADDR_UID | DIVERT_ADDR_GID |
		DIVERT_ADDR_GSO },
		.data = (uint8_t *)ip4, .len = sizeof(ip4) };
	struct pkt q;
	struct stream_in *in;
	pcap_t *pc;
	int n = 0;
	struct pcap_pkthdr *h;
	const u_char *d;

	ok(out != NULL, "open a pcapng output");
	ok(stream_out_write(out, &p) == 0, "a forwarded record with every field");
	q = (struct pkt){ .a = { .dir = DIVERT_IN, .hook = DIVERT_HOOK_UNKNOWN, .ifindex = 3,
		.ifname = "eth3", .halen = 6, .haddr = { 2, 0, 0, 0, 0, 9 } },
		.data = (uint8_t *)ip6, .len = sizeof(ip6) };
	ok(stream_out_write(out, &q) == 0, "an inbound record without a port");
	p.a.id = 100;
	ok(stream_out_write(out, &p) == 0, "a third on the first one's interface");
	p.a.ifname[0] = '\0';
	ok(stream_out_write(out, &p) == 0, "one on the same index without a name");
	ok(stream_out_close(out) == 0, "close it");
	ok(count_blocks(path, 1) == 3 && count_blocks(path, 6) == 4,
	    "one interface block per (index, name): 3 for 4 records");

	in = open_capture();
	ok(in != NULL && stream_in_format(in) == STREAM_PCAPNG &&
	    stream_in_linktype(in) == DLT_SLL2, "read back as pcapng, SLL2");
	if (in == NULL)
		return;
	ok(stream_in_read(in, &q) == 1 && q.a.ts.tv_sec == 1700000000 &&
	    q.a.ts.tv_usec == 123456 && q.a.dir == DIVERT_OUT && q.a.cut == 5 &&
	    q.len == sizeof(ip4) && memcmp(q.data, ip4, sizeof(ip4)) == 0 &&
	    q.a.proto == ETH_P_IP && q.dlt == DLT_SLL2 && q.pkttype == SLL_OUTGOING,
	    "record 1: time, direction, cut, packet, link header");
	ok(q.a.ifindex == 7 && strcmp(q.a.ifname, "eth7") == 0 && q.a.port == 4321 &&
	    q.a.id == 99 && q.a.hook == DIVERT_HOOK_FORWARD && q.a.mark == 0x42 &&
	    q.a.other_ifindex == 3 && strcmp(q.a.other_ifname, "eth3") == 0 &&
	    q.a.holder == 0x1122334455667788ull && q.a.uid == 1000 && q.a.gid == 100 &&
	    q.a.flags == (DIVERT_ADDR_QUEUE | DIVERT_ADDR_UID | DIVERT_ADDR_GID | DIVERT_ADDR_GSO),
	    "record 1: interface, port, id, hook, mark, other interface, holder, uid, gid, GSO");
	ok(stream_in_room(in, &q) == sizeof(ip4), "room: the packet's bytes");
	ok(stream_in_read(in, &q) == 1 && q.a.dir == DIVERT_IN && q.a.ifindex == 3 &&
	    strcmp(q.a.ifname, "eth3") == 0 && q.a.flags == 0 && q.a.port == 0 &&
	    q.a.hook == DIVERT_HOOK_UNKNOWN && q.a.mark == 0 && q.a.halen == 6 &&
	    q.a.haddr[5] == 9 && q.a.proto == ETH_P_IPV6 && q.a.holder == 0,
	    "record 2: inbound, no port, hook unknown, source MAC");
	ok(stream_in_read(in, &q) == 1 && q.a.id == 100 && strcmp(q.a.ifname, "eth7") == 0,
	    "record 3: its interface named again by id");
	ok(stream_in_read(in, &q) == 1 && q.a.ifindex == 7 && q.a.ifname[0] == '\0',
	    "record 4: an interface without a name");
	ok(stream_in_read(in, &q) == 0, "clean end");
	stream_in_close(in);

	pc = pcap_open_offline(path, ebuf);
	while (pc != NULL && pcap_next_ex(pc, &h, &d) == 1)
		n++;
	ok(pc != NULL && n == 4 && pcap_datalink(pc) == DLT_SLL2,
	    "libpcap reads the same file: 4 SLL2 records");
	if (pc != NULL)
		pcap_close(pc);
}

/* RAW: the file says LINKTYPE_RAW (101), libpcap and we read DLT_RAW (12). */
static void
raw_linktype(void)
{
	char err[256], ebuf[PCAP_ERRBUF_SIZE];
	struct stream_out *out = stream_out_open(path, DLT_RAW, STREAM_PCAPNG, err, sizeof(err));
	struct pkt p = { .data = (uint8_t *)ip4, .len = sizeof(ip4) };
	struct stream_in *in;
	uint32_t shblen = 0;
	uint16_t lt = 0;
	pcap_t *pc;
	FILE *fp;

	ok(out != NULL && stream_out_write(out, &p) == 0 && stream_out_close(out) == 0,
	    "a RAW record in pcapng");
	if ((fp = fopen(path, "rb")) != NULL) {
		if (fseek(fp, 4, SEEK_SET) != 0 || fread(&shblen, 4, 1, fp) != 1 ||
		    fseek(fp, shblen + 8, SEEK_SET) != 0 || fread(&lt, 2, 1, fp) != 1)
			lt = 0;
		fclose(fp);
	}
	pc = pcap_open_offline(path, ebuf);
	in = open_capture();
	ok(lt == 101 && pc != NULL && pcap_datalink(pc) == DLT_RAW && in != NULL &&
	    stream_in_linktype(in) == DLT_RAW, "the IDB says LINKTYPE_RAW (%u); libpcap and "
	    "the reader say DLT_RAW", lt);
	if (pc != NULL)
		pcap_close(pc);
	stream_in_close(in);
}

/* A pcapng stream without records still describes an interface: libpcap reads it as empty. */
static void
test_pcapng_empty(void)
{
	char err[256], ebuf[PCAP_ERRBUF_SIZE];
	struct stream_out *out = stream_out_open(path, DLT_RAW, STREAM_PCAPNG, err, sizeof(err));
	struct pcap_pkthdr *h;
	const u_char *d;
	struct stream_in *in;
	struct pkt q;
	pcap_t *pc;

	ok(out != NULL && stream_out_close(out) == 0, "an empty pcapng stream");
	pc = pcap_open_offline(path, ebuf);
	ok(pc != NULL && pcap_datalink(pc) == DLT_RAW && pcap_next_ex(pc, &h, &d) == PCAP_ERROR_BREAK,
	    "libpcap reads it: RAW, no records (%s)", pc ? "" : ebuf);
	if (pc != NULL)
		pcap_close(pc);
	in = open_capture();
	ok(in != NULL && stream_in_linktype(in) == DLT_RAW && stream_in_read(in, &q) == 0,
	    "so does ours");
	stream_in_close(in);
}

/* pcapng keeping an Ethernet input's link type: the record's bytes, as they were. */
static void
test_pcapng_keep_linktype(void)
{
	static const uint8_t eth[14] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 8, 0 };
	uint8_t rec[14 + sizeof(ip4)];
	const uint8_t *recs[1] = { rec };
	size_t lens[1] = { sizeof(rec) };
	char err[256], path2[] = "/tmp/stream_test2.XXXXXX";
	struct stream_in *in;
	struct stream_out *out;
	struct pkt p;

	memcpy(rec, eth, 14);
	memcpy(rec + 14, ip4, sizeof(ip4));
	write_capture(DLT_EN10MB, recs, lens, 1);
	close(mkstemp(path2));
	in = open_capture();
	out = stream_out_open(path2, stream_in_linktype(in), STREAM_PCAPNG, err, sizeof(err));
	ok(stream_in_read(in, &p) == 1 && p.a.hook == DIVERT_HOOK_UNKNOWN &&
	    stream_out_write(out, &p) == 0 && stream_out_close(out) == 0,
	    "copy a classic Ethernet record into pcapng");
	stream_in_close(in);
	in = stream_in_open(path2, err, sizeof(err));
	ok(in != NULL && stream_in_linktype(in) == DLT_EN10MB && stream_in_read(in, &p) == 1 &&
	    p.l2len == 14 && p.l2len + p.len == sizeof(rec) && memcmp(p.rec, rec, sizeof(rec)) == 0,
	    "read back: EN10MB, the record byte for byte");
	ok(in != NULL && p.a.flags == 0 && p.a.dir == DIVERT_DIR_UNKNOWN,
	    "no direction, no port: none was known");
	stream_in_close(in);
	unlink(path2);
	raw_linktype();
}

/*
 * A record discarded takes its interface's description along: the next
 * record on that interface describes it again, so the stream stays whole.
 */
static void
test_pcapng_discard_redescribes(void)
{
	char err[256];
	struct stream_out *out = stream_out_open(path, DLT_SLL2, STREAM_PCAPNG, err, sizeof(err));
	struct pkt p = { .a = { .dir = DIVERT_OUT, .ifindex = 4, .ifname = "x0" },
		.data = (uint8_t *)ip4, .len = sizeof(ip4) };
	struct stream_in *in;
	struct pkt q;

	ok(out != NULL && stream_out_write(out, &p) == 0 && stream_out_flush(out) == 0,
	    "a record on x0, written");
	strcpy(p.a.ifname, "y1"), p.a.ifindex = 5;
	ok(stream_out_write(out, &p) == 0 && stream_out_discard(out) == 1,
	    "one on y1, discarded before it went out");
	p.a.id = 1;
	ok(stream_out_write(out, &p) == 0 && stream_out_close(out) == 0,
	    "another on y1, written");
	ok(count_blocks(path, 1) == 2 && count_blocks(path, 6) == 2,
	    "two interfaces described, two records");
	in = open_capture();
	ok(in != NULL && stream_in_read(in, &q) == 1 && strcmp(q.a.ifname, "x0") == 0 &&
	    stream_in_read(in, &q) == 1 && strcmp(q.a.ifname, "y1") == 0 && q.a.ifindex == 5 &&
	    stream_in_read(in, &q) == 0, "read back: x0 then y1, described again");
	stream_in_close(in);
}

/*
 * Another writer's pcapng: a big-endian section (nanosecond time, unknown
 * options, blocks and TLVs, a PEN not ours), then a little-endian one whose
 * interface ids start again (with the same link type: a stream has one); an
 * SPB.
 */
static void
test_pcapng_foreign(void)
{
	static struct img m;
	uint8_t c[32];
	struct stream_in *in;
	struct pkt q;
	int big = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
	uint32_t pen;

	memset(&m, 0, sizeof(m));
	shb(&m, big);
	blk_begin(&m, 0x0BAD);			/* an unknown block */
	img_bytes(&m, "whatever", 8);
	blk_end(&m);
	idb(&m, 101, "wan0", 12, 9);		/* LINKTYPE_RAW, nanoseconds */
	epb_head(&m, 0, 1700000000123456789ull, ip4, sizeof(ip4), sizeof(ip4) + 12);
	opt_u32(&m, 2, 1);			/* inbound */
	opt_u64(&m, 5, 77);
	opt_u32(&m, 6, 5);
	pen = m.swap ? __builtin_bswap32(32473) : 32473;
	memcpy(c, &pen, 4);
	c[4] = 1, c[5] = 1, c[6] = DIVERT_HOOK_INPUT;
	c[7] = 2, c[8] = 4, c[9] = 0xde, c[10] = 0xad, c[11] = 0xbe, c[12] = 0xef;
	c[13] = 200, c[14] = 0;			/* an unknown TLV, empty */
	c[15] = 2, c[16] = 3;			/* a mark of the wrong size: skipped */
	c[17] = c[18] = c[19] = 9;
	opt_bytes(&m, 2989, c, 20);
	pen = 99;				/* another enterprise's option */
	opt_bytes(&m, 2989, &pen, 4);
	opt_u32(&m, 1234, 5);
	opt_end(&m);
	blk_end(&m);
	shb(&m, !big);
	idb(&m, 101, NULL, 0, 0);
	epb_head(&m, 0, 5000001, ip4, sizeof(ip4), sizeof(ip4));
	blk_end(&m);
	blk_begin(&m, 3);			/* SPB */
	img_u32(&m, sizeof(ip4));
	img_bytes(&m, ip4, sizeof(ip4));
	blk_end(&m);
	img_save(&m, m.len);

	in = open_capture();
	ok(in != NULL && stream_in_linktype(in) == DLT_RAW, "a big-endian section: "
	    "LINKTYPE_RAW is DLT_RAW");
	if (in == NULL)
		return;
	ok(stream_in_read(in, &q) == 1 && q.dlt == DLT_RAW && q.a.proto == ETH_P_IP &&
	    q.len == sizeof(ip4) && q.a.cut == 12 && q.a.ts.tv_sec == 1700000000 &&
	    q.a.ts.tv_usec == 123456, "its record: nanoseconds to microseconds, cut");
	ok(q.a.dir == DIVERT_IN && q.a.ifindex == 12 && strcmp(q.a.ifname, "wan0") == 0 &&
	    q.a.port == 5 && q.a.id == 77 && q.a.flags == DIVERT_ADDR_QUEUE &&
	    q.a.hook == DIVERT_HOOK_INPUT && q.a.mark == 0xdeadbeef,
	    "its options, in the section's byte order, around unknown ones (mark %#x)", q.a.mark);
	ok(stream_in_read(in, &q) == 1 && q.dlt == DLT_RAW && q.len == sizeof(ip4) &&
	    q.a.ifindex == 0 && q.a.ifname[0] == '\0' && q.a.hook == DIVERT_HOOK_UNKNOWN &&
	    q.a.ts.tv_sec == 5 && q.a.ts.tv_usec == 1, "a second, little-endian section: "
	    "its own interface 0, no options");
	ok(stream_in_read(in, &q) == 1 && q.len == sizeof(ip4) && q.a.ts.tv_sec == 0,
	    "a simple packet block");
	ok(stream_in_read(in, &q) == 0, "clean end");
	stream_in_close(in);
}

/* Read everything from path: the records before the end, and how it ended. */
static int
read_all(int *records, char *why, size_t whylen)
{
	char err[256];
	struct stream_in *in = stream_in_open(path, err, sizeof(err));
	struct pkt q;
	int rc;

	*records = 0;
	if (in == NULL) {
		snprintf(why, whylen, "%s", err);
		return -2;
	}
	while ((rc = stream_in_read(in, &q)) == 1 && *records < 1000)
		(*records)++;
	snprintf(why, whylen, "%s", stream_in_error(in));
	stream_in_close(in);
	return rc;
}

/* Broken pcapng: an error with words, never a crash or a hang. */
static void
test_pcapng_broken(void)
{
	static struct img m;
	char why[512];
	size_t good, at;
	int n, rc;

	memset(&m, 0, sizeof(m));
	shb(&m, 0);
	idb(&m, 101, "a", 1, 0);
	epb_head(&m, 0, 1, ip4, sizeof(ip4), sizeof(ip4));
	blk_end(&m);
	good = m.len;

	img_save(&m, good - 6);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 0 && strstr(why, "truncated") != NULL, "cut inside a block (%s)", why);

	img_save(&m, good - 36 - 3);	/* inside the EPB's header */
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 0, "cut inside a block header (%s)", why);

	at = m.len;
	blk_begin(&m, 6);		/* length not a multiple of 4 */
	m.len = at + 4;
	img_u32(&m, 30);
	m.len = at + 30;
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1 && strstr(why, "length") != NULL, "odd block length (%s)", why);

	m.len = at + 4;
	img_u32(&m, 8);			/* shorter than a block can be */
	img_save(&m, at + 12);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1, "block length 8 (%s)", why);

	m.len = at;
	epb_head(&m, 0, 1, ip4, sizeof(ip4), sizeof(ip4));
	blk_end(&m);
	m.b[m.len - 1] ^= 0x10;		/* the trailing length differs */
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1 && strstr(why, "differ") != NULL, "lengths differ (%s)", why);

	m.len = at;
	epb_head(&m, 5, 1, ip4, sizeof(ip4), sizeof(ip4));
	blk_end(&m);
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1 && strstr(why, "interface") != NULL,
	    "a packet on interface 5 of 1 (%s)", why);

	m.len = at;
	epb_head(&m, 0, 1, ip4, sizeof(ip4), sizeof(ip4));
	blk_end(&m);
	memcpy(m.b + at + 20, &(uint32_t){ 1000 }, 4);	/* caplen beyond the block */
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1 && strstr(why, "longer") != NULL, "caplen 1000 in a %zu-byte "
	    "block (%s)", m.len - at, why);

	m.len = at;
	blk_begin(&m, 6);
	m.len = at + 4;
	img_u32(&m, 0x7ffffff0);	/* a huge packet block */
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1 && strstr(why, "large") != NULL, "a 2 GiB packet block (%s)", why);

	m.len = at;
	blk_begin(&m, 0x1234);
	m.len = at + 4;
	img_u32(&m, 0x7ffffff0);	/* a huge block of another kind: skipped to the end */
	img_bytes(&m, ip4, sizeof(ip4));
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1 && strstr(why, "truncated") != NULL,
	    "a 2 GiB unknown block, cut short (%s)", why);

	m.len = at;
	epb_head(&m, 0, 1, ip4, sizeof(ip4), sizeof(ip4));
	img_u16(&m, 2);			/* an option running past its block */
	img_u16(&m, 200);
	blk_end(&m);
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == 0 && n == 2, "an option running past its block: ignored, the record read");

	/* One link type a stream, as libpcap has it: another interface's is an error. */
	m.len = at;
	idb(&m, DLT_SLL2, "b", 2, 0);
	epb_head(&m, 1, 1, ip4, sizeof(ip4), sizeof(ip4));
	blk_end(&m);
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1 && strstr(why, "different link types") != NULL,
	    "a second interface of another link type (%s)", why);

	m.len = at;
	shb(&m, 0);
	idb(&m, DLT_SLL2, "b", 2, 0);
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1 && strstr(why, "different link types") != NULL,
	    "a second section of another link type (%s)", why);

	m.len = at;
	shb(&m, 0);
	memcpy(m.b + at + 8, "\1\2\3\4", 4);	/* bad byte-order magic */
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -1 && n == 1 && strstr(why, "magic") != NULL, "a later section with a bad "
	    "magic (%s)", why);

	memset(&m, 0, sizeof(m));
	shb(&m, 0);
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == 0 && n == 0, "a section header alone: an empty stream");
	img_save(&m, 4);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -2 && strstr(why, "pcapng") == NULL && strlen(why) > 0,
	    "4 bytes of a section header: not a stream (%s)", why);

	epb_head(&m, 0, 1, ip4, sizeof(ip4), sizeof(ip4));
	blk_end(&m);
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -2 && strstr(why, "before any interface") != NULL,
	    "a packet before any interface (%s)", why);

	memset(&m, 0, sizeof(m));
	shb(&m, 0);
	m.b[12] = 2;			/* version 2.0 */
	img_save(&m, m.len);
	rc = read_all(&n, why, sizeof(why));
	ok(rc == -2 && strstr(why, "version") != NULL, "pcapng 2.0 (%s)", why);
}

/* Idle means no whole record buffered and none in the pipe. */
static void
test_pcapng_idle(void)
{
	char err[256], dev[64];
	struct pkt p = { .a = { .dir = DIVERT_OUT, .ifindex = 1, .ifname = "lo" },
		.data = (uint8_t *)ip4, .len = sizeof(ip4) };
	struct stream_out *out;
	struct stream_in *in;
	struct pkt q;
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return;
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fds[1]);
	out = stream_out_open(dev, DLT_SLL2, STREAM_PCAPNG, err, sizeof(err));
	stream_out_write(out, &p);
	stream_out_write(out, &p);
	stream_out_flush(out);
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fds[0]);
	in = stream_in_open(dev, err, sizeof(err));
	ok(in != NULL && stream_in_read(in, &q) == 1 && !stream_in_idle(in),
	    "a second record buffered: not idle");
	ok(in != NULL && stream_in_read(in, &q) == 1 && stream_in_idle(in),
	    "nothing more: idle");
	stream_out_write(out, &p);
	stream_out_flush(out);
	ok(in != NULL && !stream_in_idle(in) && stream_in_read(in, &q) == 1,
	    "a record in the pipe: not idle, read");
	stream_out_close(out);
	close(fds[1]);
	ok(in != NULL && stream_in_read(in, &q) == 0, "the writer gone: the end");
	stream_in_close(in);
	close(fds[0]);
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
test_stop_on_record_boundary(enum stream_format fmt)
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
		out = stream_out_open(dev, DLT_SLL2, fmt, err, sizeof(err));
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
	ok(round == 24, "%s: 24 pipes set up", fmt == STREAM_PCAP ? "pcap" : "pcapng");
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
	test_pcapng_roundtrip();
	test_pcapng_empty();
	test_pcapng_keep_linktype();
	test_pcapng_discard_redescribes();
	test_pcapng_foreign();
	test_pcapng_broken();
	test_pcapng_idle();
	test_stop_on_record_boundary(STREAM_PCAP);
	test_stop_on_record_boundary(STREAM_PCAPNG);
	unlink(path);
	return tap_done();
}
