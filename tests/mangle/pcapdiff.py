#!/usr/bin/python3
"""pcapdiff.py A B: compare two captures record by record (bytes only,
time stamps aside): classic pcap (either byte order, micro- or nanosecond)
or pcapng (either byte order; the first interface's link type).  Prints
one line per differing record: index, length and the differing byte
offsets.  Exit 0 when every record is byte-identical."""
import struct
import sys


def ng_records(data):
    """pcapng: the packets of every EPB (and SPB), as classic records."""
    off, out, linktype, end = 0, [], None, '<'
    while off + 12 <= len(data):
        if data[off:off + 4] == b'\x0a\x0d\x0d\x0a':
            end = '<' if data[off + 8:off + 12] == b'\x4d\x3c\x2b\x1a' else '>'
        btype, blen = struct.unpack(end + 'II', data[off:off + 8])
        if blen < 12:
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1 and linktype is None:
            linktype = struct.unpack(end + 'H', body[:2])[0]
        elif btype == 6:
            caplen, wirelen = struct.unpack(end + 'II', body[12:20])
            out.append((body[20:20 + caplen], wirelen))
        elif btype == 3:
            wirelen = struct.unpack(end + 'I', body[:4])[0]
            out.append((body[4:4 + wirelen], wirelen))
        off += blen
    return linktype, out


def records(path):
    with open(path, 'rb') as f:
        data = f.read()
    magic = data[:4]
    if magic == b'\x0a\x0d\x0d\x0a':
        return ng_records(data)
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        end = '<'
    elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        end = '>'
    else:
        sys.exit('%s: neither pcap nor pcapng' % path)
    linktype = struct.unpack(end + 'I', data[20:24])[0]
    off, out = 24, []
    while off + 16 <= len(data):
        _, _, caplen, wirelen = struct.unpack(end + 'IIII', data[off:off + 16])
        out.append((data[off + 16:off + 16 + caplen], wirelen))
        off += 16 + caplen
    return linktype, out


def main():
    la, a = records(sys.argv[1])
    lb, b = records(sys.argv[2])
    bad = 0
    if la != lb:
        print('link types differ: %d %d' % (la, lb))
        bad += 1
    if len(a) != len(b):
        print('record counts differ: %d %d' % (len(a), len(b)))
        bad += 1
    for i, ((ra, wa), (rb, wb)) in enumerate(zip(a, b)):
        if ra == rb and wa == wb:
            continue
        bad += 1
        offs = [k for k in range(min(len(ra), len(rb))) if ra[k] != rb[k]]
        print('record %d: len %d/%d wire %d/%d bytes differ at %s' %
              (i + 1, len(ra), len(rb), wa, wb, offs[:12]))
    sys.exit(1 if bad else 0)


main()
