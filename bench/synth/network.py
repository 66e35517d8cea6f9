"""The simulated site: hosts with addresses, MACs, TTLs and port counters, and how frames cross the LAN.

A capture taken at the site's uplink sees LAN hosts with their own MACs and every external host
behind the gateway's MAC, arriving with a TTL already decremented by the hops in between.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from .packets import ip4

LINUX_TTL = 64  # initial IPv4 TTL of Linux/macOS hosts
WINDOWS_TTL = 128  # initial IPv4 TTL of Windows hosts
EPHEMERAL_LINUX = (32768, 60999)  # Linux ip_local_port_range
EPHEMERAL_WINDOWS = (49152, 65535)  # Windows dynamic port range
LOCAL_MAC_OUI = b"\x52\x54\x00"  # locally administered prefix (QEMU's): LAN hosts get MACs under it
VENDOR_OUIS = (b"\x3c\x52\x82", b"\xf0\x1f\xaf", b"\x00\x1b\x21", b"\xa4\xbb\x6d", b"\x8c\x16\x45")  # PC NIC vendors


@dataclass(eq=False)
class Host:
    """One address the capture sees; ``local`` hosts sit on the LAN, others behind the gateway."""

    name: str
    ip: str
    mac: bytes
    ttl: int  # TTL the capture sees on this host's packets
    local: bool = True
    port_range: tuple[int, int] = EPHEMERAL_LINUX
    next_port: int = 40000
    ident: int = 0
    ip4: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.ip4 = ip4(self.ip)

    def port(self) -> int:
        """The next ephemeral source port (sequential, so concurrent flows never share a 5-tuple)."""
        low, high = self.port_range
        self.next_port = self.next_port + 1 if self.next_port < high else low
        return self.next_port

    def ip_id(self) -> int:
        self.ident = (self.ident + 1) & 0xFFFF
        return self.ident


def stable_hash(text: str) -> int:
    """A hash that is the same in every run (Python's ``hash`` is salted)."""
    return zlib.crc32(text.encode())


def external_address(name: str) -> bytes:
    """The address in 198.18.0.0/15 that an Internet name resolves to, derived from the name."""
    h = stable_hash(name)
    return bytes((198, 18 + (h & 1), (h >> 1) % 256, 1 + (h >> 9) % 254))


class Network:
    """The address plan of one site: LAN ``10.<site>.0.0/16``, servers in .0.x, clients in .1.x onwards."""

    def __init__(self, site: int, rng: np.random.Generator) -> None:
        self.prefix = f"10.{site}"
        self.rng = rng
        self.hosts: dict[str, Host] = {}
        self.externals: dict[str, Host] = {}
        self.gateway = self.local("gateway", f"{self.prefix}.0.1", LINUX_TTL)

    def _mac(self, vendor: bool) -> bytes:
        oui = VENDOR_OUIS[int(self.rng.integers(len(VENDOR_OUIS)))] if vendor else LOCAL_MAC_OUI
        return oui + self.rng.integers(0, 256, 3, dtype=np.uint8).tobytes()

    def local(self, name: str, ip: str, ttl: int = LINUX_TTL, *, windows: bool = False) -> Host:
        """Add a LAN host with a fresh MAC."""
        ports = EPHEMERAL_WINDOWS if windows else EPHEMERAL_LINUX
        host = Host(name, ip, self._mac(vendor=True), ttl, True, ports, int(self.rng.integers(*ports)))
        host.ident = int(self.rng.integers(0, 65536))
        self.hosts[ip] = host
        return host

    def clients(self, count: int, windows_share: float = 0.6) -> list[Host]:
        """``count`` workstations from ``<prefix>.1.10`` on, a mix of Windows and Linux/macOS."""
        out = []
        for i in range(count):
            ip = f"{self.prefix}.{1 + i // 240}.{10 + i % 240}"
            windows = bool(self.rng.random() < windows_share)
            out.append(self.local(f"pc{i:02d}", ip, WINDOWS_TTL if windows else LINUX_TTL, windows=windows))
        return out

    def external(self, name: str, ip: str | None = None) -> Host:
        """The host behind the gateway serving ``name`` (an address in 198.18.0.0/15 unless given)."""
        key = ip or name
        host = self.externals.get(key)
        if host is None:
            ip = ip or ".".join(map(str, external_address(name)))
            initial = LINUX_TTL if stable_hash(ip) % 3 else WINDOWS_TTL
            ttl = initial - 8 - stable_hash(ip + "hops") % 12
            host = Host(name, ip, self.gateway.mac, ttl, False)
            host.ident = stable_hash(ip) & 0xFFFF
            self.externals[key] = host
        return host

    def macs(self, src: Host, dst: Host) -> tuple[bytes, bytes]:
        """(source MAC, destination MAC) of a frame from ``src`` to ``dst`` as the capture sees it."""
        return (src.mac if src.local else self.gateway.mac), (dst.mac if dst.local else self.gateway.mac)
