"""The run's flows summed by hour: each host's by peer and port (``peer_hours``), all by kind (``flow_hours``).

A host's page asks for its peers and ports over the whole run, and the flows page for the run's
services and states and how many flows a host had: on SQLite those read every flow of a busy
host (the site's DNS server is in four flows of five), seconds at a day. ``peer_hours`` holds
each flow twice, once from each end (``role`` client: the host opened it), summed by the hour
the flow started in and by what the host's page groups by: a day is a few thousand rows a host.
``flow_hours`` counts the flows of each hour by protocol, service and state: a few dozen rows.

Flows are upserted: a flow's later version replaces the stored one, and its bytes, state and
even service change. So each window, inside its transaction, reads the stored versions of the
flows it writes and adds to the sums the new versions less the stored ones: a flow that moved to
another service or state leaves a row with 0 flows and 0 bytes behind (the readers skip them). Reading the
stored versions keeps it exact whatever the writer remembers: a window written again, or a flow
the writer forgot, takes out what it adds.

NULLs in the grouped columns are stored as "" (port: -1), since a unique key does not match
NULLs; the readers turn them back. Retention prunes a row once its latest flow is older than
the cut, as it prunes those flows; until then the row still counts the older flows pruned
before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import compress

import sqlalchemy as sa

from .schema import flow_hours, flows, peer_hours
from .summaries import HOUR_S, hour_of, kept_ends

NO_PORT = -1  # a NULL responder port in the key
SIDE_COLUMNS = ("ts", "last_ts", "orig_h", "resp_h", "proto", "resp_p", "service", "conn_state")
SIDE_COLUMNS += ("orig_ip_bytes", "resp_ip_bytes")  # the conn.log columns the sums are made of
UIDS_PER_STATEMENT = 5000  # flows per IN list: under SQLite's and PostgreSQL's bound-parameter limits


def _grouped(dialect: sa.Dialect) -> list[sa.ColumnElement]:
    """A flow's hour, then its columns as the sums' keys hold them (no NULLs)."""
    f = flows.c
    return [
        hour_of(f.ts, dialect).label("hour"),
        sa.func.coalesce(f.proto, "").label("proto"),
        sa.func.coalesce(f.resp_p, NO_PORT).label("port"),
        sa.func.coalesce(f.service, "").label("service"),
        sa.func.coalesce(f.conn_state, "").label("conn_state"),
    ]


def _side(dialect: sa.Dialect, role: str, host, peer, sent, received) -> sa.Select:
    """Every stored flow seen from one end."""
    hour, proto, port, service, _ = _grouped(dialect)
    f = flows.c
    return sa.select(
        f.run_id,
        host.label("host"),
        hour,
        peer.label("peer"),
        sa.literal(role).label("role"),
        proto,
        port,
        service,
        sent.label("sent"),
        received.label("received"),
        f.ts,
        f.last_ts,
    )


def backfill(conn: sa.Connection) -> None:
    """Sum every stored flow into the (empty) tables: the schema step of an older store."""
    f = flows.c
    sides = sa.union_all(
        _side(conn.dialect, "client", f.orig_h, f.resp_h, f.orig_ip_bytes, f.resp_ip_bytes),
        _side(conn.dialect, "server", f.resp_h, f.orig_h, f.resp_ip_bytes, f.orig_ip_bytes),
    ).subquery()
    key = [sides.c[c.name] for c in list(peer_hours.columns)[:8]]  # run_id ... service
    by_peer = sa.select(
        *key,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sides.c.sent), 0),
        sa.func.coalesce(sa.func.sum(sides.c.received), 0),
        sa.func.min(sides.c.ts),
        sa.func.max(sides.c.last_ts),
    ).group_by(*key)
    conn.execute(peer_hours.insert().from_select([c.name for c in peer_hours.columns], by_peer))
    hour, proto, _, service, state = _grouped(conn.dialect)
    key = [f.run_id, hour, proto, service, state]
    by_kind = sa.select(*key, sa.func.count(), sa.func.min(f.ts), sa.func.max(f.last_ts)).group_by(*key)
    conn.execute(flow_hours.insert().from_select([c.name for c in flow_hours.columns], by_kind))


def window_sums(
    conn: sa.Connection, run_id: str, columns: Mapping[str, Sequence], written: Sequence[bool]
) -> tuple[list[tuple], list[tuple]]:
    """Rows to add to ``peer_hours`` and ``flow_hours`` (in their column order) for the flows a window writes.

    Each is the new versions less the stored ones, read before the upsert in its transaction.
    ``columns`` are the window's conn.log columns, ``written`` which of its flows it writes.
    Summed in dicts rather than in SQL or a DataFrame: it costs least for a window's few
    thousand flows.
    """
    uids = list(compress(columns["uid"], written))
    stored = []
    mark = "%s" if conn.dialect.name == "postgresql" else "?"  # the driver's own: no SQLAlchemy per bound uid
    names = ", ".join(SIDE_COLUMNS)
    for at in range(0, len(uids), UIDS_PER_STATEMENT):
        chunk = uids[at : at + UIDS_PER_STATEMENT]
        marks = ", ".join([mark] * len(chunk))
        query = f"SELECT {names} FROM flows WHERE run_id = {mark} AND uid IN ({marks})"
        stored += conn.exec_driver_sql(query, (run_id, *chunk)).all()
    by_peer: dict[tuple, list] = {}
    by_kind: dict[tuple, list] = {}
    _add(by_peer, by_kind, zip(*(compress(columns[name], written) for name in SIDE_COLUMNS), strict=True), 1)
    _add(by_peer, by_kind, stored, -1)
    return (
        [(run_id, *key, *summed) for key, summed in by_peer.items()],
        [(run_id, *key, *summed) for key, summed in by_kind.items()],
    )


def _widen(found: list, ts: float, last: float) -> None:
    """Keep the earlier first and the later last time (the two last items of a sum)."""
    found[-2] = min(found[-2], ts)
    found[-1] = max(found[-1], last)


def _add(by_peer: dict[tuple, list], by_kind: dict[tuple, list], versions, sign: int) -> None:
    """Add (``sign`` 1) or take out (-1) flow versions, given as SIDE_COLUMNS tuples.

    The hour is the division and truncation SQL does; first and last times are only ever widened.
    """
    for ts, last, orig, resp, proto, port, service, state, orig_bytes, resp_bytes in versions:
        hour = int(ts / HOUR_S) * HOUR_S
        proto, service, port = proto or "", service or "", NO_PORT if port is None else port
        kind = (hour, proto, service, state or "")
        found = by_kind.get(kind)
        if found is None:
            by_kind[kind] = [sign, ts, last]
        else:
            found[0] += sign
            _widen(found, ts, last)
        for key, sent, received in (
            ((orig, hour, resp, "client", proto, port, service), orig_bytes, resp_bytes),
            ((resp, hour, orig, "server", proto, port, service), resp_bytes, orig_bytes),
        ):
            found = by_peer.get(key)
            if found is None:
                by_peer[key] = [sign, sign * sent, sign * received, ts, last]
            else:
                found[0] += sign
                found[1] += sign * sent
                found[2] += sign * received
                _widen(found, ts, last)


def adding_sets(quote, table: sa.Table) -> str:
    """The SET clause that adds a window's rows to the stored ones of ``table`` (``excluded``: the row offered)."""
    name = quote(table.name)
    sums = [c.name for c in table.columns if c.name in ("flows", "sent", "received")]
    added = [f"{quote(c)} = {name}.{quote(c)} + excluded.{quote(c)}" for c in sums]
    return ", ".join([*added, *kept_ends(quote, name, "first_ts", "last_ts")])
