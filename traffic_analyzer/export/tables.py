"""Flows and alerts as CSV, Parquet or plain JSON lines, chunk by chunk, with the store's own columns.

The Parquet schema comes from the store's column types, not from the first chunk, so every
chunk (and an empty export) has the same schema, and a column that happens to be all nulls
keeps its type.
"""

from __future__ import annotations

import json
from typing import BinaryIO, TextIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa


def arrow_schema(table: sa.Table) -> pa.Schema:
    """Arrow types for the columns of a reflected store table."""
    fields = []
    for column in table.columns:
        if isinstance(column.type, sa.Integer):
            arrow_type = pa.int64()
        elif isinstance(column.type, (sa.Float, sa.Numeric)):
            arrow_type = pa.float64()
        else:
            arrow_type = pa.string()
        fields.append(pa.field(column.name, arrow_type))
    return pa.schema(fields)


def _typed(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """Integer columns as nullable integers, so a null does not turn them into floats."""
    ints = [f.name for f in schema if pa.types.is_integer(f.type)]
    return frame.astype(dict.fromkeys(ints, "Int64")) if ints else frame


class CsvWriter:
    """CSV with a header row (written even when nothing matched)."""

    def __init__(self, out: TextIO, columns: list[str]) -> None:
        self.out = out
        self.columns = columns
        self._header = True

    def begin(self) -> None:
        """The header goes with the first chunk, or alone at the end."""

    def write(self, frame: pd.DataFrame) -> None:
        frame[self.columns].to_csv(self.out, index=False, header=self._header, lineterminator="\n")
        self._header = False

    def end(self) -> None:
        if self._header:
            self.write(pd.DataFrame(columns=self.columns))


class ParquetWriter:
    """One Parquet file, a row group per chunk."""

    def __init__(self, out: BinaryIO, schema: pa.Schema) -> None:
        self.schema = schema
        self._writer = pq.ParquetWriter(out, schema)

    def begin(self) -> None:
        """The schema is fixed in the constructor."""

    def write(self, frame: pd.DataFrame) -> None:
        typed = _typed(frame[self.schema.names], self.schema)
        self._writer.write_table(pa.Table.from_pandas(typed, schema=self.schema, preserve_index=False))

    def end(self) -> None:
        self._writer.close()


class JsonLinesWriter:
    """One JSON object per record, nulls left out (for alerts; flows use Zeek's JSON form)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def begin(self) -> None:
        """JSON lines have no header."""

    def write(self, frame: pd.DataFrame) -> None:
        clean = frame.astype(object).where(frame.notna(), None)
        for record in clean.to_dict("records"):
            if isinstance(record.get("evidence"), str):
                record["evidence"] = json.loads(record["evidence"])  # the store keeps it as JSON text
            self.out.write(json.dumps({k: v for k, v in record.items() if v is not None}, default=str) + "\n")

    def end(self) -> None:
        """Nor a footer."""
