"""Hand-made windows and stores for the store tests: a store of each kind, windows of one DNS flow, and the
older schema versions made again from a current store (to test their migrations)."""

from __future__ import annotations

import time

import pandas as pd
import pytest
import sqlalchemy as sa

from traffic_analyzer.records.alert import Alert
from traffic_analyzer.records.app_events import empty_app_events
from traffic_analyzer.records.flows import FLOW_COLUMNS, empty_flows
from traffic_analyzer.records.window import WindowResult
from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.schema import FLOW_INDEXES_V8, HOUR_TABLES, WINDOW_TABLES, hosts

T0 = 1_700_000_000  # packet time of the hand-made windows


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    """An empty store of each kind."""
    if request.param == "sqlite":
        return store_url(tmp_path)
    return request.getfixturevalue("postgres_url")


def _flow(uid: str, orig: str, resp: str, ts: float) -> pd.DataFrame:
    row = {name: None for name in FLOW_COLUMNS}
    row.update(ts=ts, last_ts=ts + 1, uid=uid, orig_h=orig, resp_h=resp, orig_p=40000, resp_p=53, proto="udp")
    row.update(service="dns", duration=1.0, conn_state="SF", history="Dd")
    row.update(orig_bytes=40, resp_bytes=80, orig_pkts=1, orig_ip_bytes=68, resp_pkts=1, resp_ip_bytes=108)
    return pd.concat([empty_flows(), pd.DataFrame([row])], ignore_index=True).astype(empty_flows().dtypes)


def _window(second: float, host: str = "10.0.0.1", uid: str = "C1", qname: str = "example.org") -> WindowResult:
    return WindowResult(
        window_start=second,
        window_end=second + 1,
        traffic=pd.DataFrame({"second": [int(second)], "packets": [3], "bytes": [3_000_000_000]}),
        protocols=pd.DataFrame({"protocol": ["DNS"], "packets": [3], "bytes": [300]}),
        hosts=pd.DataFrame(
            {"host": [host], "packets_out": [2], "bytes_out": [200], "packets_in": [1], "bytes_in": [100]}
        ),
        flows=_flow(uid, host, "10.0.0.53", second),
        alerts=[Alert("dga", host, ["10.0.0.53"], second, second + 1, 55.0, f"{host} looked up random names")],
        health={
            "at": time.time(),
            "packets": 3,
            "bytes": 300,
            "dropped": None,
            "sampled_out": 0,
            "lag_s": None,
            "open_flows": 1,
            "cpu_percent": 1.0,
            "rss_mb": 100.0,
            "status": "reading",
        },
        dns=pd.DataFrame({"host": [host], "qname": [qname], "queries": [2]}),
        app=_dns_query(uid, host, second, qname),
    )


def _dns_query(uid: str, host: str, ts: float, qname: str) -> pd.DataFrame:
    """One application message: ``host`` asks 10.0.0.53 for ``qname`` in flow ``uid``."""
    row = {"ts": ts, "uid": uid, "kind": "dns", "orig_h": host, "orig_p": 53000, "resp_h": "10.0.0.53"}
    row |= {"resp_p": 53, "proto": "udp", "from_orig": True, "dns_qname": qname, "dns_qtype": 1, "dns_response": False}
    frame = empty_app_events()
    return pd.concat([frame, pd.DataFrame([row]).astype({c: frame[c].dtype for c in row})], ignore_index=True)


V3_WINDOW_INDEXES = {  # as version 3 indexed the tables a window fills
    "ix_traffic_run_second": "traffic (run_id, second)",
    "ix_protocols_run_window": "protocols (run_id, window_start)",
    "ix_hosts_run_window": "hosts (run_id, window_start)",
    "ix_health_run_at": "health (run_id, at)",
    "ix_dns_queries_run_window": "dns_queries (run_id, window_start)",
}


def back_to_version_3(conn: sa.Connection) -> None:
    """Undo versions 4 to 8 in a current store: no unique window keys, no traffic.window_start, no app_events,
    no hosts.anomaly."""
    back_to_version_5(conn)
    conn.exec_driver_sql("DROP TABLE app_events")
    for table in WINDOW_TABLES:
        for index in table.indexes:
            if index.unique:
                conn.exec_driver_sql(f"DROP INDEX {index.name}")
    conn.exec_driver_sql("ALTER TABLE traffic DROP COLUMN window_start")
    for name, where in V3_WINDOW_INDEXES.items():
        conn.exec_driver_sql(f"CREATE INDEX {name} ON {where}")
    conn.exec_driver_sql("UPDATE store_schema SET version = 3")


def back_to_version_7(conn: sa.Connection) -> None:
    """Undo version 8 in a current store: no per-hour sums, flows and hosts not indexed by host."""
    for table in HOUR_TABLES:
        conn.exec_driver_sql(f"DROP TABLE {table.name}")
    for index in (*FLOW_INDEXES_V8, *(i for i in hosts.indexes if not i.unique)):
        conn.exec_driver_sql(f"DROP INDEX {index.name}")
    conn.exec_driver_sql("UPDATE store_schema SET version = 7")


def back_to_version_6(conn: sa.Connection) -> None:
    """Undo versions 7 and 8 in a current store: DNS messages have no answer records."""
    back_to_version_7(conn)
    for column in ("dns_answers", "dns_ttls"):
        conn.exec_driver_sql(f"ALTER TABLE app_events DROP COLUMN {column}")
    conn.exec_driver_sql("UPDATE store_schema SET version = 6")


def back_to_version_5(conn: sa.Connection) -> None:
    """Undo versions 6 to 8 in a current store: hosts have no anomaly margin."""
    back_to_version_6(conn)
    conn.exec_driver_sql("ALTER TABLE hosts DROP COLUMN anomaly")
    conn.exec_driver_sql("UPDATE store_schema SET version = 5")
