"""Zeek logs (conn.log; dns/http/ssl rows come from :mod:`.zeek_app`): the TSV log with its header lines, and JSON.

The TSV follows Zeek's ASCII writer (``#separator``, ``#fields``, ``#types``... ``#close``), so
``zeek-cut`` and Zeek-aware tools read it; fields the analyzer does not track (``local_orig``,
``missed_bytes``, ``tunnel_parents``...) are unset (``-``), as Zeek writes a value it does not
know. The JSON lines follow Zeek's JSON writer: one object per connection, ``ts`` as epoch
seconds, ``id.orig_h``-style keys, unset fields left out.
"""

from __future__ import annotations

import json
import re
import time
from typing import TextIO

import numpy as np
import pandas as pd

SEPARATOR = "\t"
SET_SEPARATOR = ","
EMPTY_FIELD = "(empty)"
UNSET_FIELD = "-"

ZeekFields = tuple[tuple[str, str, str | None], ...]  # Zeek field, Zeek type, our column (None: always unset)

# Zeek conn.log field, Zeek type, our flows column (None: not tracked, always unset).
CONN_FIELDS: ZeekFields = (
    ("ts", "time", "ts"),
    ("uid", "string", "uid"),
    ("id.orig_h", "addr", "orig_h"),
    ("id.orig_p", "port", "orig_p"),
    ("id.resp_h", "addr", "resp_h"),
    ("id.resp_p", "port", "resp_p"),
    ("proto", "enum", "proto"),
    ("service", "string", "service"),
    ("duration", "interval", "duration"),
    ("orig_bytes", "count", "orig_bytes"),
    ("resp_bytes", "count", "resp_bytes"),
    ("conn_state", "string", "conn_state"),
    ("local_orig", "bool", None),
    ("local_resp", "bool", None),
    ("missed_bytes", "count", None),
    ("history", "string", "history"),
    ("orig_pkts", "count", "orig_pkts"),
    ("orig_ip_bytes", "count", "orig_ip_bytes"),
    ("resp_pkts", "count", "resp_pkts"),
    ("resp_ip_bytes", "count", "resp_ip_bytes"),
    ("tunnel_parents", "set[string]", None),
)
_TIME_TYPES = {"time", "interval"}
_NUMBER_TYPES = {"count", "port", "int"}
_CONTAINER_TYPES = ("set[", "vector[")  # our value holds the elements comma-joined (often just one)
_INTERVALS = "vector[interval]"  # the DNS TTLs: whole seconds, written as Zeek writes intervals
_ESCAPED = re.compile(r"[\\\x00-\x1f\x7f-\x9f]")  # backslash and control characters, as Zeek's writer escapes


def _zeek_time(when: float) -> str:
    """The #open/#close stamp of Zeek's ASCII logs (local time, to the second)."""
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(when))


def _escape(value: str) -> str:
    escaped = _ESCAPED.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return "\\x2d" if escaped == UNSET_FIELD else escaped  # a literal '-' must not read as unset


def _text_column(values: pd.Series | None, zeek_type: str, rows: int) -> pd.Series:
    """One column as Zeek ASCII text: times with 6 decimals, counts as integers, unset as '-'."""
    if values is None:
        return pd.Series([UNSET_FIELD] * rows, dtype=object)
    missing = values.isna().to_numpy()
    if zeek_type == "bool":
        text = values.astype(object).map({True: "T", False: "F"}).to_numpy(dtype=object)
        missing = missing | pd.isna(text)
    elif zeek_type in _TIME_TYPES:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        text = np.char.mod("%.6f", np.nan_to_num(numbers)).astype(object)
    elif zeek_type == _INTERVALS:
        strings = values.astype(object).where(~missing, "").astype(str)
        missing = missing | (strings == "").to_numpy()
        text = strings.map(_intervals_text).to_numpy(dtype=object)
    elif zeek_type in _NUMBER_TYPES:
        numbers = pd.to_numeric(values, errors="coerce").astype("Int64")
        text = numbers.astype(str).to_numpy(dtype=object)
        missing = missing | numbers.isna().to_numpy()
    else:
        strings = values.astype(object).where(~missing, "").astype(str)
        missing = missing | (strings == "").to_numpy()  # the flows table stores unknown service as ''
        text = strings.map(_escape).to_numpy(dtype=object)
    text[missing] = UNSET_FIELD
    return pd.Series(text, dtype=object)


def _intervals_text(joined: str) -> str:
    """Comma-joined seconds as Zeek's ASCII writer prints a vector of intervals (6 decimals each)."""
    return SET_SEPARATOR.join(f"{float(v):.6f}" for v in joined.split(",") if v) if joined else ""


class ZeekLogWriter:
    """Writes a Zeek TSV log: header lines, a line per record, and the #close line."""

    def __init__(self, out: TextIO, fields: ZeekFields = CONN_FIELDS, path: str = "conn") -> None:
        self.out = out
        self.fields = fields
        self.path = path

    def begin(self, opened_at: float | None = None) -> None:
        """The header lines; ``#open`` is now unless the caller says when the file was opened (a rotated log)."""
        names = SEPARATOR.join(name for name, _, _ in self.fields)
        types = SEPARATOR.join(zeek_type for _, zeek_type, _ in self.fields)
        self.out.write(
            "#separator \\x09\n"
            f"#set_separator{SEPARATOR}{SET_SEPARATOR}\n"
            f"#empty_field{SEPARATOR}{EMPTY_FIELD}\n"
            f"#unset_field{SEPARATOR}{UNSET_FIELD}\n"
            f"#path{SEPARATOR}{self.path}\n"
            f"#open{SEPARATOR}{_zeek_time(time.time() if opened_at is None else opened_at)}\n"
            f"#fields{SEPARATOR}{names}\n"
            f"#types{SEPARATOR}{types}\n"
        )

    def write(self, records: pd.DataFrame) -> None:
        if records.empty:
            return
        rows = len(records)
        columns = [
            _text_column(records[column].reset_index(drop=True) if column else None, zeek_type, rows)
            for _, zeek_type, column in self.fields
        ]
        lines = columns[0].str.cat(columns[1:], sep=SEPARATOR)
        self.out.write("\n".join(lines) + "\n")

    def end(self, closed_at: float | None = None) -> None:
        self.out.write(f"#close{SEPARATOR}{_zeek_time(time.time() if closed_at is None else closed_at)}\n")


class ZeekJsonWriter:
    """Writes a Zeek log as Zeek's JSON writer does: one object per line, unset fields omitted."""

    def __init__(self, out: TextIO, fields: ZeekFields = CONN_FIELDS) -> None:
        self.out = out
        self.fields = fields

    def begin(self, opened_at: float | None = None) -> None:
        """JSON lines have no header."""

    def write(self, records: pd.DataFrame) -> None:
        for record in records.to_dict("records"):
            self.out.write(json.dumps(zeek_json(record, self.fields)) + "\n")

    def end(self, closed_at: float | None = None) -> None:
        """Nor a footer."""


def zeek_json(row: dict, fields: ZeekFields = CONN_FIELDS) -> dict:
    """One row of ours as a Zeek JSON record (a flows-table row as a conn record by default)."""
    record: dict = {}
    for name, zeek_type, column in fields:
        value = row.get(column) if column else None
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value == "":
            continue
        if zeek_type in _TIME_TYPES:
            record[name] = round(float(value), 6)
        elif zeek_type in _NUMBER_TYPES:
            record[name] = int(value)
        elif zeek_type == "bool":
            record[name] = bool(value)
        elif zeek_type == _INTERVALS:
            record[name] = [float(v) for v in str(value).split(",")]
        elif zeek_type.startswith(_CONTAINER_TYPES):
            record[name] = str(value).split(",")
        else:
            record[name] = str(value)
    return record
