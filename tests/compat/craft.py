"""craft.py A_ADDR B_ADDR: a Python divert program, written for FreeBSD.

On a divert socket (FreeBSD's IPPROTO_DIVERT, 258; run it under divert-run)
it sends two ICMP echo requests made by hand, headers and checksums included:
one A -> B out (sendto 0.0.0.0: "send it on its way out"), identifier 0x1111,
and one B -> A in, as if it came from B to the interface that has A_ADDR
(sendto A_ADDR), identifier 0x2222.  Prints "out N" and "in N", the bytes
sendto() took.
"""
import socket
import struct
import sys

IPPROTO_DIVERT = 258


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def echo_request(src, dst, ident, seq):
    payload = b"divert compat craft.py " + bytes(range(32))
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), ident, 0x4000, 64,
                     socket.IPPROTO_ICMP, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + icmp


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: craft.py A_ADDR B_ADDR\n")
        return 64
    a, b = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_DIVERT)
    n = s.sendto(echo_request(a, b, 0x1111, 1), ("0.0.0.0", 0))
    print("out", n, flush=True)
    n = s.sendto(echo_request(b, a, 0x2222, 1), (a, 0))
    print("in", n, flush=True)
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
