"""``python -m traffic_analyzer.dashboard --store URL``: browse the results of an earlier run.

Only maps options to :class:`~traffic_analyzer.dashboard.server.DashboardServer`; problems
the user can fix are printed as one line on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from ..errors import AnalyzerError
from ..store.engine import store_url
from . import auth
from .server import DashboardServer, TlsFiles

IDLE_SLEEP_S = 3600.0  # the main thread only waits for Ctrl-C


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m traffic_analyzer.dashboard",
        description="Serve the Network Traffic Analyzer dashboard for an existing result store.",
    )
    parser.add_argument(
        "--store",
        required=True,
        help="SQLAlchemy URL of the result store (e.g. sqlite:///data/analyzer.db) or the analyzer's data directory",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s); any other address needs the login of "
        f"${auth.USER_ENV} and ${auth.PASSWORD_ENV}, or --no-auth",
    )
    parser.add_argument("--port", type=int, default=8050, help="TCP port to listen on (default: %(default)s)")
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without a login on any address: whoever reaches it can read the results and allow-list attackers",
    )
    parser.add_argument("--tls-cert", help="PEM certificate file: serve HTTPS (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key file of --tls-cert")
    return parser


def resolve_store(store: str) -> str:
    """A store URL from --store, refusing SQLite files that do not exist (opening one would create it)."""
    if Path(store).is_dir():
        store = store_url(store)
    try:
        url = sa.engine.make_url(store)
    except sa.exc.ArgumentError as exc:
        raise AnalyzerError(f"--store {store!r} is neither a data directory nor a database URL") from exc
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:" and not Path(database).is_file():
        raise AnalyzerError(f"no result store at {database}: run the analyzer first or check --store")
    return store


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C; returns the process exit status."""
    args = _parser().parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("error: HTTPS needs both --tls-cert and --tls-key", file=sys.stderr)
        return 1
    try:
        server = DashboardServer(
            resolve_store(args.store),
            host=args.host,
            port=args.port,
            no_auth=args.no_auth,
            tls=TlsFiles.of(args.tls_cert, args.tls_key),
        )
        server.start()
    except AnalyzerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    login = f", login as ${auth.USER_ENV}" if server.requires_login else ""
    print(f"Dashboard: {server.url} (Ctrl-C to stop{login})", flush=True)
    print(f"To acknowledge and allow-list, open once: {server.login_url}", flush=True)
    try:
        while True:
            time.sleep(IDLE_SLEEP_S)
    except KeyboardInterrupt:
        print("Stopping the dashboard.", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
