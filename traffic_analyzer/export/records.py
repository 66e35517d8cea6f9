"""Read flows or alerts out of a result store, in chunks, for one time range and a set of runs.

The tables are reflected from the database rather than imported from the store module, so an
export reads whatever columns the store has (an optional ``sensor`` column included) and never
creates or changes a table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from ..errors import AnalyzerError

CHUNK_ROWS = 50_000  # rows read and written at a time, so a large store exports in bounded memory
START_COLUMN = {"flows": "ts", "alerts": "start"}  # the time a record is filed under
ORDER = {"flows": ("ts", "uid"), "alerts": ("start", "alert_id")}


@dataclass(frozen=True)
class Selection:
    """Which records to export: records that started in [start, end) (packet time), of the runs given."""

    what: str  # flows or alerts
    start: float | None = None  # epoch seconds of packet time, inclusive
    end: float | None = None  # epoch seconds of packet time, exclusive
    run_ids: tuple[str, ...] | None = None  # None: every run (see export.runs)


class RecordReader:
    """Read-only access to one table of a result store, by reflection."""

    def __init__(self, url: str, what: str) -> None:
        if what not in START_COLUMN:
            raise AnalyzerError(f"can export flows or alerts, not {what!r}")
        _refuse_missing_sqlite(url)
        try:
            self.engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise AnalyzerError(f"store URL {url!r} is not usable: {exc}") from exc
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
    """Opening a SQLite file that does not exist would create an empty one: say so instead."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise AnalyzerError(f"store URL {url!r} is not a database URL") from exc
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" and not Path(database).is_file():
        raise AnalyzerError(f"no result store at {database}: run the analyzer first or check --data-dir / --store")
