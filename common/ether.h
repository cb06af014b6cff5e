/*
 * ether.h - the one Ethernet header skipper: the destination and source
 * addresses, any stack of VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, and the
 * older QinQ 0x9100), then the type of what follows.  Used by the stream
 * reader (Ethernet captures) and divert-mangle (Ethernet inside an MPLS
 * pseudowire).  Inline: the reader runs it on every record.
 */
#ifndef DIVERT_ETHER_H
#define DIVERT_ETHER_H

#include <stddef.h>
#include <stdint.h>

#include <linux/if_ether.h>

#include "bytes.h"

/* Whether an Ethernet type field is a VLAN tag's (4 bytes: type, then tag control). */
static inline int
ether_is_vlan(uint16_t type)
{
	return type == ETH_P_8021Q || type == ETH_P_8021AD || type == ETH_P_QINQ1;
}

/*
 * Bytes of the Ethernet header at frame (len bytes), VLAN tags included,
 * and in *type the type of what follows them; 0 when the header is cut.
 */
static inline size_t
ether_hdrlen(const uint8_t *frame, size_t len, uint16_t *type)
{
	size_t off = 12;

	for (;;) {
		if (len < off + 2)
			return 0;
		*type = get16(frame + off);
		if (!ether_is_vlan(*type))
			return off + 2;
		off += 4;
	}
}

#endif
