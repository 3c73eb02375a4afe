#!/usr/bin/env python3
"""A DNS server that knows no name: every query gets NXDOMAIN at once (UDP and TCP).

The SSH test hosts (scripts/testhosts.sh) run in network namespaces with no route to the
internet, so their engines' upstream DNS never answers: a lookup of a name a lab container
cannot resolve would hang for the resolver's whole timeout (6-10 s) instead of failing at once
as it does on a real classroom machine, whose DNS says "no such name". Each test host's
dockerd is given this server (on the host side of its veth) as its upstream:

    python3 scripts/nxdns.py ADDRESS PIDFILE

It listens on ADDRESS:53 only (an address of a namespace link the test script made).
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading


def answer(query: bytes) -> bytes | None:
    """The NXDOMAIN reply to a query: its id and question, rcode 3, recursion available."""
    if len(query) < 12:
        return None
    (qid, flags, qdcount) = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:  # a response, not a query
        return None
    end = 12
    for _ in range(qdcount):
        while end < len(query) and query[end] != 0:
            end += query[end] + 1
        end += 5  # the terminating zero, QTYPE and QCLASS
    rd = flags & 0x0100
    reply_flags = 0x8000 | 0x0400 | rd | 0x0080 | 3  # QR, AA, RD copied, RA, NXDOMAIN
    return struct.pack("!HHHHHH", qid, reply_flags, qdcount, 0, 0, 0) + query[12:end]


def serve_udp(address: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 53))
        while True:
            data, peer = sock.recvfrom(4096)
            reply = answer(data)
            if reply is not None:
                sock.sendto(reply, peer)


def serve_tcp(address: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, 53))
        sock.listen(16)
        while True:
            conn, _ = sock.accept()
            with conn:
                conn.settimeout(2)
                try:
                    size = struct.unpack("!H", conn.recv(2))[0]
                    reply = answer(conn.recv(size))
                    if reply is not None:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, struct.error):
                    continue


def main() -> None:
    address, pidfile = sys.argv[1], sys.argv[2]
    threading.Thread(target=serve_tcp, args=(address,), daemon=True).start()
    with open(pidfile, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    serve_udp(address)


if __name__ == "__main__":
    main()
