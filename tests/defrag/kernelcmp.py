#!/usr/bin/python3
"""divert-defrag against the kernel: the same fragment sets, sent to a peer
namespace whose kernel reassembles them, and fed to divert-defrag.

  kernelcmp.py build PCAP SRC4 DST4 SRC6 DST6
      every case, IPv4 and IPv6, as raw IP packets (LINKTYPE_RAW); after
      each case a marker datagram "MARK:<case>", at the end "MARK:END"
  kernelcmp.py send PCAP IFACE DSTMAC
      each packet of PCAP in an Ethernet frame on IFACE (scapy, layer 2: the
      sender's kernel neither reassembles nor fragments them)
  kernelcmp.py recv OUT
      raw sockets for protocol 253 (IPv4, IPv6): what the local kernel
      delivers after its reassembly, one line a datagram "FAMILY ECN HEX",
      until both markers END; prints "ready" on stderr once bound
  kernelcmp.py compare OUT DEFRAGGED
      per case and family: delivered or not, payload bytes and ECN bits,
      kernel against divert-defrag's output; exits 1 on any difference

Protocol 253 (RFC 3692, experiments) has no checksum and no listener: what
arrives is exactly what the kernel reassembled.
"""
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stream"))
import capfile  # noqa: E402

PROTO = 253
DLT_RAW = 101
X = b"X" * 64


def payload(k, n=128):
    return bytes((i * 7 + k * 13 + 1) & 0xFF for i in range(n))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(src, dst, ident, off, mf, data, ecn=0, opts=b""):
    hl = 20 + len(opts)
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | hl // 4, ecn, hl + len(data), ident,
                              (0x2000 if mf else 0) | off // 8, 64, PROTO, 0,
                              socket.inet_aton(src), socket.inet_aton(dst)) + opts)
    struct.pack_into("!H", h, 10, csum(bytes(h)))
    return bytes(h) + data


def ip6(src, dst, ident, off, mf, data, ecn=0):
    fh = struct.pack("!BBHI", PROTO, 0, off | (1 if mf else 0), ident)
    h = struct.pack("!IHBB16s16s", 6 << 28 | ecn << 20, 8 + len(data), 44, 64,
                    socket.inet_pton(socket.AF_INET6, src),
                    socket.inet_pton(socket.AF_INET6, dst))
    return h + fh + data


def whole4(src, dst, ident, data):
    return ip4(src, dst, ident, 0, 0, data)


def whole6(src, dst, data):
    return struct.pack("!IHBB16s16s", 6 << 28, len(data), PROTO, 64,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + data


# A case: fragments (offset, length, more fragments, ECN, bytes or None for
# the datagram's own).  Offsets and lengths in bytes.
def F(off, n, mf, ecn=0, data=None):
    return (off, n, mf, ecn, data)


CASES = [
    # ECN (RFC 3168 5.3, the kernel's ip_frag_ecn_table)
    ("ecn-notect-ect0", [F(0, 32, 1, 0), F(32, 32, 0, 2)]),
    ("ecn-ect0-notect", [F(0, 32, 1, 2), F(32, 32, 0, 0)]),
    ("ecn-ect0-ce", [F(0, 32, 1, 2), F(32, 32, 0, 3)]),
    ("ecn-ce-ect0", [F(0, 32, 1, 3), F(32, 32, 0, 2)]),
    ("ecn-ce-notect", [F(0, 32, 1, 3), F(32, 32, 0, 0)]),
    ("ecn-ect1-all", [F(0, 16, 1, 1), F(16, 16, 1, 1), F(32, 32, 0, 1)]),
    ("ecn-ect0-ect1", [F(0, 32, 1, 2), F(32, 32, 0, 1)]),
    ("ecn-ect1-ect0-ce", [F(0, 16, 1, 1), F(16, 16, 1, 2), F(32, 32, 0, 3)]),
    ("ecn-notect-all", [F(0, 32, 1, 0), F(32, 32, 0, 0)]),
    ("ecn-dup-notect", [F(0, 32, 1, 2), F(0, 32, 1, 0), F(32, 32, 0, 2)]),
    # overlaps (inet_frag_queue_insert)
    ("inside", [F(0, 48, 1), F(24, 8, 1, 0, X[:8]), F(48, 16, 0)]),
    ("tail", [F(0, 32, 1), F(24, 40, 0, 0, "tail")]),
    ("head", [F(8, 56, 0), F(0, 16, 1, 0, "head")]),
    ("dup-exact", [F(0, 32, 1), F(0, 32, 1), F(32, 32, 0)]),
    ("dup-other-bytes", [F(0, 32, 1), F(0, 32, 1, 0, X[:32]), F(32, 32, 0)]),
    ("dup-last", [F(32, 32, 0), F(32, 32, 0), F(0, 32, 1)]),
    ("two-runs", [F(16, 8, 1), F(0, 8, 1), F(8, 8, 1), F(0, 16, 1), F(24, 40, 0)]),
    ("one-run", [F(0, 8, 1), F(8, 8, 1), F(0, 16, 1), F(16, 48, 0)]),
    ("resend-after-overlap", [F(0, 32, 1), F(24, 16, 1), F(0, 32, 1), F(32, 32, 0)]),
    ("last-inside-held", [F(0, 64, 1), F(56, 8, 0)]),      # a duplicate tells the end
    # a fragment without data
    ("zero-mid", [F(0, 32, 1), F(32, 0, 1), F(32, 32, 0)]),
    ("zero-then-resend", [F(0, 32, 1), F(32, 0, 1), F(0, 32, 1), F(32, 32, 0)]),
    # off the 8-byte grid (IPv4 cuts to it, IPv6 refuses the fragment)
    ("offgrid", [F(0, 36, 1, 0, "offgrid"), F(32, 32, 0), F(0, 32, 1)]),
    ("offgrid-tiny", [F(0, 32, 1), F(32, 4, 1), F(32, 32, 0)]),
]


def frag_bytes(name, k, off, n, data):
    pay = payload(k)
    if data is None:
        return pay[off:off + n]
    if data == "tail":          # overlapping tail: other bytes where it overlaps
        return X[:8] + pay[32:64]
    if data == "head":          # overlapping head: other bytes where it overlaps
        return pay[0:8] + X[:8]
    if data == "offgrid":       # 36 bytes with MF: the last 4 are junk
        return pay[0:32] + b"JUNK"
    return data


def build(path, src4, dst4, src6, dst6):
    pkts = []
    for fam in (4, 6):
        for k, (name, frs) in enumerate(CASES):
            ident = 1000 + k
            for off, n, mf, ecn, data in frs:
                b = frag_bytes(name, k, off, n, data)
                if fam == 4:
                    pkts.append(ip4(src4, dst4, ident, off, mf, b, ecn))
                else:
                    pkts.append(ip6(src6, dst6, 0x10000 + ident, off, mf, b, ecn))
            mark = b"MARK:" + name.encode()
            pkts.append(whole4(src4, dst4, 9000 + k, mark) if fam == 4
                        else whole6(src6, dst6, mark))
        if fam == 4:
            # 65535 bytes whose later fragments carry 40 bytes of options:
            # the limit counts the first fragment's header (20 bytes)
            for name, first_opts in (("big-later-options", False),
                                     ("big-first-options", True)):
                data = payload(77, 65515)     # 20 + 65515 = 65535 bytes
                ident = 2000 + first_opts
                off = 0
                while off < len(data):
                    opts = b"\x01" * 40 if (off > 0) != first_opts else b""
                    n = 1480 - len(opts)
                    pkts.append(ip4(src4, dst4, ident, off, off + n < len(data),
                                    data[off:off + n], 0, opts))
                    off += n
                pkts.append(whole4(src4, dst4, 9500 + first_opts,
                                   b"MARK:" + name.encode()))
        pkts.append(whole4(src4, dst4, 9999, b"MARK:END") if fam == 4
                    else whole6(src6, dst6, b"MARK:END"))
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, DLT_RAW))
        for i, p in enumerate(pkts):
            f.write(struct.pack("<IIII", 1700000000, i, len(p), len(p)) + p)


def records(path):
    """The packets of a RAW capture, pcap or pcapng (tests/stream/capfile.py)."""
    linktype, recs = capfile.read(path)
    assert linktype == DLT_RAW, "want LINKTYPE_RAW"
    return [data for _, data, _ in recs]


def send(path, iface, mac):
    from scapy.all import conf, Ether, Raw
    s = conf.L2socket(iface=iface)
    for p in records(path):
        s.send(Ether(dst=mac, type=0x0800 if p[0] >> 4 == 4 else 0x86DD) / Raw(p))
    s.close()


def recv(out):
    s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO)
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, PROTO)
    for s in (s4, s6):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s6.setsockopt(socket.IPPROTO_IPV6, 66, 1)       # IPV6_RECVTCLASS
    print("ready", file=sys.stderr, flush=True)
    done, lines, deadline = set(), [], time.time() + 60
    while len(done) < 2 and time.time() < deadline:
        r, _, _ = select.select([s4, s6], [], [], 1)
        for s in r:
            data, anc, _, _ = s.recvmsg(70000, 256)
            if s is s4:
                hl = (data[0] & 15) * 4
                ecn, pay, fam = data[1] & 3, data[hl:], 4
            else:
                ecn = 0
                for lvl, typ, val in anc:
                    if lvl == socket.IPPROTO_IPV6 and typ == 67:    # IPV6_TCLASS
                        ecn = struct.unpack("i", val[:4])[0] & 3
                pay, fam = data, 6
            lines.append(f"{fam} {ecn} {pay.hex()}")
            if pay == b"MARK:END":
                done.add(fam)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def defragged(path):
    """divert-defrag's output as the receiver's lines (fragments left out)."""
    lines = []
    for p in records(path):
        if p[0] >> 4 == 4:
            hl = (p[0] & 15) * 4
            if p[9] != PROTO or struct.unpack("!H", p[6:8])[0] & 0x3FFF:
                continue
            lines.append(f"4 {p[1] & 3} {p[hl:struct.unpack('!H', p[2:4])[0]].hex()}")
        else:
            if p[6] != PROTO:
                continue
            lines.append(f"6 {(p[1] >> 4) & 3} {p[40:40 + struct.unpack('!H', p[4:6])[0]].hex()}")
    return lines


def by_case(lines):
    """{(family, case): [(ecn, payload), ...]} split at the markers."""
    got, cur = {}, {4: [], 6: []}
    for ln in lines:
        fam, ecn, hexpay = ln.split(" ")
        fam, pay = int(fam), bytes.fromhex(hexpay)
        if pay.startswith(b"MARK:"):
            got[(fam, pay[5:].decode())] = cur[fam]
            cur[fam] = []
        else:
            cur[fam].append((int(ecn), pay))
    return got


def show(ds):
    if not ds:
        return "nothing"
    return ", ".join(f"ecn {e} {len(p)} bytes {p[:6].hex()}.." for e, p in ds)


def compare(kout, dpcap):
    with open(kout) as f:
        k = by_case([ln for ln in f.read().splitlines() if ln])
    d = by_case(defragged(dpcap))
    names = [n for n, _ in CASES]
    want = [(fam, n) for fam in (4, 6) for n in names + ["END"]]
    want[len(names):len(names)] = [(4, "big-later-options"), (4, "big-first-options")]
    bad = 0
    for key in want:
        if key not in k or key not in d:
            print(f"IPv{key[0]} {key[1]}: marker missing (kernel {key in k}, defrag {key in d})")
            bad += 1
            continue
        same = k[key] == d[key]
        bad += not same
        print(f"{'ok ' if same else 'DIFF'} IPv{key[0]} {key[1]:22} kernel: {show(k[key])}"
              + ("" if same else f"   divert-defrag: {show(d[key])}"))
    return bad


def main():
    cmd = sys.argv[1]
    if cmd == "build":
        build(*sys.argv[2:7])
    elif cmd == "send":
        send(*sys.argv[2:5])
    elif cmd == "recv":
        recv(sys.argv[2])
    elif cmd == "compare":
        sys.exit(1 if compare(sys.argv[2], sys.argv[3]) else 0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
