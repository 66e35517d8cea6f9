"""SSH-2 transport messages (RFC 4253): banners, key exchange in the clear, then encrypted packets.

tshark parses everything up to each side's NEWKEYS and shows what follows as encrypted packets, so a
session is framed correctly when the plaintext packets are well formed and the rest is random.
"""

from __future__ import annotations

import struct

import numpy as np

MSG_KEXINIT = 20  # SSH message numbers
MSG_NEWKEYS = 21
MSG_KEX_ECDH_INIT = 30
MSG_KEX_ECDH_REPLY = 31
BLOCK = 8  # cipher block size that padding rounds plaintext packets to before keys exist
MIN_PADDING = 4
AEAD_TAG = 16  # chacha20-poly1305 tag after each encrypted packet
SERVER_BANNER = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n"
CLIENT_BANNERS = (
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n",
    b"SSH-2.0-PuTTY_Release_0.80\r\n",
)
KEX_LISTS = (  # kex, host key, ciphers c->s and s->c, MACs both ways, compression both ways, languages both ways
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group16-sha512,ext-info-c",
    "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1",
    "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1",
    "none,zlib@openssh.com",
    "none,zlib@openssh.com",
    "",
    "",
)


def _string(data: bytes) -> bytes:
    return struct.pack("!I", len(data)) + data


def packet(rng: np.random.Generator, payload: bytes) -> bytes:
    """A plaintext binary packet: length, padding length, payload, random padding to a block multiple."""
    pad = BLOCK - (5 + len(payload)) % BLOCK
    if pad < MIN_PADDING:
        pad += BLOCK
    return struct.pack("!IB", 1 + len(payload) + pad, pad) + payload + rng.bytes(pad)


def kexinit(rng: np.random.Generator) -> bytes:
    body = bytes((MSG_KEXINIT,)) + rng.bytes(16) + b"".join(_string(s.encode()) for s in KEX_LISTS) + bytes(5)
    return packet(rng, body)


def ecdh_init(rng: np.random.Generator) -> bytes:
    return packet(rng, bytes((MSG_KEX_ECDH_INIT,)) + _string(rng.bytes(32)))


def ecdh_reply_and_newkeys(rng: np.random.Generator) -> bytes:
    """The server's key exchange reply (ed25519 host key and signature) followed by its NEWKEYS.

    tshark 4.0 parses an ed25519 signature's type but not its body and flags "Decoded 19 bytes"; real
    OpenSSH captures show the same.
    """
    host_key = _string(b"ssh-ed25519") + _string(rng.bytes(32))
    signature = _string(b"ssh-ed25519") + _string(rng.bytes(64))
    reply = bytes((MSG_KEX_ECDH_REPLY,)) + _string(host_key) + _string(rng.bytes(32)) + _string(signature)
    return packet(rng, reply) + newkeys(rng)


def newkeys(rng: np.random.Generator) -> bytes:
    return packet(rng, bytes((MSG_NEWKEYS,)))


def encrypted(rng: np.random.Generator, plaintext_len: int) -> bytes:
    """One chacha20-poly1305 packet: encrypted length, encrypted padded payload, tag."""
    padded = plaintext_len + 1 + MIN_PADDING
    padded += -(padded + 4) % BLOCK
    return rng.bytes(4 + padded + AEAD_TAG)
