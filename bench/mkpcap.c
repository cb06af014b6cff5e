/*
 * mkpcap - write large test captures for the offline benchmarks.
 *   mkpcap packets N FILE     N IPv4 UDP/TCP packets (LINKTYPE_RAW), valid checksums
 *   mkpcap fragments N FILE   N IPv4 fragments: 1480-byte UDP datagrams in 8 pieces
 *   mkpcap shuffled N FILE    N IPv4 datagrams of 65535 bytes, each in 8190 fragments
 *                             of 8 bytes (the last 3), all N * 8190 interleaved in a
 *                             random order (the FragmentSmack shape)
 */
#include <arpa/inet.h>
#include <err.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"

static void
ipv4_header(uint8_t *ip, size_t len, uint8_t proto, uint16_t id, uint16_t frag, uint32_t n)
{
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(len >> 8), ip[3] = (uint8_t)len;
	ip[4] = (uint8_t)(id >> 8), ip[5] = (uint8_t)id;
	ip[6] = (uint8_t)(frag >> 8), ip[7] = (uint8_t)frag;
	ip[8] = 64, ip[9] = proto;
	ip[12] = 10, ip[13] = 1, ip[14] = (uint8_t)(n >> 8), ip[15] = (uint8_t)n;
	ip[16] = 10, ip[17] = 2, ip[18] = 0, ip[19] = 1;
	uint16_t c = csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
}

/* An L4 segment's checksum over the pseudo-header, stored at off. */
static void
l4_checksum(uint8_t *ip, size_t len, size_t off)
{
	uint16_t c = csum_fold(csum_add(csum_pseudo4(ip + 12, ip + 16, ip[9],
	    (uint32_t)(len - 20)), ip + 20, len - 20));

	ip[20 + off] = (uint8_t)(c >> 8), ip[21 + off] = (uint8_t)c;
}

static void
packets(pcap_dumper_t *d, unsigned long n)
{
	struct pcap_pkthdr h = { .ts = { 1700000000, 0 } };
	uint8_t ip[120];
	unsigned long i;

	for (i = 0; i < n; i++) {
		int tcp = i % 2;
		size_t len = tcp ? 20 + 20 + 40 : 20 + 8 + 36;

		ipv4_header(ip, len, tcp ? 6 : 17, (uint16_t)i, 0x4000, (uint32_t)i);
		memset(ip + 20, 0, len - 20);
		ip[20] = (uint8_t)(i >> 8), ip[21] = (uint8_t)i, ip[22] = 0x13, ip[23] = 0x88;
		if (tcp) {
			ip[32] = 0x50, ip[33] = 0x18, ip[34] = 0xff;
			l4_checksum(ip, len, 16);
		} else {
			ip[24] = 0, ip[25] = (uint8_t)(len - 20);
			l4_checksum(ip, len, 6);
		}
		h.ts.tv_usec = (suseconds_t)(i % 1000000);
		h.caplen = h.len = (bpf_u_int32)len;
		pcap_dump((u_char *)d, &h, ip);
	}
}

static void
fragments(pcap_dumper_t *d, unsigned long n)
{
	struct pcap_pkthdr h = { .ts = { 1700000000, 0 } };
	static uint8_t dgram[1500], frag[200];
	const size_t body = 1480, piece = 192;	/* 8 pieces, offsets in 8-byte units */
	unsigned long i = 0, id = 0;
	size_t off;

	while (i < n) {
		ipv4_header(dgram, 20 + body, 17, (uint16_t)id, 0, (uint32_t)id);
		memset(dgram + 20, (int)id, body);
		dgram[24] = (uint8_t)(body >> 8), dgram[25] = (uint8_t)body, dgram[26] = dgram[27] = 0;
		l4_checksum(dgram, 20 + body, 6);
		for (off = 0; off < body && i < n; off += piece, i++) {
			size_t len = off + piece < body ? piece : body - off;
			uint16_t fo = (uint16_t)(off / 8) | (off + len < body ? 0x2000 : 0);

			ipv4_header(frag, 20 + len, 17, (uint16_t)id, fo, (uint32_t)id);
			memcpy(frag + 20, dgram + 20 + off, len);
			h.caplen = h.len = (bpf_u_int32)(20 + len);
			pcap_dump((u_char *)d, &h, frag);
		}
		id++;
	}
}

/* xorshift32: the same shuffle on every run */
static uint32_t
next_random(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
shuffled(pcap_dumper_t *d, unsigned long n)
{
	enum { BODY = 65535 - 20, PIECES = (BODY + 7) / 8 };	/* 8190 */
	struct pcap_pkthdr h = { .ts = { 1700000000, 0 } };
	static uint8_t dgram[20 + BODY], frag[28];
	uint8_t *bodies;
	uint32_t *order, seed = 0x9e3779b9, t;
	unsigned long total = n * PIECES, i, j, id, k;

	if ((bodies = malloc(n * BODY)) == NULL || (order = malloc(total * 4)) == NULL)
		err(1, "malloc");
	for (id = 0; id < n; id++) {
		ipv4_header(dgram, 20 + BODY, 17, (uint16_t)id, 0, (uint32_t)id);
		for (i = 8; i < BODY; i++)
			dgram[20 + i] = (uint8_t)(i * 7 + id);
		memset(dgram + 20, 0, 8);
		dgram[24] = (uint8_t)(BODY >> 8), dgram[25] = (uint8_t)BODY;
		l4_checksum(dgram, 20 + BODY, 6);
		memcpy(bodies + id * BODY, dgram + 20, BODY);
	}
	for (i = 0; i < total; i++)
		order[i] = (uint32_t)i;
	for (i = total - 1; i > 0; i--) {	/* Fisher-Yates */
		j = next_random(&seed) % (i + 1);
		t = order[i], order[i] = order[j], order[j] = t;
	}
	for (i = 0; i < total; i++) {
		id = order[i] / PIECES, k = order[i] % PIECES;
		size_t off = k * 8, len = off + 8 < BODY ? 8 : BODY - off;
		uint16_t fo = (uint16_t)(off / 8) | (off + len < BODY ? 0x2000 : 0);

		ipv4_header(frag, 20 + len, 17, (uint16_t)id, fo, (uint32_t)id);
		memcpy(frag + 20, bodies + id * BODY + off, len);
		h.ts.tv_usec = (suseconds_t)(i % 1000000);
		h.caplen = h.len = (bpf_u_int32)(20 + len);
		pcap_dump((u_char *)d, &h, frag);
	}
	free(order);
	free(bodies);
}

int
main(int argc, char **argv)
{
	pcap_t *p;
	pcap_dumper_t *d;

	if (argc != 4)
		errx(64, "usage: mkpcap packets|fragments|shuffled N FILE");
	p = pcap_open_dead(DLT_RAW, 65535);
	if ((d = pcap_dump_open(p, argv[3])) == NULL)
		errx(1, "%s", pcap_geterr(p));
	if (strcmp(argv[1], "packets") == 0)
		packets(d, strtoul(argv[2], NULL, 10));
	else if (strcmp(argv[1], "fragments") == 0)
		fragments(d, strtoul(argv[2], NULL, 10));
	else if (strcmp(argv[1], "shuffled") == 0)
		shuffled(d, strtoul(argv[2], NULL, 10));
	else
		errx(64, "usage: mkpcap packets|fragments|shuffled N FILE");
	pcap_dump_close(d);
	pcap_close(p);
	return 0;
}
