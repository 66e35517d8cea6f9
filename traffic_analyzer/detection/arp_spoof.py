"""ARP spoofing / man-in-the-middle: a MAC address that claims an IP address another MAC holds.

Who owns an address comes from the binding history: the MAC that held it first keeps it while it
keeps answering for it. Another MAC claiming it meanwhile is the spoofer; the owner answering for its
own address again (the gateway and the victims do, all through an attack) is not. Two hand-overs are
legitimate and never raised: a VRRP/keepalived virtual MAC taking an address over, and a clean
fail-over, in which the new MAC announces itself with a gratuitous ARP and the old one stays silent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .params import POSITIVE

ARP_REQUEST, ARP_REPLY = 1, 2
MAX_TRACKED = 50_000  # IP and MAC bindings remembered at most; the oldest are forgotten first
SCORE_FLOOR = 50.0  # a MAC claiming a second address at chosen victims: suspicious, not proof
CHANGED_BINDING = 20.0  # added when the address is held by another MAC (arpwatch's "flip flop")
RELAYING = 15.0  # added when the MAC also forwards other hosts' packets: a man in the middle
SOLICITED_S = 5.0  # a reply this soon after the victim asked for that address answers it (hosts answer in ms)
VIRTUAL_ROUTER_MACS = ("00:00:5e:00:01:", "00:00:5e:00:02:")  # VRRP (RFC 5798) IPv4 and IPv6 virtual MACs


def _victims_by_ip() -> defaultdict[str, set[str]]:
    """A module-level factory, not a lambda: detectors are pickled to the detection worker."""
    return defaultdict(set)


def is_virtual_router(mac: str) -> bool:
    """A VRRP/keepalived virtual MAC: the address it claims moves between routers by design."""
    return mac.lower().startswith(VIRTUAL_ROUTER_MACS)


class ArpSpoofDetector(Detector):
    """Flags a MAC that claims, in ARP, an address another MAC holds, or that it pushes at victims.

    Each address has a holder: the first MAC seen claiming it. A claim by another MAC is a spoofed
    claim, unless the claimant is a VRRP virtual MAC, or announces itself with a gratuitous ARP (a
    fail-over); a fail-over whose old holder answers for the address again (not gratuitously) was a
    take-over, and the newcomer's claims since then are spoofed. When the first MAC seen only pushed
    the address at victims, unasked, while it has an address of its own, the MAC that answers for it
    owns it (the capture began mid-attack). Without a holder seen, a MAC claiming two or more
    addresses, one in unsolicited replies aimed at victims (unasked within SOLICITED_S: a server with
    several addresses only answers requests), is raised too. One alert per spoofing MAC, naming the
    victims it aimed its claims at, spanning its spoofed claims only.

    Parameters
    ----------
    window_s : float
        How long a binding is remembered.
    """

    name = "arp_spoof"
    _parameter_constraints = {"window_s": POSITIVE}

    def __init__(self, window_s: float = 3600.0) -> None:
        self.window_s = window_s
        self._holder: dict[str, tuple[str, float]] = {}  # ip -> (holding mac, its last claim)
        self._handover: dict[str, tuple[str, float]] = {}  # ip -> (previous holder, time of the gratuitous take-over)
        self._claims: dict[str, dict[str, float]] = defaultdict(dict)  # mac -> ip -> last claim time
        self._targeted: dict[str, dict[str, set[str]]] = defaultdict(_victims_by_ip)  # mac -> ip -> victims
        self._pushed: dict[str, dict[str, list[float]]] = defaultdict(dict)  # mac -> ip -> [first, last] push
        self._spoofed: dict[str, dict[str, list]] = defaultdict(dict)  # mac -> ip -> [holder mac, first, last]
        self._asked: dict[tuple[str, str], float] = {}  # (requester ip, asked ip) -> last request time

    def detect(self, window: WindowData) -> list[Alert]:
        touched = set()
        for row in _arp_rows(window.packets):
            mac, ip = row.arp_src_mac, row.arp_src_ip
            if pd.isna(mac) or pd.isna(ip) or ip == "0.0.0.0":
                continue
            victim = row.arp_dst_ip if isinstance(row.arp_dst_ip, str) and row.arp_dst_ip != ip else None
            is_reply = not pd.isna(row.arp_op) and row.arp_op == ARP_REPLY  # an opcode too big for the column is null
            pushed = False
            if not is_reply and victim is not None:
                self._asked[(ip, victim)] = row.ts
            elif is_reply and victim is not None:
                if row.ts - self._asked.get((victim, ip), -SOLICITED_S - 1) > SOLICITED_S:
                    self._targeted[mac][ip].add(victim)
                    span = self._pushed[mac].setdefault(ip, [row.ts, row.ts])
                    span[1] = row.ts
                    pushed = True
            self._bind(mac, ip, row.ts, gratuitous=victim is None, pushed=pushed)
            self._claims[mac][ip] = row.ts
            touched.add(mac)
        self._forget(window.end)
        return [a for a in (self._judge(mac, window) for mac in touched) if a is not None]

    def _bind(self, mac: str, ip: str, ts: float, gratuitous: bool, pushed: bool) -> None:
        """Update who holds ``ip`` after ``mac`` claimed it; record the claim if it is spoofed."""
        held = self._holder.get(ip)
        if held is None or held[0] == mac:
            self._holder[ip] = (mac, ts)
            return
        holder = held[0]
        previous = self._handover.get(ip)
        if previous is not None and previous[0] == mac and not gratuitous:
            # The old holder answers again: the gratuitous "fail-over" was a take-over, spoofed since then.
            self._spoof(holder, ip, mac, previous[1])
            self._handover.pop(ip)
            self._holder[ip] = (mac, ts)
        elif ip in self._pushed.get(holder, {}) and len(self._claims.get(holder, {})) >= 2 and not pushed:
            # The first MAC seen only pushed this address at victims; the one answering for it owns it.
            self._spoof(holder, ip, mac, self._pushed[holder][ip][0])
            self._holder[ip] = (mac, ts)
        elif is_virtual_router(mac) or gratuitous:
            self._handover[ip] = (holder, ts)
            self._holder[ip] = (mac, ts)
        else:
            self._spoof(mac, ip, holder, ts)

    def _spoof(self, mac: str, ip: str, holder: str, ts: float) -> None:
        spoofed = self._spoofed[mac].setdefault(ip, [holder, ts, ts])
        spoofed[1], spoofed[2] = min(spoofed[1], ts), max(spoofed[2], self._claims.get(mac, {}).get(ip, ts), ts)

    def _judge(self, mac: str, window: WindowData) -> Alert | None:
        if is_virtual_router(mac):
            return None
        claims = self._claims.get(mac, {})
        changed = self._spoofed.get(mac, {})
        targeted = {ip for ip, victims in self._targeted.get(mac, {}).items() if victims}
        if changed:
            spoofed = set(changed)
            times = [t for _, first, last in changed.values() for t in (first, last)]
        elif len(claims) >= 2 and targeted:
            # Of the addresses it claims, the ones it pushes at chosen victims are the borrowed ones;
            # the one it also uses in broadcast requests of its own is its real address.
            spoofed = targeted if len(targeted) < len(claims) else targeted - {max(claims, key=claims.get)}
            times = [t for ip in spoofed for t in self._pushed[mac].get(ip, ())]
        else:
            return None
        if not spoofed or not times:
            return None
        own = sorted(set(claims) - spoofed)
        victims = sorted({v for ip in spoofed for v in self._targeted[mac].get(ip, set())} - set(own)) or ["many"]
        relayed = _relayed_sources(window.packets, mac, set(claims))
        score = SCORE_FLOOR + (CHANGED_BINDING if changed else 0.0) + (RELAYING if relayed else 0.0)
        owners = {ip: holder for ip, (holder, _, _) in changed.items()}
        parts = [f"MAC {mac}" + (f" ({', '.join(own)})" if own else "")]
        parts.append(f"claimed {', '.join(sorted(spoofed))} in ARP")
        if changed:
            parts.append(
                "which " + ("is" if len(owners) == 1 else "are") + " held by " + ", ".join(sorted(set(owners.values())))
            )
        parts.append(f"and aimed the claims at {', '.join(victims)}")
        text = (
            " ".join(parts)
            + (f"; it relays IP traffic of {len(relayed)} other hosts" if relayed else "")
            + ("; a host normally answers ARP only for its own address.")
        )
        return Alert(
            kind="arp_spoof",
            attacker=own[0] if own else mac,
            victims=victims,
            start=min(times),
            end=max(times),
            score=min(100.0, score),
            explanation=text,
            evidence={
                "mac": mac,
                "claimed_ips": sorted(claims),
                "spoofed_ips": sorted(spoofed),
                "previous_owners": owners,
                "relayed_hosts": sorted(relayed)[:20],
            },
            detector=self.name,
        )

    def _forget(self, now: float) -> None:
        horizon = now - self.window_s
        self._asked = {pair: ts for pair, ts in self._asked.items() if ts >= now - SOLICITED_S}
        for ip in [ip for ip, (_, ts) in self._holder.items() if ts < horizon]:
            del self._holder[ip]
            self._handover.pop(ip, None)
        while len(self._holder) > MAX_TRACKED:
            self._handover.pop(next(iter(self._holder)), None)
            del self._holder[next(iter(self._holder))]
        for mac in [m for m, ips in self._claims.items() if max(ips.values()) < horizon]:
            for table in (self._claims, self._targeted, self._pushed, self._spoofed):
                table.pop(mac, None)


class _ArpRow(NamedTuple):
    ts: float
    arp_op: int
    arp_src_mac: str
    arp_src_ip: str
    arp_dst_ip: str


def _arp_rows(packets: pd.DataFrame) -> Iterator[_ArpRow]:
    """The window's ARP packets as tuples of Python values (missing ones as pd.NA), picked in numpy."""
    at = np.flatnonzero(packets["transport"].to_numpy(dtype=object, na_value="") == "arp")
    columns = (packets[c].to_numpy(dtype=object)[at].tolist() for c in _ArpRow._fields)
    return (_ArpRow(*values) for values in zip(*columns, strict=True))


def _relayed_sources(packets: pd.DataFrame, mac: str, own_ips: set[str]) -> set[str]:
    """IP sources, not the MAC's own, of packets this MAC sent: forwarding, as a man in the middle does."""
    sent = packets[(packets["src_mac"] == mac).fillna(False) & packets["src_ip"].notna()]
    return set(sent["src_ip"].astype(str)) - own_ips
