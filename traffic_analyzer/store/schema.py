"""The result tables, at the current schema version (:data:`SCHEMA_VERSION`).

Everything a run produces is keyed by its ``run_id``; ``runs`` says which sensor made it, so
several sensors can share one PostgreSQL database. Byte and packet counts are BIGINT (a busy
link passes 2**31 bytes in seconds; SQLite does not care, PostgreSQL does). Older stores are
brought up to this version by :mod:`traffic_analyzer.store.migrations`, never recreated.

Every index costs each window's inserts, so each one has a reader: the tables a window fills are
indexed by ``run_id`` and then time (the dashboard's run queries, retention's oldest-first
deletes), flows by ``(run_id, uid)`` (the upsert) too, DNS names by ``(run_id, host)`` (a host's
drill-down). No table has an index on ``run_id`` alone: the indexes it leads serve the same queries.
v8 indexes flows by ``(run_id, ts)`` (the latest started, the run's first) and by each end and
time (a host's latest flows), hosts by ``(run_id, host, window_start)`` (a host's windows); and
adds per-hour sums (``host_hours``, ``protocol_hours``: :mod:`.summaries`; ``peer_hours``,
``flow_hours``: :mod:`.flow_sums`), so that the dashboard's whole-run questions read hours, not
every window or flow of a long run.

Every row a window appends carries that window's key, and a unique index enforces it (v4): the
writer inserts with conflicts ignored, so a window written again, after a commit whose answer
was lost with the connection, adds nothing. Traffic is keyed by (run_id, second, window_start)
(a second can straddle two windows), protocols, hosts and DNS names by their window and what they
count, health samples by their time, application messages by their place in the window (v5).
Flows are upserted by (run_id, uid) and alerts replaced by id, so they never needed one.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..records.app_events import APP_EVENT_COLUMNS
from ..records.flows import FLOW_COLUMNS

# 1: the first SQLite stores (no sensors, flows keyed by uid alone); 2: sensors, DNS names; 3: no index on run_id alone;
# 4: window rows keyed by unique indexes (traffic gets window_start);
# 5: app_events (DNS, HTTP and TLS messages for the Zeek dns/http/ssl logs); 6: hosts.anomaly;
# 7: app_events.dns_answers and dns_ttls (the Zeek dns.log answers and TTLs);
# 8: host_hours and protocol_hours (per-hour sums), flows and hosts indexed by host, flows by start time
SCHEMA_VERSION = 8

metadata = sa.MetaData()

schema_version = sa.Table(
    "store_schema",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),  # one row
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("source", sa.String, nullable=False),  # "live eth0 (pyshark)" or "file x.pcap"
    sa.Column("status", sa.String, nullable=False),  # running, finished, failed, damaged, interrupted
    sa.Column("finished_at", sa.Float),
    sa.Column("model", sa.Text),  # JSON: anomaly model status
    sa.Column("sensor", sa.String, nullable=False, server_default=""),  # who captured it (v2)
    sa.Column("live", sa.Boolean),  # live capture: packet times are wall-clock times (v2)
    sa.Index("ix_runs_sensor_started", "sensor", "started_at"),
)

traffic = sa.Table(
    "traffic",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("second", sa.BigInteger, nullable=False),  # epoch second of the packets
    sa.Column("packets", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("window_start", sa.Float),  # the window that counted them (v4; NULL in rows written before)
    sa.Index("ux_traffic_run_second_window", "run_id", "second", "window_start", unique=True),
)

protocols = sa.Table(
    "protocols",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("protocol", sa.String, nullable=False),
    sa.Column("packets", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Index("ux_protocols_run_window_protocol", "run_id", "window_start", "protocol", unique=True),
)

hosts = sa.Table(
    "hosts",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("host", sa.String, nullable=False),
    sa.Column("packets_out", sa.BigInteger, nullable=False),
    sa.Column("bytes_out", sa.BigInteger, nullable=False),
    sa.Column("packets_in", sa.BigInteger, nullable=False),
    sa.Column("bytes_in", sa.BigInteger, nullable=False),
    sa.Column("anomaly", sa.Float),  # v6: how far past the anomaly threshold (above 0: flagged); NULL: not scored
    sa.Index("ux_hosts_run_window_host", "run_id", "window_start", "host", unique=True),
    sa.Index("ix_hosts_run_host", "run_id", "host", "window_start"),  # v8: one host's windows, in order
)

_SQL_TYPES = {  # by str(dtype)
    "float64": sa.Float,
    "string": sa.String,
    "Int16": sa.Integer,
    "Int32": sa.Integer,
    "int64": sa.BigInteger,
    "Int64": sa.BigInteger,
    "boolean": sa.Boolean,
}


def flow_columns() -> list[sa.Column]:
    """The conn.log columns; a run's flow is (run_id, uid): uids restart with every run (v2)."""
    return [
        sa.Column("run_id", sa.String, primary_key=True),
        *[sa.Column(name, _SQL_TYPES[str(dtype)], primary_key=(name == "uid")) for name, dtype in FLOW_COLUMNS.items()],
    ]


FLOW_INDEXES_V8 = (  # the latest started flows of a host at either end, or of all; the run's first flow
    sa.Index("ix_flows_run_orig_ts", "run_id", "orig_h", "ts"),
    sa.Index("ix_flows_run_resp_ts", "run_id", "resp_h", "ts"),
    sa.Index("ix_flows_run_ts", "run_id", "ts"),
)
flows = sa.Table(
    "flows", metadata, *flow_columns(), sa.Index("ix_flows_run_last", "run_id", "last_ts"), *FLOW_INDEXES_V8
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String, primary_key=True),  # a digest of run_id and the attack, see Alert.alert_id
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("attacker", sa.String, nullable=False),
    sa.Column("victims", sa.String, nullable=False),  # comma separated
    sa.Column("start", sa.Float, nullable=False),
    sa.Column("end", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("severity", sa.String, nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON
    sa.Column("detector", sa.String, nullable=False),
    sa.Column("updates", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

health = sa.Table(
    "health",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # wall-clock time of the sample; one sample per committed window
    sa.Column("packets", sa.BigInteger, nullable=False),  # captured so far
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("dropped", sa.BigInteger),  # NULL while the capture cannot tell
    sa.Column("sampled_out", sa.BigInteger, nullable=False),
    sa.Column("lag_s", sa.Float),  # wall clock minus newest packet time; NULL when reading a file
    sa.Column("open_flows", sa.Integer, nullable=False),
    sa.Column("cpu_percent", sa.Float, nullable=False),
    sa.Column("rss_mb", sa.Float, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # e.g. "capturing on eth0"
    sa.Column("channels", sa.Text),  # JSON list: each alert channel's delivery health (v2)
    sa.Index("ux_health_run_at", "run_id", "at", unique=True),
)

dns_queries = sa.Table(
    "dns_queries",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("host", sa.String, nullable=False),  # who asked
    sa.Column("qname", sa.Text, nullable=False),  # what it asked for: attacker-controlled text
    sa.Column("queries", sa.Integer, nullable=False),
    sa.Index("ix_dns_queries_run_host", "run_id", "host"),
    sa.Index("ux_dns_queries_run_window_name", "run_id", "window_start", "host", "qname", unique=True),
)

WINDOW_TABLES = (traffic, protocols, hosts, health, dns_queries)  # rows appended per window, under a unique key (v4)

app_events = sa.Table(  # v5: what the Zeek dns.log, http.log and ssl.log exports are made of
    "app_events",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # the message's place in its window: with the window, its unique key
    *[sa.Column(name, _SQL_TYPES[str(dtype)]) for name, dtype in APP_EVENT_COLUMNS.items()],
    sa.Index("ux_app_events_run_window_seq", "run_id", "window_start", "seq", unique=True),
    sa.Index("ix_app_events_run_ts", "run_id", "ts"),
)


def _hour_table(name: str, key: str, *sums: str) -> sa.Table:
    """A per-hour sum of a window table (v8): see :mod:`.summaries`."""
    return sa.Table(
        name,
        metadata,
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("hour", sa.Float, nullable=False),  # start of the hour (packet time) its windows started in
        sa.Column(key, sa.String, nullable=False),
        *(sa.Column(c, sa.BigInteger, nullable=False) for c in sums),
        sa.Column("first_window", sa.Float, nullable=False),
        sa.Column("last_window", sa.Float, nullable=False),
        sa.Index(f"ux_{name}_run_hour_{key}", "run_id", "hour", key, unique=True),
    )


host_hours = _hour_table("host_hours", "host", "packets_out", "bytes_out", "packets_in", "bytes_in")
protocol_hours = _hour_table("protocol_hours", "protocol", "packets", "bytes")

peer_hours = sa.Table(  # v8: each host's flows by hour, peer and port, both ends of every flow: see .flow_sums
    "peer_hours",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("host", sa.String, nullable=False),
    sa.Column("hour", sa.Float, nullable=False),  # start of the hour (packet time) the flows started in
    sa.Column("peer", sa.String, nullable=False),
    sa.Column("role", sa.String, nullable=False),  # client: the host opened the flows; server: the peer did
    sa.Column("proto", sa.String, nullable=False),  # the flows' columns, NULL as "" (or -1): a unique key has no NULL
    sa.Column("port", sa.Integer, nullable=False),  # the responder's port
    sa.Column("service", sa.String, nullable=False),
    sa.Column("flows", sa.BigInteger, nullable=False),  # 0 once its flows all changed service
    sa.Column("sent", sa.BigInteger, nullable=False),  # IP bytes the host sent
    sa.Column("received", sa.BigInteger, nullable=False),
    sa.Column("first_ts", sa.Float, nullable=False),
    sa.Column("last_ts", sa.Float, nullable=False),
    sa.Index("ux_peer_hours_key", "run_id", "host", "hour", "peer", "role", "proto", "port", "service", unique=True),
)

flow_hours = sa.Table(  # v8: the run's flows by hour and kind, for its flow count, services and states
    "flow_hours",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("hour", sa.Float, nullable=False),
    sa.Column("proto", sa.String, nullable=False),  # NULL as "", as in peer_hours
    sa.Column("service", sa.String, nullable=False),
    sa.Column("conn_state", sa.String, nullable=False),
    sa.Column("flows", sa.BigInteger, nullable=False),  # 0 once its flows all changed service or state
    sa.Column("first_ts", sa.Float, nullable=False),
    sa.Column("last_ts", sa.Float, nullable=False),
    sa.Index("ux_flow_hours_key", "run_id", "hour", "proto", "service", "conn_state", unique=True),
)
HOUR_TABLES = (host_hours, protocol_hours, peer_hours, flow_hours)

RESULT_TABLES = (runs, traffic, protocols, hosts, flows, alerts, health, dns_queries, app_events, *HOUR_TABLES)

# The packet-time column of each table a run fills: retention prunes by it, oldest first.
TIME_COLUMNS: dict[str, str] = {
    "traffic": "second",
    "protocols": "window_start",
    "hosts": "window_start",
    "flows": "last_ts",
    "alerts": "end",
    "health": "at",
    "dns_queries": "window_start",
    "app_events": "window_start",
    "host_hours": "last_window",  # an hour goes once all its windows are gone
    "protocol_hours": "last_window",
    "peer_hours": "last_ts",
    "flow_hours": "last_ts",
}
