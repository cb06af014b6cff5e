#!/usr/bin/python3
"""mkseeds.py - write the fuzzers' seed corpora (a few valid packets each) into seeds/.

Run from anywhere: /usr/bin/python3 tests/fuzz/mkseeds.py
Each seed is in its harness's input format (see the comment at the top of
each tests/fuzz/*_fuzz.c).
"""
import os
import struct
import tempfile

from scapy.all import (IP, IPv6, TCP, UDP, ICMP, ICMPv6EchoRequest, SCTP, Raw, Ether,
                       IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrDestOpt,
                       IPv6ExtHdrFragment, IPOption_Router_Alert, CookedLinux,
                       fragment, fragment6, wrpcap, PcapNgWriter)

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def packets():
    return {
        "tcp4_syn_mss": IP(src="10.0.0.1", dst="10.0.0.5", flags="DF") /
            TCP(sport=40000, dport=80, flags="S", options=[("NOP", None), ("MSS", 1460),
                                                            ("WScale", 7), ("SAckOK", b"")]),
        "udp4": IP(src="10.1.1.1", dst="8.8.8.8") / UDP(sport=5353, dport=53) / Raw(b"q" * 20),
        "icmp4_opts": IP(src="192.0.2.1", dst="192.0.2.2", options=[IPOption_Router_Alert()]) /
            ICMP() / Raw(b"ping"),
        "sctp4": IP(src="10.0.0.1", dst="10.0.0.2") / SCTP(sport=3868, dport=3868) / Raw(b"\x01" * 16),
        "frag4": IP(src="10.0.0.1", dst="10.0.0.2", id=77, flags="MF", frag=0) /
            Raw(b"\x13\x88\x00\x35\x00\x20\x00\x00" + b"x" * 24),
        "udp6": IPv6(src="fd00::1", dst="2001:db8::5") / UDP(sport=5000, dport=53) / Raw(b"abcd"),
        "tcp6_ext": IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() /
            IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(addresses=["fd00::3"], segleft=1) /
            TCP(sport=1234, dport=80, flags="S", options=[("MSS", 1440)]),
        "icmp6": IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(data=b"hi"),
        "frag6": IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=5, m=1, offset=0) /
            UDP(sport=1, dport=2) / Raw(b"y" * 24),
        "udplite6": IPv6(src="fd00::1", dst="fd00::2", nh=136) / UDP(sport=7, dport=8) / Raw(b"lite"),
    }


def mangle_seeds(pk):
    for name, p in pk.items():
        put("mangle_fuzz", name, bytes([1 if IPv6 in p else 0, 0]) + bytes(p))


def frag_seeds():
    big4 = IP(src="10.0.0.1", dst="10.0.0.2", id=9,
              options=[IPOption_Router_Alert()]) / UDP(sport=1, dport=2) / Raw(b"z" * 1400)
    big6 = IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / \
        IPv6ExtHdrRouting(addresses=["fd00::3"]) / UDP(sport=1, dport=2) / Raw(b"w" * 1300)
    for name, p, mtu in (("udp4_576", big4, 576), ("udp4_68", big4, 68),
                         ("udp6_1280", big6, 1280), ("udp6_600", big6, 600)):
        put("frag_fuzz", name, bytes([1 if IPv6 in p else 0]) + struct.pack(">HI", mtu, 0xabcd)
            + bytes(p))
    # Padded by the harness to about 65535 bytes (byte 0 bit 1).
    put("frag_fuzz", "pad4_65520", bytes([0x02 | 30 << 2]) + struct.pack(">HI", 1500, 1) +
        bytes(IP(src="10.0.0.1", dst="10.0.0.2", len=0)))
    put("frag_fuzz", "pad6_65572", bytes([0x03 | 43 << 2]) + struct.pack(">HI", 1280, 1) +
        bytes(IPv6(src="fd00::1", dst="fd00::2", nh=17, plen=0)))


def record(p, flags=0, repeat=0):
    b = bytes(p)
    return bytes([flags | (1 if IPv6 in p else 0), repeat]) + struct.pack(">H", len(b)) + b


def reasm_seeds():
    """Byte 0: bits 4-7 size the pool (0xf0: 244 blocks, enough for these)."""
    d4 = IP(src="10.0.0.1", dst="10.0.0.2", id=42) / UDP(sport=1, dport=2) / Raw(b"a" * 600)
    d6 = IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() / \
        IPv6ExtHdrFragment(id=0x1234) / UDP(sport=1, dport=2) / Raw(b"b" * 600)
    f4 = fragment(d4, fragsize=200)
    f6 = fragment6(d6, 300)
    put("reasm_fuzz", "v4_in_order", b"\xf0" + b"".join(record(f) for f in f4))
    put("reasm_fuzz", "v4_reversed_keep", b"\xf4" + b"".join(record(f, 0x04) for f in reversed(f4)))
    put("reasm_fuzz", "v6_first", b"\xf1" + b"".join(record(f, 0x08) for f in f6))
    put("reasm_fuzz", "v4_evict_expire", b"\x36" + record(f4[0], 0, 200) +
        record(f4[1], 0x50) + record(f4[2], 0x30))
    # Pool of 4 blocks: a datagram outgrows it, a fragment is larger than it.
    put("reasm_fuzz", "v4_tiny_pool", b"\x04" + record(f4[0]) + record(f4[1], 0x0c))
    put("reasm_fuzz", "v6_last_overlap", b"\xf2" + record(f6[0]) + record(f6[0]) +
        b"".join(record(f) for f in f6[1:]))


def pcap_bytes(pkts, linktype, ng=False):
    with tempfile.NamedTemporaryFile() as t:
        if ng:
            w = PcapNgWriter(t.name)
            for p in pkts:
                w.write(p)
            w.close()
        else:
            wrpcap(t.name, pkts, linktype=linktype)
        with open(t.name, "rb") as f:
            return f.read()


def stream_seeds(pk):
    ips = [pk["udp4"], pk["tcp6_ext"]]
    eth = [Ether(src="02:00:00:00:00:01") / p for p in ips]
    sll = [CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\1\0\0",
                       proto=0x0800 if IP in p else 0x86dd) / p for p in ips]
    sll2 = [struct.pack(">HHIHBB8s", 0x0800, 0, 7, 1, 4, 6, b"\x02\0\0\0\0\1\0\0") + bytes(ips[0])]
    put("stream_fuzz", "raw", b"\x00" + pcap_bytes(ips, 101))
    put("stream_fuzz", "ether", b"\x00" + pcap_bytes(eth, 1))
    put("stream_fuzz", "sll", b"\x00" + pcap_bytes(sll, 113))
    put("stream_fuzz", "pcapng_ether", b"\x00" + pcap_bytes(eth, 1, ng=True))
    # Header prepended by the harness: link type index 0 (SLL2), records only.
    rec = b"".join(struct.pack("<IIII", 1, 2, len(r), len(r) + 10) + r for r in sll2)
    put("stream_fuzz", "sll2_hdr", b"\x80\x00" + rec)
    rec = b"".join(struct.pack(">IIII", 1, 2, len(bytes(p)) + 4, len(bytes(p)) + 4) +
                   b"\0\0\0\x02" + bytes(p) for p in ips)
    put("stream_fuzz", "null_swapped", b"\x83\x01" + rec)


def ng_block(bo, btype, body):
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(bo + "II", btype, n) + body + struct.pack(bo + "I", n)


def ng_opt(bo, code, val):
    return struct.pack(bo + "HH", code, len(val)) + val + b"\0" * (-len(val) % 4)


def ng_custom(bo, tlvs):
    """Our custom option (2989, PEN 32473): TLVs {type, length, value}."""
    return ng_opt(bo, 2989, struct.pack(bo + "I", 32473) +
                  b"".join(bytes([t, len(v)]) + v for t, v in tlvs))


def ng_shb(bo):
    return ng_block(bo, 0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1) +
                    ng_opt(bo, 4, b"mkseeds") + struct.pack(bo + "I", 0))


def ng_idb(bo, linktype, name=None, ifindex=None, tsresol=None):
    o = b""
    if name:
        o += ng_opt(bo, 2, name)
    if tsresol is not None:
        o += ng_opt(bo, 9, bytes([tsresol]))
    if ifindex is not None:
        o += ng_custom(bo, [(8, struct.pack(bo + "I", ifindex))])
    return ng_block(bo, 1, struct.pack(bo + "HHI", linktype, 0, 0) + o +
                    (struct.pack(bo + "I", 0) if o else b""))


def ng_epb(bo, ifid, ts, data, opts=b"", cut=0):
    pad = b"\0" * (-len(data) % 4)
    return ng_block(bo, 6, struct.pack(bo + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF,
                                       len(data), len(data) + cut) + data + pad + opts +
                    (struct.pack(bo + "I", 0) if opts else b""))


def ng_seeds(pk):
    """pcapng as the divert stream writes it, and as others may."""
    ip4, ip6 = bytes(pk["udp4"]), bytes(pk["tcp6_ext"])
    sll2 = struct.pack(">HHIHBB8s", 0x0800, 0, 7, 1, 4, 0, b"") + ip4
    ctx = lambda bo: (ng_opt(bo, 2, struct.pack(bo + "I", 2)) +
                      ng_opt(bo, 5, struct.pack(bo + "Q", 42)) +
                      ng_opt(bo, 6, struct.pack(bo + "I", 4321)) +
                      ng_custom(bo, [(1, b"\x02"), (2, struct.pack(bo + "I", 0x42)),
                                     (3, struct.pack(bo + "I", 3)), (4, b"eth3"),
                                     (5, struct.pack(bo + "Q", 0x1122334455667788)),
                                     (6, struct.pack(bo + "I", 1000)),
                                     (7, struct.pack(bo + "I", 100))]))
    # Ours: SLL2, two interfaces, every option.
    put("stream_fuzz", "pcapng_v2", b"\x00" + ng_shb("<") + ng_idb("<", 276, b"eth7", 7) +
        ng_epb("<", 0, 1700000000123456, sll2, ctx("<")) +
        ng_idb("<", 276, b"eth3", 3) + ng_epb("<", 1, 1700000000123457, sll2, b"", 5))
    # Another writer: big-endian RAW in nanoseconds, an unknown block, then a
    # little-endian section of its own, an SPB.
    put("stream_fuzz", "pcapng_be_sections", b"\x00" + ng_shb(">") +
        ng_block(">", 0x0BAD, b"unknown!") + ng_idb(">", 101, b"wan0", 12, 9) +
        ng_epb(">", 0, 1700000000123456789, ip4, ctx(">") + ng_opt(">", 1234, b"x")) +
        ng_shb("<") + ng_idb("<", 229, None, None, 0x86) +
        ng_epb("<", 0, 5, ip6) + ng_block("<", 3, struct.pack("<I", len(ip6)) + ip6))


if __name__ == "__main__":
    pk = packets()
    mangle_seeds(pk)
    frag_seeds()
    reasm_seeds()
    stream_seeds(pk)
    ng_seeds(pk)
