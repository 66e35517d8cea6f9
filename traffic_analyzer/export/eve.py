"""Stored alerts and flows as Suricata EVE JSON lines (``alert`` and ``flow`` events).

Alerts take the same form as the live ``eve_file`` channel (:mod:`traffic_analyzer.alerts.eve`).
A flow becomes a ``flow`` event: the originator is the client (``src``, ``toserver``), Zeek's
``conn_state`` says whether it was ``new`` (no answer), ``established`` or ``closed``, and its
``flow_id`` is derived from the run and the Zeek uid, so the same flow keeps its id in every export.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TextIO

import communityid
import pandas as pd

from ..alerts.eve import FLOW_ID_MASK, eve_alert, eve_timestamp

EVE_PROTO: dict[str, str] = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP"}  # Zeek proto -> Suricata's name
APP_PROTO: dict[str, str] = {"ssl": "tls"}  # Zeek service -> Suricata app_proto, where they differ
STATE: dict[str, str] = {  # Zeek conn_state -> Suricata flow state
    "S0": "new",
    "OTH": "new",
    "S1": "established",
}  # every other state (SF, REJ, RSTO, S2...) saw the connection end: closed
COMMUNITY_ID = communityid.CommunityID()
_TUPLES = {"tcp": communityid.FlowTuple.make_tcp, "udp": communityid.FlowTuple.make_udp}


def flow_id(run_id: str, uid: str) -> int:
    """A stable EVE flow_id for one run's flow."""
    digest = hashlib.blake2b(f"{run_id}|{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & FLOW_ID_MASK


def _community_id(proto: str, src: str, dst: str, sport: object, dport: object) -> str | None:
    """Community ID v1 of a TCP or UDP flow (ICMP is left out: Zeek's ports there are types, not a tuple)."""
    make = _TUPLES.get(proto)
    if make is None or pd.isna(sport) or pd.isna(dport):
        return None
    return COMMUNITY_ID.calc(make(src, dst, int(sport), int(dport)))


def eve_flow(flow: dict, sensor: str = "") -> dict:
    """One flows-table row as an EVE flow event."""
    proto = str(flow["proto"])
    record: dict = {
        "timestamp": eve_timestamp(flow["ts"]),
        "flow_id": flow_id(str(flow.get("run_id", "")), str(flow["uid"])),
        "event_type": "flow",
        "src_ip": flow["orig_h"],
        "dest_ip": flow["resp_h"],
        "proto": EVE_PROTO.get(proto, proto.upper()),
    }
    if proto in _TUPLES and not pd.isna(flow["orig_p"]):
        record["src_port"], record["dest_port"] = int(flow["orig_p"]), int(flow["resp_p"])
    cid = _community_id(proto, flow["orig_h"], flow["resp_h"], flow["orig_p"], flow["resp_p"])
    if cid:
        record["community_id"] = cid
    if flow.get("service"):
        record["app_proto"] = APP_PROTO.get(flow["service"], flow["service"])
    if sensor:
        record["host"] = sensor
    duration = 0.0 if pd.isna(flow["duration"]) else float(flow["duration"])
    record["flow"] = {
        "pkts_toserver": int(flow["orig_pkts"]),
        "pkts_toclient": int(flow["resp_pkts"]),
        "bytes_toserver": int(flow["orig_ip_bytes"]),
        "bytes_toclient": int(flow["resp_ip_bytes"]),
        "start": eve_timestamp(flow["ts"]),
        "end": eve_timestamp(flow["ts"] + duration),
        "age": math.floor(duration),
        "state": STATE.get(str(flow["conn_state"]), "closed"),
    }
    return record


def stored_alert(row: dict) -> dict:
    """An alerts-table row in the snapshot form the EVE builder takes (victims a list, evidence a dict)."""
    alert = dict(row)
    alert["victims"] = [v for v in str(row["victims"]).split(",") if v]
    alert["evidence"] = json.loads(row["evidence"]) if isinstance(row["evidence"], str) else row["evidence"] or {}
    if alert["evidence"].get("evidence_pcap"):
        alert["evidence_pcap"] = str(alert["evidence"]["evidence_pcap"])
    return alert


class EveWriter:
    """EVE JSON lines: ``alert`` events for alerts, ``flow`` events for flows."""

    def __init__(self, out: TextIO, what: str, sensors: dict[str, str]) -> None:
        self.out = out
        self.what = what
        self.sensors = sensors  # run_id -> sensor name, for each event's ``host``

    def begin(self) -> None:
        """JSON lines have no header."""

    def write(self, frame: pd.DataFrame) -> None:
        clean = frame.astype(object).where(frame.notna(), None)
        for row in clean.to_dict("records"):
            sensor = self.sensors.get(row.get("run_id") or "", "")
            if self.what == "alerts":
                event = eve_alert(stored_alert(row), sensor)
            else:
                event = eve_flow(row, sensor)
            self.out.write(json.dumps(event, default=str) + "\n")

    def end(self) -> None:
        """Nor a footer."""
