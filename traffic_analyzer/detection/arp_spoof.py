"""ARP spoofing / man-in-the-middle: a MAC address that claims an IP address that is not its own."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector

ARP_REQUEST, ARP_REPLY = 1, 2
MAX_TRACKED = 50_000  # IP and MAC bindings remembered at most; the oldest are forgotten first
SCORE_FLOOR = 50.0  # a MAC claiming a second address at chosen victims: suspicious, not proof
CHANGED_BINDING = 20.0  # added when the address belonged to another MAC (arpwatch's "flip flop")
RELAYING = 15.0  # added when the MAC also forwards other hosts' packets: a man in the middle
SOLICITED_S = 5.0  # a reply this soon after the victim asked for that address answers it (hosts answer in ms)


def _victims_by_ip() -> defaultdict[str, set[str]]:
    """A module-level factory, not a lambda: detectors are pickled to the detection worker."""
    return defaultdict(set)


class ArpSpoofDetector(Detector):
    """Flags a MAC that claims, in ARP, an address another MAC owns or that it claims besides its own.

    Evidence, strongest first: the claimed IP was bound to another MAC before (a changed binding);
    the MAC claims two or more IPs, one of them in an unsolicited reply aimed at a victim (one the
    victim did not ask for within SOLICITED_S: poisoning tools push replies, while a server with
    several addresses only answers requests and probes its neighbours); the MAC relays IP packets of
    other hosts (traffic through a third MAC). One alert per spoofing MAC, naming the victims it sent
    its claims to.

    Parameters
    ----------
    window_s : float
        How long a binding is remembered.
    """

    name = "arp_spoof"

    def __init__(self, window_s: float = 3600.0) -> None:
        self.window_s = window_s
        self._owner: dict[str, tuple[str, float]] = {}  # ip -> (mac, last seen) from ARP
        self._claims: dict[str, dict[str, float]] = defaultdict(dict)  # mac -> ip -> last claim time
        self._targeted: dict[str, dict[str, set[str]]] = defaultdict(_victims_by_ip)  # mac -> ip -> victims
        self._changed: dict[str, dict[str, str]] = defaultdict(dict)  # mac -> claimed ip -> previous owner mac
        self._first: dict[str, float] = {}
        self._asked: dict[tuple[str, str], float] = {}  # (requester ip, asked ip) -> last request time

    def detect(self, window: WindowData) -> list[Alert]:
        arp = window.packets[window.packets["transport"].eq("arp").fillna(False)]
        touched = set()
        for row in arp[["ts", "arp_op", "arp_src_mac", "arp_src_ip", "arp_dst_ip"]].itertuples(index=False):
            mac, ip = row.arp_src_mac, row.arp_src_ip
            if pd.isna(mac) or pd.isna(ip) or ip == "0.0.0.0":
                continue
            previous = self._owner.get(ip)
            if previous is not None and previous[0] != mac:
                self._changed[mac][ip] = previous[0]
            self._owner[ip] = (mac, row.ts)
            self._claims[mac][ip] = row.ts
            self._first.setdefault(mac, row.ts)
            victim = row.arp_dst_ip if isinstance(row.arp_dst_ip, str) and row.arp_dst_ip != ip else None
            is_reply = not pd.isna(row.arp_op) and row.arp_op == ARP_REPLY  # an opcode too big for the column is null
            if not is_reply and victim is not None:
                self._asked[(ip, victim)] = row.ts
            elif is_reply and victim is not None:
                if row.ts - self._asked.get((victim, ip), -SOLICITED_S - 1) > SOLICITED_S:
                    self._targeted[mac][ip].add(victim)
            touched.add(mac)
        self._forget(window.end)
        return [a for a in (self._judge(mac, window) for mac in touched) if a is not None]

    def _judge(self, mac: str, window: WindowData) -> Alert | None:
        claims = self._claims.get(mac, {})
        changed = self._changed.get(mac, {})
        targeted = {ip for ip, victims in self._targeted.get(mac, {}).items() if victims}
        if changed:
            spoofed = set(changed)
        elif len(claims) >= 2 and targeted:
            # Of the addresses it claims, the ones it pushes at chosen victims are the borrowed ones;
            # the one it also uses in broadcast requests of its own is its real address.
            spoofed = targeted if len(targeted) < len(claims) else targeted - {max(claims, key=claims.get)}
        else:
            return None
        own = sorted(set(claims) - spoofed)
        victims = sorted({v for ip in spoofed for v in self._targeted[mac].get(ip, set())} - set(own)) or ["many"]
        relayed = _relayed_sources(window.packets, mac, set(claims))
        score = SCORE_FLOOR + (CHANGED_BINDING if changed else 0.0) + (RELAYING if relayed else 0.0)
        parts = [f"MAC {mac}" + (f" ({', '.join(own)})" if own else "")]
        parts.append(f"claimed {', '.join(sorted(spoofed))} in ARP")
        if changed:
            parts.append("which belonged to " + ", ".join(sorted(set(changed.values()))))
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
            start=self._first.get(mac, window.start),
            end=window.end,
            score=min(100.0, score),
            explanation=text,
            evidence={
                "mac": mac,
                "claimed_ips": sorted(claims),
                "spoofed_ips": sorted(spoofed),
                "previous_owners": changed,
                "relayed_hosts": sorted(relayed)[:20],
            },
            detector=self.name,
        )

    def _forget(self, now: float) -> None:
        horizon = now - self.window_s
        self._asked = {pair: ts for pair, ts in self._asked.items() if ts >= now - SOLICITED_S}
        for ip in [ip for ip, (_, ts) in self._owner.items() if ts < horizon]:
            del self._owner[ip]
        while len(self._owner) > MAX_TRACKED:
            del self._owner[next(iter(self._owner))]
        for mac in [m for m, ips in self._claims.items() if max(ips.values()) < horizon]:
            for table in (self._claims, self._targeted, self._changed, self._first):
                table.pop(mac, None)


def _relayed_sources(packets: pd.DataFrame, mac: str, own_ips: set[str]) -> set[str]:
    """IP sources, not the MAC's own, of packets this MAC sent: forwarding, as a man in the middle does."""
    sent = packets[(packets["src_mac"] == mac).fillna(False) & packets["src_ip"].notna()]
    return set(sent["src_ip"].astype(str)) - own_ips
