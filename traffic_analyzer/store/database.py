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
