/*
 * l4sum_test - partial checksums (the kernel's CHECKSUM_PARTIAL, left by a
 * GSO packet) completed to what scapy computes for the same packets.
 */
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "csum.h"
#include "l4sum.h"
#include "tap.h"

#define PAY	60001

static uint8_t pkt[PAY + 100];

/* Header bytes, then the payload scapy's check values were computed over. */
static size_t
build(const char *hex, size_t paylen)
{
	size_t n = strlen(hex) / 2, i;
	unsigned v;

	for (i = 0; i < n; i++) {
		sscanf(hex + 2 * i, "%2x", &v);
		pkt[i] = (uint8_t)v;
	}
	for (i = 0; i < paylen; i++)
		pkt[n + i] = (uint8_t)(i * 7 + 3);
	return n + paylen;
}

/* Put the partial sum the kernel leaves (the pseudo-header's) in the field at l4off + off. */
static void
partial(size_t len, size_t l4off, size_t off, uint8_t proto)
{
	uint32_t n = (uint32_t)(len - l4off);
	uint32_t sum = pkt[0] >> 4 == 6 ? csum_pseudo6(pkt + 8, pkt + 24, proto, n) :
	    csum_pseudo4(pkt + 12, pkt + 16, proto, n);

	put16(pkt + l4off + off, (uint16_t)~csum_fold(sum));
}

static unsigned
get(size_t off)
{
	return (unsigned)pkt[off] << 8 | pkt[off + 1];
}

int
main(void)
{
	size_t n, off = 0;
	uint16_t seed = 0;
	unsigned v;

	/* TCP over IPv4, 60,041 bytes (a GSO super-packet); scapy: 0xc0a9. */
	n = build("4500ea890001400040063bd10a4d00010a4d0002"
	    "9c401389000000010000000150100200c0a90000", PAY);
	pkt[36] = 0x12, pkt[37] = 0x34;
	ok(l4sum_complete(pkt, n) == -1 && get(36) == 0x1234,
	    "a field that is no partial sum (a tunnel's outer header) is left alone");
	partial(n, 20, 16, 6);
	ok(l4sum_complete(pkt, n) == 0 && get(36) == 0xc0a9, "TCP/IPv4 60041 bytes: 0x%04x",
	    get(36));

	/* UDP over IPv6 behind a hop-by-hop header; scapy: 0x588c. */
	n = build("6000000003f90040fd770000000000000000000000000001"
	    "fd770000000000000000000000000002"
	    "1100010400000000" "0fa0232803f10000", 1001);
	ok(l4sum_udp_seed(pkt, n, &off, &seed) == -1, "a UDP field of 0 (no checksum) gets no seed");
	partial(n, 48, 6, 17);
	ok(l4sum_complete(pkt, n) == 0 && get(54) == 0x588c, "UDP/IPv6 after hop-by-hop: 0x%04x",
	    get(54));

	/*
	 * The seed a GSO UDP packet goes back with is what the device would
	 * finish: the sum over the segment with the seed in its field is the
	 * checksum scapy computes.
	 */
	ok(l4sum_udp_seed(pkt, n, &off, &seed) == 0 && off == 54, "UDP seed at offset %zu", off);
	put16(pkt + off, seed);
	ok(csum(pkt + 48, n - 48) == 0x588c, "device-finished seed gives scapy's 0x588c: 0x%04x",
	    csum(pkt + 48, n - 48));

	/* ICMPv6 echo request; scapy: 0xd959. */
	n = build("60000000006c3a40fd770000000000000000000000000001"
	    "fd770000000000000000000000000002" "80000000" "00010002", 100);
	partial(n, 40, 2, 58);
	ok(l4sum_complete(pkt, n) == 0 && get(42) == 0xd959, "ICMPv6 echo: 0x%04x", get(42));

	/* What cannot be summed is left alone and said so. */
	n = build("4500ea890001400040063bd10a4d00010a4d0002"
	    "9c401389000000010000000150100200abcd0000", PAY);
	partial(n, 20, 16, 6);
	v = get(36);
	ok(l4sum_complete(pkt, n - 1) == -1 && get(36) == v,
	    "a segment cut short is not summed");
	pkt[6] = 0x20;				/* MF: a first fragment */
	ok(l4sum_complete(pkt, n) == -1 && get(36) == v, "a fragment is not summed");
	n = build("4500005400004000400100000a4d00010a4d0002" "08001234", 64);
	ok(l4sum_complete(pkt, n) == -1, "ICMP over IPv4 never has a partial sum");
	ok(l4sum_complete(pkt, 10) == -1, "ten bytes are no packet");
	ok(l4sum_udp_seed(pkt, n, &off, &seed) == -1, "ICMP has no UDP seed");
	return tap_done();
}
