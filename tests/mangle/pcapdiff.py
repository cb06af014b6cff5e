#!/usr/bin/python3
"""pcapdiff.py A B: compare two pcap files record by record (bytes only,
time stamps aside; either byte order, micro- or nanosecond).  Prints one
line per differing record: index, length and the differing byte offsets.
Exit 0 when every record is byte-identical."""
import struct
import sys


def records(path):
    with open(path, 'rb') as f:
        data = f.read()
    magic = data[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        end = '<'
    elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        end = '>'
    else:
        sys.exit('%s: not a classic pcap file' % path)
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
