#!/usr/bin/python3
"""mkcapture.py KIND OUT.pcap: build a test capture for divert-mangle with scapy.

  mixed     Ethernet: IPv4/IPv6, TCP with options (SYN, data), UDP, UDP with
            checksum 0, DNS, ICMP, ICMPv6, IPv4 options, IPv6 extension
            headers, IPv4 and IPv6 fragments, SCTP, ARP.  Every checksum valid.
  broken    RAW (IPv4/IPv6 without link header): good packets with, between
            them, garbage, a record shorter than an IP header, IHL 15 on a
            short packet, a total length below the header, a cut TCP header,
            a bad IPv6 extension chain.
  sctp      Ethernet: SCTP over IPv4, over IPv6 behind a routing header with
            segments left, and fragmented over IPv4 and IPv6; every CRC32c
            valid.  All ports 3868.
  sctp-bad  The same unfragmented packets with wrong CRC32c (off by 0x12345678).
  srr       Ethernet: TCP and UDP over IPv4 with a loose or strict source
            route; checksums valid for the pseudo-header of the final
            destination (the route's last address while hops are left, the
            header's once the route is done), as Linux, Wireshark and scapy
            sum them.
  srr-bad   The same packets with wrong TCP/UDP checksums.
  qinq      Ethernet: UDP and TCP over IPv4 and IPv6 behind two VLAN tags
            whose outer one is the older QinQ type 0x9100, on the link and
            inside an MPLS pseudowire (label, control word, Ethernet), where
            divert-mangle finds the IP header itself.  Every checksum valid.
"""
import sys

from scapy.all import (ARP, DNS, DNSQR, ICMP, IP, IPOption_Router_Alert, Dot1Q,
                       IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                       IPv6ExtHdrHopByHop, ICMPv6EchoRequest, Ether, Raw, TCP,
                       UDP, fragment, fragment6, wrpcap)
from scapy.contrib.mpls import MPLS, EoMCW
from scapy.layers.inet import IPOption_LSRR, IPOption_NOP, IPOption_SSRR
from scapy.layers.inet6 import IPv6ExtHdrRouting
from scapy.layers.sctp import SCTP, SCTPChunkData, SCTPChunkInit
from scapy.utils import checksum

A4, B4, C4 = '10.0.0.1', '10.0.0.5', '192.168.7.9'
A6, B6 = 'fd00::1', 'fd00::5'
MAC = dict(src='02:00:00:00:00:01', dst='02:00:00:00:00:02')
SYN_OPTS = [('MSS', 1460), ('NOP', None), ('WScale', 7), ('SAckOK', b''),
            ('Timestamp', (12345, 0))]
ODD_MSS = [('NOP', None), ('MSS', 8960), ('NOP', None), ('NOP', None)]


def eth(pkt):
    return Ether(**MAC) / pkt


def mixed():
    pl = bytes(range(256)) * 6
    out = [
        IP(src=A4, dst=B4, ttl=64) / TCP(sport=40000, dport=80, flags='S', options=SYN_OPTS),
        IP(src=B4, dst=A4, ttl=63) / TCP(sport=80, dport=40000, flags='SA', options=ODD_MSS),
        IP(src=A4, dst=B4, tos=0x10) / TCP(sport=40000, dport=80, flags='PA', seq=1) / Raw(b'GET / HTTP/1.0\r\n\r\n'),
        IP(src=A4, dst=C4) / UDP(sport=5353, dport=53) / DNS(rd=1, qd=DNSQR(qname='example.org')),
        IP(src=A4, dst=B4) / UDP(sport=1234, dport=53) / DNS(rd=1, qd=DNSQR(qname='a.example')),
        IP(src=A4, dst=B4) / UDP(sport=9, dport=9, chksum=0) / Raw(b'no checksum'),
        IP(src=A4, dst=B4, ttl=1) / ICMP(type=8, id=7, seq=1) / Raw(b'ping' * 8),
        IP(src=A4, dst=B4, ttl=255, options=[IPOption_Router_Alert()]) / UDP(sport=7, dport=7) / Raw(b'opt'),
        IPv6(src=A6, dst=B6, hlim=64) / TCP(sport=40001, dport=443, flags='S', options=SYN_OPTS),
        IPv6(src=B6, dst=A6, tc=0x28, fl=0x12345) / UDP(sport=5000, dport=53) / Raw(b'v6 dns-ish'),
        IPv6(src=A6, dst=B6) / ICMPv6EchoRequest(id=9, seq=2, data=b'v6ping'),
        IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(sport=6000, dport=6001) / Raw(b'ext'),
        IP(src=A4, dst=B4) / SCTP(sport=3868, dport=3868) / SCTPChunkInit(init_tag=1, a_rwnd=65536, n_out_streams=1, n_in_streams=1, init_tsn=1),
        ARP(psrc=A4, pdst=B4),
    ]
    out += fragment(IP(src=A4, dst=B4, id=4242) / UDP(sport=4000, dport=53) / Raw(pl), fragsize=600)
    out += fragment(IP(src=A4, dst=B4, id=4343) / ICMP(type=8) / Raw(pl), fragsize=800)
    out += fragment6(IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=77) / UDP(sport=4001, dport=4002) / Raw(pl), 700)
    pkts = [eth(p) for p in out]
    for i, p in enumerate(pkts):
        p.time = 1700000000 + i / 100
    return pkts


def broken():
    good4 = bytes(IP(src=A4, dst=B4) / UDP(sport=1, dport=2) / Raw(b'good'))
    good6 = bytes(IPv6(src=A6, dst=B6) / UDP(sport=1, dport=2) / Raw(b'good'))
    ihl15 = bytearray(bytes(IP(src=A4, dst=B4) / UDP(sport=1, dport=2)))
    ihl15[0] = 0x4f                      # 60-byte header claimed, 28 bytes there
    shortlen = bytearray(good4)
    shortlen[2:4] = b'\x00\x0c'          # total length 12 < 20
    cut_tcp = bytes(IP(src=A4, dst=B4) / TCP(sport=1, dport=2, flags='S', options=SYN_OPTS))[:30]
    badext = bytearray(bytes(IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / UDP()))
    badext[41] = 200                     # extension header length past the end
    recs = [good4, b'\xde\xad\xbe\xef' * 5 + b'\x00' * 3, good6, b'\x45\x00\x00',
            bytes(ihl15), good4, bytes(shortlen), cut_tcp, bytes(badext), b'', good6,
            b'\x60' + b'\x00' * 10, good4]
    return [Raw(r) for r in recs]


def sctp_init(tag):
    return SCTP(sport=3868, dport=3868) / SCTPChunkInit(init_tag=tag, a_rwnd=65536,
                                                        n_out_streams=1, n_in_streams=1,
                                                        init_tsn=1)


def sctp_unfragmented():
    return [
        IP(src=A4, dst=B4) / sctp_init(1),
        IPv6(src=A6, dst='fd00::7') / IPv6ExtHdrRouting(addresses=[B6], segleft=1) / sctp_init(2),
        IPv6(src=A6, dst=B6) / sctp_init(3),
    ]


def stamp(pkts):
    pkts = [eth(p) for p in pkts]
    for i, p in enumerate(pkts):
        p.time = 1700000000 + i / 100
    return pkts


def sctp():
    data = SCTP(sport=3868, dport=3868) / SCTPChunkData(tsn=1, data=bytes(range(256)) * 6)
    out = sctp_unfragmented()
    out += fragment(IP(src=A4, dst=B4, id=5151) / data, fragsize=600)
    out += fragment6(IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=88) / data, 700)
    return stamp(out)


def wrong_crc(pkt):
    """pkt as bytes with its CRC32c (little-endian on the wire) off by 0x12345678."""
    b = bytearray(bytes(pkt))
    off = len(b) - len(bytes(pkt[SCTP]))
    crc = int.from_bytes(b[off + 8:off + 12], 'little') ^ 0x12345678
    b[off + 8:off + 12] = crc.to_bytes(4, 'little')
    return (IP if b[0] >> 4 == 4 else IPv6)(bytes(b))


def sctp_bad():
    return stamp([wrong_crc(p) for p in sctp_unfragmented()])


def l4_sum_for(pkt, dst):
    """pkt (IPv4, TCP or UDP) as bytes with its L4 checksum summed for destination dst."""
    b = bytearray(bytes(pkt))
    hl = (b[0] & 15) * 4
    coff = hl + (16 if b[9] == 6 else 6)
    b[coff:coff + 2] = b'\0\0'
    ph = bytes(b[12:16]) + bytes(map(int, dst.split('.'))) + bytes([0, b[9]]) + \
        (len(b) - hl).to_bytes(2, 'big')
    b[coff:coff + 2] = checksum(ph + bytes(b[hl:])).to_bytes(2, 'big')
    return IP(bytes(b))


def srr_packets():
    hops = ['10.0.0.8', B4]             # the last one is the final destination
    lsrr = [IPOption_LSRR(pointer=4, routers=hops)]
    return [
        # hops left: the pseudo-header holds the route's last address
        l4_sum_for(IP(src=A4, dst='10.0.0.7', options=lsrr) /
                   TCP(sport=40000, dport=80, flags='S', options=SYN_OPTS), B4),
        l4_sum_for(IP(src=A4, dst='10.0.0.8', options=[IPOption_SSRR(pointer=8, routers=hops)]) /
                   UDP(sport=5353, dport=53) / Raw(b'strict'), B4),
        l4_sum_for(IP(src=A4, dst='10.0.0.7', options=[IPOption_NOP()] + lsrr) /
                   UDP(sport=1234, dport=53) / Raw(b'after a NOP'), B4),
        # route done (pointer past the end): the header's destination
        l4_sum_for(IP(src=A4, dst=B4, options=[IPOption_LSRR(pointer=12, routers=hops)]) /
                   TCP(sport=40000, dport=80, flags='A') / Raw(b'done'), B4),
        l4_sum_for(IP(src=A4, dst='10.0.0.3', options=[IPOption_LSRR(pointer=12, routers=hops)]) /
                   UDP(sport=1234, dport=53) / Raw(b'done, elsewhere'), '10.0.0.3'),
    ]


def srr_bad():
    out = []
    for p in srr_packets():
        b = bytearray(bytes(p))
        hl = (b[0] & 15) * 4
        coff = hl + (16 if b[9] == 6 else 6)
        b[coff] ^= 0x5a
        out.append(IP(bytes(b)))
    return stamp(out)


def qinq():
    """Tagged 0x9100 (outer, VLAN 100) then 0x8100 (inner, VLAN 200)."""
    def tagged(pkt):
        return Ether(type=0x9100, **MAC) / Dot1Q(vlan=100, type=0x8100) / Dot1Q(vlan=200) / pkt
    inner = [
        IP(src=A4, dst=B4, ttl=64) / UDP(sport=5353, dport=53) / Raw(b'qinq v4'),
        IPv6(src=A6, dst=B6, hlim=64) / TCP(sport=40001, dport=53, flags='S', options=SYN_OPTS),
    ]
    out = [tagged(p) for p in inner]
    out += [Ether(type=0x8847, **MAC) / MPLS(label=16, s=1, ttl=64) / EoMCW() / tagged(p)
            for p in inner]
    for i, p in enumerate(out):
        p.time = 1700000000 + i / 100
    return out


if __name__ == '__main__':
    kind, path = sys.argv[1], sys.argv[2]
    if kind == 'mixed':
        wrpcap(path, mixed())
    elif kind == 'sctp':
        wrpcap(path, sctp())
    elif kind == 'sctp-bad':
        wrpcap(path, sctp_bad())
    elif kind == 'srr':
        wrpcap(path, stamp(srr_packets()))
    elif kind == 'srr-bad':
        wrpcap(path, srr_bad())
    elif kind == 'qinq':
        wrpcap(path, qinq())
    elif kind == 'broken':
        wrpcap(path, broken(), linktype=101)     # LINKTYPE_RAW
    else:
        sys.exit(__doc__)
