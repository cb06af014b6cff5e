/* describe.c - one line about an IP packet (divert-inject -v). */
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "bytes.h"
#include "csum.h"
#include "describe.h"
#include "ipwalk.h"

static const char *
proto_name(int proto, char *buf, size_t len)
{
	switch (proto) {
	case IPPROTO_ICMP: return "ICMP";
	case IPPROTO_TCP: return "TCP";
	case IPPROTO_UDP: return "UDP";
	case IPPROTO_GRE: return "GRE";
	case IPPROTO_ESP: return "ESP";
	case IPPROTO_ICMPV6: return "ICMP6";
	case IPPROTO_SCTP: return "SCTP";
	case IPPROTO_UDPLITE: return "UDPLITE";
	default:
		snprintf(buf, len, "proto %d", proto);
		return buf;
	}
}

static int
has_ports(int proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP ||
	    proto == IPPROTO_UDPLITE;
}

/*
 * Whether a whole TCP or UDP segment (at l4 up to end) carries a checksum
 * left partial by the sending host's offload: the field holds the
 * pseudo-header sum only (CHECKSUM_PARTIAL, completed by the NIC).  A
 * receiver drops it.
 */
static int
partial_checksum(const uint8_t *ip, size_t end, int proto, size_t l4)
{
	size_t field = proto == IPPROTO_TCP ? 16 : 6, seg = end - l4;
	uint32_t pseudo;
	uint16_t check;

	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || seg < field + 2 ||
	    (proto == IPPROTO_TCP && seg < 20))
		return 0;
	check = get16(ip + l4 + field);
	if (proto == IPPROTO_UDP && check == 0)
		return 0;			/* no UDP checksum at all */
	pseudo = ip[0] >> 4 == 4 ?
	    csum_pseudo4(ip + 12, ip + 16, (uint8_t)proto, (uint32_t)seg) :
	    csum_pseudo6(ip + 8, ip + 24, (uint8_t)proto, (uint32_t)seg);
	if ((uint32_t)check + csum_fold(pseudo) != 0xffff)	/* the field is the sum, uncomplemented */
		return 0;
	return csum_fold(csum_add(pseudo, ip + l4, seg)) != 0;
}

/* " [SF.]" of the TCP header at tcp into flags (at least 9 bytes). */
static void
tcp_flags(const uint8_t *tcp, char *flags)
{
	uint8_t f = tcp[13];
	int n = 0;

	flags[n++] = ' ';
	flags[n++] = '[';
	if (f & 0x02) flags[n++] = 'S';
	if (f & 0x01) flags[n++] = 'F';
	if (f & 0x04) flags[n++] = 'R';
	if (f & 0x08) flags[n++] = 'P';
	if (f & 0x10) flags[n++] = '.';
	flags[n++] = ']';
	flags[n] = '\0';
}

int
ip_describable(const uint8_t *ip, size_t len)
{
	if (len >= 20 && ip[0] >> 4 == 4)
		return 1;
	return len >= 40 && ip[0] >> 4 == 6;
}

void
ip_describe(const uint8_t *ip, size_t len, char *buf, size_t size)
{
	char src[INET6_ADDRSTRLEN + 2], dst[INET6_ADDRSTRLEN + 2], pbuf[16], flags[24] = "";
	char sport[8] = "", dport[8] = "";
	int v6 = ip[0] >> 4 == 6, proto;
	size_t l4 = 0, end = len;
	struct ipwalk w;

	inet_ntop(v6 ? AF_INET6 : AF_INET, ip + (v6 ? 8 : 12), src, sizeof(src));
	inet_ntop(v6 ? AF_INET6 : AF_INET, ip + (v6 ? 24 : 16), dst, sizeof(dst));
	/* An IPv4 header with wrong lengths: its protocol and fragment fields only. */
	if (ipwalk(ip, len, 0, IPW_L4, &w) == 0) {
		l4 = w.l4off;			/* 0: a later fragment, or cut before it */
		end = w.iplen;
	}
	proto = w.proto;
	if (l4 != 0 && l4 + 4 <= end && has_ports(proto)) {
		snprintf(sport, sizeof(sport), ":%u", get16(ip + l4));
		snprintf(dport, sizeof(dport), ":%u", get16(ip + l4 + 2));
	}
	if (proto == IPPROTO_TCP && l4 != 0 && l4 + 14 <= end)
		tcp_flags(ip + l4, flags);
	if (w.frag)
		strcat(flags, " frag");
	else if (l4 != 0 && partial_checksum(ip, end, proto, l4))
		strcat(flags, " csum?");
	snprintf(buf, size, v6 && sport[0] ? "[%s]%s > [%s]%s %s %zu%s" : "%s%s > %s%s %s %zu%s",
	    src, sport, dst, dport, proto_name(proto, pbuf, sizeof(pbuf)), len, flags);
}
