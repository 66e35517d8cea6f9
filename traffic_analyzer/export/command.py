"""``network_traffic_analyzer.py export``: write stored flows or alerts of a time range to a file.

Only maps options to a :class:`~traffic_analyzer.store.reader.Selection` (the runs it reads are
chosen in :mod:`~traffic_analyzer.export.runs`) and a writer; problems the user can fix end as one
line on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd
import sqlalchemy as sa

from ..errors import AnalyzerError
from ..settings import DEFAULTS
from ..store.engine import store_url
from ..store.reader import RecordReader, Selection
from .eve import EveWriter
from .runs import ALL, LATEST, run_sensors, selected_runs
from .tables import CsvWriter, JsonLinesWriter, ParquetWriter, arrow_schema
from .zeek_app import app_log, zeek_writer

FORMATS = ("zeek", "jsonl", "eve", "csv", "parquet")
LOGS = ("conn", "dns", "http", "ssl")  # the Zeek logs --format zeek/jsonl write
TEXT_FORMATS = {"zeek", "jsonl", "eve", "csv"}
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a tool that a closed pipe ended (`| head`)


def parse_time(text: str, option: str) -> float:
    """Epoch seconds from epoch seconds or an ISO 8601 time (UTC unless it names a zone)."""
    try:
        value = float(text)
    except ValueError:
        try:
            stamp = pd.Timestamp(text)
        except ValueError:
            raise AnalyzerError(
                f"{option} {text!r} is neither epoch seconds nor an ISO time like 2024-05-01T12:00:00Z"
            ) from None
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return stamp.timestamp()
    if not math.isfinite(value):
        raise AnalyzerError(f"{option} {text!r} is not a time")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="network_traffic_analyzer.py export",
        description="Export stored flows (Zeek conn.log TSV or JSON lines, CSV, Parquet) or alerts (CSV, Parquet, "
        "JSON lines). Records that started at or after --from and before --to are written, oldest first. Times are "
        "packet times: when a flow's first packet (an alert's first evidence) was captured, which for a --read file "
        "is the capture's own clock, not when it was analysed.",
    )
    parser.add_argument("--what", choices=("flows", "alerts"), default="flows", help="what to export (default: flows)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="zeek",
        help="zeek (conn.log TSV, flows only), jsonl, eve (Suricata EVE JSON: alert or flow events), csv or parquet",
    )
    parser.add_argument(
        "--log",
        choices=LOGS,
        default="conn",
        help="which Zeek log --format zeek or jsonl writes: conn (flows, the default), dns, http or ssl (their uids "
        "join conn.log)",
    )
    parser.add_argument(
        "--from", dest="start", metavar="TIME",
        help="records that started at or after this packet time: epoch seconds or ISO time (UTC unless it names a "
        "zone); the time in the capture, not when the analyzer ran",
    )  # fmt: skip
    parser.add_argument(
        "--to", dest="end", metavar="TIME", help="records that started before this packet time (exclusive); as --from"
    )
    parser.add_argument(
        "--run", metavar=f"{LATEST}|{ALL}|RUN_ID",
        help=f"which runs: {LATEST} (the newest run of each sensor, what the dashboard shows), {ALL} (every run: a "
        "file read twice is listed twice), or one run id; default: the latest run of each file read and every "
        "live run",
    )  # fmt: skip
    parser.add_argument("--sensor", help="only runs of this sensor")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir", metavar="DIR", help=f"the analyzer's data folder (default: {DEFAULTS['data_dir']})"
    )
    where.add_argument("--store", metavar="URL", help="SQLAlchemy URL of the result store instead of --data-dir")
    parser.add_argument("--out", default="-", metavar="FILE", help="file to write, or - for stdout (the default)")
    return parser


def selection_of(args: argparse.Namespace, url: str) -> Selection:
    start = parse_time(args.start, "--from") if args.start else None
    end = parse_time(args.end, "--to") if args.end else None
    if start is not None and end is not None and end <= start:
        raise AnalyzerError(f"--to ({args.end}) must be later than --from ({args.start})")
    if args.format == "zeek" and args.what != "flows":
        raise AnalyzerError("--format zeek writes conn.log, which holds flows: use --what flows, or csv/parquet/jsonl")
    if args.log != "conn":
        if args.format not in ("zeek", "jsonl") or args.what != "flows":
            raise AnalyzerError(
                f"--log {args.log} is a Zeek log: use it with --format zeek or jsonl (and --what flows)"
            )
    reader = RecordReader(url, args.what)  # says so, in one line, when there is no store or no such table
    try:
        runs = selected_runs(reader.engine, args.run, args.sensor)
    except sa.exc.SQLAlchemyError as exc:
        raise AnalyzerError(f"reading the runs from the store failed: {getattr(exc, 'orig', None) or exc}") from exc
    finally:
        reader.close()
    return Selection("app_events" if args.log != "conn" else args.what, start, end, runs)


@contextlib.contextmanager
def _output(path: str, binary: bool) -> Iterator[IO]:
    """stdout, or a file that appears under its name only once it is complete."""
    if path == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    partial = Path(f"{path}.part")
    try:
        handle = open(partial, "wb" if binary else "w", encoding=None if binary else "utf-8")
    except OSError as exc:
        raise AnalyzerError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def export_app_log(url: str, selection: Selection, fmt: str, log: str, out: IO) -> int:
    """Write Zeek's dns, http or ssl log of the selection; its messages are paired in memory (a few per connection)."""
    reader = RecordReader(url, "app_events")
    try:
        chunks = list(reader.chunks(selection))
        events = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=reader.columns)
    except sa.exc.SQLAlchemyError as exc:
        raise AnalyzerError(
            f"reading {log} messages from the store failed: {getattr(exc, 'orig', None) or exc}"
        ) from exc
    finally:
        reader.close()
    rows = app_log(events, log)
    writer = zeek_writer(out, log, as_json=fmt == "jsonl")
    writer.begin()
    writer.write(rows)
    writer.end()
    return len(rows)


def export(url: str, selection: Selection, fmt: str, out: IO) -> int:
    """Write the selected records to ``out`` in ``fmt``; returns how many were written."""
    reader = RecordReader(url, selection.what)
    try:
        if fmt == "zeek" or (fmt == "jsonl" and selection.what == "flows"):
            writer = zeek_writer(out, "conn", as_json=fmt == "jsonl")
        elif fmt == "jsonl":
            writer = JsonLinesWriter(out)
        elif fmt == "eve":
            writer = EveWriter(out, selection.what, run_sensors(reader.engine))
        elif fmt == "csv":
            writer = CsvWriter(out, reader.columns)
        else:
            writer = ParquetWriter(out, arrow_schema(reader.table))
        writer.begin()
        written = 0
        try:
            for chunk in reader.chunks(selection):
                writer.write(chunk)
                written += len(chunk)
        except sa.exc.SQLAlchemyError as exc:
            raise AnalyzerError(
                f"reading {selection.what} from the store failed: {getattr(exc, 'orig', None) or exc}"
            ) from exc
        writer.end()
        return written
    finally:
        reader.close()


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit does not hit the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        url = args.store or store_url(args.data_dir or DEFAULTS["data_dir"])
        selection = selection_of(args, url)
        with _output(args.out, binary=args.format not in TEXT_FORMATS) as out:
            if args.log == "conn":
                written = export(url, selection, args.format, out)
            else:
                written = export_app_log(url, selection, args.format, args.log, out)
    except AnalyzerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader of stdout went away (`export | head`): stop quietly, as Unix tools do
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    where = "stdout" if args.out == "-" else args.out
    what = selection.what if args.log == "conn" else f"{args.log}.log records"
    if written == 0:
        print(
            f"nothing matched: no {what} in the store for that selection; {where} has headers only",
            file=sys.stderr,
        )
    else:
        print(f"exported {written} {what} to {where}", file=sys.stderr)
    return 0
