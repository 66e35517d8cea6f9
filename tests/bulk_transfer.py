"""A bulk TCP transfer between test namespaces, bounded in size and time.

python bulk_transfer.py serve PORT upload|download BYTES    (run on the peer first)
python bulk_transfer.py connect IP PORT upload|download BYTES
"upload": the connecting client sends BYTES; "download": the server sends them.
"""

from __future__ import annotations

import socket
import sys

CHUNK = b"x" * 65536
TIMEOUT_S = 30


def pump(sock: socket.socket, n_bytes: int) -> None:
    sent = 0
    while sent < n_bytes:
        sent += sock.send(CHUNK[: min(len(CHUNK), n_bytes - sent)])
    sock.shutdown(socket.SHUT_WR)


def drain(sock: socket.socket) -> None:
    while sock.recv(65536):
        pass


def main(argv: list[str]) -> None:
    if argv[0] == "serve":
        port, direction, n_bytes = int(argv[1]), argv[2], int(argv[3])
        with socket.create_server(("0.0.0.0", port)) as server:
            server.settimeout(TIMEOUT_S)
            print("listening", flush=True)
            conn, _ = server.accept()
            with conn:
                conn.settimeout(TIMEOUT_S)
                pump(conn, n_bytes) if direction == "download" else drain(conn)
                drain(conn) if direction == "download" else conn.shutdown(socket.SHUT_WR)
    else:
        ip, port, direction, n_bytes = argv[1], int(argv[2]), argv[3], int(argv[4])
        with socket.create_connection((ip, port), timeout=TIMEOUT_S) as conn:
            pump(conn, n_bytes) if direction == "upload" else drain(conn)
            if direction == "upload":
                drain(conn)


if __name__ == "__main__":
    main(sys.argv[1:])
