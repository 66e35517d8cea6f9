"""Schema versions: a store is brought up to :data:`~.schema.SCHEMA_VERSION` in place, never recreated.

A one-row table, ``store_schema``, holds the version; each step below is a function that takes
a store from the version before it to its own, inside the same transaction as the version
bump, so a crash mid-way leaves the old version whole (SQLite and PostgreSQL both roll DDL
back). We use this small ordered list rather than Alembic: two dialects, one or two steps a
year, and no migration scripts, ``env.py`` or ``alembic.ini`` to ship and keep in step with
the table definitions in :mod:`.schema`. Version 1 stores (the first SQLite stores) have no
``store_schema`` table; they are recognised by their ``runs`` table.

Several sensors may start against one empty PostgreSQL database at the same moment: the
migration holds an advisory lock, so one creates the tables and the others find them.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from ..errors import AnalyzerError
from . import flow_sums
from .schema import (
    FLOW_INDEXES_V8,
    SCHEMA_VERSION,
    WINDOW_TABLES,
    app_events,
    dns_queries,
    flow_columns,
    flow_hours,
    hosts,
    metadata,
    peer_hours,
    schema_version,
    traffic,
)
from .summaries import SUMMARIES

PG_SCHEMA_LOCK = 0x6E7461_01  # pg_advisory_xact_lock key: "nta" + 1, the schema lock
V1 = 1  # a store with the result tables and no store_schema table


def stored_version(conn: sa.Connection) -> int:
    """The store's schema version: 0 for an empty database, 1 for a store older than versions."""
    inspector = sa.inspect(conn)
    if inspector.has_table(schema_version.name):
        return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or V1)
    return V1 if inspector.has_table("runs") else 0


def migrate(conn: sa.Connection, sensor: str, *, create: bool) -> int:
    """Bring the store up to date inside ``conn``'s open transaction; returns the version it is at.

    ``create`` makes the tables in an empty database (the writer does, readers do not). Runs
    of a version 1 store are given to ``sensor``: that store only ever had this one.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_SCHEMA_LOCK)))
    version = stored_version(conn)
    if version == 0:
        if not create:
            return 0
        metadata.create_all(conn)
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        return SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise AnalyzerError(
            f"the result store has schema version {version}, newer than this analyzer's {SCHEMA_VERSION}: "
            "update the analyzer"
        )
    if version == SCHEMA_VERSION:
        return version  # nothing to write: a reader must not need the write lock
    for target, step in STEPS:
        if version < target:
            step(conn, sensor)
            version = target
    if not sa.inspect(conn).has_table(schema_version.name):
        schema_version.create(conn)
    conn.execute(schema_version.delete())
    conn.execute(schema_version.insert().values(version=version))
    return version


def _add_column(conn: sa.Connection, table: str, column: sa.Column, default: str = "") -> None:
    quote = conn.dialect.identifier_preparer.quote
    sql_type = column.type.compile(dialect=conn.dialect)
    clause = f" NOT NULL DEFAULT {default}" if default else ""
    conn.exec_driver_sql(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column.name)} {sql_type}{clause}")


def _v2_sensors_and_dns(conn: sa.Connection, sensor: str) -> None:
    """v1 -> v2: runs get their sensor and whether they were live; flows are keyed by (run_id, uid); DNS names."""
    _add_column(conn, "runs", sa.Column("sensor", sa.String), default="''")
    _add_column(conn, "runs", sa.Column("live", sa.Boolean))
    _add_column(conn, "health", sa.Column("channels", sa.Text))  # JSON: alert channel health
    old_runs = sa.table("runs", sa.column("sensor"), sa.column("live"), sa.column("source"))
    conn.execute(old_runs.update().values(sensor=sensor, live=old_runs.c.source.startswith("live")))

    # SQLite cannot change a primary key in place: copy flows into a table with the new key.
    rebuilt = sa.Table("flows_v2", sa.MetaData(), *flow_columns())
    rebuilt.create(conn)
    names = [c.name for c in rebuilt.columns]
    old_flows = sa.table("flows", *(sa.column(n) for n in names))
    conn.execute(rebuilt.insert().from_select(names, sa.select(*old_flows.c)))
    conn.exec_driver_sql("DROP TABLE flows")
    conn.exec_driver_sql("ALTER TABLE flows_v2 RENAME TO flows")

    dns_queries.create(conn)
    existing = set(sa.inspect(conn).get_table_names())
    for table in metadata.sorted_tables:
        if table in WINDOW_TABLES or table.name not in existing:  # v4's indexes, or a later version's table
            continue
        for index in table.indexes:
            index.create(conn, checkfirst=True)


V2_RUN_ID_INDEXES = tuple(f"ix_{table}_run_id" for table in ("traffic", "protocols", "hosts", "flows", "health"))


def _v3_one_run_index_per_table(conn: sa.Connection, _sensor: str) -> None:
    """v2 -> v3: drop the run_id indexes that the (run_id, time) and (run_id, uid) indexes make redundant."""
    quote = conn.dialect.identifier_preparer.quote
    for name in V2_RUN_ID_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {quote(name)}")


V3_WINDOW_INDEXES = tuple(
    f"ix_{name}"
    for name in (
        "traffic_run_second",
        "protocols_run_window",
        "hosts_run_window",
        "health_run_at",
        "dns_queries_run_window",
    )
)


def _v4_unique_window_keys(conn: sa.Connection, _sensor: str) -> None:
    """v3 -> v4: traffic rows name their window; window rows get unique keys in place of the (run_id, time) indexes.

    Rows a retried window wrote twice before v4 are duplicates under the new keys: one of each is kept.
    Traffic rows of earlier versions have no window (NULL), so they never collide.
    """
    _add_column(conn, traffic.name, sa.Column("window_start", sa.Float))
    quote = conn.dialect.identifier_preparer.quote
    for name in V3_WINDOW_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {quote(name)}")
    for table in WINDOW_TABLES:
        for index in table.indexes:
            if index.unique and table is not traffic:
                _drop_duplicates(conn, quote(table.name), [quote(c.name) for c in index.columns])
            index.create(conn, checkfirst=True)


def _drop_duplicates(conn: sa.Connection, table: str, key: list[str]) -> None:
    """Keep one row of each ``key`` (NOT NULL columns), by the physical row id of each dialect."""
    if conn.dialect.name == "postgresql":
        same = " AND ".join(f"a.{c} = b.{c}" for c in key)
        conn.exec_driver_sql(f"DELETE FROM {table} a USING {table} b WHERE a.ctid > b.ctid AND {same}")
    else:
        names = ", ".join(key)
        conn.exec_driver_sql(
            f"DELETE FROM {table} WHERE rowid NOT IN (SELECT MIN(rowid) FROM {table} GROUP BY {names})"
        )


def _v5_app_events(conn: sa.Connection, _sensor: str) -> None:
    """v4 -> v5: the DNS, HTTP and TLS messages of each window (for the Zeek dns/http/ssl logs)."""
    app_events.create(conn, checkfirst=True)  # with its index


def _v6_host_anomaly(conn: sa.Connection, _sensor: str) -> None:
    """v5 -> v6: each host window's anomaly margin, for the model's score over time on a host's page."""
    _add_column(conn, "hosts", sa.Column("anomaly", sa.Float))


def _v7_dns_answers(conn: sa.Connection, _sensor: str) -> None:
    """v6 -> v7: each DNS answer's records and TTLs, for the Zeek dns.log answers and TTLs (NULL before).

    A store older than v5 got app_events from the v5 step, already with these columns.
    """
    have = {column["name"] for column in sa.inspect(conn).get_columns(app_events.name)}
    for name in ("dns_answers", "dns_ttls"):
        if name not in have:
            _add_column(conn, app_events.name, sa.Column(name, sa.String))


def _v8_hour_sums_and_host_indexes(conn: sa.Connection, _sensor: str) -> None:
    """v7 -> v8: per-hour sums of hosts, protocols and flows, filled from the stored rows; flows and hosts indexed.

    A store older than v2 got the flow indexes from the v2 step, and one older than v4 the hosts one from v4.
    """
    for summary in SUMMARIES:
        summary.table.create(conn, checkfirst=True)
        summary.backfill(conn)
    for table in (peer_hours, flow_hours):
        table.create(conn, checkfirst=True)
    flow_sums.backfill(conn)
    for index in (*FLOW_INDEXES_V8, *(i for i in hosts.indexes if not i.unique)):
        index.create(conn, checkfirst=True)


# (version it leads to, step), in order.
STEPS: tuple[tuple[int, Callable[[sa.Connection, str], None]], ...] = (
    (2, _v2_sensors_and_dns),
    (3, _v3_one_run_index_per_table),
    (4, _v4_unique_window_keys),
    (5, _v5_app_events),
    (6, _v6_host_anomaly),
    (7, _v7_dns_answers),
    (8, _v8_hour_sums_and_host_indexes),
)
