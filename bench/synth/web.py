"""HTTP/1.1 messages and TLS 1.3 records as browsers and servers put them on the wire.

TLS content after the ServerHello is encrypted, so random bytes in correctly framed records are
what a capture shows; tshark follows the record framing across TCP segments.
"""

from __future__ import annotations

import struct

import numpy as np

TLS_HANDSHAKE = 0x16  # TLS record content types
TLS_CCS = 0x14
TLS_APP_DATA = 0x17
TLS_MAX_RECORD = 16384 + 17  # largest TLS 1.3 ciphertext body: 16 KiB of data, content type and AEAD tag
TLS_AEAD_OVERHEAD = 17  # inner content type byte plus a 16-byte tag
BULK_RECORD = 16060  # TLS record (header + body) used for bulk transfers: 11 full TCP segments exactly
CIPHER_SUITES = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C)
SIG_ALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)
GROUPS = (0x001D, 0x0017, 0x0018)  # x25519, secp256r1, secp384r1
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
)


def _ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(body)) + body


def _u16_list(values: tuple[int, ...]) -> bytes:
    return struct.pack(f"!H{len(values)}H", 2 * len(values), *values)


def record(content_type: int, body: bytes) -> bytes:
    return struct.pack("!BHH", content_type, 0x0303, len(body)) + body


def client_hello(rng: np.random.Generator, sni: str, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> bytes:
    """A browser's TLS 1.3 ClientHello record naming ``sni``."""
    name = sni.encode()
    alpn_list = b"".join(bytes((len(p),)) + p.encode() for p in alpn)
    exts = b"".join(
        (
            _ext(0x0000, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name),
            _ext(0x0017, b""),
            _ext(0xFF01, b"\x00"),
            _ext(0x000A, _u16_list(GROUPS)),
            _ext(0x000B, b"\x01\x00"),
            _ext(0x0023, b""),
            _ext(0x0010, struct.pack("!H", len(alpn_list)) + alpn_list),
            _ext(0x0005, b"\x01\x00\x00\x00\x00"),
            _ext(0x000D, _u16_list(SIG_ALGS)),
            _ext(0x0033, struct.pack("!HHH", 36, 0x001D, 32) + rng.bytes(32)),
            _ext(0x002D, b"\x01\x01"),
            _ext(0x002B, b"\x04\x03\x04\x03\x03"),
        )
    )
    body = (
        b"\x03\x03"
        + rng.bytes(32)
        + b"\x20"
        + rng.bytes(32)
        + struct.pack(f"!H{len(CIPHER_SUITES)}H", 2 * len(CIPHER_SUITES), *CIPHER_SUITES)
        + b"\x01\x00"
        + struct.pack("!H", len(exts))
        + exts
    )
    return record(TLS_HANDSHAKE, b"\x01" + len(body).to_bytes(3, "big") + body)


def server_flight(rng: np.random.Generator, client_hello_record: bytes, cert_bytes: int) -> bytes:
    """ServerHello (echoing the client's session id), ChangeCipherSpec and the encrypted certificate flight."""
    session_id = client_hello_record[44:76]
    exts = _ext(0x002B, b"\x03\x04") + _ext(0x0033, struct.pack("!HH", 0x001D, 32) + rng.bytes(32))
    body = b"\x03\x03" + rng.bytes(32) + b"\x20" + session_id + b"\x13\x01\x00" + struct.pack("!H", len(exts)) + exts
    hello = record(TLS_HANDSHAKE, b"\x02" + len(body).to_bytes(3, "big") + body)
    return hello + record(TLS_CCS, b"\x01") + app_records(rng, cert_bytes)


def client_finished(rng: np.random.Generator) -> bytes:
    return record(TLS_CCS, b"\x01") + record(TLS_APP_DATA, rng.bytes(32 + TLS_AEAD_OVERHEAD))


def app_records(rng: np.random.Generator, data_bytes: int) -> bytes:
    """Encrypted application data carrying ``data_bytes`` of plaintext, in full-size records."""
    out = []
    while data_bytes > 0:
        n = min(data_bytes, TLS_MAX_RECORD - TLS_AEAD_OVERHEAD)
        out.append(record(TLS_APP_DATA, rng.bytes(n + TLS_AEAD_OVERHEAD)))
        data_bytes -= n
    return b"".join(out)


def bulk_tls_pattern(rng: np.random.Generator, repeats: int) -> bytes:
    """``repeats`` back-to-back application data records of BULK_RECORD bytes: the repeating unit of a TLS download."""
    return b"".join(record(TLS_APP_DATA, rng.bytes(BULK_RECORD - 5)) for _ in range(repeats))


def request(method: str, host: str, path: str, headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> bytes:
    """An HTTP/1.1 request with Host first and Content-Length when there is a body."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers)]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def response_head(
    status: int, reason: str, content_type: str, length: int, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """The status line and headers of an HTTP/1.1 response whose body is ``length`` bytes."""
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Date: Mon, 03 Jun 2024 10:00:00 GMT",
        "Server: nginx",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
