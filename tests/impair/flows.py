#!/usr/bin/python3
"""flows.py - test captures for divert-impair, and what came out of it.

  flows.py gen OUT N [--interval-us U] [--size S] [--dns-every K]
      N IPv4 UDP packets (LINKTYPE_RAW classic pcap), U us apart (1000),
      S bytes of IP (100), each numbered (4 bytes after the UDP header);
      every K-th one (0: none) goes to port 53, the others to port 9.
  flows.py bitdiff A B
      Compare B's packets with A's, in order: how many differ by exactly one
      bit, and how many of those in the IP header.
  flows.py stats FILE [--window-us W] [--sent N]
      One line of "key value" pairs about FILE (classic pcap or pcapng):
      packets, distinct numbers, duplicates (a number seen again), reordered
      (a packet whose number is below one seen before it), lost (of N sent),
      mean loss burst (runs of missing numbers), the most IP bytes whose time
      stamps fall in any window of W us, first and last time stamps, bad
      UDP checksums, and dns (packets to port 53).

Independent of the tools' C code: its own pcap and pcapng readers.
"""
import struct
import sys

LINKTYPE_RAW = 101


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_packet(seq, size, dport):
    payload = struct.pack("!I", seq) + bytes((seq + i) & 0xFF for i in range(size - 32))
    src, dst = bytes([10, 9, 0, 1]), bytes([10, 9, 0, 2])
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", 40000 + seq % 1000, dport, ulen, 0) + payload
    uc = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", uc) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, seq & 0xFFFF, 0x4000, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + udp


def gen(out, n, interval, size, dns_every):
    t0 = 1700000000 * 1000000
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_RAW))
        for i in range(n):
            dport = 53 if dns_every and i % dns_every == 0 else 9
            p = udp_packet(i, size, dport)
            t = t0 + i * interval
            f.write(struct.pack("<IIII", t // 1000000, t % 1000000, len(p), len(p)))
            f.write(p)


def records(path):
    """(time in us, link type, bytes) of every packet of a classic pcap or pcapng file."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0x0A0D0D0A:
        yield from pcapng_records(data)
        return
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = struct.unpack(endian + "I", data[:4])[0] == 0xA1B23C4D
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        yield sec * 1000000 + (frac // 1000 if nano else frac), linktype, data[off:off + incl]
        off += incl


def pcapng_records(data):
    off, endian, ifs = 0, "<", []
    while off + 12 <= len(data):
        btype = struct.unpack(endian + "I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            endian = "<" if struct.unpack("<I", data[off + 8:off + 12])[0] == 0x1A2B3C4D else ">"
            ifs = []
        blen = struct.unpack(endian + "I", data[off + 4:off + 8])[0]
        body = data[off + 8:off + blen - 4]
        if btype == 1:
            linktype = struct.unpack(endian + "H", body[:2])[0]
            res = 1000000
            o = 8
            while o + 4 <= len(body):
                code, olen = struct.unpack(endian + "HH", body[o:o + 4])
                if code == 0:
                    break
                if code == 9:
                    r = body[o + 4]
                    res = 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
                o += 4 + (olen + 3) // 4 * 4
            ifs.append((linktype, res))
        elif btype == 6:
            ifid, hi, lo, caplen, _ = struct.unpack(endian + "IIIII", body[:20])
            linktype, res = ifs[ifid]
            ts = (hi << 32 | lo) * 1000000 // res
            yield ts, linktype, body[20:20 + caplen]
        off += blen


def ip_of(linktype, rec):
    if linktype == 276:
        return rec[20:]
    return rec if linktype == LINKTYPE_RAW else rec


def stats(path, window, sent):
    seen, last, out = set(), -1, {}
    n = dups = reordered = badsum = dns = 0
    times, sizes = [], []
    for ts, lt, rec in records(path):
        ip = ip_of(lt, rec)
        n += 1
        times.append(ts)
        sizes.append(struct.unpack("!H", ip[2:4])[0])
        hl = (ip[0] & 15) * 4
        udp = ip[hl:]
        if struct.unpack("!H", udp[2:4])[0] == 53:
            dns += 1
        seq = struct.unpack("!I", udp[8:12])[0]
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
        if len(ip) == struct.unpack("!H", ip[2:4])[0] and csum(pseudo + udp) != 0:
            badsum += 1
        if seq in seen:
            dups += 1
        elif seq < last:
            reordered += 1
        seen.add(seq)
        last = max(last, seq)
    # Runs of consecutive missing numbers: the loss bursts.
    runs, run = [], 0
    for i in range(sent or 0):
        if i in seen:
            if run:
                runs.append(run)
            run = 0
        else:
            run += 1
    if run:
        runs.append(run)
    # Most bytes in any window [t, t + W) (two pointers over sorted times).
    most, j, inside = 0, 0, 0
    order = sorted(range(len(times)), key=lambda k: times[k])
    for i in range(len(order)):
        inside += sizes[order[i]]
        while times[order[i]] - times[order[j]] >= window:
            inside -= sizes[order[j]]
            j += 1
        most = max(most, inside)
    out = {"packets": n, "distinct": len(seen), "duplicates": dups, "reordered": reordered,
           "lost": (sent - len(seen)) if sent else 0, "bursts": len(runs),
           "mean_burst": "%.4f" % (sum(runs) / len(runs) if runs else 0),
           "window_bytes": most, "first_us": min(times) if times else 0,
           "last_us": max(times) if times else 0, "badsum": badsum, "dns": dns,
           "in_order": int(times == sorted(times))}
    print(" ".join("%s %s" % kv for kv in out.items()))


def bitdiff(a, b):
    """Packets of b against a's, in order: how many differ by one bit, and where."""
    one = other = in_ip = n = 0
    for (_, lta, ra), (_, ltb, rb) in zip(records(a), records(b)):
        x, y = ip_of(lta, ra), ip_of(ltb, rb)
        n += 1
        bits = [(i, (p ^ q)) for i, (p, q) in enumerate(zip(x, y)) if p != q]
        flips = sum(bin(d).count("1") for _, d in bits)
        if flips == 1 and len(x) == len(y):
            one += 1
            if bits[0][0] < (x[0] & 15) * 4:
                in_ip += 1
        else:
            other += 1
    print("%d packets, %d with one bit flipped, %d otherwise, %d in the IP header" % (n, one, other, in_ip))


def main(argv):
    opts = {"--interval-us": 1000, "--size": 100, "--dns-every": 0, "--window-us": 100000, "--sent": 0}
    pos = []
    i = 1
    while i < len(argv):
        if argv[i] in opts:
            opts[argv[i]] = int(argv[i + 1])
            i += 2
        else:
            pos.append(argv[i])
            i += 1
    if pos[0] == "gen":
        gen(pos[1], int(pos[2]), opts["--interval-us"], opts["--size"], opts["--dns-every"])
    elif pos[0] == "bitdiff":
        bitdiff(pos[1], pos[2])
    elif pos[0] == "stats":
        stats(pos[1], opts["--window-us"], opts["--sent"])
    else:
        sys.exit("usage: flows.py gen OUT N [...] | stats FILE [...]")


main(sys.argv)
