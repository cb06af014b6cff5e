/* csum.c - RFC 1071 sums and RFC 1624 incremental updates. */
#include <string.h>

#include "csum.h"

uint32_t
csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t s = sum;

	for (; len >= 2; p += 2, len -= 2)
		s += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		s += (uint32_t)(p[0] << 8);
	while (s >> 32)
		s = (s & 0xffffffff) + (s >> 32);
	return (uint32_t)s;
}

uint16_t
csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t
csum(const void *data, size_t len)
{
	return csum_fold(csum_add(0, data, len));
}

uint32_t
csum_pseudo4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto, uint32_t len)
{
	uint32_t sum = csum_add(0, src, 4);

	sum = csum_add(sum, dst, 4);
	return sum + proto + (len >> 16) + (len & 0xffff);
}

uint32_t
csum_pseudo6(const uint8_t src[16], const uint8_t dst[16], uint8_t proto, uint32_t len)
{
	uint32_t sum = csum_add(0, src, 16);

	sum = csum_add(sum, dst, 16);
	return sum + proto + (len >> 16) + (len & 0xffff);
}

uint16_t
csum_update16(uint16_t check, uint16_t old, uint16_t new)
{
	/* HC' = ~(~HC + ~m + m'): never yields 0x0000 from a valid sum (RFC 1624 §3). */
	uint32_t sum = (uint16_t)~check + (uint16_t)~old + new;

	return csum_fold(sum);
}

/* ~old + new for the 16-bit words of one 4-byte chunk. */
static uint32_t
chunk_delta(const uint8_t *o, const uint8_t *n, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		sum += (uint16_t)~(o[i] << 8 | o[i + 1]);
		sum += (uint32_t)(n[i] << 8 | n[i + 1]);
	}
	return sum;
}

uint16_t
csum_update(uint16_t check, const void *old, const void *new, size_t len)
{
	const uint8_t *o = old, *n = new;
	uint32_t sum = (uint16_t)~check, a, b;
	size_t i;

	/* Unchanged words add ~m + m = -0: skip them, four bytes at a time. */
	for (i = 0; i < len; i += 4) {
		size_t k = len - i < 4 ? len - i : 4;

		if (k == 4) {
			memcpy(&a, o + i, 4);
			memcpy(&b, n + i, 4);
			if (a == b)
				continue;
		}
		sum += chunk_delta(o + i, n + i, k);
	}
	return csum_fold(sum);
}
