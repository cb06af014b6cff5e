"""capfile.py - the records of a capture file, classic pcap or pcapng.

    from capfile import read
    linktype, records = read(path)     # records: [(time_us, data, wirelen), ...]

The tests' own decoder (struct only, no code shared with divert's reader):
classic pcap in either byte order, micro- or nanosecond; pcapng in either
byte order, several sections, EPBs and SPBs, if_tsresol 10^-n; the link
type of the first interface.  Raises ValueError on what it cannot read.
"""
import struct

LE_NG = b"\x4d\x3c\x2b\x1a"


def _classic(d):
    magic = d[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        bo = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        bo = ">"
    else:
        raise ValueError("neither pcap nor pcapng")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(bo + "I", d[20:24])[0]
    o, out = 24, []
    while o + 16 <= len(d):
        sec, frac, cap, wire = struct.unpack(bo + "IIII", d[o:o + 16])
        out.append((sec * 1000000 + (frac // 1000 if nano else frac), d[o + 16:o + 16 + cap], wire))
        o += 16 + cap
    return linktype, out


def _tsresol(body, bo):
    """Units per second of an IDB (its options after 8 bytes)."""
    o = 8
    while o + 4 <= len(body):
        code, ln = struct.unpack(bo + "HH", body[o:o + 4])
        if code == 0:
            break
        if code == 9 and ln == 1:
            r = body[o + 4]
            return 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
        o += 4 + ((ln + 3) & ~3)
    return 1000000


def _pcapng(d):
    bo, o, out, linktype, units = "<", 0, [], None, []
    while o + 12 <= len(d):
        if d[o:o + 4] == b"\x0a\x0d\x0d\x0a":
            bo = "<" if d[o + 8:o + 12] == LE_NG else ">"
            units = []
        btype, blen = struct.unpack(bo + "II", d[o:o + 8])
        if blen < 12 or blen % 4 or o + blen > len(d):
            raise ValueError("bad block length %d at %d" % (blen, o))
        body = d[o + 8:o + blen - 4]
        if btype == 1:
            if linktype is None:
                linktype = struct.unpack(bo + "H", body[:2])[0]
            units.append(_tsresol(body, bo))
        elif btype == 6:
            ifid, hi, lo, cap, wire = struct.unpack(bo + "IIIII", body[:20])
            out.append(((hi << 32 | lo) * 1000000 // units[ifid], body[20:20 + cap], wire))
        elif btype == 3:
            wire = struct.unpack(bo + "I", body[:4])[0]
            out.append((0, body[4:4 + wire], wire))
        o += blen
    return linktype, out


def read(path):
    with open(path, "rb") as f:
        d = f.read()
    return _pcapng(d) if d[:4] == b"\x0a\x0d\x0d\x0a" else _classic(d)
