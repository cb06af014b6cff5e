#!/usr/bin/python3
"""mkcapture.py KIND OUT.pcap: build a test capture for divert-mangle with scapy.

  mixed     Ethernet: IPv4/IPv6, TCP with options (SYN, data), UDP, UDP with
            checksum 0, DNS, ICMP, ICMPv6, IPv4 options, IPv6 extension
            headers, IPv4 and IPv6 fragments, SCTP, ARP.  Every checksum valid.
  broken    RAW (IPv4/IPv6 without link header): good packets with, between
            them, garbage, a record shorter than an IP header, IHL 15 on a
            short packet, a total length below the header, a cut TCP header,
            a bad IPv6 extension chain.
"""
import sys

from scapy.all import (ARP, DNS, DNSQR, ICMP, IP, IPOption_Router_Alert,
                       IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                       IPv6ExtHdrHopByHop, ICMPv6EchoRequest, Ether, Raw, TCP,
                       UDP, fragment, fragment6, wrpcap)
from scapy.layers.sctp import SCTP, SCTPChunkInit

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


if __name__ == '__main__':
    kind, path = sys.argv[1], sys.argv[2]
    if kind == 'mixed':
        wrpcap(path, mixed())
    elif kind == 'broken':
        wrpcap(path, broken(), linktype=101)     # LINKTYPE_RAW
    else:
        sys.exit(__doc__)
