"""Reflection and amplification DDoS: a victim flooded with answers, from many servers, to questions it never asked.

The attacker sends requests with the victim's address forged as the source; every server that
answers (a "reflector") then sends its reply to the victim. Seen at the victim this is many
sources, all speaking from a well-known service port (UDP amplification) or sending SYN-ACKs and
RSTs (TCP reflection), with no request from the victim in the matching flow.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..distinct import Remembered
from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .columns import frame
from .history import lone_reset, unasked_reply
from .params import COUNT, POSITIVE, Check

# UDP services abused as reflectors/amplifiers (US-CERT TA14-017A and later reports): port -> name.
REFLECTOR_SERVICES: dict[int, str] = {
    17: "QOTD",
    19: "chargen",
    53: "DNS",
    69: "TFTP",
    111: "portmap",
    123: "NTP",
    137: "NetBIOS-NS",
    161: "SNMP",
    389: "CLDAP",
    427: "SLP",
    520: "RIP",
    1434: "MS-SQL browser",
    1900: "SSDP",
    3283: "Apple Remote Desktop",
    3702: "WS-Discovery",
    5351: "NAT-PMP",
    5353: "mDNS",
    5683: "CoAP",
    10001: "Ubiquiti discovery",
    11211: "memcached",
    27015: "Steam A2S",
    32414: "Plex GDM",
    37810: "DVR DHCPDiscover",
}
GROUP_BIT_DIGITS = "13579bdf"  # second hex digit of a MAC whose first octet has the group (multicast) bit
GROUP_ANSWER_S = 10.0  # replies this soon after a host's multicast/broadcast request answer it (SSDP MX <= 5 s)
MAX_GROUP_REQUESTS = 50_000  # (host, port) multicast requests remembered
RATE_FLOOR_S = 1.0  # rates are measured over at least this long, so a burst of a few ms is not "1M/s"
SCORE_FLOOR = 50.0  # score at exactly the alert threshold
SCORE_SPAN = 45.0  # added as the rate grows to SCORE_FULL_RATIO x the threshold rate
SCORE_FULL_RATIO = 100.0
SAMPLE_REFLECTORS = 10  # reflector addresses listed in the evidence
ATTACK_GAP_S = 300.0  # an attack that pauses for less than this and resumes is the same attack (keeps its start)
MAX_ATTACKS = 1000  # victims whose attack start is remembered (the most recent)

_ROW_COLUMNS = {
    "uid": object,
    "ts": "float64",
    "last_ts": "float64",
    "kind": object,
    "victim": object,
    "reflector": object,
    "service": object,
    "reply": object,
    "packets": "int64",
    "bytes": "int64",
}


UDP_SERVICES = Check(
    lambda v: isinstance(v, dict) and bool(v) and all(isinstance(p, int) and 0 < p < 65536 for p in v),
    "a dict of UDP ports (1-65535) to service names",
)


class ReflectionDetector(Detector):
    """Flags a host receiving unrequested service replies (UDP) or SYN-ACKs/RSTs (TCP) from many sources.

    Parameters
    ----------
    min_reflectors : int
        Distinct sources sending one victim unrequested replies within ``window_s``. A host asks
        one or two resolvers, a handful of NTP servers; a reflection attack uses hundreds to
        thousands of reflectors.
    min_packets : int
        Unrequested replies to one victim within ``window_s``; with ``min_reflectors`` it keeps a
        few late answers (to requests sent before the capture started) from counting.
    window_s : float
        How far back unrequested replies are remembered; rates are judged over this span.
    services : dict[int, str] or None
        UDP source port -> service name of the reflectors to watch (default ``REFLECTOR_SERVICES``).
    max_tracked : int
        Most unrequested-flow records kept (the newest), bounding memory during an attack.

    The evidence of an attack adds up while it lasts (pauses shorter than ATTACK_GAP_S included):
    ``packets`` and ``bytes`` are totals, ``reflectors`` and ``peak_rate_*`` the most seen within one
    ``window_s``; ``recent_*`` describe the latest one.
    """

    name = "reflection"
    _parameter_constraints = {
        "min_reflectors": COUNT,
        "min_packets": COUNT,
        "window_s": POSITIVE,
        "services": [None, UDP_SERVICES],
        "max_tracked": COUNT,
    }

    def __init__(
        self,
        min_reflectors: int = 20,
        min_packets: int = 100,
        window_s: float = 10.0,
        services: dict[int, str] | None = None,
        max_tracked: int = 500_000,
    ) -> None:
        self.min_reflectors = min_reflectors
        self.min_packets = min_packets
        self.window_s = window_s
        self.services = services
        self.max_tracked = max_tracked
        self._unasked = _empty()
        self._asked = _empty_requests()  # multicast/broadcast requests: "host|port" -> last time
        self._attacks: dict[tuple[str, str], dict] = {}  # (kind, victim) -> running totals and peaks

    def partial_fit(self, window: WindowData) -> ReflectionDetector:
        """Remember the most reflectors that sent one baseline host unrequested replies in a window."""
        asked = getattr(self, "_fit_asked", None)
        asked = _group_requests(
            _empty_requests() if asked is None else asked, window.packets, self._service_ports(), window.end
        )
        self._fit_asked = asked
        unasked = self._unrequested(window.flows, asked)
        most = int(unasked.groupby(["kind", "victim"])["reflector"].nunique().max()) if len(unasked) else 0
        self._fold_max("baseline_max_reflectors_", most)
        return self

    def _end_fit(self) -> None:
        self._fit_asked = None  # the baseline's requests: detection keeps its own

    def detect(self, window: WindowData) -> list[Alert]:
        horizon = window.end - self.window_s
        self._asked = _group_requests(self._asked, window.packets, self._service_ports(), window.end)
        fresh = self._unrequested(window.flows, self._asked)
        self._attacks = {k: a for k, a in self._attacks.items() if a["end"] >= window.end - ATTACK_GAP_S}
        if fresh.empty and self._unasked.empty:  # the usual window: nothing unrequested, nothing remembered
            return []
        previous = self._unasked
        unasked = pd.concat([previous, fresh], ignore_index=True) if len(previous) else fresh
        # Within the horizon, the latest record of each flow, the newest max_tracked: one take, not three frames.
        keep = np.flatnonzero(unasked["last_ts"].to_numpy(dtype=float) >= horizon)
        keep = keep[~pd.Index(unasked["uid"].to_numpy(dtype=object)[keep], dtype=object).duplicated(keep="last")]
        self._unasked = unasked.take(keep[-self.max_tracked :])
        if self._unasked["packets"].to_numpy().sum() < self.min_packets:
            return []
        by_victim = self._unasked.groupby(["kind", "victim"]).agg(
            reflectors=("reflector", "nunique"), packets=("packets", "sum")
        )
        hit = by_victim[(by_victim["reflectors"] >= self.min_reflectors) & (by_victim["packets"] >= self.min_packets)]
        if hit.empty:
            return []
        growth = self._growth(previous, fresh)
        alerts = []
        for kind, victim in hit.index:
            flows = self._unasked[(self._unasked["kind"] == kind) & (self._unasked["victim"] == victim)]
            added = growth.loc[(kind, victim)] if (kind, victim) in growth.index else None
            alerts.append(self._alert(kind, victim, flows, added))
        if len(self._attacks) > MAX_ATTACKS:
            newest = sorted(self._attacks, key=lambda k: self._attacks[k]["end"])[-MAX_ATTACKS:]
            self._attacks = {k: self._attacks[k] for k in newest}
        return alerts

    @staticmethod
    def _growth(previous: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
        """Packets and bytes this window added to each (kind, victim), net of what earlier windows counted."""
        counted = previous.set_index("uid")
        grown = fresh.assign(
            packets=fresh["packets"] - fresh["uid"].map(counted["packets"]).fillna(0).astype("int64"),
            bytes=fresh["bytes"] - fresh["uid"].map(counted["bytes"]).fillna(0).astype("int64"),
        )
        return grown.groupby(["kind", "victim"])[["packets", "bytes"]].sum()

    def _alert(self, kind: str, victim: str, flows: pd.DataFrame, added: pd.Series | None) -> Alert:
        start, end = float(flows["ts"].min()), float(flows["last_ts"].max())
        packets, n_bytes = int(flows["packets"].sum()), int(flows["bytes"].sum())
        span = max(end - start, RATE_FLOOR_S)
        rate, bps = packets / span, 8 * n_bytes / span
        reflectors = flows.groupby("reflector")["packets"].sum().sort_values(ascending=False)
        attack = self._attacks.get((kind, victim))
        if attack is None:  # the first alert counts everything still remembered
            attack = self._attacks[(kind, victim)] = {"start": start, "packets": packets, "bytes": n_bytes}
            attack.update(rate=0.0, bps=0.0, reflectors=0)
        elif added is not None:
            attack["packets"] += int(added["packets"])
            attack["bytes"] += int(added["bytes"])
        attack["end"] = end
        attack["rate"], attack["bps"] = max(attack["rate"], rate), max(attack["bps"], bps)
        attack["reflectors"] = max(attack["reflectors"], len(reflectors))
        by_service = flows.groupby("service")["packets"].sum().sort_values(ascending=False)
        service = str(by_service.index[0])
        threshold_rate = self.min_packets / self.window_s
        ratio = max(rate / threshold_rate, 1.0)
        score = SCORE_FLOOR + SCORE_SPAN * min(1.0, math.log(ratio) / math.log(SCORE_FULL_RATIO))
        if hasattr(self, "baseline_max_reflectors_"):
            compare = f"no baseline host got unrequested replies from more than {self.baseline_max_reflectors_} sources"
        else:
            compare = f"the alert threshold is {self.min_reflectors} reflectors within {self.window_s:g} s"
        replies = flows.groupby("reply")["packets"].sum().sort_values(ascending=False)
        if kind == "ddos_reflection":
            what = " and ".join(f"{int(n):,} {r}s" for r, n in replies.items()) + f" (mostly from {service})"
        else:
            what = f"{packets:,} {service} responses ({n_bytes / 1e6:,.2f} MB)"
        explanation = (
            f"{victim} received {what} from {len(reflectors):,} reflectors in {end - start:.2f} s "
            f"without having sent them any request; {compare}."
        )
        return Alert(
            kind=kind,
            attacker="*",
            victims=[victim],
            start=attack["start"],
            end=end,
            score=round(score, 1),
            explanation=explanation,
            evidence={
                "reflectors": attack["reflectors"],
                "packets": attack["packets"],
                "bytes": attack["bytes"],
                "duration_s": round(end - attack["start"], 3),
                "peak_rate_pps": round(attack["rate"], 1),
                "peak_rate_bps": round(attack["bps"]),
                "recent_reflectors": len(reflectors),
                "recent_rate_pps": round(rate, 1),
                "mean_packet_bytes": round(attack["bytes"] / attack["packets"], 1),
                "service": service,
                "services": {str(s): int(n) for s, n in by_service.head(5).items()},
                "reply_types": {str(r): int(n) for r, n in replies.items()},
                "sample_reflectors": [str(r) for r in reflectors.index[:SAMPLE_REFLECTORS]],
            },
            detector=self.name,
        )

    def _unrequested(self, flows: pd.DataFrame, asked: pd.Series) -> pd.DataFrame:
        """Flows in which a source sent a host service replies or SYN-ACKs/RSTs that the host never asked for.

        ``asked`` holds the hosts' recent multicast/broadcast requests ("host|port"), which anyone may answer.
        """
        if flows.empty:
            return _empty()
        proto = flows["proto"].to_numpy(dtype=object, na_value="")
        tcp, no_answer = proto == "tcp", flows["resp_pkts"].to_numpy() == 0
        services = self._service_ports()
        orig_p = flows["orig_p"].to_numpy(dtype=object)
        # UDP: the first packet came from a reflector port and the host never answered or asked.
        udp = (proto == "udp") & no_answer
        udp &= np.isin(flows["orig_p"].to_numpy(dtype=np.int64, na_value=-1), list(services))
        udp = np.flatnonzero(udp)
        if len(udp):
            udp = udp[~_is_group_ip(flows["resp_h"].iloc[udp])]
            asked_keys = set(asked.index.tolist())
            hosts = flows["resp_h"].to_numpy(dtype=object)[udp]
            udp = udp[[f"{host}|{port}" not in asked_keys for host, port in zip(hosts, orig_p[udp], strict=True)]]
        history = flows["history"].fillna("")
        # TCP: a SYN-ACK makes its receiver the originator; with no SYN from it, nobody asked.
        synack = np.flatnonzero(tcp & unasked_reply(history))
        # TCP: a lone RST (or RST-ACK) the host never answered, on a connection it never opened.
        rst = np.flatnonzero(tcp & no_answer & lone_reset(history))
        if not (len(udp) or len(synack) or len(rst)):
            return _empty()
        parts = []
        if len(udp):
            names = [services[port] for port in orig_p[udp]]
            parts.append(_rows(flows, udp, "ddos_amplification", "resp_h", "orig_h", names, "orig", "UDP"))
        if len(synack):
            ports = _tcp_services(flows["resp_p"], synack)
            parts.append(_rows(flows, synack, "ddos_reflection", "orig_h", "resp_h", ports, "resp", "SYN-ACK"))
        if len(rst):
            ports = _tcp_services(flows["orig_p"], rst)
            parts.append(_rows(flows, rst, "ddos_reflection", "resp_h", "orig_h", ports, "orig", "RST"))
        return frame({c: np.concatenate([part[c] for part in parts]) for c in _ROW_COLUMNS})

    def _service_ports(self) -> dict[int, str]:
        return REFLECTOR_SERVICES if self.services is None else self.services


def _empty_requests() -> pd.Series:
    return pd.Series(dtype="float64")


def _group_requests(asked: pd.Series, packets: pd.DataFrame, ports: dict[int, str], now: float) -> pd.Series:
    """``asked`` updated with the window's requests to a multicast/broadcast group on a service port (SSDP,
    NetBIOS, WS-Discovery searches), keeping those of the last GROUP_ANSWER_S."""
    wanted = packets["transport"].to_numpy(dtype=object, na_value="") == "udp"
    wanted &= np.isin(packets["dst_port"].to_numpy(dtype=np.int64, na_value=-1), list(ports))
    wanted &= ~packets["src_ip"].isna().to_numpy()
    if wanted.any():
        at = np.flatnonzero(wanted)
        dst_mac, dst_ip = packets["dst_mac"].iloc[at], packets["dst_ip"].iloc[at]
        at = at[_is_group_mac(dst_mac) | _is_group_ip(dst_ip)]
        if len(at):  # a few requests: a dict, not a group-by (each "host|port" -> its last time, sorted by key)
            last = dict(zip(asked.index.tolist(), asked.tolist(), strict=True))
            hosts = packets["src_ip"].to_numpy(dtype=object)[at].tolist()
            ports_at = packets["dst_port"].to_numpy(dtype=np.int64, na_value=-1)[at].tolist()
            for host, port, ts in zip(hosts, ports_at, packets["ts"].to_numpy(dtype=float)[at].tolist(), strict=True):
                key = f"{host}|{port}"
                last[key] = max(ts, last.get(key, ts))
            keys = sorted(last)
            asked = pd.Series([last[k] for k in keys], index=pd.Index(keys, dtype="str"), dtype="float64")
    kept = asked[asked >= now - GROUP_ANSWER_S]
    return kept.nlargest(MAX_GROUP_REQUESTS) if len(kept) > MAX_GROUP_REQUESTS else kept


def _rows(
    flows: pd.DataFrame, at: np.ndarray, kind: str, victim: str, reflector: str, service: list, side: str, reply: str
) -> dict[str, np.ndarray]:
    """Unrequested-flow records of rows ``at``, as numpy columns of the final dtypes; ``side`` is the conn.log
    side (orig/resp) the reflector's packets are counted on."""
    return {
        "uid": flows["uid"].to_numpy(dtype=object)[at],
        "ts": flows["ts"].to_numpy(dtype=np.float64)[at],
        "last_ts": flows["last_ts"].to_numpy(dtype=np.float64)[at],
        "kind": np.full(len(at), kind, dtype=object),
        "victim": flows[victim].to_numpy(dtype=object)[at],
        "reflector": flows[reflector].to_numpy(dtype=object)[at],
        "service": np.array(service, dtype=object),
        "reply": np.full(len(at), reply, dtype=object),
        "packets": flows[f"{side}_pkts"].to_numpy(dtype=np.int64)[at],
        "bytes": flows[f"{side}_ip_bytes"].to_numpy(dtype=np.int64)[at],
    }


def _tcp_services(ports: pd.Series, at: np.ndarray) -> list:
    """The "tcp/<port>" service of rows ``at``; a missing port gives a missing service, as pandas' text sum does."""
    return [np.nan if port is pd.NA else f"tcp/{port}" for port in ports.to_numpy(dtype=object)[at]]


def _empty() -> pd.DataFrame:
    return _EMPTY  # shared: nothing modifies a frame in place


_EMPTY = pd.DataFrame({c: pd.Series(dtype=t) for c, t in _ROW_COLUMNS.items()})


def _group_mac_text(macs: pd.Series) -> np.ndarray:
    """MACs with the group bit (the low bit of the first octet) set: broadcast or multicast."""
    return macs.str.slice(1, 2).str.lower().isin(list(GROUP_BIT_DIGITS)).fillna(False).to_numpy(dtype=bool)


def _group_ip_text(addresses: pd.Series) -> np.ndarray:
    """Multicast or limited-broadcast addresses, which no reflection is aimed at; missing counts as group."""
    text = addresses.astype(str).str.lower()
    first_octet = pd.to_numeric(text.str.split(".", n=1).str[0], errors="coerce")
    v4 = first_octet.between(224, 239) | (text == "255.255.255.255")
    v6 = text.str.match(r"ff[0-9a-f]{2}:")
    return (v4 | v6).fillna(True).to_numpy(dtype=bool) | addresses.isna().to_numpy()


# Per-value tests, each value tested once across windows.
_is_group_mac = Remembered(_group_mac_text)
_is_group_ip = Remembered(_group_ip_text)
