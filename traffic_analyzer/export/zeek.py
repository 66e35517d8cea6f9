"""Flows in Zeek's conn.log formats: the tab-separated log with its header lines, and JSON lines.

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

# Zeek conn.log field, Zeek type, our flows column (None: not tracked, always unset).
CONN_FIELDS: tuple[tuple[str, str, str | None], ...] = (
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
    if zeek_type in _TIME_TYPES:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        text = np.char.mod("%.6f", np.nan_to_num(numbers)).astype(object)
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


class ConnLogWriter:
    """Writes conn.log TSV: header lines, a line per flow, and the #close line."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def begin(self) -> None:
        names = SEPARATOR.join(name for name, _, _ in CONN_FIELDS)
        types = SEPARATOR.join(zeek_type for _, zeek_type, _ in CONN_FIELDS)
        self.out.write(
            "#separator \\x09\n"
            f"#set_separator{SEPARATOR}{SET_SEPARATOR}\n"
            f"#empty_field{SEPARATOR}{EMPTY_FIELD}\n"
            f"#unset_field{SEPARATOR}{UNSET_FIELD}\n"
            f"#path{SEPARATOR}conn\n"
            f"#open{SEPARATOR}{_zeek_time(time.time())}\n"
            f"#fields{SEPARATOR}{names}\n"
            f"#types{SEPARATOR}{types}\n"
        )

    def write(self, flows: pd.DataFrame) -> None:
        if flows.empty:
            return
        rows = len(flows)
        columns = [
            _text_column(flows[column].reset_index(drop=True) if column else None, zeek_type, rows)
            for _, zeek_type, column in CONN_FIELDS
        ]
        lines = columns[0].str.cat(columns[1:], sep=SEPARATOR)
        self.out.write("\n".join(lines) + "\n")

    def end(self) -> None:
        self.out.write(f"#close{SEPARATOR}{_zeek_time(time.time())}\n")


class ConnJsonWriter:
    """Writes conn.log as Zeek's JSON writer does: one object per line, unset fields omitted."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def begin(self) -> None:
        """JSON lines have no header."""

    def write(self, flows: pd.DataFrame) -> None:
        for record in flows.to_dict("records"):
            self.out.write(json.dumps(conn_json(record)) + "\n")

    def end(self) -> None:
        """Nor a footer."""


def conn_json(flow: dict) -> dict:
    """One flows-table row as a Zeek JSON conn record."""
    record: dict = {}
    for name, zeek_type, column in CONN_FIELDS:
        value = flow.get(column) if column else None
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value == "":
            continue
        if zeek_type in _TIME_TYPES:
            record[name] = round(float(value), 6)
        elif zeek_type in _NUMBER_TYPES:
            record[name] = int(value)
        else:
            record[name] = str(value)
    return record
