#!/usr/bin/python3
"""Compare divert-defrag's output with what it must be, and check checksums.

  pcapcmp.py GOT WANT [--no-csum]     (pcap or pcapng, tests/stream/capfile.py)
      record for record: time stamp, link header and IP bytes equal; and
      (unless --no-csum) every IPv4 header, UDP and TCP checksum in GOT is
      verified by scapy, independently of divert's code.
  pcapcmp.py contains GOT WHOLE
      every datagram in WHOLE (IP bytes) is in GOT, once.

Prints what differs; exits 1 on any difference.
"""
import os
import sys

from scapy.all import IP, IPv6, UDP, TCP

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stream"))
from capfile import read  # noqa: E402


def records(path):
    """[(time in us, link header, IP bytes)] of a pcap or pcapng file."""
    dlt, recs = read(path)
    hl = {276: 20, 101: 0, 228: 0, 229: 0}[dlt]
    return [(ts, rec[:hl], rec[hl:]) for ts, rec, _ in recs]


def csum_ok(ip):
    """scapy recomputes each checksum; it must equal the one carried."""
    if ip[0] >> 4 == 4:
        p = IP(ip)
        want = p.chksum
        del p.chksum
        if IP(bytes(p)).chksum != want:
            return "IPv4 header checksum"
        layers = (UDP, TCP)
        fresh = lambda q: IP(bytes(q))
    else:
        p = IPv6(ip)
        layers = (UDP, TCP)
        fresh = lambda q: IPv6(bytes(q))
    for l4 in layers:
        if l4 in p and p[l4].chksum not in (None, 0):
            want = p[l4].chksum
            del p[l4].chksum
            if fresh(p)[l4].chksum != want:
                return f"{l4.__name__} checksum"
    return None


def compare(got_path, want_path, check):
    got, want = records(got_path), records(want_path)
    bad = 0
    if len(got) != len(want):
        print(f"{len(got)} records, want {len(want)}")
        bad += 1
    for i, (g, w) in enumerate(zip(got, want)):
        for what, a, b in (("time stamp", g[0], w[0]), ("link header", g[1], w[1]),
                           ("IP bytes", g[2], w[2])):
            if a != b:
                print(f"record {i + 1}: {what} differs" +
                      (f" ({len(a)} bytes, want {len(b)})" if what == "IP bytes" else
                       f" ({a!r} want {b!r})"))
                bad += 1
        if check and g[2] and g[2][0] >> 4 in (4, 6):
            why = csum_ok(g[2])
            if why:
                print(f"record {i + 1}: bad {why}")
                bad += 1
    return bad


def contains(got_path, whole_path):
    got = {}
    for _, _, ip in records(got_path):
        got[ip] = got.get(ip, 0) + 1
    bad = 0
    for i, (_, _, ip) in enumerate(records(whole_path)):
        if got.get(ip, 0) != 1:
            bad += 1
            if bad <= 5:
                print(f"datagram {i + 1} of {whole_path} written {got.get(ip, 0)} times")
    if bad:
        print(f"{bad} datagrams missing or repeated")
    return bad


def main():
    if sys.argv[1] == "contains":
        sys.exit(1 if contains(sys.argv[2], sys.argv[3]) else 0)
    sys.exit(1 if compare(sys.argv[1], sys.argv[2], "--no-csum" not in sys.argv) else 0)


if __name__ == "__main__":
    main()
