"""Exports of stored results: flows as Zeek conn.log (TSV, JSON lines), flows and alerts as CSV and Parquet."""
