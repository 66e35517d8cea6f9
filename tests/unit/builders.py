"""Small hand-built packet tables, flow tables and windows for the unit tier.

A row is a dict of the columns it cares about; every other column of the schema is null (or 0 where
the schema has no nulls), so a test states only what the rule under test reads. The row makers
(``tcp``, ``dns_query``, ``flow``...) fill in what a decoder would for that kind of packet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from traffic_analyzer.detection.base import Detector
from traffic_analyzer.features.host_windows import HOST_FEATURES, host_window_features
from traffic_analyzer.records.alert import Alert
from traffic_analyzer.records.flows import FLOW_COLUMNS, empty_flows
from traffic_analyzer.records.packets import (
    ETHERTYPE_ARP,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    PACKET_SCHEMA,
    TCP_ACK,
    TCP_PSH,
    TCP_SYN,
    empty_packets,
)
from traffic_analyzer.records.window import WindowData

if TYPE_CHECKING:
    from traffic_analyzer.detection.anomaly.base import BaselineModel

PACKET_DEFAULTS = {"length": 60}  # the one packet column without nulls: bytes on the wire
FLOW_DEFAULTS = {
    "proto": "tcp",
    "orig_p": 49152,
    "duration": 0.0,
    "orig_bytes": 0,
    "resp_bytes": 0,
    "conn_state": "S0",
    "history": "S",
    "orig_pkts": 1,
    "orig_ip_bytes": 40,
    "resp_pkts": 0,
    "resp_ip_bytes": 0,
}
EPHEMERAL_PORT = 50000  # client source port of the row makers


def _table(rows: list[dict], schema: dict[str, object], defaults: dict, what: str) -> pd.DataFrame:
    unknown = sorted({column for row in rows for column in row} - set(schema))
    if unknown:
        raise KeyError(f"not {what} columns: {unknown}")
    return pd.DataFrame(
        {
            name: pd.Series([row.get(name, defaults.get(name)) for row in rows], dtype=dtype)
            for name, dtype in schema.items()
        }
    )


def packets(rows: list[dict]) -> pd.DataFrame:
    """A packet table (PACKET_SCHEMA) from rows naming some of its columns; the others are null."""
    return _table(rows, PACKET_SCHEMA, PACKET_DEFAULTS, "packet") if rows else empty_packets()


def flows(rows: list[dict]) -> pd.DataFrame:
    """A flow table (FLOW_COLUMNS) from rows; uid and last_ts are derived when a row leaves them out."""
    if not rows:
        return empty_flows()
    full = []
    for row in rows:
        row = {**FLOW_DEFAULTS, **row}
        row.setdefault("last_ts", row["ts"] + row["duration"])
        row.setdefault(
            "uid", f"{row['proto']}|{row['orig_h']}:{row['orig_p']}|{row['resp_h']}:{row['resp_p']}|{row['ts']}"
        )
        full.append(row)
    return _table(full, FLOW_COLUMNS, {}, "flow")


def window(
    packet_rows: list[dict] | None = None,
    flow_rows: list[dict] | None = None,
    start: float | None = None,
    end: float | None = None,
) -> WindowData:
    """A window of these rows; start and end default to the first and last time any row shows."""
    p, f = packets(packet_rows or []), flows(flow_rows or [])
    times = [*p["ts"], *f["ts"], *f["last_ts"]]
    if not times and (start is None or end is None):
        raise ValueError("an empty window needs its start and end")
    return WindowData(
        start=min(times) if start is None else start,
        end=max(times) if end is None else end,
        packets=p,
        flows=f,
        host_features=host_window_features(p, f),
    )


def feed(detector: Detector, windows: Iterable[WindowData]) -> list[list[Alert]]:
    """Each window's alerts, the windows fed in order (detectors keep state across them)."""
    return [detector.detect(w) for w in windows]


def summary(alert: Alert) -> tuple:
    """What a rule test checks of an alert: kind, attacker, victims, start, end."""
    return (alert.kind, alert.attacker, alert.victims, alert.start, alert.end)


def _ip(ts: float, src: str, dst: str, proto: int, transport: str, header: int, payload: int) -> dict:
    """The IPv4 part of a packet row; ``header`` is the IP plus transport header bytes."""
    return {
        "ts": ts,
        "length": 14 + header + payload,
        "ethertype": 0x0800,
        "ip_version": 4,
        "src_ip": src,
        "dst_ip": dst,
        "ip_proto": proto,
        "ip_len": header + payload,
        "transport": transport,
        "protocol": transport.upper(),
        "ttl": 64,
        "payload_len": payload,
    }


def tcp(ts: float, src: str, dst: str, dport: int, sport: int = EPHEMERAL_PORT, flags: int = TCP_SYN, **fields) -> dict:
    """A TCP segment; ``flags`` are the header bits (TCP_SYN | TCP_ACK...), ``payload_len`` 0 unless given."""
    payload = fields.pop("payload_len", 0)
    return {
        **_ip(ts, src, dst, IPPROTO_TCP, "tcp", 40, payload),
        "src_port": sport,
        "dst_port": dport,
        "tcp_flags": flags,
        **fields,
    }


def udp(ts: float, src: str, dst: str, dport: int, sport: int = EPHEMERAL_PORT, **fields) -> dict:
    payload = fields.pop("payload_len", 0)
    return {**_ip(ts, src, dst, IPPROTO_UDP, "udp", 28, payload), "src_port": sport, "dst_port": dport, **fields}


def icmp(ts: float, src: str, dst: str, icmp_type: int, payload_len: int = 56) -> dict:
    """An ICMP message (type 8 echo request, 0 echo reply) carrying ``payload_len`` bytes."""
    return {**_ip(ts, src, dst, IPPROTO_ICMP, "icmp", 28, payload_len), "icmp_type": icmp_type, "icmp_code": 0}


def arp(ts: float, op: int, src_mac: str, src_ip: str, dst_ip: str, dst_mac: str = "00:00:00:00:00:00") -> dict:
    """An ARP packet (op 1 who-has, 2 is-at): the sender claims ``src_ip`` is at ``src_mac``."""
    return {
        "ts": ts,
        "length": 42,
        "src_mac": src_mac,
        "dst_mac": "ff:ff:ff:ff:ff:ff" if op == 1 else dst_mac,
        "ethertype": ETHERTYPE_ARP,
        "transport": "arp",
        "protocol": "ARP",
        "arp_op": op,
        "arp_src_mac": src_mac,
        "arp_src_ip": src_ip,
        "arp_dst_mac": dst_mac,
        "arp_dst_ip": dst_ip,
    }


def dns_query(ts: float, client: str, resolver: str, qname: str, qtype: int = 1) -> dict:
    return udp(ts, client, resolver, 53, protocol="DNS", dns_qname=qname, dns_qtype=qtype, dns_response=False)


def dns_answer(
    ts: float, resolver: str, client: str, qname: str, rcode: int = 0, qtype: int = 1, answers: str | None = None
) -> dict:
    """A resolver's answer (rcode 3 is NXDOMAIN); ``answers`` its records' data comma-joined, each with TTL 60."""
    ttls = None if answers is None else ",".join("60" for _ in answers.split(","))
    return udp(
        ts,
        resolver,
        client,
        EPHEMERAL_PORT,
        sport=53,
        protocol="DNS",
        dns_qname=qname,
        dns_qtype=qtype,
        dns_rcode=rcode,
        dns_response=True,
        dns_answers=answers,
        dns_ttls=ttls,
    )


def http_request(ts: float, client: str, server: str, uri: str, method: str = "GET", port: int = 80, **fields) -> dict:
    return tcp(
        ts,
        client,
        server,
        port,
        flags=TCP_PSH | TCP_ACK,
        payload_len=300,
        protocol="HTTP",
        http_method=method,
        http_uri=uri,
        **fields,
    )


def http_response(ts: float, server: str, client: str, status: int = 200, port: int = 80, **fields) -> dict:
    fields = {"payload_len": 1400, **fields}
    return tcp(
        ts,
        server,
        client,
        EPHEMERAL_PORT,
        sport=port,
        flags=TCP_PSH | TCP_ACK,
        protocol="HTTP",
        http_status=status,
        **fields,
    )


def flow(ts: float, orig_h: str, resp_h: str, resp_p: int, **fields) -> dict:
    """A conn record: by default a TCP attempt that got no answer (S0, history "S")."""
    return {"ts": ts, "orig_h": orig_h, "resp_h": resp_h, "resp_p": resp_p, **fields}


def fitted_model(**learned: object) -> BaselineModel:
    """A small IsolationForest fitted on random host windows, with these learned attributes (``known_patterns_``...)."""
    from traffic_analyzer.detection.anomaly.iforest import HostAnomalyModel  # scikit-learn: only the tests that fit

    rng = np.random.default_rng(7)
    baseline = pd.DataFrame(rng.integers(1, 50, size=(60, len(HOST_FEATURES))), columns=list(HOST_FEATURES))
    model = HostAnomalyModel(n_estimators=20).fit(baseline, seconds=600.0)
    for attribute, value in learned.items():
        setattr(model, attribute, value)
    return model


SCANNER, TARGET = "10.0.0.66", "10.0.0.5"


def probes(first_ts: float, ports: range, **fields) -> list[dict]:
    """Refused SYN probes (REJ, one RST back) from SCANNER to TARGET, one port each, 0.1 s apart."""
    return [
        flow(first_ts + 0.1 * i, SCANNER, TARGET, port, conn_state="REJ", history="Sr", resp_pkts=1, **fields)
        for i, port in enumerate(ports)
    ]
