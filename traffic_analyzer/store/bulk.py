"""How a window's table rows go in: one executemany per table on SQLite, COPY on PostgreSQL.

A window can hold tens of thousands of flows and thousands of hosts, so rows never become one
dict each: every column becomes a plain Python list once (``numpy.tolist``, nulls as None) and
the lists are zipped into tuples, the shape both drivers take in bulk. On SQLite the tuples go to
``executemany`` (a prepared statement stepped once per row inside the window's transaction); on
PostgreSQL they are streamed with psycopg's ``COPY ... FROM STDIN``. Upserts (flows, keyed by
run and uid) COPY into a temporary table first, then ``INSERT ... SELECT ... ON CONFLICT DO
UPDATE`` from it, while rows of flows the run never stored are COPYed straight into the table;
on SQLite the executemany statement is the upsert itself.

Appends ignore rows whose unique key is already stored (a window written again after a commit
whose answer was lost): ``ON CONFLICT DO NOTHING`` on SQLite; on PostgreSQL the COPY runs in a
savepoint and, only if a key collides, the rows go through a temporary table and ``INSERT ...
ON CONFLICT DO NOTHING`` instead.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

MASKED_ARRAYS = (pd.arrays.IntegerArray, pd.arrays.BooleanArray)  # nullable integers and booleans


def column_values(series: pd.Series) -> list:
    """A column as Python scalars, None for nulls: what the drivers bind.

    A NumPy integer or boolean column has no nulls, and a masked one says whether it has any in
    its mask: neither needs pandas' generic null test, which costs more than the conversion on a
    window's few hundred rows.
    """
    values = series.array
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return values.to_numpy().tolist()
    if isinstance(values, MASKED_ARRAYS) and not values.isna().any():
        return values.to_numpy().tolist()
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        floats = values.to_numpy()
        if not np.isnan(floats).any():
            return floats.tolist()
    return series.to_numpy(dtype=object, na_value=None).tolist()


def frame_columns(frame: pd.DataFrame, columns: Sequence[str], given: Mapping[str, Iterable]) -> list[Iterable]:
    """The values of each of ``columns``: from ``given`` when named there, else from ``frame``, else NULLs.

    A column the frame lacks is NULL (an optional one, such as a host's anomaly margin without a model;
    the database refuses it where a value is required).
    """
    return [
        given[c] if c in given else column_values(frame[c]) if c in frame.columns else itertools.repeat(None)
        for c in columns
    ]


def column_rows(values: Sequence[Iterable], count: int) -> list[tuple]:
    """``count`` rows zipped from per-column values (lists, or repeats for constants and NULLs)."""
    return list(itertools.islice(zip(*values, strict=False), count)) if count else []


class BulkRows(ABC):
    """Appends and upserts of many rows inside an open transaction; one subclass per database."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.quote = dialect.identifier_preparer.quote

    def names(self, columns: Sequence[str]) -> str:
        return ", ".join(self.quote(c) for c in columns)

    @abstractmethod
    def append(self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple]) -> int:
        """Insert ``rows`` (tuples in ``columns`` order) into ``table``, skipping those whose unique key is stored.

        Returns how many were new.
        """

    def merge(self, conn: sa.Connection, table: sa.Table, rows: list[tuple], sets: str) -> None:
        """Insert ``rows`` (all ``table``'s columns, in order); a row whose unique key is stored updates it by ``sets``.

        ``sets`` is the SET clause of the update (``excluded`` is the row offered).
        """
        if rows:
            (key,) = (index for index in table.indexes if index.unique)
            columns = [c.name for c in table.columns]
            conflict = f"({self.names([c.name for c in key.columns])}) DO UPDATE SET {sets}"
            self._on_conflict(conn, table, columns, rows, conflict)

    @abstractmethod
    def _on_conflict(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple], on_conflict: str
    ) -> int:
        """INSERT ``rows`` with ``ON CONFLICT {on_conflict}``; returns how many rows it wrote."""

    @abstractmethod
    def insert_one(self, conn: sa.Connection, table: sa.Table, values: dict[str, object]) -> None:
        """Insert one row (column -> value), unless its unique key is stored."""

    @abstractmethod
    def upsert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        key: Sequence[str],
        rows: list[tuple],
        new: list[tuple],
    ) -> None:
        """Insert ``rows`` and ``new``; a row whose ``key`` is stored replaces the stored one's other columns.

        ``new`` rows are expected not to be stored yet, which may make them cheaper to insert.
        """

    def _updates(self, columns: Sequence[str], key: Sequence[str], excluded: str) -> str:
        return ", ".join(f"{self.quote(c)} = {excluded}.{self.quote(c)}" for c in columns if c not in key)


class SqliteRows(BulkRows):
    """executemany of one prepared INSERT (an upsert with ON CONFLICT) per table."""

    def append(self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple]) -> int:
        return self._on_conflict(conn, table, columns, rows, "DO NOTHING") if rows else 0

    def _on_conflict(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple], on_conflict: str
    ) -> int:
        return conn.exec_driver_sql(f"{self._insert(table, columns)} ON CONFLICT {on_conflict}", rows).rowcount

    def insert_one(self, conn: sa.Connection, table: sa.Table, values: dict[str, object]) -> None:
        conn.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())

    def upsert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        key: Sequence[str],
        rows: list[tuple],
        new: list[tuple],
    ) -> None:
        if rows or new:
            conflict = f"({self.names(key)}) DO UPDATE SET {self._updates(columns, key, 'excluded')}"
            self._on_conflict(conn, table, columns, rows + new, conflict)

    def _insert(self, table: sa.Table, columns: Sequence[str]) -> str:
        marks = ", ".join("?" * len(columns))
        return f"INSERT INTO {self.quote(table.name)} ({self.names(columns)}) VALUES ({marks})"


class PostgresRows(BulkRows):
    """COPY FROM STDIN through psycopg, on the transaction's own connection."""

    def append(self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple]) -> int:
        if not rows:
            return 0
        if self._copy_new(conn, table, columns, rows):
            return len(rows)
        return self._on_conflict(conn, table, columns, rows, "DO NOTHING")

    def insert_one(self, conn: sa.Connection, table: sa.Table, values: dict[str, object]) -> None:
        from sqlalchemy.dialects import postgresql  # 60 ms of imports a SQLite store never needs

        conn.execute(postgresql.insert(table).values(**values).on_conflict_do_nothing())

    def upsert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        key: Sequence[str],
        rows: list[tuple],
        new: list[tuple],
    ) -> None:
        if new and not self._copy_new(conn, table, columns, new):
            rows = rows + new  # one was stored after all: the whole lot takes the upsert
        if rows:
            conflict = f"({self.names(key)}) DO UPDATE SET {self._updates(columns, key, 'EXCLUDED')}"
            self._on_conflict(conn, table, columns, rows, conflict)

    def _copy_new(self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple]) -> bool:
        """COPY rows expected to be new straight into ``table``; False (and nothing written) if a key was stored."""
        savepoint = conn.begin_nested()
        try:
            self._copy(conn, self.quote(table.name), columns, rows)
        except sa.exc.IntegrityError:
            savepoint.rollback()
            return False
        savepoint.commit()
        return True

    def _on_conflict(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple], on_conflict: str
    ) -> int:
        """COPY into a temporary table, then INSERT ... SELECT from it with ``ON CONFLICT {on_conflict}``.

        Returns how many rows the INSERT wrote.
        """
        name, staging = self.quote(table.name), self.quote(f"{table.name}_window")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {staging} (LIKE {name})")  # a rollback drops it too
        self._copy(conn, staging, columns, rows)
        written = conn.exec_driver_sql(
            f"INSERT INTO {name} ({self.names(columns)}) SELECT {self.names(columns)} FROM {staging} "
            f"ON CONFLICT {on_conflict}"
        ).rowcount
        conn.exec_driver_sql(f"DROP TABLE {staging}")
        return written

    def _copy(self, conn: sa.Connection, target: str, columns: Sequence[str], rows: list[tuple]) -> None:
        statement = f"COPY {target} ({self.names(columns)}) FROM STDIN"
        raw = conn.connection.dbapi_connection
        dbapi_error = conn.dialect.loaded_dbapi.Error
        try:
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi_error as exc:  # raised by the driver itself: wrap it as SQLAlchemy would have
            gone = conn.dialect.is_disconnect(exc, raw, None)
            if gone:
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi_error, connection_invalidated=gone) from exc


def bulk_rows(dialect: sa.Dialect) -> BulkRows:
    """The bulk writer for ``dialect``: SQLite or PostgreSQL."""
    if dialect.name == "postgresql":
        return PostgresRows(dialect)
    if dialect.name == "sqlite":
        return SqliteRows(dialect)
    raise ValueError(f"the result store runs on SQLite or PostgreSQL, not {dialect.name}")
