"""Which runs an export reads: ``--run latest`` (what the dashboard shows, the newest run of each
sensor), ``all`` (the default) or a run id, of ``--sensor``'s runs when given.

The ``runs`` table is reflected, as the exported tables are, so stores of any schema version are
read without being changed.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import AnalyzerError

LATEST, ALL = "latest", "all"


def selected_runs(engine: sa.Engine, run: str | None, sensor: str | None) -> tuple[str, ...] | None:
    """Run ids to export (None: every run, no filter) for ``--run`` (None: every run) and ``--sensor``."""
    if run in (ALL, None) and sensor is None:
        return None
    rows = _runs(engine, sensor)
    if run in (ALL, None):
        return tuple(r["run_id"] for r in rows)
    if run == LATEST:
        newest: dict[str, str] = {}
        for r in rows:  # newest first
            newest.setdefault(r["sensor"], r["run_id"])
        return tuple(newest.values())
    return (run,) if sensor is None else tuple(r["run_id"] for r in rows if r["run_id"] == run)


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
