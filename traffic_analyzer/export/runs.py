"""Which runs an export reads: ``--run latest``, ``all``, a run id, or by default each source's latest run.

Every run is kept apart in the store. A second ``--read`` of the same file is a new run with the
same packets, so the same flows (the same Zeek uids) and alerts: exporting both would list each
twice. By default an export therefore reads the latest run of each file a sensor read, and every
live run of it (live captures never share packets, so each run is its own source). ``latest`` is
what the dashboard shows, the newest run of each sensor; ``all`` is every run.

The ``runs`` table is reflected, as the exported tables are, so stores of any schema version are
read without being changed.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from ..errors import AnalyzerError

LATEST, ALL = "latest", "all"
_READER_SUFFIX = re.compile(r" \((fast|tshark)\)$")  # "file x.pcap (fast)": the reader is not the source


def source_key(source: str) -> str:
    """The file a run read, whichever reader decoded it."""
    return _READER_SUFFIX.sub("", source)


def selected_runs(engine: sa.Engine, run: str | None, sensor: str | None) -> tuple[str, ...] | None:
    """Run ids to export (None: every run, no filter) for ``--run`` (None: the default) and ``--sensor``."""
    if run == ALL and sensor is None:
        return None
    rows = _runs(engine, sensor)
    if run == ALL:
        return tuple(r["run_id"] for r in rows)
    if run == LATEST:
        newest: dict[str, str] = {}
        for r in rows:  # newest first
            newest.setdefault(r["sensor"], r["run_id"])
        return tuple(newest.values())
    if run is not None:
        return (run,) if sensor is None else tuple(r["run_id"] for r in rows if r["run_id"] == run)
    latest_of_file: dict[tuple[str, str], str] = {}
    chosen = []
    for r in rows:
        if r["live"]:
            chosen.append(r["run_id"])
        elif latest_of_file.setdefault((r["sensor"], source_key(r["source"])), r["run_id"]) == r["run_id"]:
            chosen.append(r["run_id"])
    return tuple(chosen)


def run_sensors(engine: sa.Engine) -> dict[str, str]:
    """run_id -> the sensor that made it ('' before sensors were recorded)."""
    return {r["run_id"]: r["sensor"] for r in _runs(engine, None)}


def _runs(engine: sa.Engine, sensor: str | None) -> list[dict]:
    """Runs newest first: run_id, source, sensor ('' before sensors were recorded) and whether live."""
    try:
        runs = sa.Table("runs", sa.MetaData(), autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise AnalyzerError("the store has no runs table: run the analyzer first") from None
    has_sensor = "sensor" in runs.c
    if sensor is not None and not has_sensor:
        raise AnalyzerError("this store has no sensor column: export without --sensor")
    columns = [runs.c.run_id, runs.c.source, runs.c.sensor if has_sensor else sa.literal("").label("sensor")]
    columns.append(runs.c.live if "live" in runs.c else sa.null().label("live"))
    query = sa.select(*columns).order_by(runs.c.started_at.desc(), runs.c.run_id)
    if sensor is not None:
        query = query.where(runs.c.sensor == sensor)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
        if sensor is not None and not rows:
            known = list(conn.execute(sa.select(runs.c.sensor).distinct().order_by(runs.c.sensor)).scalars())
            raise AnalyzerError(
                f"no runs of sensor {sensor!r} in this store (its sensors: {', '.join(known) or 'none'})"
            )
    for row in rows:
        row["live"] = row["source"].startswith("live") if row["live"] is None else bool(row["live"])
    return rows
