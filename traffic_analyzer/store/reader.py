"""Read-only queries of a result store: the dashboard's (:class:`ResultReader`), the export's (:class:`RecordReader`).

Neither writes: both open the database read-only (SQLite ``mode=ro``, PostgreSQL read-only
sessions), and never create a missing store or migrate an older one; the analyzer's
:class:`~.writer.ResultWriter` alone does. For the dashboard, a store that does not exist yet, or
has no tables yet, reads as empty ("no data yet"); one of an older schema version is read as it
is (a column or table it lacks reads as NULL or as nothing), and the reader says once, in the
log, that the analyzer upgrades it the next time it starts on it. A store newer than the code is
refused with a one-line error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from ..errors import AnalyzerError
from .engine import display_url, open_engine, sqlite_file, store_error
from .flow_sums import NO_PORT
from .migrations import stored_version
from .schema import (
    HOUR_TABLES,
    SCHEMA_VERSION,
    alerts,
    dns_queries,
    flow_hours,
    flows,
    health,
    host_hours,
    hosts,
    peer_hours,
    protocol_hours,
    protocols,
    runs,
    traffic,
)

__all__ = ["RecordReader", "ResultReader", "Selection"]

RunIds = str | Sequence[str]  # one run, or several (the latest run of each sensor)
COLUMN_DEFAULTS = {("runs", "sensor"): ""}  # what a column an older store lacks reads as (else NULL)


def _of_runs(column: sa.ColumnElement, run_id: RunIds) -> sa.ColumnElement[bool]:
    """``column`` is the run, or one of the runs."""
    return column == run_id if isinstance(run_id, str) else column.in_(list(run_id))


@dataclass(frozen=True)
class _Layout:
    """The store's schema version and, for an older one, the columns each of its tables has."""

    version: int
    columns: dict[str, frozenset[str]] | None = None  # None: the current schema, every table and column


class ResultReader:
    """Read-only queries for the dashboard and the summary.

    Queries of a run take one ``run_id`` or several (the latest run of each sensor). The store
    is looked at lazily: until it exists with its tables, the run queries find nothing.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url, read_only=True)
        self.logger = logging.getLogger("traffic_analyzer")
        self._layout: _Layout | None = None  # once current, never looked at again
        self._told = 0  # the older version the log was told about

    def _ready(self) -> _Layout | None:
        """The store's layout; None while there is no store or no tables yet. Raises for a newer store."""
        if self._layout is not None and self._layout.columns is None:
            return self._layout
        path = sqlite_file(self.url)
        if path is not None and not path.exists():
            return None  # read-only: never create the file the analyzer will make
        try:
            with self.engine.connect() as conn:
                version = stored_version(conn)
                if version == 0:
                    return None
                if version > SCHEMA_VERSION:
                    raise AnalyzerError(
                        f"the result store {display_url(self.url)} has schema version {version}, newer than this "
                        f"analyzer's {SCHEMA_VERSION}: update the analyzer"
                    )
                if self._layout is None or self._layout.version != version:
                    self._layout = _Layout(version, None if version == SCHEMA_VERSION else _columns(conn))
        except sa.exc.DBAPIError as exc:
            raise store_error("read", self.url, exc) from exc
        if version < SCHEMA_VERSION and self._told != version:
            self._told = version
            self.logger.warning(
                "the result store %s has schema version %d, older than this analyzer's %d: it is read as it is "
                "(what it does not record shows as empty); the analyzer upgrades it when it next starts on it",
                display_url(self.url),
                version,
                SCHEMA_VERSION,
            )
        return self._layout

    def _column(self, table: sa.Table, name: str) -> sa.ColumnElement:
        """``table.name``, or its stand-in when an older store lacks the column."""
        columns = self._layout.columns if self._layout is not None else None
        if columns is None or name in columns.get(table.name, ()):
            return table.c[name]
        return sa.literal(COLUMN_DEFAULTS.get((table.name, name))).label(name)

    def _has(self, table: sa.Table) -> bool:
        """Whether the store has ``table`` (an older one may not)."""
        columns = self._layout.columns if self._layout is not None else None
        return columns is None or table.name in columns

    def _all(self, table: sa.Table) -> sa.Select:
        """SELECT every column of ``table`` as the current schema has it."""
        return sa.select(*(self._column(table, c.name) for c in table.columns)).select_from(table)

    def _frame(self, query) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn)

    def _runs(self, sensor: str | None) -> list[dict]:
        """Runs newest first, of one sensor or of all; model metadata parsed."""
        if self._ready() is None:
            return []
        q = self._all(runs).order_by(runs.c.started_at.desc(), runs.c.run_id)
        frame = self._frame(q if sensor is None else q.where(self._column(runs, "sensor") == sensor))
        rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
        for row in rows:
            row["model"] = json.loads(row["model"]) if row.get("model") else {}
        return rows

    def latest_run(self, sensor: str | None = None) -> dict | None:
        """The newest run (of ``sensor`` when given), or None before any."""
        found = self._runs(sensor)
        return found[0] if found else None

    def latest_runs(self, sensor: str | None = None) -> list[dict]:
        """The newest run of each sensor (only ``sensor``'s when given), newest first."""
        seen: set[str] = set()
        latest = []
        for row in self._runs(sensor):
            if row["sensor"] not in seen:
                seen.add(row["sensor"])
                latest.append(row)
        return latest

    def sensors(self) -> list[str]:
        """Names of the sensors that wrote runs to this store, sorted."""
        if self._ready() is None:
            return []
        sensor = self._column(runs, "sensor")
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(sensor).select_from(runs).distinct().order_by(sensor)).scalars())

    def windows(self, run_id: RunIds) -> int:
        """How many analysis windows of the run(s) were committed (one health sample each)."""
        q = sa.select(sa.func.count()).select_from(health).where(_of_runs(health.c.run_id, run_id))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def host_dns(self, run_id: RunIds, host: str, limit: int = 50) -> pd.DataFrame:
        """The DNS names ``host`` asked for: qname, queries, first and last window; most asked first."""
        if self._ready() is None or not self._has(dns_queries):
            return pd.DataFrame(columns=["qname", "queries", "first_window", "last_window"])
        q = (
            sa.select(
                dns_queries.c.qname,
                sa.func.sum(dns_queries.c.queries).label("queries"),
                sa.func.min(dns_queries.c.window_start).label("first_window"),
                sa.func.max(dns_queries.c.window_start).label("last_window"),
            )
            .where(_of_runs(dns_queries.c.run_id, run_id), dns_queries.c.host == host)
            .group_by(dns_queries.c.qname)
            .order_by(sa.desc("queries"), dns_queries.c.qname)
            .limit(limit)
        )
        return self._frame(q)

    def traffic(self, run_id: RunIds, last_s: float | None = None) -> pd.DataFrame:
        """Packets and bytes per second, oldest first; only the run's last ``last_s`` seconds when given.

        The last seconds end at the run's newest second, not now: a file's packets are old. A
        day of seconds is 86,400 rows, too many to re-read and draw every refresh.
        """
        run = _of_runs(traffic.c.run_id, run_id)
        terms = [run]
        if last_s is not None:
            newest = sa.select(sa.func.max(traffic.c.second)).where(run).scalar_subquery()
            terms.append(traffic.c.second > newest - last_s)
        q = (
            sa.select(
                traffic.c.second,
                sa.func.sum(traffic.c.packets).label("packets"),
                sa.func.sum(traffic.c.bytes).label("bytes"),
            )
            .where(*terms)
            .group_by(traffic.c.second)
            .order_by(traffic.c.second)
        )
        return self._frame(q)

    def _by_hour(self, summary: sa.Table, source: sa.Table) -> sa.Table:
        """The per-hour sums when the store has them (v8), else the window rows they sum: same answers."""
        return source if self._ready() is not None and not self._has(summary) else summary

    def protocols(self, run_id: RunIds) -> pd.DataFrame:
        table = self._by_hour(protocol_hours, protocols)
        q = (
            sa.select(
                table.c.protocol,
                sa.func.sum(table.c.packets).label("packets"),
                sa.func.sum(table.c.bytes).label("bytes"),
            )
            .where(_of_runs(table.c.run_id, run_id))
            .group_by(table.c.protocol)
            .order_by(sa.desc("packets"))
        )
        return self._frame(q)

    def top_talkers(self, run_id: RunIds, limit: int = 10) -> pd.DataFrame:
        table = self._by_hour(host_hours, hosts)
        total = (table.c.bytes_out + table.c.bytes_in).label("total")
        q = (
            sa.select(
                table.c.host,
                sa.func.sum(table.c.bytes_out).label("bytes_out"),
                sa.func.sum(table.c.bytes_in).label("bytes_in"),
                sa.func.sum(table.c.packets_out).label("packets_out"),
                sa.func.sum(table.c.packets_in).label("packets_in"),
                sa.func.sum(total).label("bytes_total"),
            )
            .where(_of_runs(table.c.run_id, run_id))
            .group_by(table.c.host)
            .order_by(sa.desc("bytes_total"))
            .limit(limit)
        )
        return self._frame(q)

    def alerts(self, run_id: RunIds) -> pd.DataFrame:
        return self._frame(sa.select(alerts).where(_of_runs(alerts.c.run_id, run_id)).order_by(alerts.c.score.desc()))

    def flows(self, run_id: RunIds, limit: int = 1000) -> pd.DataFrame:
        q = sa.select(flows).where(_of_runs(flows.c.run_id, run_id)).order_by(flows.c.last_ts.desc()).limit(limit)
        return self._frame(q)

    def flow_count(self, run_id: RunIds) -> int:
        return self.count_flows(run_id)

    def health(self, run_id: RunIds) -> dict | None:
        self._ready()
        q = self._all(health).where(_of_runs(health.c.run_id, run_id)).order_by(health.c.at.desc()).limit(1)
        frame = self._frame(q)
        return None if frame.empty else frame.iloc[0].to_dict()

    def close(self) -> None:
        self.engine.dispose()

    # -- queries of the dashboard's alert, host and flow pages ----------------------------------

    def alert(self, alert_id: str) -> dict | None:
        """One alert row by id, or None."""
        frame = self._frame(sa.select(alerts).where(alerts.c.alert_id == alert_id))
        return None if frame.empty else frame.iloc[0].to_dict()

    def host_totals(self, run_id: RunIds) -> pd.DataFrame:
        """Every host of the run with its packets and bytes each way and the windows it was first and last seen in."""
        table = self._by_hour(host_hours, hosts)
        first, last = ("first_window", "last_window") if table is host_hours else ("window_start", "window_start")
        q = (
            sa.select(
                table.c.host,
                sa.func.sum(table.c.packets_out).label("packets_out"),
                sa.func.sum(table.c.bytes_out).label("bytes_out"),
                sa.func.sum(table.c.packets_in).label("packets_in"),
                sa.func.sum(table.c.bytes_in).label("bytes_in"),
                sa.func.min(table.c[first]).label("first_window"),
                sa.func.max(table.c[last]).label("last_window"),
            )
            .where(_of_runs(table.c.run_id, run_id))
            .group_by(table.c.host)
        )
        return self._frame(q)

    def host_windows(self, run_id: RunIds, host: str) -> pd.DataFrame:
        """One host's packets and bytes each way per analysis window, and its anomaly margin, oldest first."""
        self._ready()  # an older store has no margin column
        q = (
            sa.select(
                hosts.c.window_start,
                sa.func.sum(hosts.c.packets_out).label("packets_out"),
                sa.func.sum(hosts.c.bytes_out).label("bytes_out"),
                sa.func.sum(hosts.c.packets_in).label("packets_in"),
                sa.func.sum(hosts.c.bytes_in).label("bytes_in"),
                sa.func.max(self._column(hosts, "anomaly")).label("anomaly"),  # NULL where no model scored it
            )
            .where(_of_runs(hosts.c.run_id, run_id), hosts.c.host == host)
            .group_by(hosts.c.window_start)
            .order_by(hosts.c.window_start)
        )
        return self._frame(q)

    def _host_sides(self, run_id: RunIds, host: str) -> sa.Subquery:
        """The host's flows seen from the host: its peer, who opened it, and IP bytes it sent and received."""
        columns = (flows.c.proto, flows.c.resp_p, flows.c.service, flows.c.ts, flows.c.last_ts)
        as_originator = sa.select(
            flows.c.resp_h.label("peer"),
            sa.literal("client").label("role"),
            flows.c.orig_ip_bytes.label("sent"),
            flows.c.resp_ip_bytes.label("received"),
            *columns,
        ).where(_of_runs(flows.c.run_id, run_id), flows.c.orig_h == host)
        as_responder = sa.select(
            flows.c.orig_h.label("peer"),
            sa.literal("server").label("role"),
            flows.c.resp_ip_bytes.label("sent"),
            flows.c.orig_ip_bytes.label("received"),
            *columns,
        ).where(_of_runs(flows.c.run_id, run_id), flows.c.resp_h == host)
        return sa.union_all(as_originator, as_responder).subquery()

    def _peer_sums(self, run_id: RunIds, *terms) -> sa.Subquery | None:
        """The run's ``peer_hours`` rows that count flows (``terms`` more), NULLs back as NULL; None before v8."""
        if not self._summed(peer_hours):
            return None
        p = peer_hours.c
        return (
            sa.select(
                p.host,
                p.peer,
                p.role,
                sa.func.nullif(p.proto, "").label("proto"),
                sa.func.nullif(p.port, NO_PORT).label("resp_p"),
                sa.func.nullif(p.service, "").label("service"),
                p.flows,
                p.sent,
                p.received,
                p.first_ts.label("ts"),
                p.last_ts,
            )
            .where(_of_runs(p.run_id, run_id), p.flows > 0, *terms)
            .subquery()
        )

    def host_peers(self, run_id: RunIds, host: str, limit: int = 50) -> pd.DataFrame:
        """The hosts ``host`` had flows with: flows, IP bytes each way, first and last time; busiest first."""
        summed = self._peer_sums(run_id, peer_hours.c.host == host)
        sides = self._host_sides(run_id, host) if summed is None else summed
        count = sa.func.count() if summed is None else sa.cast(sa.func.sum(sides.c.flows), sa.BigInteger)  # as count()
        q = (
            sa.select(
                sides.c.peer,
                count.label("flows"),
                sa.func.sum(sides.c.sent).label("bytes_sent"),
                sa.func.sum(sides.c.received).label("bytes_received"),
                sa.func.min(sides.c.ts).label("first_ts"),
                sa.func.max(sides.c.last_ts).label("last_ts"),
            )
            .group_by(sides.c.peer)
            .order_by(sa.desc("flows"), sides.c.peer)
            .limit(limit)
        )
        return self._frame(q)

    def host_ports(self, run_id: RunIds, host: str, limit: int = 50) -> pd.DataFrame:
        """Responder ports of the host's flows, as client (ports it used) and server (ports it was contacted on)."""
        summed = self._peer_sums(run_id, peer_hours.c.host == host)
        sides = self._host_sides(run_id, host) if summed is None else summed
        count = sa.func.count() if summed is None else sa.cast(sa.func.sum(sides.c.flows), sa.BigInteger)  # as count()
        q = (
            sa.select(
                sides.c.role,
                sides.c.proto,
                sides.c.resp_p.label("port"),
                sides.c.service,
                count.label("flows"),
                sa.func.count(sa.distinct(sides.c.peer)).label("peers"),
                sa.func.sum(sides.c.sent + sides.c.received).label("bytes"),
            )
            .group_by(sides.c.role, sides.c.proto, sides.c.resp_p, sides.c.service)
            .order_by(sa.desc("flows"), sides.c.resp_p)
            .limit(limit)
        )
        return self._frame(q)

    def _flow_conditions(
        self,
        run_id: RunIds,
        *,
        ip: str | None = None,
        port: int | None = None,
        service: str | None = None,
        conn_states: list[str] | None = None,
        start: float | None = None,
        end: float | None = None,
        between: tuple[str | None, list[str] | None] | None = None,
    ) -> list:
        """WHERE terms for flow searches; a trailing * in ``ip`` makes it a prefix."""
        terms: list = [_of_runs(flows.c.run_id, run_id)]
        if ip:
            if ip.endswith("*"):
                prefix = ip.rstrip("*")
                terms.append(
                    sa.or_(
                        flows.c.orig_h.startswith(prefix, autoescape=True),
                        flows.c.resp_h.startswith(prefix, autoescape=True),
                    )
                )
            else:
                terms.append(sa.or_(flows.c.orig_h == ip, flows.c.resp_h == ip))
        if port is not None:
            terms.append(sa.or_(flows.c.orig_p == port, flows.c.resp_p == port))
        if service:
            terms.append(flows.c.service == service)
        if conn_states:
            terms.append(flows.c.conn_state.in_(conn_states))
        if start is not None:
            terms.append(flows.c.last_ts >= start)  # flows that overlap [start, end]
        if end is not None:
            terms.append(flows.c.ts <= end)
        if between is not None:
            a, b = between  # None on either side: any host
            a_terms = [flows.c.orig_h == a, flows.c.resp_h == a] if a is not None else [sa.true(), sa.true()]
            b_terms = [flows.c.resp_h.in_(b), flows.c.orig_h.in_(b)] if b is not None else [sa.true(), sa.true()]
            terms.append(sa.or_(sa.and_(a_terms[0], b_terms[0]), sa.and_(a_terms[1], b_terms[1])))
        return terms

    def search_flows(self, run_id: RunIds, limit: int = 1000, **conditions) -> pd.DataFrame:
        """Flows matching ``conditions`` (ip, port, service, conn_states, start, end, between), latest started first.

        ``between=(a, [b...])`` keeps flows from a to any b or back; None on a side means any host.
        A host's flows (an exact ``ip``) are the latest it opened and the latest it answered, merged:
        each reads one index in time order ((run_id, orig_h, ts), (run_id, resp_h, ts)), where one
        query with an OR would read every flow of a busy host or every flow of the run for a quiet one.
        """
        ip = conditions.get("ip")
        order = (flows.c.ts.desc(), flows.c.uid)
        if not ip or ip.endswith("*"):
            return self._frame(
                sa.select(flows).where(*self._flow_conditions(run_id, **conditions)).order_by(*order).limit(limit)
            )
        terms = self._flow_conditions(run_id, **{**conditions, "ip": None})
        ends = [
            sa.select(flows).where(*terms, flows.c.orig_h == ip).order_by(*order).limit(limit).subquery(),
            sa.select(flows).where(*terms, flows.c.resp_h == ip, flows.c.orig_h != ip).order_by(*order).limit(limit),
        ]
        either = sa.union_all(sa.select(ends[0]), sa.select(ends[1].subquery())).subquery()
        return self._frame(sa.select(either).order_by(either.c.ts.desc(), either.c.uid).limit(limit))

    def count_flows(self, run_id: RunIds, **conditions) -> int:
        """How many flows :meth:`search_flows` would find without its limit."""
        q = self._summed_count(run_id, conditions)
        if q is None:
            q = sa.select(sa.func.count()).select_from(flows).where(*self._flow_conditions(run_id, **conditions))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def _summed(self, table: sa.Table) -> bool:
        """Whether the store has the sums ``table`` (v8)."""
        return self._ready() is not None and self._has(table)

    def _summed_count(self, run_id: RunIds, conditions: dict) -> sa.Select | None:
        """The count of the run's flows, or of one host's (an exact ``ip``), from their sums; None for other searches.

        A host's flows are its sums at either end, less its flows with itself (counted at both ends).
        """
        ip = conditions.get("ip")
        if any(v not in (None, "", []) for k, v in conditions.items() if k != "ip") or (ip and ip.endswith("*")):
            return None
        if not ip:
            if not self._summed(flow_hours):
                return None
            total = sa.func.sum(flow_hours.c.flows)
            return sa.select(sa.cast(sa.func.coalesce(total, 0), sa.BigInteger)).where(
                _of_runs(flow_hours.c.run_id, run_id)
            )
        summed = self._peer_sums(run_id, peer_hours.c.host == ip)
        if summed is None:
            return None
        self_flows = sa.case((sa.and_(summed.c.role == "client", summed.c.peer == ip), summed.c.flows), else_=0)
        return sa.select(sa.cast(sa.func.coalesce(sa.func.sum(summed.c.flows - self_flows), 0), sa.BigInteger))

    def flow_values(self, run_id: RunIds, column: str) -> list[str]:
        """The distinct non-empty values of a text column of the run's flows (service, conn_state, proto), sorted."""
        if column not in ("service", "conn_state", "proto"):
            raise ValueError(f"flow_values lists service, conn_state or proto, not {column!r}")
        table = flow_hours if self._summed(flow_hours) else flows
        col = table.c[column]
        terms = [_of_runs(table.c.run_id, run_id), col.is_not(None), col != ""]
        if table is flow_hours:
            terms.append(flow_hours.c.flows > 0)
        q = sa.select(col).where(*terms).distinct().order_by(col)
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def flow_span(self, run_id: RunIds) -> tuple[float | None, float | None]:
        """First and last packet time of the run's flows (None, None without flows).

        Two queries, so each reads one end of an index ((run_id, ts), (run_id, last_ts)): together they read every flow.
        """
        run = _of_runs(flows.c.run_id, run_id)
        with self.engine.connect() as conn:
            first = conn.execute(sa.select(sa.func.min(flows.c.ts)).where(run)).scalar()
            last = conn.execute(sa.select(sa.func.max(flows.c.last_ts)).where(run)).scalar()
        return first, last


def _columns(conn: sa.Connection) -> dict[str, frozenset[str]]:
    """Table name -> its column names, for the result tables the store has."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    return {
        t.name: frozenset(c["name"] for c in inspector.get_columns(t.name))
        for t in (runs, traffic, protocols, hosts, flows, alerts, health, dns_queries, *HOUR_TABLES)
        if t.name in present
    }


# -- the export: one table's records of a time range, chunk by chunk ------------------------------

CHUNK_ROWS = 50_000  # rows read and written at a time, so a large store exports in bounded memory
START_COLUMN = {"flows": "ts", "alerts": "start", "app_events": "ts"}  # the time a record is filed under
ORDER = {"flows": ("ts", "uid"), "alerts": ("start", "alert_id"), "app_events": ("ts", "uid", "window_start", "seq")}


@dataclass(frozen=True)
class Selection:
    """Which records to export: records that started in [start, end) (packet time), of the runs given."""

    what: str  # flows, alerts or app_events (the messages of the Zeek dns/http/ssl logs)
    start: float | None = None  # epoch seconds of packet time, inclusive
    end: float | None = None  # epoch seconds of packet time, exclusive
    run_ids: tuple[str, ...] | None = None  # None: every run (see export.runs)


class RecordReader:
    """Read-only access to one table of a result store, by reflection.

    The table is reflected from the database rather than taken from :mod:`.schema`, so an export
    reads whatever columns the store has (an optional ``sensor`` column included), of any version.
    """

    def __init__(self, url: str, what: str) -> None:
        if what not in START_COLUMN:
            raise AnalyzerError(f"can export flows or alerts, not {what!r}")
        _refuse_missing_sqlite(url)
        self.engine = open_engine(url, read_only=True)
        try:
            self.table = sa.Table(what, sa.MetaData(), autoload_with=self.engine)
        except sa.exc.NoSuchTableError:
            raise AnalyzerError(f"the store {url} has no {what} table: run the analyzer first") from None
        except sa.exc.OperationalError as exc:
            raise AnalyzerError(f"cannot open the result store {url}: {exc.orig}") from exc
        self.what = what

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.table.columns]

    def query(self, selection: Selection) -> sa.Select:
        t = self.table
        start_col = t.c[START_COLUMN[self.what]]
        terms = []
        if selection.start is not None:
            terms.append(start_col >= selection.start)
        if selection.end is not None:
            terms.append(start_col < selection.end)
        if selection.run_ids is not None:
            terms.append(t.c.run_id.in_(selection.run_ids))
        return sa.select(t).where(*terms).order_by(*[t.c[name] for name in ORDER[self.what]])

    def chunks(self, selection: Selection, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The selected records, oldest first, ``chunk_rows`` at a time."""
        with self.engine.connect() as conn:
            yield from pd.read_sql(self.query(selection), conn, chunksize=chunk_rows)

    def close(self) -> None:
        self.engine.dispose()


def _refuse_missing_sqlite(url: str) -> None:
    """A SQLite file that does not exist is no store: say so, rather than fail to open it."""
    try:
        path = sqlite_file(url)
    except sa.exc.ArgumentError as exc:
        raise AnalyzerError(f"store URL {url!r} is not a database URL") from exc
    if path is not None and not path.is_file():
        raise AnalyzerError(f"no result store at {path}: run the analyzer first or check --data-dir / --store")
