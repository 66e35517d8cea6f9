"""Per-hour sums of the window tables, so the dashboard's whole-run questions read hours, not windows.

A day of a busy sensor is 17,280 five-second windows: the run's top talkers, host totals and
protocol mix summed from ``hosts`` and ``protocols`` read every window's rows (over a second on
SQLite at a day, seven at a week). The writer adds each window's rows to its hour's row of
``host_hours`` and ``protocol_hours`` in the same transaction (an upsert that adds), and only
when the window's rows were new: a window written again after a lost commit answer stores no
row of ``hosts``, so it adds nothing here either (a window's rows commit together: all new or
none). A window is filed under the hour it started in; its first and last window are kept, so
the host totals' first and last windows are those of the window rows.

Retention prunes an hour's row once its last window is older than the cut, as it prunes the
windows themselves (by age): until then, the hour still counts the windows of its first part that
are gone. The schema step that adds these tables (v8) fills them from the stored windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from .schema import host_hours, hosts, protocol_hours, protocols

HOUR_S = 3600.0  # seconds of packet time per summary row


@dataclass(frozen=True)
class Summary:
    """One per-hour table: the window table it sums, what it groups by, and what it adds up."""

    table: sa.Table
    source: sa.Table
    key: str  # the source column grouped by (besides run and hour)
    sums: tuple[str, ...]  # source columns added up

    @property
    def columns(self) -> list[str]:
        """The summary's columns, in order: run_id, hour, the key, the sums, first_window, last_window."""
        return [c.name for c in self.table.columns]

    def assignments(self, quote) -> str:
        """The SET clause of the adding upsert (``excluded`` is the row offered; both dialects spell it so)."""
        table = quote(self.table.name)
        sums = [f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in self.sums]
        return ", ".join([*sums, *kept_ends(quote, table, "first_window", "last_window")])

    def backfill(self, conn: sa.Connection) -> None:
        """Sum the stored windows into the (empty) summary table: the schema step of an older store."""
        source = self.source
        hour = hour_of(source.c.window_start, conn.dialect).label("hour")
        select = sa.select(
            source.c.run_id,
            hour,
            source.c[self.key],
            *(sa.func.sum(source.c[c]).label(c) for c in self.sums),
            sa.func.min(source.c.window_start).label("first_window"),
            sa.func.max(source.c.window_start).label("last_window"),
        ).group_by(source.c.run_id, hour, source.c[self.key])
        conn.execute(self.table.insert().from_select(self.columns, select))


SUMMARIES = (
    Summary(host_hours, hosts, "host", ("packets_out", "bytes_out", "packets_in", "bytes_in")),
    Summary(protocol_hours, protocols, "protocol", ("packets", "bytes")),
)
BY_SOURCE = {summary.source.name: summary for summary in SUMMARIES}


def kept_ends(quote, table: str, first: str, last: str) -> list[str]:
    """SET terms that keep the earlier ``first`` and the later ``last`` of the stored and the offered row."""
    return [
        f"{c} = CASE WHEN excluded.{c} {op} {table}.{c} THEN excluded.{c} ELSE {table}.{c} END"
        for c, op in ((quote(first), "<"), (quote(last), ">"))
    ]


def hour_start(window_start: float) -> float:
    """The start of the hour (packet time) a window is filed under: the division SQL does, then truncated."""
    return int(window_start / HOUR_S) * HOUR_S


def hour_of(column: sa.ColumnElement, dialect: sa.Dialect) -> sa.ColumnElement:
    """:func:`hour_start` in SQL: SQLite truncates a cast (times are positive), PostgreSQL rounds it, so floors."""
    if dialect.name == "postgresql":
        return sa.func.floor(column / HOUR_S) * HOUR_S
    return sa.cast(column / HOUR_S, sa.Integer) * HOUR_S
