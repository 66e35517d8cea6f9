"""Opening a result store: which URL, which driver, and errors a user can act on.

The same SQLAlchemy Core code runs on SQLite (the default, one file in the data directory, WAL
mode) and on PostgreSQL through psycopg 3 (``postgresql://user@host/db``, one database for many
sensors). Only the connection set-up differs, and it lives here.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from ..errors import AnalyzerError

SQLITE_FILE = "analyzer.db"  # the default store inside data_dir
SQLITE_BUSY_TIMEOUT_MS = 5000  # how long a writer waits for another writer's lock (dashboard notes vs analysis)
CONNECT_TIMEOUT_S = 5  # an unreachable PostgreSQL fails the start, it does not hang it
PG_DRIVER = "postgresql+psycopg"  # psycopg 3; SQLAlchemy's bare "postgresql" would mean psycopg2


def store_url(data_dir: str | Path) -> str:
    """The default store: SQLite in ``data_dir``."""
    return f"sqlite:///{Path(data_dir) / SQLITE_FILE}"


def resolve_store(store: str | None, data_dir: str | Path) -> str:
    """The store URL of a configuration: ``store`` when given, else SQLite in ``data_dir``."""
    return store.strip() if store and store.strip() else store_url(data_dir)


def default_sensor_name() -> str:
    """This machine's host name: the sensor name when none is configured."""
    return socket.gethostname() or "sensor"


def display_url(url: str) -> str:
    """The URL without its password, for messages, logs and summaries."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def one_line(exc: BaseException) -> str:
    """The first line of a driver error (psycopg's messages run over several lines)."""
    detail = getattr(exc, "orig", None) or exc
    text = str(detail).strip().splitlines()
    return text[0] if text else type(detail).__name__


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = sa.make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database.removeprefix("file:").split("?", 1)[0])


def open_engine(url: str, *, immediate: bool = False, read_only: bool = False) -> sa.Engine:
    """An engine for ``url``; nothing is connected yet. Raises AnalyzerError for a URL no driver takes.

    ``immediate`` makes SQLite transactions take the write lock at BEGIN (the writers): a
    transaction that reads first and writes later could otherwise fail at once when another
    writer got in between, instead of waiting ``busy_timeout``. ``read_only`` is for readers:
    the database refuses their writes (SQLite opened with ``mode=ro``, which also never creates
    a missing file; PostgreSQL sessions with ``default_transaction_read_only``).
    """
    try:
        parsed = sa.make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername=PG_DRIVER)
        backend = parsed.get_backend_name()
        connect_args: dict = {}
        if backend == "postgresql":
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
            if read_only:
                connect_args["options"] = "-c default_transaction_read_only=on"
        path = sqlite_file(url)
        if read_only and path is not None:
            parsed = parsed.set(database=f"file:{quote(str(path.absolute()))}", query={"mode": "ro", "uri": "true"})
        engine = sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=backend != "sqlite")
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise AnalyzerError(f"store URL {display_url(url)!r} is not usable: {one_line(exc)}") from exc
    if backend == "sqlite":
        _sqlite_setup(engine, "BEGIN IMMEDIATE" if immediate else "BEGIN", read_only)
    return engine


def _sqlite_setup(engine: sa.Engine, begin: str, read_only: bool) -> None:
    """WAL and real transactions: pysqlite's own handling would commit DDL (migrations) on its own."""

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cur = dbapi_conn.cursor()
        if not read_only:  # a reader finds the journal mode its writer set
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # in WAL mode a commit survives a crash of the process
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)


def store_error(action: str, url: str, exc: BaseException) -> AnalyzerError:
    """One line for a failed store operation: "cannot open the result store URL: reason"."""
    return AnalyzerError(f"cannot {action} the result store {display_url(url)}: {one_line(exc)}")
