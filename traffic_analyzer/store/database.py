"""Where results last: SQLite (WAL) by default, any SQLAlchemy URL in principle.

One :class:`ResultWriter` owns the writing connection (the analysis thread);
the dashboard opens its own :class:`ResultReader`. Readers never write.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from ..detection.alert import Alert
from ..errors import AnalyzerError
from ..features.flows import FLOW_COLUMNS

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("source", sa.String, nullable=False),  # "live eth0 (pyshark)" or "file x.pcap"
    sa.Column("status", sa.String, nullable=False),  # running, finished, failed
    sa.Column("finished_at", sa.Float),
    sa.Column("model", sa.Text),  # JSON: anomaly model status
)

traffic = sa.Table(
    "traffic",
    metadata,
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("second", sa.Integer, nullable=False),  # epoch second of the packets
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

_SQL_TYPES = {"float64": sa.Float, "string": sa.String, "Int32": sa.Integer, "int64": sa.BigInteger}  # by str(dtype)
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
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),  # wall-clock time of the sample
    sa.Column("packets", sa.Integer, nullable=False),  # captured so far
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("dropped", sa.Integer),  # NULL while the capture cannot tell
    sa.Column("sampled_out", sa.Integer, nullable=False),
    sa.Column("lag_s", sa.Float),  # wall clock minus newest packet time; NULL when reading a file
    sa.Column("open_flows", sa.Integer, nullable=False),
    sa.Column("cpu_percent", sa.Float, nullable=False),
    sa.Column("rss_mb", sa.Float, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # e.g. "capturing on eth0"
)


@dataclass
class WindowResult:
    """Everything one analysis window produced, in the shape the store keeps."""

    window_start: float
    window_end: float
    traffic: pd.DataFrame  # second, packets, bytes
    protocols: pd.DataFrame  # protocol, packets, bytes
    hosts: pd.DataFrame  # host, packets_out, bytes_out, packets_in, bytes_in
    flows: pd.DataFrame  # conn.log records touched or finished in the window
    alerts: list[Alert] = field(default_factory=list)  # created or updated in the window
    health: dict = field(default_factory=dict)


def store_url(data_dir: str | Path) -> str:
    return f"sqlite:///{Path(data_dir) / 'analyzer.db'}"


def _engine(url: str) -> sa.Engine:
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise AnalyzerError(f"store URL {url!r} is not usable: {exc}") from exc
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


class ResultWriter:
    """The single writer: the analysis loop calls it once per window."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        try:
            metadata.create_all(self.engine)
        except sa.exc.OperationalError as exc:
            raise AnalyzerError(f"cannot open the result store {url}: {exc.orig}") from exc

    def start_run(self, run_id: str, source: str, model: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.insert().values(
                    run_id=run_id, started_at=time.time(), source=source, status="running", model=json.dumps(model)
                )
            )

    def finish_run(self, run_id: str, status: str, model: dict | None = None) -> None:
        values = {"status": status, "finished_at": time.time()}
        if model is not None:
            values["model"] = json.dumps(model)
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))

    def set_model(self, run_id: str, model: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(model=json.dumps(model)))

    def write_window(self, run_id: str, result: WindowResult) -> None:
        """One transaction per window: after a crash, every committed window is whole."""
        with self.engine.begin() as conn:
            for table, frame in ((traffic, result.traffic), (protocols, result.protocols), (hosts, result.hosts)):
                if len(frame):
                    rows = frame.assign(run_id=run_id)
                    if "window_start" in table.c:
                        rows = rows.assign(window_start=result.window_start)
                    conn.execute(table.insert(), _records(rows))
            if len(result.flows):
                uids = result.flows["uid"].tolist()
                conn.execute(flows.delete().where(flows.c.uid.in_(uids)))
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

    def close(self) -> None:
        self.engine.dispose()


def _records(frame: pd.DataFrame) -> list[dict]:
    """DataFrame rows as dicts with plain Python values and None for nulls."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict("records")


class ResultReader:
    """Read-only queries for the dashboard and the summary."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)

    def _frame(self, query) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn)

    def latest_run(self) -> dict | None:
        frame = self._frame(sa.select(runs).order_by(runs.c.started_at.desc()).limit(1))
        if frame.empty:
            return None
        row = frame.iloc[0].to_dict()
        row["model"] = json.loads(row["model"]) if row.get("model") else {}
        return row

    def traffic(self, run_id: str) -> pd.DataFrame:
        q = (
            sa.select(
                traffic.c.second,
                sa.func.sum(traffic.c.packets).label("packets"),
                sa.func.sum(traffic.c.bytes).label("bytes"),
            )
            .where(traffic.c.run_id == run_id)
            .group_by(traffic.c.second)
            .order_by(traffic.c.second)
        )
        return self._frame(q)

    def protocols(self, run_id: str) -> pd.DataFrame:
        q = (
            sa.select(
                protocols.c.protocol,
                sa.func.sum(protocols.c.packets).label("packets"),
                sa.func.sum(protocols.c.bytes).label("bytes"),
            )
            .where(protocols.c.run_id == run_id)
            .group_by(protocols.c.protocol)
            .order_by(sa.desc("packets"))
        )
        return self._frame(q)

    def top_talkers(self, run_id: str, limit: int = 10) -> pd.DataFrame:
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
            .where(hosts.c.run_id == run_id)
            .group_by(hosts.c.host)
            .order_by(sa.desc("bytes_total"))
            .limit(limit)
        )
        return self._frame(q)

    def alerts(self, run_id: str) -> pd.DataFrame:
        return self._frame(sa.select(alerts).where(alerts.c.run_id == run_id).order_by(alerts.c.score.desc()))

    def flows(self, run_id: str, limit: int = 1000) -> pd.DataFrame:
        q = sa.select(flows).where(flows.c.run_id == run_id).order_by(flows.c.last_ts.desc()).limit(limit)
        return self._frame(q)

    def flow_count(self, run_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(flows).where(flows.c.run_id == run_id)).scalar()

    def health(self, run_id: str) -> dict | None:
        q = sa.select(health).where(health.c.run_id == run_id).order_by(health.c.at.desc()).limit(1)
        frame = self._frame(q)
        return None if frame.empty else frame.iloc[0].to_dict()

    def close(self) -> None:
        self.engine.dispose()

    # -- queries of the dashboard's alert, host and flow pages ----------------------------------

    def alert(self, alert_id: str) -> dict | None:
        """One alert row by id, or None."""
        frame = self._frame(sa.select(alerts).where(alerts.c.alert_id == alert_id))
        return None if frame.empty else frame.iloc[0].to_dict()

    def host_totals(self, run_id: str) -> pd.DataFrame:
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
            .where(hosts.c.run_id == run_id)
            .group_by(hosts.c.host)
        )
        return self._frame(q)

    def host_windows(self, run_id: str, host: str) -> pd.DataFrame:
        """One host's packets and bytes each way per analysis window, oldest first."""
        q = (
            sa.select(
                hosts.c.window_start,
                sa.func.sum(hosts.c.packets_out).label("packets_out"),
                sa.func.sum(hosts.c.bytes_out).label("bytes_out"),
                sa.func.sum(hosts.c.packets_in).label("packets_in"),
                sa.func.sum(hosts.c.bytes_in).label("bytes_in"),
            )
            .where(hosts.c.run_id == run_id, hosts.c.host == host)
            .group_by(hosts.c.window_start)
            .order_by(hosts.c.window_start)
        )
        return self._frame(q)

    def _host_sides(self, run_id: str, host: str) -> sa.Subquery:
        """The host's flows seen from the host: its peer, who opened it, and IP bytes it sent and received."""
        columns = (flows.c.proto, flows.c.resp_p, flows.c.service, flows.c.ts, flows.c.last_ts)
        as_originator = sa.select(
            flows.c.resp_h.label("peer"),
            sa.literal("client").label("role"),
            flows.c.orig_ip_bytes.label("sent"),
            flows.c.resp_ip_bytes.label("received"),
            *columns,
        ).where(flows.c.run_id == run_id, flows.c.orig_h == host)
        as_responder = sa.select(
            flows.c.orig_h.label("peer"),
            sa.literal("server").label("role"),
            flows.c.resp_ip_bytes.label("sent"),
            flows.c.orig_ip_bytes.label("received"),
            *columns,
        ).where(flows.c.run_id == run_id, flows.c.resp_h == host)
        return sa.union_all(as_originator, as_responder).subquery()

    def host_peers(self, run_id: str, host: str, limit: int = 50) -> pd.DataFrame:
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

    def host_ports(self, run_id: str, host: str, limit: int = 50) -> pd.DataFrame:
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
        run_id: str,
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
        terms: list = [flows.c.run_id == run_id]
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

    def search_flows(self, run_id: str, limit: int = 1000, **conditions) -> pd.DataFrame:
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

    def count_flows(self, run_id: str, **conditions) -> int:
        """How many flows :meth:`search_flows` would find without its limit."""
        q = sa.select(sa.func.count()).select_from(flows).where(*self._flow_conditions(run_id, **conditions))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def flow_values(self, run_id: str, column: str) -> list[str]:
        """The distinct non-empty values of a text column of the run's flows (service, conn_state, proto), sorted."""
        if column not in ("service", "conn_state", "proto"):
            raise ValueError(f"flow_values lists service, conn_state or proto, not {column!r}")
        col = flows.c[column]
        q = sa.select(col).where(flows.c.run_id == run_id, col.is_not(None), col != "").distinct().order_by(col)
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def flow_span(self, run_id: str) -> tuple[float | None, float | None]:
        """First and last packet time of the run's flows (None, None without flows)."""
        q = sa.select(sa.func.min(flows.c.ts), sa.func.max(flows.c.last_ts)).where(flows.c.run_id == run_id)
        with self.engine.connect() as conn:
            first, last = conn.execute(q).one()
        return first, last
