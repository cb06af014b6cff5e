/*
 * l4sum.h - the checksum of an upper-layer (L4) header recomputed over its
 * whole segment: TCP, UDP, UDP-Lite, ICMP, IGMP, ICMPv6 (Internet sums) and
 * SCTP (CRC32c).  Shared by divert-mangle's edits and by libdivert, which
 * completes the checksums the kernel left partial in GSO packets.
 */
#ifndef DIVERT_L4SUM_H
#define DIVERT_L4SUM_H

#include <stddef.h>
#include <stdint.h>

#include "ipwalk.h"

/* Offset of the checksum field in an L4 header of proto; -1 where we sum none. */
int l4sum_off(uint8_t proto);

/* Whether proto's checksum covers a pseudo-header (all but ICMP and IGMP). */
int l4sum_has_pseudo(uint8_t proto);

/* Whether the walk found all of a segment whose Internet checksum can be summed. */
int l4sum_can(const struct ipwalk *in);

/* The same for SCTP, whose CRC has no pseudo-header. */
int l4sum_can_sctp(const struct ipwalk *in);

/* Recompute the L4 checksum of ip over its whole segment (l4sum_can holds). */
void l4sum_recompute(uint8_t *ip, const struct ipwalk *in);

/*
 * Fill in the L4 checksum of a whole packet of len bytes whose field holds
 * a partial sum (the kernel's CHECKSUM_PARTIAL): 0, or -1 when the packet
 * is no complete TCP, UDP, UDP-Lite, ICMPv6 or SCTP segment to sum.
 */
int l4sum_complete(uint8_t *ip, size_t len);

/*
 * What the checksum field of a GSO UDP packet (UDP_SEGMENT) must hold when
 * it goes back to the kernel, which cuts it into datagrams and sums each:
 * the pseudo-header's partial sum, uncomplemented.  Its offset in *off and
 * value in *seed; -1 when ip is no whole UDP packet.
 */
int l4sum_udp_seed(const uint8_t *ip, size_t len, size_t *off, uint16_t *seed);

/* CRC32c (Castagnoli) as SCTP uses it: the value for the checksum field. */
uint32_t sctp_crc32c(const uint8_t *data, size_t len);

/*
 * What changing the first 4 bytes of an SCTP packet of len bytes from old to
 * new does to its CRC32c: XOR it into the stored value.  CRC32c is linear
 * over GF(2), so a CRC that was wrong stays wrong by the same error.
 */
uint32_t sctp_crc32c_delta(const uint8_t old[4], const uint8_t new[4], size_t len);

/* The stored CRC32c (least significant byte first), read and written as a number. */
uint32_t sctp_crc_get(const uint8_t *p);
void sctp_crc_put(uint8_t *p, uint32_t crc);

#endif
