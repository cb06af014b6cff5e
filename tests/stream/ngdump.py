#!/usr/bin/python3
"""ngdump.py - an independent decoder of the divert stream's pcapng blocks.

    ngdump.py [FILE]     (stdin by default)

One line a packet, fields space-separated as key=value:
    ifid ifname ifindex dir port id hook mark oifindex oifname holder uid gid
    caplen origlen ts linktype
A field the record does not carry is '-'.  Written from the pcapng
specification (draft-ietf-opsawg-pcapng) and man/divert.7's table, with no
code shared with the C reader: it checks the writer independently.
Exits 1 on a structural error (lengths, magic), after what came before.
"""
import struct
import sys

PEN = 32473
DIRS = {0: "-", 1: "in", 2: "out", 3: "-"}


def options(body, bo):
    """Yield (code, value) for each option in body (byte order bo)."""
    o = 0
    while o + 4 <= len(body):
        code, ln = struct.unpack(bo + "HH", body[o:o + 4])
        if code == 0:
            return
        val = body[o + 4:o + 4 + ln]
        if len(val) != ln:
            raise ValueError("option runs past its block")
        yield code, val
        o += 4 + ((ln + 3) & ~3)


def tlvs(val, bo):
    """The TLVs of our custom option, or nothing when the PEN is another's."""
    if len(val) < 4 or struct.unpack(bo + "I", val[:4])[0] != PEN:
        return
    t = val[4:]
    while len(t) >= 2:
        typ, ln = t[0], t[1]
        yield typ, t[2:2 + ln]
        t = t[2 + ln:]


def main():
    f = open(sys.argv[1], "rb") if len(sys.argv) > 1 else sys.stdin.buffer
    data = f.read()
    bo = "<"
    ifs = []
    o = 0
    while o < len(data):
        if len(data) - o < 12:
            sys.exit("truncated block at %d" % o)
        btype = struct.unpack("<I", data[o:o + 4])[0]
        if btype == 0x0A0D0D0A:
            magic = data[o + 8:o + 12]
            bo = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">" if magic == b"\x1a\x2b\x3c\x4d" else None
            if bo is None:
                sys.exit("bad byte-order magic at %d" % o)
            ifs = []
        btype, blen = struct.unpack(bo + "II", data[o:o + 8])
        if blen < 12 or blen % 4 or o + blen > len(data):
            sys.exit("bad block length %d at %d" % (blen, o))
        if struct.unpack(bo + "I", data[o + blen - 4:o + blen])[0] != blen:
            sys.exit("trailing length differs at %d" % o)
        body = data[o + 8:o + blen - 4]
        if btype == 1:
            lt, _, snap = struct.unpack(bo + "HHI", body[:8])
            i = {"linktype": lt, "ifname": "-", "ifindex": "-"}
            for code, val in options(body[8:], bo):
                if code == 2:
                    i["ifname"] = val.split(b"\0")[0].decode()
                elif code in (2989, 19373):
                    for typ, v in tlvs(val, bo):
                        if typ == 8 and len(v) == 4:
                            i["ifindex"] = struct.unpack(bo + "I", v)[0]
            ifs.append(i)
        elif btype == 6:
            ifid, hi, lo, cap, orig = struct.unpack(bo + "IIIII", body[:20])
            r = {"ifid": ifid, "dir": "-", "port": "-", "id": "-", "hook": "-", "mark": "-",
                 "oifindex": "-", "oifname": "-", "holder": "-", "uid": "-", "gid": "-"}
            r.update({k: ifs[ifid][k] for k in ("ifname", "ifindex", "linktype")})
            r["caplen"], r["origlen"] = cap, orig
            ts = hi << 32 | lo
            r["ts"] = "%d.%06d" % (ts // 1000000, ts % 1000000)
            for code, val in options(body[20 + ((cap + 3) & ~3):], bo):
                if code == 2:
                    r["dir"] = DIRS[struct.unpack(bo + "I", val)[0] & 3]
                elif code == 5:
                    r["id"] = struct.unpack(bo + "Q", val)[0]
                elif code == 6:
                    r["port"] = struct.unpack(bo + "I", val)[0]
                elif code in (2989, 19373):
                    for typ, v in tlvs(val, bo):
                        if typ == 1:
                            r["hook"] = v[0]
                        elif typ == 2:
                            r["mark"] = "0x%x" % struct.unpack(bo + "I", v)[0]
                        elif typ == 3:
                            r["oifindex"] = struct.unpack(bo + "I", v)[0]
                        elif typ == 4:
                            r["oifname"] = v.decode()
                        elif typ == 5:
                            r["holder"] = "0x%x" % struct.unpack(bo + "Q", v)[0]
                        elif typ == 6:
                            r["uid"] = struct.unpack(bo + "I", v)[0]
                        elif typ == 7:
                            r["gid"] = struct.unpack(bo + "I", v)[0]
            print(" ".join("%s=%s" % (k, r[k]) for k in (
                "ifid", "ifname", "ifindex", "dir", "port", "id", "hook", "mark", "oifindex",
                "oifname", "holder", "uid", "gid", "caplen", "origlen", "ts", "linktype")))
        o += blen


if __name__ == "__main__":
    main()
