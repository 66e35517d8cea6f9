"""The result store as the first release made it (schema version 1), to test migrating it in place.

Copied from traffic_analyzer/store/database.py (since split into schema, writer and reader) before
versions existed: no store_schema table, no sensor on runs, flows keyed by uid alone, no DNS names.
Do not change it to match the code.
"""

from __future__ import annotations

import sqlalchemy as sa

from traffic_analyzer.records.flows import FLOW_COLUMNS

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("model", sa.Text),
)
traffic = sa.Table(
    "traffic",
    metadata,
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("second", sa.Integer, nullable=False),
    sa.Column("packets", sa.Integer, nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
)
protocols = sa.Table(
    "protocols",
    metadata,
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("protocol", sa.String, nullable=False),
    sa.Column("packets", sa.Integer, nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
)
hosts = sa.Table(
    "hosts",
    metadata,
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("host", sa.String, nullable=False),
    sa.Column("packets_out", sa.Integer, nullable=False),
    sa.Column("bytes_out", sa.Integer, nullable=False),
    sa.Column("packets_in", sa.Integer, nullable=False),
    sa.Column("bytes_in", sa.Integer, nullable=False),
)
_SQL_TYPES = {"float64": sa.Float, "string": sa.String, "Int32": sa.Integer, "int64": sa.BigInteger}
flows = sa.Table(
    "flows",
    metadata,
    sa.Column("run_id", sa.String, nullable=False, index=True),
    *[sa.Column(name, _SQL_TYPES[str(dtype)], primary_key=(name == "uid")) for name, dtype in FLOW_COLUMNS.items()],
)
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String, primary_key=True),
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("attacker", sa.String, nullable=False),
    sa.Column("victims", sa.String, nullable=False),
    sa.Column("start", sa.Float, nullable=False),
    sa.Column("end", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("severity", sa.String, nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("detector", sa.String, nullable=False),
    sa.Column("updates", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
health = sa.Table(
    "health",
    metadata,
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("packets", sa.Integer, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("dropped", sa.Integer),
    sa.Column("sampled_out", sa.Integer, nullable=False),
    sa.Column("lag_s", sa.Float),
    sa.Column("open_flows", sa.Integer, nullable=False),
    sa.Column("cpu_percent", sa.Float, nullable=False),
    sa.Column("rss_mb", sa.Float, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
)
