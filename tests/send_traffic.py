"""Test traffic, bounded: UDP datagrams from inside a test namespace (python send_traffic.py DST_IP COUNT
INTERVAL_S), and the ``udp_traffic`` fixture that sends datagrams to a port on 127.0.0.1 while a test runs.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest

DATAGRAM_INTERVAL_S = 0.05
MAX_DATAGRAMS = 2400  # two minutes at most, even if the test hangs


def main(dst: str, count: int, interval_s: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(count):
            sock.sendto(f"test datagram {i:05d}".encode(), (dst, 9999))
            time.sleep(interval_s)


@pytest.fixture
def udp_traffic() -> Iterator[int]:
    """A free UDP port on 127.0.0.1 that a thread sends datagrams to until the test ends."""
    if os.geteuid() != 0:
        pytest.skip("live capture on lo needs root (sudo ./run-tests.sh)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        stop = threading.Event()

        def send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for i in range(MAX_DATAGRAMS):
                    if stop.wait(DATAGRAM_INTERVAL_S):
                        return
                    sock.sendto(f"kill test {i}".encode(), ("127.0.0.1", port))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        yield port
        stop.set()
        sender.join(timeout=5)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
