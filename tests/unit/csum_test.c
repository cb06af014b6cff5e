/* csum_test - full and incremental checksums agree, on known and random data. */
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "tap.h"

int
main(void)
{
	/* RFC 1071 §3's example words sum to 0xddf2; the checksum is its complement. */
	static const uint8_t rfc[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	/* A real IPv4 header (checksum 0xb861 from its example in many texts). */
	uint8_t ip[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	uint8_t buf[64], old[16];
	uint16_t c, inc;
	int i, bad = 0;

	ok(csum_fold(csum_add(0, rfc, 8)) == (uint16_t)~0xddf2, "RFC 1071 example sum");
	ok(csum(ip, 20) == 0xb861, "IPv4 header checksum 0xb861");
	ip[10] = 0xb8, ip[11] = 0x61;
	ok(csum(ip, 20) == 0, "a header with its checksum sums to zero");
	ok(csum_fold(csum_add(0, "\x01", 1)) == (uint16_t)~0x0100, "odd length pads with zero");

	srand(1);
	for (i = 0; i < 10000; i++) {
		int off = (rand() % 24) * 2, n = 2 + (rand() % 8) * 2;
		int k;

		for (k = 0; k < (int)sizeof(buf); k++)
			buf[k] = (uint8_t)rand();
		buf[0] = buf[1] = 0;
		c = csum(buf, sizeof(buf));
		buf[0] = (uint8_t)(c >> 8), buf[1] = (uint8_t)c;
		memcpy(old, buf + off + 2, (size_t)n);
		for (k = 0; k < n; k++)
			buf[off + 2 + k] = (uint8_t)rand();
		inc = csum_update(c, old, buf + off + 2, (size_t)n);
		buf[0] = buf[1] = 0;
		if (csum_fold(csum_add(0, buf, sizeof(buf))) != inc &&
		    !(inc == 0xffff && csum(buf, sizeof(buf)) == 0)) {
			bad++;
		}
	}
	ok(bad == 0, "10000 random incremental updates match a full recompute (%d off)", bad);
	c = csum_update16(0xb861, 0x4011, 0x0511);	/* TTL 64 -> 5 */
	ip[8] = 5, ip[10] = 0, ip[11] = 0;
	ok(c == csum(ip, 20), "TTL change: incremental equals recompute");
	return tap_done();
}
