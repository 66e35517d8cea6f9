"""The one writer of a result store: runs, windows, retention and schema upgrades.

One :class:`ResultWriter` per analyzer owns the writing connection (the analysis thread): it
brings the schema up to date when it opens the store, records runs, commits each window in one
transaction and prunes old results between windows. Readers (the dashboard, the export) use
:mod:`.reader` and never write. Tables are in :mod:`.schema`, schema versions in
:mod:`.migrations`, pruning in :mod:`.retention`, connection set-up in :mod:`.engine`.
"""

from __future__ import annotations

import json
import logging
import time

import pandas as pd
import sqlalchemy as sa

from ..errors import AnalyzerError
from ..records.window import WindowResult
from .engine import default_sensor_name, display_url, open_engine, store_error
from .migrations import migrate
from .retention import Retention
from .schema import alerts, dns_queries, flows, health, hosts, protocols, runs, traffic

__all__ = ["ResultWriter"]


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
