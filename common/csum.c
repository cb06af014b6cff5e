/* csum.c - RFC 1071 sums and RFC 1624 incremental updates. */
#include <string.h>

#include <arpa/inet.h>

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

/*
 * csum_update adds the words as the machine loads them: a one's complement
 * sum is the same in either byte order, byte-swapped (RFC 1071 2.(B)), and
 * so are its zero and its all-ones.  Unchanged 4-byte chunks add ~m + m =
 * -0 and are skipped; a 2-byte tail is always added (as the word-by-word
 * sum always did).  An odd last byte is ignored: len is even.
 */
uint16_t
csum_update(uint16_t check, const void *old, const void *new, size_t len)
{
	const uint8_t *o = old, *n = new;
	uint64_t sum = (uint16_t)~htons(check);
	uint32_t a, b;
	uint16_t x, y;
	size_t i;

	for (i = 0; i + 4 <= len; i += 4) {
		memcpy(&a, o + i, 4);
		memcpy(&b, n + i, 4);
		if (a != b)
			sum += (uint64_t)(uint32_t)~a + b;
	}
	if (i + 2 <= len) {
		memcpy(&x, o + i, 2);
		memcpy(&y, n + i, 2);
		sum += (uint32_t)(uint16_t)~x + y;
	}
	/* 2^32 = 1 in this arithmetic: fold to 32 bits, never to zero from non-zero. */
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return ntohs(csum_fold((uint32_t)sum));
}
