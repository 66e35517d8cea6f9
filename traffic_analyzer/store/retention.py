"""Retention: old results are deleted by age and by store size, a small batch at a time.

The writer calls :meth:`Retention.step` between windows, in its own short transaction, so
pruning never holds the analysis loop for long: each step deletes at most
:data:`PRUNE_BATCH_TIMES` distinct times (windows, seconds) per table of one run, and steps
follow each other window after window until nothing is left to prune.

What is old:

- by age (``days``): runs that ended more than ``days`` ago, whole; and in live runs, rows whose
  time is older than that (a live run's packet times are wall-clock times; a file's are not, so
  a file analysed today is kept ``days`` from when its run ended).
- by size (``max_mb``): while the live data is larger, the oldest ended run goes first, row batch
  after row batch; once only running runs are left, the oldest rows of the live ones.

With several sensors on one PostgreSQL database, one of them prunes at a time (advisory lock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from .schema import TIME_COLUMNS, metadata, runs

PRUNE_INTERVAL_S = 60.0  # how often a writer looks for old data when the last look found none
PRUNE_BATCH_TIMES = 20  # distinct times of one run deleted per table and step
PG_PRUNE_LOCK = 0x6E7461_02  # pg_try_advisory_xact_lock key: "nta" + 2, one pruner at a time
SECONDS_PER_DAY = 86400.0
BYTES_PER_MB = 2**20

_PG_LIVE_BYTES = sa.text(
    "SELECT COALESCE(SUM(pg_total_relation_size(relid) * CASE WHEN n_live_tup + n_dead_tup > 0 "
    "THEN n_live_tup::float / (n_live_tup + n_dead_tup) ELSE 1 END), 0) "
    "FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname IN :tables"
).bindparams(sa.bindparam("tables", expanding=True))


def store_mb(conn: sa.Connection) -> float:
    """Megabytes the store's rows take, not counting space freed by deletes (reused, not returned)."""
    if conn.dialect.name == "sqlite":
        pages = (
            conn.exec_driver_sql("PRAGMA page_count").scalar() - conn.exec_driver_sql("PRAGMA freelist_count").scalar()
        )
        return pages * conn.exec_driver_sql("PRAGMA page_size").scalar() / BYTES_PER_MB
    if conn.dialect.name == "postgresql":  # dead rows wait for autovacuum: count live ones only
        return float(conn.execute(_PG_LIVE_BYTES, {"tables": [t.name for t in metadata.sorted_tables]}).scalar())
    return 0.0


def _delete_batch(conn: sa.Connection, run_id: str, before: float | None) -> int:
    """Delete the oldest rows of one run (older than ``before`` when given); returns how many went."""
    deleted = 0
    for name, column in TIME_COLUMNS.items():
        table = metadata.tables[name]
        col = table.c[column]
        terms = [table.c.run_id == run_id] + ([col < before] if before is not None else [])
        oldest = sa.select(col).where(*terms).distinct().order_by(col).limit(PRUNE_BATCH_TIMES)
        deleted += conn.execute(table.delete().where(table.c.run_id == run_id, col.in_(oldest))).rowcount
    return deleted


def _drop_run(conn: sa.Connection, run_id: str) -> int:
    """Delete a batch of an ended run; the run itself goes once its rows are gone."""
    deleted = _delete_batch(conn, run_id, None)
    if deleted == 0:
        deleted = conn.execute(runs.delete().where(runs.c.run_id == run_id)).rowcount
    return deleted


@dataclass
class Retention:
    """How long results are kept. ``days`` 0 keeps them forever; ``max_mb`` 0 sets no size limit."""

    days: float = 0.0
    max_mb: float = 0.0
    interval_s: float = PRUNE_INTERVAL_S
    _next_at: float = field(default=0.0, init=False, repr=False)

    @property
    def enabled(self) -> bool:
        return self.days > 0 or self.max_mb > 0

    def due(self, now: float | None = None) -> bool:
        """True when a step should run now: the last one found work, or the interval passed."""
        return self.enabled and (time.time() if now is None else now) >= self._next_at

    def step(self, conn: sa.Connection, now: float | None = None) -> int:
        """Delete one batch of old rows in ``conn``'s open transaction; returns how many rows went."""
        now = time.time() if now is None else now
        if conn.dialect.name == "postgresql":
            if not conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(PG_PRUNE_LOCK))).scalar():
                self._next_at = now + self.interval_s  # another sensor is pruning
                return 0
        deleted = self._by_age(conn, now) if self.days > 0 else 0
        if not deleted and self.max_mb > 0 and store_mb(conn) > self.max_mb:
            deleted = self._by_size(conn)
        self._next_at = now if deleted else now + self.interval_s
        return deleted

    def _by_age(self, conn: sa.Connection, now: float) -> int:
        cutoff = now - self.days * SECONDS_PER_DAY
        ended = sa.func.coalesce(runs.c.finished_at, runs.c.started_at)
        expired = conn.execute(
            sa.select(runs.c.run_id).where(runs.c.status != "running", ended < cutoff).order_by(ended).limit(1)
        ).scalar()
        if expired is not None:
            return _drop_run(conn, expired)
        live = conn.execute(sa.select(runs.c.run_id).where(runs.c.live.is_(True)).order_by(runs.c.started_at))
        for run_id in live.scalars().all():
            deleted = _delete_batch(conn, run_id, cutoff)
            if deleted:
                return deleted
        return 0

    def _by_size(self, conn: sa.Connection) -> int:
        oldest_ended = conn.execute(
            sa.select(runs.c.run_id).where(runs.c.status != "running").order_by(runs.c.started_at).limit(1)
        ).scalar()
        if oldest_ended is not None:
            return _drop_run(conn, oldest_ended)
        live = conn.execute(sa.select(runs.c.run_id).where(runs.c.live.is_(True)).order_by(runs.c.started_at))
        for run_id in live.scalars().all():
            deleted = _delete_batch(conn, run_id, None)
            if deleted:
                return deleted
        return 0
