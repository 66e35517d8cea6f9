"""Keep the analyzer's own dashboard traffic out of live capture.

A browser polling the dashboard on the captured interface is a regular, same-sized conversation
that the beacon detector rightly calls a check-in (issue 15: ``c2_beacon`` against
127.0.0.1:8064). The analyzer never analyses it: the capture filter leaves out TCP to and from the
dashboard's port on the addresses it serves on (every address of this machine when it binds a
wildcard address). Only the dashboard's own socket is matched, so this machine's connections to
the same port number elsewhere are still captured.
"""

from __future__ import annotations

import ipaddress
import socket

import psutil

WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # bind every address of the machine


def local_addresses() -> list[str]:
    """Every IPv4 and IPv6 address of this machine's interfaces (loopback included), sorted."""
    found = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                found.add(address.address.split("%")[0])  # fe80::1%eth0: the scope is not part of the address
    return sorted(found, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))


def served_addresses(host: str) -> list[str]:
    """The addresses a dashboard bound to ``host`` answers on."""
    if host in WILDCARD_HOSTS:
        return local_addresses()
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []  # the dashboard cannot bind it either; its own error says so
    return sorted({info[4][0].split("%")[0] for info in infos})


def without_dashboard(capture_filter: str | None, host: str, port: int) -> str | None:
    """``capture_filter`` (None: everything) minus TCP to and from the dashboard at ``host:port``.

    ``port`` 0 (a port picked at start) is not known when the capture opens: nothing is left out.
    """
    addresses = served_addresses(host) if port else []
    if not addresses:
        return capture_filter
    own = (
        f"tcp and ((src port {port} and ({_qualified('src', addresses)})) "
        f"or (dst port {port} and ({_qualified('dst', addresses)})))"
    )
    return f"({capture_filter}) and not ({own})" if capture_filter else f"not ({own})"


def _qualified(direction: str, addresses: list[str]) -> str:
    return " or ".join(f"{direction} host {a}" for a in addresses)
