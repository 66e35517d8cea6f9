"""Test traffic from inside a test namespace: UDP datagrams with DNS-like and plain payloads, bounded.

python send_traffic.py DST_IP COUNT INTERVAL_S
"""

from __future__ import annotations

import socket
import sys
import time


def main(dst: str, count: int, interval_s: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(count):
            sock.sendto(f"test datagram {i:05d}".encode(), (dst, 9999))
            time.sleep(interval_s)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
