#!/usr/bin/python3
"""mkpcap.py - build the pcap streams inject.bats feeds to divert-inject.

Packets are built by scapy (checksums computed by scapy, independently of the
toolkit); the file format is written here so that records can be given any
link type, direction and interface, and so that a stream can be damaged on
purpose (a record claiming a 1 GB caplen).

  mkpcap.py OUT --src A --dst B [--v6] [--count N] [--size BYTES] [--df]
            [--link raw|ether|sll2] [--dir in|out] [--ifindex N]
            [--garbage N] [--huge-caplen] [--id N] [--partial-csum] [--frag]

Each datagram is UDP to port --dport (7777) carrying "dgram I" padded with
dots to --size bytes of payload.  --src and --dst may be comma-separated
lists: datagram I goes from src[I % n] to dst[I % m] (IPv4 or IPv6 by the
address), so flows and families can be interleaved.  --id sets the IPv4 ID
(default 0x100 + I); --partial-csum leaves the UDP checksum as a sending
host's offload leaves it (the pseudo-header sum only); --frag sends each
datagram as the first fragment of a larger one (IPv4 MF, IPv6 fragment
header with M).
"""
import argparse
import socket
import struct
import sys

from scapy.all import IP, IPv6, IPv6ExtHdrFragment, UDP, Ether, Raw  # noqa: E402

LINKTYPE = {"raw": 101, "ether": 1, "sll2": 276}


def pseudo_sum(src, dst, v6, length):
    """The folded, uncomplemented pseudo-header sum a CHECKSUM_PARTIAL packet carries."""
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    b = socket.inet_pton(fam, src) + socket.inet_pton(fam, dst)
    b += struct.pack(">IxxxB", length, 17) if v6 else struct.pack(">xBH", 17, length)
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def datagrams(a):
    srcs, dsts = a.src.split(","), a.dst.split(",")
    for i in range(a.count):
        src, dst = srcs[i % len(srcs)], dsts[i % len(dsts)]
        v6 = a.v6 or ":" in dst
        data = ("dgram %d " % i).encode()
        data += b"." * max(0, a.size - len(data))
        udp = UDP(sport=40000, dport=a.dport)
        if a.partial_csum:
            udp.chksum = pseudo_sum(src, dst, v6, 8 + len(data))
        if v6:
            pkt = IPv6(src=src, dst=dst)
            if a.frag:
                pkt = pkt / IPv6ExtHdrFragment(id=0x100 + i, offset=0, m=1)
            pkt = pkt / udp / Raw(data)
        else:
            flags = ("DF" if a.df else "") + ("+MF" if a.frag else "")
            pkt = IP(src=src, dst=dst, flags=flags.strip("+") or 0,
                     id=a.id if a.id is not None else (0x100 + i) & 0xFFFF) / udp / Raw(data)
        yield bytes(pkt)


def record(a, ip):
    v6 = (ip[0] >> 4) == 6
    etype = 0x86DD if v6 else 0x0800
    if a.link == "ether":
        return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=etype)) + ip
    if a.link == "sll2":
        pkttype = 4 if a.dir == "out" else 0
        return struct.pack(">HHIHBB8s", etype, 0, a.ifindex, 1, pkttype, 6,
                           b"\x02\x00\x00\x00\x00\x01\x00\x00") + ip
    return ip


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--v6", action="store_true")
    p.add_argument("--dport", type=int, default=7777)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--df", action="store_true")
    p.add_argument("--link", choices=LINKTYPE, default="raw")
    p.add_argument("--dir", choices=("in", "out"), default="out")
    p.add_argument("--ifindex", type=int, default=0)
    p.add_argument("--garbage", type=int, default=0,
                   help="records of random bytes after the datagrams")
    p.add_argument("--id", type=lambda x: int(x, 0), default=None)
    p.add_argument("--partial-csum", action="store_true")
    p.add_argument("--frag", action="store_true")
    p.add_argument("--huge-caplen", action="store_true",
                   help="end with a record header claiming a 1 GB caplen")
    a = p.parse_args()

    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE[a.link]))
        t = 1700000000
        for i, ip in enumerate(datagrams(a)):
            rec = record(a, ip)
            f.write(struct.pack("<IIII", t + i, 0, len(rec), len(rec)) + rec)
        for i in range(a.garbage):
            rec = bytes((i * 37 + k * 11) & 0xFF for k in range(50))
            f.write(struct.pack("<IIII", t, 0, len(rec), len(rec)) + rec)
        if a.huge_caplen:
            f.write(struct.pack("<IIII", t, 0, 1 << 30, 1 << 30) + b"\x45" * 64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
