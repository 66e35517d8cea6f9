"""Where results last: SQLite (WAL) in the data directory by default, or PostgreSQL for many sensors.

One :class:`ResultWriter` per analyzer owns the writing connection (the analysis thread) and
commits each window in one transaction; the dashboard opens its own :class:`ResultReader`.
Tables are in :mod:`.schema`, schema versions in :mod:`.migrations`, pruning in :mod:`.retention`,
connection set-up in :mod:`.engine`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from ..errors import AnalyzerError
from ..records.window import WindowResult
from .engine import default_sensor_name, display_url, open_engine, store_error, store_url
from .migrations import migrate, stored_version
from .retention import Retention
from .schema import SCHEMA_VERSION, alerts, dns_queries, flows, health, hosts, protocols, runs, traffic

__all__ = ["ResultReader", "ResultWriter", "store_url"]

RunIds = str | Sequence[str]  # one run, or several (the latest run of each sensor)


def _of_runs(column: sa.ColumnElement, run_id: RunIds) -> sa.ColumnElement[bool]:
    """``column`` is the run, or one of the runs."""
    return column == run_id if isinstance(run_id, str) else column.in_(list(run_id))


class ResultWriter:
    """The single writer of one analyzer: the analysis loop calls it once per window.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the store; an older schema is migrated, an empty database gets the tables.
    sensor : str, optional
        Name of this sensor in a store shared by several; None means this machine's host name.
    retention : Retention, optional
        How long results are kept; old rows are pruned between windows. None keeps everything.
    """

    def __init__(self, url: str, sensor: str | None = None, retention: Retention | None = None) -> None:
        self.url = url
        self.sensor = sensor or default_sensor_name()
        self.retention = retention or Retention()
        self.logger = logging.getLogger("traffic_analyzer")
        self.engine = open_engine(url, immediate=True)
        try:
            with self.engine.begin() as conn:
                migrate(conn, self.sensor, create=True)
        except sa.exc.DBAPIError as exc:
            self.engine.dispose()
            raise store_error("open", url, exc) from exc
        except AnalyzerError:
            self.engine.dispose()
            raise

    def _write(self, *statements: sa.Executable) -> None:
        try:
            with self.engine.begin() as conn:
                for statement in statements:
                    conn.execute(statement)
        except sa.exc.DBAPIError as exc:
            raise store_error("write to", self.url, exc) from exc

    def start_run(self, run_id: str, source: str, model: dict, live: bool | None = None) -> None:
        """Record a new run of this sensor; its earlier runs still marked running were cut off (kill -9, power)."""
        last_sample = sa.select(sa.func.max(health.c.at)).where(health.c.run_id == runs.c.run_id).scalar_subquery()
        interrupted = (
            runs.update()
            .where(runs.c.sensor == self.sensor, runs.c.status == "running")
            .values(status="interrupted", finished_at=sa.func.coalesce(last_sample, runs.c.started_at))
        )
        insert = runs.insert().values(
            run_id=run_id,
            started_at=time.time(),
            source=source,
            status="running",
            model=json.dumps(model),
            sensor=self.sensor,
            live=source.startswith("live") if live is None else live,
        )
        self._write(interrupted, insert)

    def finish_run(self, run_id: str, status: str, model: dict | None = None) -> None:
        values = {"status": status, "finished_at": time.time()}
        if model is not None:
            values["model"] = json.dumps(model)
        self._write(runs.update().where(runs.c.run_id == run_id).values(**values))

    def set_model(self, run_id: str, model: dict) -> None:
        self._write(runs.update().where(runs.c.run_id == run_id).values(model=json.dumps(model)))

    def write_window(self, run_id: str, result: WindowResult) -> None:
        """One transaction per window: after a crash, every committed window is whole. Then maybe prune."""
        try:
            with self.engine.begin() as conn:
                self._insert_window(conn, run_id, result)
        except sa.exc.DBAPIError as exc:
            raise store_error("write to", self.url, exc) from exc
        self.prune()

    def _insert_window(self, conn: sa.Connection, run_id: str, result: WindowResult) -> None:
        for table, frame in (
            (traffic, result.traffic),
            (protocols, result.protocols),
            (hosts, result.hosts),
            (dns_queries, result.dns),
        ):
            if len(frame):
                rows = frame.assign(run_id=run_id)
                if "window_start" in table.c:
                    rows = rows.assign(window_start=result.window_start)
                conn.execute(table.insert(), _records(rows))
        if len(result.flows):
            uids = result.flows["uid"].tolist()
            conn.execute(flows.delete().where(flows.c.run_id == run_id, flows.c.uid.in_(uids)))
            conn.execute(flows.insert(), _records(result.flows.assign(run_id=run_id)))
        for alert in result.alerts:
            alert_id = alert.alert_id(run_id)
            conn.execute(alerts.delete().where(alerts.c.alert_id == alert_id))
            conn.execute(
                alerts.insert().values(
                    alert_id=alert_id,
                    run_id=run_id,
                    kind=alert.kind,
                    attacker=alert.attacker,
                    victims=",".join(alert.victims),
                    start=alert.start,
                    end=alert.end,
                    score=alert.score,
                    severity=alert.severity,
                    explanation=alert.explanation,
                    evidence=json.dumps(alert.evidence, default=str),
                    detector=alert.detector,
                    updates=alert.updates,
                    updated_at=time.time(),
                )
            )
        if result.health:
            conn.execute(health.insert().values(run_id=run_id, **result.health))

    def prune(self) -> int:
        """One retention step when one is due; a failure is logged, never stops the analysis."""
        if not self.retention.due():
            return 0
        try:
            with self.engine.begin() as conn:
                deleted = self.retention.step(conn)
        except sa.exc.DBAPIError as exc:
            self.logger.warning("pruning old results of %s failed: %s", display_url(self.url), exc.orig)
            return 0
        if deleted:
            self.logger.info("retention: pruned %d old rows", deleted)
        return deleted

    def close(self) -> None:
        self.engine.dispose()


def _records(frame: pd.DataFrame) -> list[dict]:
    """DataFrame rows as dicts with plain Python values and None for nulls."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict("records")


class ResultReader:
    """Read-only queries for the dashboard and the summary.

    Queries of a run take one ``run_id`` or several (the latest run of each sensor). A reader
    never creates tables; it brings an older store up to the current schema the first time it
    finds one (the dashboard started over a store of an earlier version), then only reads.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)
        self._current = False  # the store was seen at the current schema version

    def _ready(self) -> bool:
        """True once the store has its tables at the current version (migrating an older one)."""
        if not self._current:
            try:
                with self.engine.connect() as conn:  # read-only: a current store needs no write lock
                    self._current = stored_version(conn) == SCHEMA_VERSION
                if not self._current:
                    with self.engine.begin() as conn:
                        self._current = migrate(conn, default_sensor_name(), create=False) == SCHEMA_VERSION
            except sa.exc.DBAPIError as exc:
                raise store_error("read", self.url, exc) from exc
        return self._current

    def _frame(self, query) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn)

    def _runs(self, sensor: str | None) -> list[dict]:
        """Runs newest first, of one sensor or of all; model metadata parsed."""
        if not self._ready():
            return []
        q = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id)
        frame = self._frame(q if sensor is None else q.where(runs.c.sensor == sensor))
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
        if not self._ready():
            return []
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(runs.c.sensor).distinct().order_by(runs.c.sensor)).scalars())

    def windows(self, run_id: RunIds) -> int:
        """How many analysis windows of the run(s) were committed (one health sample each)."""
        q = sa.select(sa.func.count()).select_from(health).where(_of_runs(health.c.run_id, run_id))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def host_dns(self, run_id: RunIds, host: str, limit: int = 50) -> pd.DataFrame:
        """The DNS names ``host`` asked for: qname, queries, first and last window; most asked first."""
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

    def traffic(self, run_id: RunIds) -> pd.DataFrame:
        q = (
            sa.select(
                traffic.c.second,
                sa.func.sum(traffic.c.packets).label("packets"),
                sa.func.sum(traffic.c.bytes).label("bytes"),
            )
            .where(_of_runs(traffic.c.run_id, run_id))
            .group_by(traffic.c.second)
            .order_by(traffic.c.second)
        )
        return self._frame(q)

    def protocols(self, run_id: RunIds) -> pd.DataFrame:
        q = (
            sa.select(
                protocols.c.protocol,
                sa.func.sum(protocols.c.packets).label("packets"),
                sa.func.sum(protocols.c.bytes).label("bytes"),
            )
            .where(_of_runs(protocols.c.run_id, run_id))
            .group_by(protocols.c.protocol)
            .order_by(sa.desc("packets"))
        )
        return self._frame(q)

    def top_talkers(self, run_id: RunIds, limit: int = 10) -> pd.DataFrame:
        total = (hosts.c.bytes_out + hosts.c.bytes_in).label("total")
        q = (
            sa.select(
                hosts.c.host,
                sa.func.sum(hosts.c.bytes_out).label("bytes_out"),
                sa.func.sum(hosts.c.bytes_in).label("bytes_in"),
                sa.func.sum(hosts.c.packets_out).label("packets_out"),
                sa.func.sum(hosts.c.packets_in).label("packets_in"),
                sa.func.sum(total).label("bytes_total"),
            )
            .where(_of_runs(hosts.c.run_id, run_id))
            .group_by(hosts.c.host)
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
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(flows).where(_of_runs(flows.c.run_id, run_id))
            ).scalar()

    def health(self, run_id: RunIds) -> dict | None:
        q = sa.select(health).where(_of_runs(health.c.run_id, run_id)).order_by(health.c.at.desc()).limit(1)
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
        q = (
            sa.select(
                hosts.c.host,
                sa.func.sum(hosts.c.packets_out).label("packets_out"),
                sa.func.sum(hosts.c.bytes_out).label("bytes_out"),
                sa.func.sum(hosts.c.packets_in).label("packets_in"),
                sa.func.sum(hosts.c.bytes_in).label("bytes_in"),
                sa.func.min(hosts.c.window_start).label("first_window"),
                sa.func.max(hosts.c.window_start).label("last_window"),
            )
            .where(_of_runs(hosts.c.run_id, run_id))
            .group_by(hosts.c.host)
        )
        return self._frame(q)

    def host_windows(self, run_id: RunIds, host: str) -> pd.DataFrame:
        """One host's packets and bytes each way per analysis window, oldest first."""
        q = (
            sa.select(
                hosts.c.window_start,
                sa.func.sum(hosts.c.packets_out).label("packets_out"),
                sa.func.sum(hosts.c.bytes_out).label("bytes_out"),
                sa.func.sum(hosts.c.packets_in).label("packets_in"),
                sa.func.sum(hosts.c.bytes_in).label("bytes_in"),
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

    def host_peers(self, run_id: RunIds, host: str, limit: int = 50) -> pd.DataFrame:
        """The hosts ``host`` had flows with: flows, IP bytes each way, first and last time; busiest first."""
        sides = self._host_sides(run_id, host)
        q = (
            sa.select(
                sides.c.peer,
                sa.func.count().label("flows"),
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
        sides = self._host_sides(run_id, host)
        q = (
            sa.select(
                sides.c.role,
                sides.c.proto,
                sides.c.resp_p.label("port"),
                sides.c.service,
                sa.func.count().label("flows"),
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
        """
        q = (
            sa.select(flows)
            .where(*self._flow_conditions(run_id, **conditions))
            .order_by(flows.c.ts.desc(), flows.c.uid)
            .limit(limit)
        )
        return self._frame(q)

    def count_flows(self, run_id: RunIds, **conditions) -> int:
        """How many flows :meth:`search_flows` would find without its limit."""
        q = sa.select(sa.func.count()).select_from(flows).where(*self._flow_conditions(run_id, **conditions))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def flow_values(self, run_id: RunIds, column: str) -> list[str]:
        """The distinct non-empty values of a text column of the run's flows (service, conn_state, proto), sorted."""
        if column not in ("service", "conn_state", "proto"):
            raise ValueError(f"flow_values lists service, conn_state or proto, not {column!r}")
        col = flows.c[column]
        q = sa.select(col).where(_of_runs(flows.c.run_id, run_id), col.is_not(None), col != "").distinct().order_by(col)
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def flow_span(self, run_id: RunIds) -> tuple[float | None, float | None]:
        """First and last packet time of the run's flows (None, None without flows)."""
        q = sa.select(sa.func.min(flows.c.ts), sa.func.max(flows.c.last_ts)).where(_of_runs(flows.c.run_id, run_id))
        with self.engine.connect() as conn:
            first, last = conn.execute(q).one()
        return first, last
