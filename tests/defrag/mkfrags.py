#!/usr/bin/python3
"""Fragment sets for divert-defrag's tests, built with scapy.

  mkfrags.py sets DIR          every reassembly case: DIR/NAME.in.pcap and
                               DIR/NAME.want.pcap (what divert-defrag must write)
  mkfrags.py overlap DIR       teardrop / overlapping tail / overlapping head:
                               DIR/SHAPE.in.pcap, DIR/SHAPE.{drop,first,last}.pcap
  mkfrags.py flood FILE N M    N incomplete datagrams (one fragment each) with M
                               complete 3-fragment datagrams spread among them
  mkfrags.py capture FILE      a capture to round-trip through --fragment 1280
  mkfrags.py timeout FILE      datagrams that outlive --timeout in stream time
  mkfrags.py shuffled FILE N   N UDP datagrams of 65535 bytes in 8190 fragments of
                               8 bytes (the last 3), interleaved and shuffled;
                               FILE.inorder: the same records in order

Records are LINKTYPE_LINUX_SLL2 (the stream's own format); the "want" files
hold the original datagrams with the metadata (time stamp, SLL2 header) of
the fragment that completes them, in the order divert-defrag must write them.
"""
import random
import struct
import sys

from scapy.all import IP, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, \
    IPv6ExtHdrRouting, IPv6ExtHdrDestOpt, UDP, TCP, ICMP, Raw, IPOption_RR, \
    IPOption_Security

IFINDEX = 7
DLT_SLL2 = 276


def sll2(proto, ifindex=IFINDEX, pkttype=0):
    mac = b"\x02\x00\x00\x00\x00\x01"
    return struct.pack("!HHIHBB8s", proto, 0, ifindex, 1, pkttype, 6, mac)


class Rec:
    """One pcap record: time stamp in microseconds, link header, IP bytes."""

    def __init__(self, ts, ip, ifindex=IFINDEX, pkttype=0):
        self.ts = ts
        self.ip = bytes(ip)
        proto = 0x0800 if self.ip[0] >> 4 == 4 else 0x86DD
        self.hdr = sll2(proto, ifindex, pkttype)

    def with_ip(self, ip):
        r = Rec(self.ts, ip)
        r.hdr = self.hdr
        return r


def write_pcap(path, recs, dlt=DLT_SLL2):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, dlt))
        for r in recs:
            data = r.hdr + r.ip if dlt == DLT_SLL2 else r.ip
            f.write(struct.pack("<IIII", r.ts // 1000000, r.ts % 1000000,
                                len(data), len(data)))
            f.write(data)


def frag4(pkt, size):
    """Split an IPv4 datagram into fragments of size payload bytes (last: less)."""
    raw = bytes(pkt)
    ip = IP(raw)
    hl = ip.ihl * 4
    payload = raw[hl:]
    out = []
    for off in range(0, len(payload), size):
        chunk = payload[off:off + size]
        f = IP(raw[:hl])
        f.remove_payload()
        if off > 0:
            f.options = [o for o in ip.options if o.copy_flag]
        f.flags = "MF" if off + size < len(payload) else 0
        f.frag = off // 8
        f.len = None
        f.ihl = None
        f.chksum = None
        out.append(IP(bytes(f / Raw(chunk))))
    return out


def frag6(pkt, size, ident):
    """Split an IPv6 datagram (no extension headers) into fragments."""
    raw = bytes(pkt)
    payload = raw[40:]
    nh = raw[6]
    out = []
    for off in range(0, len(payload), size):
        chunk = payload[off:off + size]
        base = IPv6(raw[:40])
        base.remove_payload()
        base.nh = 44
        base.plen = None
        fh = IPv6ExtHdrFragment(nh=nh, offset=off // 8, id=ident,
                                m=1 if off + size < len(payload) else 0)
        out.append(IPv6(bytes(base / fh / Raw(chunk))))
    return out


def frag6_ext(pkt, size, ident, unfrag):
    """Like frag6, for a datagram whose first unfrag bytes (after the
    40-byte header) are extension headers that stay in every fragment."""
    raw = bytes(pkt)
    head = bytearray(raw[:40 + unfrag])
    payload = raw[40 + unfrag:]
    # the last unfragmentable header's next-header byte: walk to it
    nhoff, off = 6, 40
    while off < 40 + unfrag:
        nhoff = off
        off += (raw[off + 1] + 1) * 8
    nh = raw[nhoff]
    head[nhoff] = 44
    out = []
    for off in range(0, len(payload), size):
        chunk = payload[off:off + size]
        m = 1 if off + size < len(payload) else 0
        fh = struct.pack("!BBHI", nh, 0, off | m, ident)
        b = bytearray(head) + fh + chunk
        struct.pack_into("!H", b, 4, len(b) - 40)
        out.append(bytes(b))
    return out


def udp4(n, ident, src="10.1.0.1", dst="10.1.0.2", **kw):
    data = bytes((i * 7 + ident) & 0xFF for i in range(n))
    return IP(src=src, dst=dst, id=ident, **kw) / UDP(sport=1000 + ident % 1000,
                                                     dport=4321) / Raw(data)


def udp6(n, seed, src="fd01::1", dst="fd01::2"):
    data = bytes((i * 13 + seed) & 0xFF for i in range(n))
    return IPv6(src=src, dst=dst) / UDP(sport=2000 + seed, dport=4321) / Raw(data)


class Builder:
    """Records in, and the records divert-defrag must write, in order."""

    def __init__(self):
        self.ins, self.want, self.t = [], [], 1700000000 * 1000000
        self.pending = {}    # datagram -> set of fragment indexes still missing

    def tick(self):
        self.t += 1000
        return self.t

    def whole(self, pkt):
        r = Rec(self.tick(), pkt)
        self.ins.append(r)
        self.want.append(r)

    def datagram(self, orig, frags):
        """Register a datagram; returns a token for fragment()."""
        tok = len(self.pending)
        self.pending[tok] = [bytes(orig), set(range(len(frags))), frags]
        return tok

    def fragment(self, tok, i):
        orig, missing, frags = self.pending[tok]
        r = Rec(self.tick(), frags[i])
        self.ins.append(r)
        if missing:
            missing.discard(i)
            if not missing:
                self.want.append(r.with_ip(orig))

    def save(self, base):
        write_pcap(base + ".in.pcap", self.ins)
        write_pcap(base + ".want.pcap", self.want)


def one_set(base, orig, frags, order):
    b = Builder()
    tok = b.datagram(orig, frags)
    for i in order:
        b.fragment(tok, i)
    b.save(base)


def sets(d):
    rnd = random.Random(5)
    cases = []
    for fam in ("v4", "v6"):
        if fam == "v4":
            def mk(n, k, size):
                p = udp4(n, k)
                return p, frag4(p, size)
        else:
            def mk(n, k, size):
                p = udp6(n, k)
                return p, frag6(p, size, 0x10000 + k)
        p, fr = mk(3000, 11, 1208)
        n = len(fr)
        cases.append((fam + "-inorder", p, fr, list(range(n))))
        cases.append((fam + "-reversed", p, fr, list(reversed(range(n)))))
        p, fr = mk(5000, 12, 504)
        order = list(range(len(fr)))
        rnd.shuffle(order)
        cases.append((fam + "-shuffled", p, fr, order))
        # duplicates (all before the last missing one arrives)
        p, fr = mk(4000, 13, 800)
        order = [0, 1, 1, 3, 0, 2, 3, 2, 4]
        cases.append((fam + "-duplicated", p, fr, order))
        p, fr = mk(1000, 14, 8)
        order = list(range(len(fr)))
        rnd.shuffle(order)
        cases.append((fam + "-tiny8", p, fr, order))
        size = 60000 if fam == "v4" else 61000
        p, fr = mk(size, 15, 1448)
        order = list(range(len(fr)))
        rnd.shuffle(order)
        cases.append((fam + "-60k", p, fr, order))
    for name, p, fr, order in cases:
        one_set(f"{d}/{name}", p, fr, order)

    # IPv4 options (only copied ones repeat) and IPv6 extension headers kept
    p = IP(src="10.1.0.1", dst="10.1.0.2", id=99,
           options=[IPOption_Security(), IPOption_RR()]) / UDP(dport=53) / Raw(b"o" * 3000)
    one_set(f"{d}/v4-options", p, frag4(p, 1200), [2, 0, 1])
    p = (IPv6(src="fd01::1", dst="fd01::2") / IPv6ExtHdrHopByHop() /
         IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(addresses=["fd01::3"]) /
         UDP(dport=53) / Raw(b"x" * 3000))
    unfrag = len(bytes(p)) - 40 - 8 - 3000
    one_set(f"{d}/v6-exthdrs", p, frag6_ext(p, 1200, 77, unfrag), [1, 2, 0])

    # interleaved: 3 v4 and 3 v6 datagrams, same IDs on different flows,
    # non-fragments between, in a random order
    b = Builder()
    plan = []
    for k in range(3):
        p = udp4(2500 + k, 50, src=f"10.1.0.{10 + k}")
        tok = b.datagram(p, frag4(p, 1000))
        plan += [(tok, i) for i in range(3)]
        p = udp6(2500 + k, 50, src=f"fd01::{10 + k}")
        tok = b.datagram(p, frag6(p, 1000, 50))
        plan += [(tok, i) for i in range(3)]
    rnd.shuffle(plan)
    for j, (tok, i) in enumerate(plan):
        b.fragment(tok, i)
        if j % 3 == 0:
            b.whole(IP(src="10.1.0.9", dst="10.1.0.2", id=j) / ICMP() / Raw(b"ping"))
        if j % 5 == 0:
            b.whole(IPv6(src="fd01::9", dst="fd01::2") / UDP(dport=j) / Raw(b"q"))
    b.save(f"{d}/interleaved")

    # same key but another interface: two datagrams, not one
    b = Builder()
    p = udp4(2000, 60)
    fr = frag4(p, 1000)
    q = IP(bytes(p))
    q[Raw].load = b"Z" * 2000
    del q[UDP].chksum
    q = IP(bytes(q))
    qfr = frag4(q, 1000)
    t1, t2 = b.datagram(p, fr), b.datagram(q, qfr)
    for i in range(3):
        b.fragment(t1, i)
        b.ins[-1].hdr = sll2(0x0800, 7)
        if b.want and b.want[-1].ts == b.ins[-1].ts:
            b.want[-1].hdr = b.ins[-1].hdr
        b.fragment(t2, i)
        b.ins[-1].hdr = sll2(0x0800, 8)
        if b.want and b.want[-1].ts == b.ins[-1].ts:
            b.want[-1].hdr = b.ins[-1].hdr
    b.save(f"{d}/interfaces")
    for name, *_ in cases:
        print(name)
    print("v4-options\nv6-exthdrs\ninterleaved\ninterfaces")


def overlap(d):
    """Each shape: fragments (offset, bytes) of a UDP datagram, in arrival
    order, the last one completing it; expected output per policy."""
    p = udp4(56, 3)            # 8 UDP + 56 data = 64 payload bytes
    raw = bytes(p)
    pay = raw[20:]
    x = b"X" * 64
    shapes = {
        # teardrop: a fragment inside another, shorter than it
        "teardrop": [(0, pay[0:48]), (24, x[:8]), (48, pay[48:64])],
        # overlapping tail: the next fragment starts inside the previous one
        "tail": [(0, pay[0:32]), (24, x[:8] + pay[32:64])],
        # overlapping head: the first fragment, last to come, reaches into
        # the data already there and would rewrite it
        "head": [(8, pay[8:64]), (0, pay[0:8] + x[:8])],
    }
    for name, frs in shapes.items():
        ins = []
        t = 1700000000 * 1000000
        total = max(o + len(b) for o, b in frs)
        for k, (off, data) in enumerate(frs):
            f = IP(raw[:20])
            f.remove_payload()
            f.flags = "MF" if off + len(data) < total else 0
            f.frag = off // 8
            f.len = f.chksum = None
            t += 1000
            ins.append(Rec(t, IP(bytes(f / Raw(data)))))
        t += 1000
        tail = Rec(t, IP(src="10.1.0.9", dst="10.1.0.2") / ICMP())
        write_pcap(f"{d}/{name}.in.pcap", ins + [tail])
        write_pcap(f"{d}/{name}.drop.pcap", [tail])
        for pol in ("first", "last"):
            buf = bytearray(total)
            seq = frs if pol == "last" else list(reversed(frs))
            for off, data in seq:
                buf[off:off + len(data)] = data
            # the completing fragment is the one after which all is covered
            cov, done = set(), None
            for k, (off, data) in enumerate(frs):
                cov |= set(range(off, off + len(data)))
                if done is None and len(cov) == total:
                    done = k
            hdrs = [IP(raw[:20]) for _ in range(1)]
            h = bytearray(bytes(hdrs[0])[:20])
            struct.pack_into("!H", h, 2, 20 + total)
            struct.pack_into("!H", h, 6, 0)
            struct.pack_into("!H", h, 10, 0)
            s = sum(struct.unpack("!10H", bytes(h)))
            while s > 0xFFFF:
                s = (s & 0xFFFF) + (s >> 16)
            struct.pack_into("!H", h, 10, ~s & 0xFFFF)
            whole = ins[done].with_ip(bytes(h) + bytes(buf))
            write_pcap(f"{d}/{name}.{pol}.pcap", [whole, tail])
        print(name)


def flood(path, n, m):
    """Raw bytes, not scapy objects: 100k records must be quick to make."""
    def ip4(src, ident, off, mf, payload):
        hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload),
                                    ident, (0x2000 if mf else 0) | off // 8, 64, 17,
                                    0, src, bytes([10, 9, 0, 2])))
        s = sum(struct.unpack("!10H", bytes(hdr)))
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        struct.pack_into("!H", hdr, 10, ~s & 0xFFFF)
        return bytes(hdr) + payload
    recs = []
    t = 1700000000 * 1000000
    junk = b"\xee" * 64
    every = n // m if m else n + 1
    complete = []
    for k in range(m):
        body = bytes((k + i) & 0xFF for i in range(2000))
        src = bytes([10, 8, k >> 8, k & 0xFF])
        whole = ip4(src, 7, 0, 0, body)
        complete.append([whole] + [ip4(src, 7, o, o + 800 < 2000, body[o:o + 800])
                                   for o in (0, 800, 1600)])
    for i in range(n):
        src = bytes([10, 100 + (i >> 16), (i >> 8) & 0xFF, i & 0xFF])
        t += 10
        recs.append(Rec(t, ip4(src, i & 0xFFFF, 0, 1, junk)))
        k, phase = divmod(i, every)
        # a complete datagram's fragments come 10 flood records apart
        if k < m and phase in (0, 10, 20):
            t += 10
            recs.append(Rec(t, complete[k][1 + phase // 10]))
    write_pcap(path, recs)
    write_pcap(path + ".whole", [Rec(0, c[0]) for c in complete])


def capture(path):
    """Packets of every kind; the big ones need splitting at 1280."""
    pkts = [
        udp4(3000, 1001),
        IP(src="10.1.0.1", dst="10.1.0.2", id=1002, flags="DF") / TCP() / Raw(b"d" * 3000),
        udp4(100, 1003),
        udp6(5000, 4),
        IPv6(src="fd01::1", dst="fd01::2") / ICMP() / Raw(b"small"),
        IP(src="10.1.0.1", dst="10.1.0.2", id=1005,
           options=[IPOption_Security(), IPOption_RR()]) / UDP() / Raw(b"o" * 4000),
        udp4(1252, 1006),   # exactly 1280 bytes: fits
        udp4(65507, 1007),  # the largest IPv4 datagram
        udp6(65527, 8),     # the largest IPv6 datagram without jumbograms
    ]
    recs = [Rec(1700000000 * 1000000 + k * 1000, p, pkttype=4 if k % 2 else 0)
            for k, p in enumerate(pkts)]
    write_pcap(path, recs)


def timeout(path):
    """A at 0 s (first half) and 32 s (second half): expires at 30 s.
    B complete within 29 s.  C's first fragment only, at 31 s."""
    t0 = 1700000000 * 1000000
    a, b, c = udp4(2000, 21), udp4(2000, 22), udp4(2000, 23)
    fa, fb, fc = frag4(a, 1000), frag4(b, 1000), frag4(c, 1000)
    recs = [Rec(t0, fa[0]), Rec(t0 + 1000, fb[0]), Rec(t0 + 10_000_000, fb[1]),
            Rec(t0 + 29_000_000, fb[2]),
            Rec(t0 + 31_000_000, fc[0]),
            Rec(t0 + 32_000_000, fa[1]), Rec(t0 + 32_000_001, fa[2])]
    write_pcap(path, recs)


def shuffled(path, n):
    """Raw bytes (scapy is too slow for 16k records); LINKTYPE_RAW."""
    body = 65535 - 20
    recs = []
    for k in range(n):
        src = bytes([10, 7, 0, k])
        data = bytearray((i * 7 + k) & 0xFF for i in range(body))
        struct.pack_into("!HHHH", data, 0, 1000 + k, 4321, body, 0)
        pseudo = src + bytes([10, 7, 0, 200, 0, 17]) + struct.pack("!H", body)
        c = sum(struct.unpack("!%dH" % ((len(pseudo) + body + 1) // 2),
                              pseudo + bytes(data) + b"\0" * (body % 2)))
        while c >> 16:
            c = (c & 0xFFFF) + (c >> 16)
        struct.pack_into("!H", data, 6, ~c & 0xFFFF or 0xFFFF)
        for off in range(0, body, 8):
            chunk = bytes(data[off:off + 8])
            hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), 50 + k,
                                        (0x2000 if off + 8 < body else 0) | off // 8, 64, 17,
                                        0, src, bytes([10, 7, 0, 200])))
            c = sum(struct.unpack("!10H", bytes(hdr)))
            c = (c & 0xFFFF) + (c >> 16)
            struct.pack_into("!H", hdr, 10, ~((c & 0xFFFF) + (c >> 16)) & 0xFFFF)
            recs.append(bytes(hdr) + chunk)

    def write(p, rs):
        with open(p, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))
            for i, r in enumerate(rs):
                f.write(struct.pack("<IIII", 1700000000, i % 1000000, len(r), len(r)) + r)
    write(path + ".inorder", recs)
    random.Random(7).shuffle(recs)
    write(path, recs)


def main():
    cmd = sys.argv[1]
    if cmd == "sets":
        sets(sys.argv[2])
    elif cmd == "overlap":
        overlap(sys.argv[2])
    elif cmd == "flood":
        flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "capture":
        capture(sys.argv[2])
    elif cmd == "timeout":
        timeout(sys.argv[2])
    elif cmd == "shuffled":
        shuffled(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("usage: mkfrags.py sets|overlap|flood|capture|timeout|shuffled ...")


if __name__ == "__main__":
    main()
