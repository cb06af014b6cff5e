/*
 * describe.h - one line about an IP packet, for divert-inject's -v and its
 * warnings: "SRC:PORT > DST:PORT PROTO LEN [FLAGS] [frag] [csum?]".
 */
#ifndef DIVERT_DESCRIBE_H
#define DIVERT_DESCRIBE_H

#include <stddef.h>
#include <stdint.h>

/* Whether ip (len bytes) holds a whole IPv4 or IPv6 fixed header: describable. */
int ip_describable(const uint8_t *ip, size_t len);

/*
 * Describe the IP packet at ip (len bytes, ip_describable) into buf (size
 * bytes): addresses, ports of TCP, UDP, SCTP and UDP-Lite, the protocol
 * after any IPv6 extension headers, len, TCP flags; "frag" for a fragment,
 * "csum?" for a TCP or UDP checksum left partial by the sender's offload.
 * IPv6 addresses are bracketed only where a port follows them.
 */
void ip_describe(const uint8_t *ip, size_t len, char *buf, size_t size);

#endif
