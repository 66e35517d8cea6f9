"""A private PostgreSQL server for the tests: its own cluster in a temp dir, on a free port of 127.0.0.1.

``postgres_server`` (session) runs initdb and pg_ctl start once, as the ``postgres`` user when
the tests run as root (PostgreSQL refuses to run as root), and stops and removes the cluster at
the end. ``postgres_url`` gives each test an empty database of its own. Skipped, with the
reason, where Debian's postgresql package (binaries in /usr/lib/postgresql/*/bin) is absent.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 60
_databases = itertools.count(1)


@dataclass(frozen=True)
class PostgresServer:
    """A running test cluster: superuser ``postgres``, no password, on 127.0.0.1:port."""

    port: int
    data_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def _bin_dir() -> Path | None:
    found = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), reverse=True)  # newest version first
    return next((d for d in found if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(*cmd: str) -> list[str]:
    """PostgreSQL will not run as root: run its commands as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb under /usr/lib/postgresql); ./setup.sh --dev installs it")
    root = Path(tempfile.mkdtemp(prefix="nta-pg-"))
    data_dir = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": START_TIMEOUT_S}
    try:
        subprocess.run(_as_owner(str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust"), **run)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        subprocess.run(
            _as_owner(
                str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(root / "log"), "-w", "start"
            ),
            **run,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise AssertionError(f"the test PostgreSQL did not start: {exc.stderr or exc.stdout}") from exc
    try:
        yield PostgresServer(port, data_dir)
    finally:
        subprocess.run(
            _as_owner(str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop"),
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a new, empty database on the test server; dropped after the test."""
    name = f"nta_test_{os.getpid()}_{next(_databases)}"
    admin = sa.create_engine(postgres_server.url().replace("postgresql://", "postgresql+psycopg://"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.url(name)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
