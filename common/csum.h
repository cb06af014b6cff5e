/*
 * csum.h - Internet checksums: full sums (RFC 1071) and incremental updates
 * (RFC 1624).  Sums are over big-endian 16-bit words and values are in host
 * order: store a result with htons(), or read a field with ntohs() first.
 */
#ifndef DIVERT_CSUM_H
#define DIVERT_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* Add len bytes at data to a running sum (an odd last byte is zero-padded). */
uint32_t csum_add(uint32_t sum, const void *data, size_t len);

/* Fold a running sum to 16 bits and complement it: the checksum field's value. */
uint16_t csum_fold(uint32_t sum);

/* Checksum of len bytes at data (e.g. an IPv4 header with its field zeroed). */
uint16_t csum(const void *data, size_t len);

/* Running sum of the IPv4 / IPv6 pseudo-header for an L4 segment of len bytes. */
uint32_t csum_pseudo4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto, uint32_t len);
uint32_t csum_pseudo6(const uint8_t src[16], const uint8_t dst[16], uint8_t proto, uint32_t len);

/* RFC 1624 eqn. 3: checksum after a 16-bit word changed from old to new. */
uint16_t csum_update16(uint16_t check, uint16_t old, uint16_t new);

/* The same for len bytes (even) changing from old to new, e.g. an address. */
uint16_t csum_update(uint16_t check, const void *old, const void *new, size_t len);

#endif
