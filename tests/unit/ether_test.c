/* ether_test - the one Ethernet/VLAN skipper (ether.h): every tag type, cut headers. */
#include <string.h>

#include "ether.h"
#include "tap.h"

int
main(void)
{
	uint8_t f[64];
	uint16_t type = 0;

	memset(f, 0xab, sizeof(f));
	put16(f + 12, ETH_P_IP);
	ok(ether_hdrlen(f, 34, &type) == 14 && type == ETH_P_IP, "untagged IPv4: 14 bytes");
	put16(f + 12, 0x9100);			/* the older QinQ outer tag */
	put16(f + 16, ETH_P_8021Q);
	put16(f + 20, ETH_P_IPV6);
	ok(ether_hdrlen(f, 62, &type) == 22 && type == ETH_P_IPV6,
	    "0x9100 outer tag, 0x8100 inner: 22 bytes, then IPv6");
	put16(f + 12, ETH_P_8021AD);
	ok(ether_hdrlen(f, 62, &type) == 22 && type == ETH_P_IPV6, "0x88a8 outer tag too");
	put16(f + 12, 0x9100);
	put16(f + 16, ETH_P_ARP);
	ok(ether_hdrlen(f, 62, &type) == 18 && type == ETH_P_ARP, "0x9100 alone, then ARP");
	put16(f + 16, ETH_P_8021Q);
	ok(ether_hdrlen(f, 21, &type) == 0, "cut inside the inner tag: 0");
	ok(ether_hdrlen(f, 13, &type) == 0, "cut before the type: 0");
	return tap_done();
}
