/* mangle_test - divert-mangle's option parsing, header edits and checksums (edit.h). */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "csum.h"
#include "edit.h"
#include "ipwalk.h"
#include "l4sum.h"
#include "tap.h"

/* A TCP SYN over IPv4 with MSS at an odd offset (NOP first), checksums right. */
static size_t
tcp4(uint8_t *b, int odd_mss)
{
	static const uint8_t h[] = {
		0x45, 0x00, 0x00, 0x30, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0, 0,
		10, 0, 0, 1, 10, 0, 0, 5,
		0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x70, 0x02, 0x20, 0x00, 0, 0, 0, 0,
		0x01, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x00 };	/* NOP, MSS 1460, NOP NOP EOL */
	memcpy(b, h, sizeof(h));
	if (!odd_mss)
		memcpy(b + 40, "\x02\x04\x05\xb4\x01\x01\x01\x00", 8);
	put16(b + 10, csum(b, 20));
	put16(b + 36, csum_fold(csum_pseudo4(b + 12, b + 16, 6, 28) + csum_add(0, b + 20, 28)));
	return sizeof(h);
}

static size_t
udp6(uint8_t *b, uint16_t check_override, int use_override)
{
	static const uint8_t h[] = {
		0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x11, 0x40,
		0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,
		0x13, 0x88, 0x00, 0x35, 0x00, 0x0c, 0, 0, 'a', 'b', 'c', 'd' };
	memcpy(b, h, sizeof(h));
	put16(b + 46, csum_fold(csum_pseudo6(b + 8, b + 24, 17, 12) + csum_add(0, b + 40, 12)));
	if (use_override)
		put16(b + 46, check_override);
	return sizeof(h);
}

/* Is the TCP/UDP checksum of a whole (unfragmented) packet right? */
static int
l4_ok(const uint8_t *ip, size_t len)
{
	struct ipwalk w;
	uint32_t sum, n;

	if (ipwalk(ip, len, 0, IPW_L4, &w) < 0 || w.l4off == 0 || w.frag)
		return 0;
	n = (uint32_t)(w.iplen - w.l4off);
	sum = w.version == 4 ? csum_pseudo4(ip + 12, ip + 16, w.proto, n) :
	    csum_pseudo6(ip + 8, ip + 24, w.proto, n);
	return csum_fold(csum_add(sum, ip + w.l4off, n)) == 0;
}

/* What e makes of the source address src (4 bytes) of an IPv4 TCP SYN. */
static void
map_src4(struct edits *e, uint8_t *src)
{
	uint8_t b[64];
	size_t n = tcp4(b, 0);

	memcpy(b + 12, src, 4);
	mangle(e, b, n, 0, NULL);
	memcpy(src, b + 12, 4);
}

/* The TTL e gives an IPv4 TCP SYN that had ttl. */
static int
ttl_after(const struct edits *e, uint8_t ttl)
{
	uint8_t b[64];
	size_t n = tcp4(b, 0);

	b[8] = ttl;
	mangle(e, b, n, 0, NULL);
	return b[8];
}

int
main(void)
{
	struct edits e;
	struct addr_map maps[EDIT_MAX_MAPS];
	struct port_map ports[EDIT_MAX_MAPS];
	uint8_t b[2048], a[16];
	size_t n;
	int k, i;

	/* Option values. */
	edits_init(&e);
	ok(edits_parse_ttl(&e, "5") == 0 && e.ttl_mode == TTL_SET && e.ttl == 5, "--ttl 5");
	ok(edits_parse_ttl(&e, "+3") == 0 && e.ttl_mode == TTL_ADD, "--ttl +3");
	ok(edits_parse_ttl(&e, "0") < 0 && edits_parse_ttl(&e, "256") < 0 &&
	    edits_parse_ttl(&e, "+256") < 0 && edits_parse_ttl(&e, "x") < 0, "bad --ttl refused");
	k = 0;
	ok(edits_add_addr_map(maps, &k, "10.0.0.0/24:10.9.0.0/24") == 0 && !maps[0].v6 &&
	    maps[0].from_len == 24, "IPv4 map");
	ok(edits_add_addr_map(maps, &k, "2001:db8::/32:fd00::/16") == 0 && maps[1].v6 &&
	    maps[1].from_len == 32 && maps[1].to_len == 16, "IPv6 map without brackets");
	ok(edits_add_addr_map(maps, &k, "[2001:db8::/32]:[fd00::/16]") == 0, "IPv6 map in brackets");
	ok(edits_add_addr_map(maps, &k, "10.0.0.1:10.0.0.2") == 0 && maps[3].from_len == 32,
	    "host map without lengths");
	ok(edits_add_addr_map(maps, &k, "10.0.0.0/24:fd00::/16") < 0 &&
	    edits_add_addr_map(maps, &k, "10.0.0.0/33:10.0.0.0/8") < 0 &&
	    edits_add_addr_map(maps, &k, "10.0.0.0/24") < 0 &&
	    edits_add_addr_map(maps, &k, "") < 0, "bad maps refused");
	k = 0;
	ok(edits_add_port_map(ports, &k, "1-100:49148") == 0 && ports[0].lo == 1 &&
	    ports[0].hi == 100 && ports[0].to == 49148, "port range map");
	ok(edits_add_port_map(ports, &k, "100-1:5") < 0 && edits_add_port_map(ports, &k, "80") < 0 &&
	    edits_add_port_map(ports, &k, "80:65536") < 0, "bad port maps refused");

	/* CIDR map keeps the host bits under the new prefix; first match wins. */
	edits_init(&e);
	edits_add_addr_map(e.src, &e.nsrc, "96.17.211.0/24:172.16.0.0/16");
	edits_add_addr_map(e.src, &e.nsrc, "96.0.0.0/8:1.0.0.0/8");
	edits_ready(&e);
	memcpy(a, "\x60\x11\xd3\x2a", 4);
	map_src4(&e, a);
	ok(memcmp(a, "\xac\x10\xd3\x2a", 4) == 0, "96.17.211.42 -> 172.16.211.42 (host bits of /16)");
	memcpy(a, "\x60\x01\x02\x03", 4);
	map_src4(&e, a);
	ok(memcmp(a, "\x01\x01\x02\x03", 4) == 0, "second map for what the first misses");

	/* TTL saturates at 1..255. */
	edits_init(&e);
	edits_parse_ttl(&e, "+58");
	edits_ready(&e);
	ok(ttl_after(&e, 250) == 255 && ttl_after(&e, 1) == 59, "+58 saturates at 255");
	edits_parse_ttl(&e, "-58");
	ok(ttl_after(&e, 10) == 1 && ttl_after(&e, 0) == 1 && ttl_after(&e, 64) == 6,
	    "-58 saturates at 1");

	/* IPv4 TCP: every edit at once; all checksums right afterwards, incrementally. */
	for (k = 0; k < 2; k++) {
		edits_init(&e);
		edits_parse_ttl(&e, "-3");
		e.tos = 0x10, e.ecn = 1, e.df = 0, e.ipid = 7, e.mss = 1200;
		edits_add_addr_map(e.src, &e.nsrc, "10.0.0.0/24:192.168.9.0/24");
		edits_add_addr_map(e.dst, &e.ndst, "10.0.0.5/32:10.1.2.3/32");
		edits_add_port_map(e.sport, &e.nsport, "40000:1234");
		edits_add_port_map(e.dport, &e.ndport, "80:8080");
		edits_ready(&e);
		n = tcp4(b, k);
		ok(mangle(&e, b, n, 0, NULL) == MANGLE_EDITED, "TCP/IPv4 edited (MSS at %s offset)",
		    k ? "an odd" : "an even");
		ok(csum(b, 20) == 0, "IPv4 header checksum right");
		ok(l4_ok(b, n), "TCP checksum right");
		ok(b[8] == 61 && b[1] == 0x11 && b[6] == 0 && get16(b + 4) == 7,
		    "TTL 61, TOS 0x11, DF clear, ID 7");
		ok(memcmp(b + 12, "\xc0\xa8\x09\x01\x0a\x01\x02\x03", 8) == 0, "addresses mapped");
		ok(get16(b + 20) == 1234 && get16(b + 22) == 8080, "ports mapped");
		ok(get16(b + 40 + 2 + k) == 1200, "MSS clamped to 1200");
	}

	/* Incremental keeps a wrong checksum wrong by the same amount (like a NAT). */
	edits_init(&e);
	edits_add_addr_map(e.dst, &e.ndst, "10.0.0.0/8:11.0.0.0/8");
	edits_ready(&e);
	n = tcp4(b, 0);
	b[37] ^= 0x55;
	mangle(&e, b, n, 0, NULL);
	ok(!l4_ok(b, n), "a wrong TCP checksum stays wrong without --fix-checksums");
	e.fix_checksums = 1;
	edits_ready(&e);
	mangle(&e, b, n, 0, NULL);
	ok(l4_ok(b, n) && csum(b, 20) == 0, "--fix-checksums repairs it");

	/* UDP over IPv6: address map, checksum 0 is computed, 0xffff never becomes 0. */
	edits_init(&e);
	edits_add_addr_map(e.dst, &e.ndst, "fd00::/64:fd09::/64");
	edits_add_port_map(e.dport, &e.ndport, "53:5353");
	edits_ready(&e);
	n = udp6(b, 0, 0);
	ok(mangle(&e, b, n, 0, NULL) == MANGLE_EDITED && l4_ok(b, n) && b[24 + 1] == 0x09 &&
	    get16(b + 42) == 5353, "UDP/IPv6 dst and port mapped, checksum right");
	n = udp6(b, 0, 1);
	mangle(&e, b, n, 0, NULL);
	ok(get16(b + 46) != 0 && l4_ok(b, n), "zero UDP/IPv6 checksum replaced by a right one");

	/* Random sweep: address + port maps, the incremental checksum verifies. */
	srand(7);
	for (i = 0, k = 0; i < 2000; i++) {
		n = udp6(b, 0, 0);
		for (int j = 8; j < 40; j++)
			b[j] = (uint8_t)rand();
		b[8] = 0xfd;
		put16(b + 40, (uint16_t)rand());
		put16(b + 46, 0);
		put16(b + 46, csum_fold(csum_pseudo6(b + 8, b + 24, 17, 12) + csum_add(0, b + 40, 12)));
		if (get16(b + 46) == 0)
			put16(b + 46, 0xffff);
		edits_init(&e);
		edits_add_addr_map(e.src, &e.nsrc, "fd00::/8:2001:db8::/32");
		edits_add_port_map(e.sport, &e.nsport, "0-65535:7");
		edits_ready(&e);
		mangle(&e, b, n, 0, NULL);
		k += !l4_ok(b, n);
	}
	ok(k == 0, "2000 random UDP/IPv6 edits: incremental checksum verifies (%d off)", k);

	/* CRC32c: RFC 3720 B.4 test vector, 32 bytes of zeros. */
	memset(b, 0, 32);
	ok(sctp_crc32c(b, 32) == 0x8a9136aa, "CRC32c of 32 zero bytes is 0x8a9136aa");

	/* SCTP INIT built by scapy (CRC fd64e031); sport 3868 -> 2905: scapy says 677eb81c. */
	{
		static const uint8_t sctp[] = { 0x45, 0x00, 0x00, 0x34, 0x00, 0x01, 0x00, 0x00,
			0x40, 0x84, 0x66, 0x40, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x05,
			0x0f, 0x1c, 0x0f, 0x1c, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x64, 0xe0, 0x31,
			0x01, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
			0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01 };

		memcpy(b, sctp, sizeof(sctp));
		edits_init(&e);
		edits_add_port_map(e.sport, &e.nsport, "3868:2905");
		edits_ready(&e);
		ok(mangle(&e, b, sizeof(sctp), 0, NULL) == MANGLE_EDITED && get16(b + 20) == 2905 &&
		    memcmp(b + 28, "\x67\x7e\xb8\x1c", 4) == 0, "SCTP port mapped, CRC32c as scapy's");
	}

	/* CRC32c is linear: a port change's delta, from the length alone, is a recompute's. */
	for (i = k = 0; i < 500; i++) {
		uint8_t old[4];
		uint32_t before, after;

		n = 12 + (size_t)(rand() % 1500);
		for (size_t j = 0; j < n; j++)
			b[j] = (uint8_t)rand();
		memset(b + 8, 0, 4);
		before = sctp_crc32c(b, n);
		memcpy(old, b, 4);
		put16(b, (uint16_t)rand());
		put16(b + 2, (uint16_t)rand());
		after = sctp_crc32c(b, n);
		k += (before ^ sctp_crc32c_delta(old, b, n)) != after;
	}
	ok(k == 0, "500 random SCTP port changes: CRC32c delta = recompute (%d off)", k);

	/* The SCTP INIT again: a wrong CRC stays wrong by its error; cut short still right. */
	{
		static const uint8_t sctp[] = { 0x45, 0x00, 0x00, 0x34, 0x00, 0x01, 0x00, 0x00,
			0x40, 0x84, 0x66, 0x40, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x05,
			0x0f, 0x1c, 0x0f, 0x1c, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x64, 0xe0, 0x31,
			0x01, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
			0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01 };
		int skipped;

		edits_init(&e);
		edits_add_port_map(e.sport, &e.nsport, "3868:2905");
		edits_ready(&e);
		memcpy(b, sctp, sizeof(sctp));
		b[28] ^= 0x5a;
		ok(mangle(&e, b, sizeof(sctp), 0, NULL) == MANGLE_EDITED &&
		    memcmp(b + 28, "\x3d\x7e\xb8\x1c", 4) == 0, "wrong SCTP CRC: still wrong by 0x5a");
		memcpy(b, sctp, sizeof(sctp));
		ok(mangle(&e, b, 40, sizeof(sctp) - 40, NULL) == MANGLE_EDITED &&
		    memcmp(b + 28, "\x67\x7e\xb8\x1c", 4) == 0, "SCTP cut by the snapshot: CRC right");
		e.fix_checksums = 1;
		memcpy(b, sctp, sizeof(sctp));
		b[28] ^= 0x5a;
		ok(mangle(&e, b, sizeof(sctp), 0, NULL) == MANGLE_EDITED &&
		    memcmp(b + 28, "\x67\x7e\xb8\x1c", 4) == 0, "--fix-checksums repairs it");
		e.fix_checksums = 0;
		memcpy(b, sctp, sizeof(sctp));
		b[6] = 0x20;			/* MF: a first fragment */
		put16(b + 10, 0);
		put16(b + 10, csum(b, 20));
		memcpy(a, b, 12);
		ok(mangle(&e, b, sizeof(sctp), 0, &skipped) == MANGLE_SAME && skipped == 1 &&
		    memcmp(b, a, 12) == 0 && memcmp(b + 20, sctp + 20, 32) == 0,
		    "SCTP first fragment: ports kept, skip reported");
	}

	/* Prefix lengths in hex. */
	k = 0;
	ok(edits_add_addr_map(maps, &k, "10.0.0.0/0x18:10.1.0.0/0X10") == 0 &&
	    maps[0].from_len == 24 && maps[0].to_len == 16, "IPv4 map, hex lengths");
	ok(edits_add_addr_map(maps, &k, "[fd00::]/0x40:[fd01::]/64") == 0 &&
	    maps[1].from_len == 64, "IPv6 map, [A]/0x40");
	ok(edits_add_addr_map(maps, &k, "fd00::/0x40:fd01::/0x40") == 0 &&
	    maps[2].to_len == 64, "IPv6 map without brackets, hex lengths");
	ok(edits_add_addr_map(maps, &k, "10.0.0.0/0x:10.1.0.0/16") < 0 &&
	    edits_add_addr_map(maps, &k, "10.0.0.0/0x21:10.1.0.0/16") < 0, "0x, 0x21: refused");

	/* Bad packets: refused, never read past the end. */
	edits_init(&e);
	e.fix_checksums = 1;
	edits_parse_ttl(&e, "5");
	edits_ready(&e);
	n = tcp4(b, 0);
	b[0] = 0x4f;
	ok(mangle(&e, b, 28, 0, NULL) == MANGLE_BAD, "IHL 15 on a 28-byte packet: unparseable");
	ok(mangle(&e, b, 19, 0, NULL) == MANGLE_BAD, "19 bytes: unparseable");
	n = tcp4(b, 0);
	put16(b + 2, 12);
	ok(mangle(&e, b, n, 0, NULL) == MANGLE_BAD, "total length below the header: unparseable");
	n = tcp4(b, 0);
	ok(mangle(&e, b, 30, 18, NULL) == MANGLE_EDITED && csum(b, 20) == 0,
	    "cut TCP header: IP edited, L4 left alone");
	n = udp6(b, 0, 0);
	b[6] = 0;			/* hop-by-hop header claiming 8 * 201 bytes */
	b[41] = 200;
	ok(mangle(&e, b, n, 0, NULL) == MANGLE_EDITED && b[7] == 5, "runaway IPv6 extension chain: "
	    "hop limit edited, L4 not searched");
	for (i = 0; i < 20000; i++) {	/* fuzz: random bytes, random lengths */
		n = (size_t)(rand() % 120);
		for (k = 0; k < (int)n; k++)
			b[k] = (uint8_t)rand();
		b[0] = (uint8_t)((rand() & 1 ? 0x40 : 0x60) | (b[0] & 0x0f));
		mangle(&e, b, n, (size_t)(rand() % 3), NULL);
	}
	ok(1, "20000 random packets survived (run under ASan)");
	return tap_done();
}
