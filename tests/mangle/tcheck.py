#!/usr/bin/python3
"""tcheck.py: check divert-mangle's output with tshark, an independent decoder.

  tcheck.py verify FILE         every checksum tshark can verify is good
                                (IPv4 header, TCP, UDP, UDP-Lite, ICMP,
                                ICMPv6, IGMP, SCTP CRC32c; fragments are
                                reassembled, so the L4 checksum of a
                                fragmented datagram is verified too)
  tcheck.py compare OURS THEIRS the decoded header fields of both files are
                                equal packet by packet (time stamps aside),
                                and no checksum good in THEIRS is bad in OURS
  tcheck.py crcerr FILE         for each whole SCTP packet: its ports and the
                                error of its CRC32c (stored XOR right), which
                                is 0 when the CRC is right (computed here,
                                with scapy's decoding, not with tshark)

Prints one line per problem and a summary; exit 0 when there is none.
"""
import subprocess
import sys

PREFS = ['ip.check_checksum:TRUE', 'tcp.check_checksum:TRUE',
         'udp.check_checksum:TRUE', 'udplite.check_checksum:TRUE',
         'sctp.checksum:CRC-32C', 'udplite.ignore_checksum_coverage:FALSE']
STATUS = ['ip.checksum.status', 'tcp.checksum.status', 'udp.checksum.status',
          'icmp.checksum.status', 'icmpv6.checksum.status',
          'igmp.checksum.status', 'sctp.checksum.status']
FIELDS = ['frame.len', 'frame.cap_len', 'eth.type', 'mpls.label', 'mpls.ttl',
          'ip.version', 'ip.hdr_len', 'ip.dsfield', 'ip.len', 'ip.id', 'ip.flags',
          'ip.frag_offset', 'ip.ttl', 'ip.proto', 'ip.src', 'ip.dst', 'ip.opt.type',
          'ipv6.tclass', 'ipv6.flow', 'ipv6.plen', 'ipv6.nxt', 'ipv6.hlim',
          'ipv6.src', 'ipv6.dst', 'ipv6.fraghdr.offset', 'ipv6.fraghdr.ident',
          'tcp.srcport', 'tcp.dstport', 'tcp.seq_raw', 'tcp.ack_raw', 'tcp.flags',
          'tcp.window_size_value', 'tcp.options.mss_val', 'tcp.len',
          'udp.srcport', 'udp.dstport', 'udp.length', 'icmp.type', 'icmp.code',
          'icmpv6.type', 'icmpv6.code', 'sctp.srcport', 'sctp.dstport',
          'data.len']
BAD, GOOD = '0', '1'


def tshark(path, fields):
    cmd = ['tshark', '-n', '-r', path, '-T', 'fields', '-E', 'occurrence=a',
           '-E', 'aggregator=,']
    for p in PREFS:
        cmd += ['-o', p]
    for f in fields:
        cmd += ['-e', f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.split('\t') for line in out.splitlines()]


def verify(path):
    rows = tshark(path, ['frame.number'] + STATUS)
    good = bad = 0
    for row in rows:
        for name, val in zip(STATUS, row[1:]):
            for v in filter(None, val.split(',')):
                if v == BAD:
                    bad += 1
                    print('packet %s: bad %s' % (row[0], name.split('.')[0]))
                elif v == GOOD:
                    good += 1
    print('# %s: %d packets, %d checksums good, %d bad' % (path, len(rows), good, bad))
    return bad == 0 and good > 0


def compare(ours, theirs):
    a, b = tshark(ours, FIELDS + STATUS), tshark(theirs, FIELDS + STATUS)
    n = len(FIELDS)
    problems = both = only_ours = 0
    if len(a) != len(b):
        print('packet counts differ: %d %d' % (len(a), len(b)))
        return False
    for i, (ra, rb) in enumerate(zip(a, b), 1):
        for name, va, vb in zip(FIELDS, ra[:n], rb[:n]):
            if va != vb:
                problems += 1
                print('packet %d: %s %s, reference %s' % (i, name, va, vb))
        for name, va, vb in zip(STATUS, ra[n:], rb[n:]):
            for sa, sb in zip(va.split(','), vb.split(',')):
                if sb == GOOD and sa != GOOD:
                    problems += 1
                    print('packet %d: %s good in the reference, not ours' %
                          (i, name.split('.')[0]))
                elif sa == GOOD:
                    both += sb == GOOD
                    only_ours += sb != GOOD
    print('# %d packets: %d field or checksum differences; checksums good in both %d, '
          'good only in ours %d' % (len(a), problems, both, only_ours))
    return problems == 0


def crc32c(data):
    crc = 0xffffffff
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff


def crcerr(path):
    from scapy.all import IP, IPv6, IPv6ExtHdrFragment, rdpcap
    from scapy.layers.sctp import SCTP
    for i, pkt in enumerate(rdpcap(path), 1):
        if SCTP not in pkt or IPv6ExtHdrFragment in pkt or \
                (IP in pkt and (pkt[IP].flags.MF or pkt[IP].frag)):
            continue
        ip = pkt[IP] if IP in pkt else pkt[IPv6]
        raw = bytes(pkt[SCTP])
        raw = raw[:ip.len - ip.ihl * 4] if IP in pkt else raw[:ip.plen - (len(bytes(ip.payload)) - len(raw))]
        stored = int.from_bytes(raw[8:12], 'little')
        right = crc32c(raw[:8] + bytes(4) + raw[12:])
        print('packet %d: ports %d %d, crc error 0x%08x' %
              (i, pkt[SCTP].sport, pkt[SCTP].dport, stored ^ right))
    return True


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'crcerr':
        sys.exit(0 if crcerr(sys.argv[2]) else 1)
    if len(sys.argv) == 3 and sys.argv[1] == 'verify':
        sys.exit(0 if verify(sys.argv[2]) else 1)
    if len(sys.argv) == 4 and sys.argv[1] == 'compare':
        sys.exit(0 if compare(sys.argv[2], sys.argv[3]) else 1)
    sys.exit(__doc__)
