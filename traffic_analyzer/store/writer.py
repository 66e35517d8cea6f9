"""The one writer of a result store: runs, windows, retention and schema upgrades.

One :class:`ResultWriter` per analyzer owns the writing connection (the analysis thread): it
brings the schema up to date when it opens the store, records runs, commits each window in one
transaction and prunes old results between windows. Readers (the dashboard, the export) use
:mod:`.reader` and never write. Tables are in :mod:`.schema`, schema versions in
:mod:`.migrations`, pruning in :mod:`.retention`, bulk rows in :mod:`.bulk`, per-hour sums in
:mod:`.summaries`, connection set-up in :mod:`.engine`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from itertools import compress, repeat

import sqlalchemy as sa

from ..errors import AnalyzerError
from ..records.alert import Alert
from ..records.window import WindowResult
from .bulk import bulk_rows, column_rows, frame_columns
from .engine import default_sensor_name, display_url, open_engine, store_error
from .flow_sums import adding_sets, window_sums
from .flow_versions import FlowChanges, StoredFlows
from .migrations import migrate
from .retention import Retention
from .schema import (
    alerts,
    app_events,
    dns_queries,
    flow_hours,
    flows,
    health,
    hosts,
    peer_hours,
    protocols,
    runs,
    traffic,
)
from .summaries import BY_SOURCE, SUMMARIES, Summary, hour_start

__all__ = ["ResultWriter"]

FLOW_KEY = ("run_id", "uid")  # a run's flow: its upsert key
FLOW_ROW_COLUMNS = [c.name for c in flows.columns]  # run_id, uid, then the conn.log columns


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
        self._rows = bulk_rows(self.engine.dialect)
        self._flows = StoredFlows()
        self._sets = {s.table.name: s.assignments(self._rows.quote) for s in SUMMARIES}  # the SET of each sum's upsert
        self._sets |= {t.name: adding_sets(self._rows.quote, t) for t in (peer_hours, flow_hours)}
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
        """One transaction per window: after a crash, every committed window is whole. Then maybe prune.

        Writing a window again adds nothing (its rows' unique keys are stored): a retry after a
        commit whose answer was lost is safe.
        """
        self.write_windows([(run_id, result)])

    def write_windows(self, windows: Sequence[tuple[str, WindowResult]]) -> None:
        """Several whole windows (run id, result) in one transaction, oldest first; then maybe prune.

        A file's windows come a few a second: committing them together saves a commit each (a
        WAL write on SQLite, a round trip on PostgreSQL) and keeps every committed window whole.
        """
        try:
            with self.engine.begin() as conn:
                for run_id, result in windows:
                    flow_columns = frame_columns(result.flows, FLOW_ROW_COLUMNS[1:], {})  # the conn.log columns
                    changes = self._flows.changed(run_id, dict(zip(FLOW_ROW_COLUMNS[1:], flow_columns, strict=True)))
                    self._insert_window(conn, run_id, result, flow_columns, changes)
                    # known now, so that the next window of the transaction sees this one's versions as stored
                    self._flows.committed(changes, float(result.window_start))
        except sa.exc.DBAPIError as exc:
            self._flows = StoredFlows()  # the versions just noted were rolled back: every flow looks new (safe)
            raise store_error("write to", self.url, exc) from exc
        self.prune()

    def _insert_window(
        self, conn: sa.Connection, run_id: str, result: WindowResult, flow_columns: list[list], changes: FlowChanges
    ) -> None:
        window_start = float(result.window_start)
        constants = {"run_id": repeat(run_id), "window_start": repeat(window_start)}
        for table, frame, given in (
            (traffic, result.traffic, constants),
            (protocols, result.protocols, constants),
            (hosts, result.hosts, constants),
            (dns_queries, result.dns, constants),
            (app_events, result.app, {**constants, "seq": range(len(result.app))}),  # its place in the window: the key
        ):
            if len(frame):
                columns = [c.name for c in table.columns]
                rows = column_rows(frame_columns(frame, columns, given), len(frame))
                if self._rows.append(conn, table, columns, rows) and table.name in BY_SOURCE:
                    self._add_to_hour(conn, BY_SOURCE[table.name], frame, run_id, window_start)
        if changes.new.any() or changes.grown.any():
            rows = column_rows([repeat(run_id), *flow_columns], len(result.flows))
            new, grown = (list(compress(rows, mask)) for mask in (changes.new, changes.grown))
            by_name = dict(zip(FLOW_ROW_COLUMNS[1:], flow_columns, strict=True))
            by_peer, by_kind = window_sums(conn, run_id, by_name, changes.new | changes.grown)  # see .flow_sums
            self._rows.upsert(conn, flows, FLOW_ROW_COLUMNS, FLOW_KEY, grown, new=new)
            self._rows.merge(conn, peer_hours, by_peer, self._sets[peer_hours.name])
            self._rows.merge(conn, flow_hours, by_kind, self._sets[flow_hours.name])
        if result.alerts:
            now = time.time()
            rows = {alert.alert_id(run_id): _alert_row(alert, run_id, now) for alert in result.alerts}
            conn.execute(alerts.delete().where(alerts.c.alert_id.in_(list(rows))))
            conn.execute(alerts.insert(), list(rows.values()))
        if result.health:
            self._rows.insert_one(conn, health, {"run_id": run_id, **result.health})

    def _add_to_hour(self, conn: sa.Connection, summary: Summary, frame, run_id: str, window_start: float) -> None:
        """Add a new window's rows of ``summary.source`` to their hour (see :mod:`.summaries`)."""
        given = {"run_id": repeat(run_id), "hour": repeat(hour_start(window_start))}
        given |= {"first_window": repeat(window_start), "last_window": repeat(window_start)}
        rows = column_rows(frame_columns(frame, summary.columns, given), len(frame))
        self._rows.merge(conn, summary.table, rows, self._sets[summary.table.name])

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


def _alert_row(alert: Alert, run_id: str, now: float) -> dict:
    """An alert as its row: created or updated now (the same id replaces the stored row)."""
    return {
        "alert_id": alert.alert_id(run_id),
        "run_id": run_id,
        "kind": alert.kind,
        "attacker": alert.attacker,
        "victims": ",".join(alert.victims),
        "start": alert.start,
        "end": alert.end,
        "score": alert.score,
        "severity": alert.severity,
        "explanation": alert.explanation,
        "evidence": json.dumps(alert.evidence, default=str),
        "detector": alert.detector,
        "updates": alert.updates,
        "updated_at": now,
    }
