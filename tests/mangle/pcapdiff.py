#!/usr/bin/python3
"""pcapdiff.py A B: compare two captures record by record (bytes only,
time stamps aside): classic pcap (either byte order, micro- or nanosecond)
or pcapng (either byte order; the first interface's link type).  Prints
one line per differing record: index, length and the differing byte
offsets.  Exit 0 when every record is byte-identical."""
import os
import sys


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stream"))
from capfile import read  # noqa: E402


def records(path):
    try:
        linktype, recs = read(path)
    except ValueError as e:
        sys.exit("%s: %s" % (path, e))
    return linktype, [(data, wire) for _, data, wire in recs]


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
