#!/usr/bin/python3
"""mkpcap.py - build the pcap streams inject.bats feeds to divert-inject.

Packets are built by scapy (checksums computed by scapy, independently of the
toolkit); the file format is written here so that records can be given any
link type, direction and interface, and so that a stream can be damaged on
purpose (a record claiming a 1 GB caplen).

  mkpcap.py OUT --src A --dst B [--v6] [--count N] [--size BYTES] [--df]
            [--link raw|ether|sll2] [--dir in|out] [--ifindex N]
            [--garbage N] [--huge-caplen]

Each datagram is UDP to port --dport (7777) carrying "dgram I" padded with
dots to --size bytes of payload.
"""
import argparse
import struct
import sys

from scapy.all import IP, IPv6, UDP, Ether, Raw  # noqa: E402

LINKTYPE = {"raw": 101, "ether": 1, "sll2": 276}


def datagrams(a):
    for i in range(a.count):
        data = ("dgram %d " % i).encode()
        data += b"." * max(0, a.size - len(data))
        if a.v6:
            pkt = IPv6(src=a.src, dst=a.dst) / UDP(sport=40000, dport=a.dport) / Raw(data)
        else:
            pkt = IP(src=a.src, dst=a.dst, flags="DF" if a.df else 0, id=0x100 + i) / \
                UDP(sport=40000, dport=a.dport) / Raw(data)
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
