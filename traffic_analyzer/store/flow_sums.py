"""Each host's flows summed by hour, peer, port, service and state (``peer_hours``), kept exact as flows grow.

A host's page asks for its peers and ports over the whole run, and the flows page for the run's
services and states and how many flows a host had: on SQLite those read every flow of a busy
host (the site's DNS server is in four flows of five), seconds at a day. ``peer_hours`` holds
each flow twice, once from each end (``role`` client: the host opened it), summed by the hour
the flow started in and by what the dashboard groups by; a day is a few thousand rows a host.

Flows are upserted: a flow's later version replaces the stored one, and its bytes, state and
even service change. So each window, inside its transaction, reads the stored versions of the
flows it writes and adds to the sums the new versions less the stored ones: a flow that moved to
another state leaves a row with 0 flows and 0 bytes behind (the readers skip them). Reading the
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

from .schema import flows, peer_hours
from .summaries import HOUR_S, hour_of, kept_ends

KEY = ("run_id", "host", "hour", "peer", "role", "proto", "port", "service", "conn_state")
COLUMNS = (*KEY, "flows", "sent", "received", "first_ts", "last_ts")
NO_PORT = -1  # a NULL responder port in the key
SIDE_COLUMNS = ("ts", "last_ts", "orig_h", "resp_h", "proto", "resp_p", "service", "conn_state")
SIDE_COLUMNS += ("orig_ip_bytes", "resp_ip_bytes")  # the conn.log columns the sums are made of
UIDS_PER_STATEMENT = 5000  # flows per IN list: under SQLite's and PostgreSQL's bound-parameter limits


def _side(where: Sequence, dialect: sa.Dialect, role: str, host, peer, sent, received) -> sa.Select:
    """The flows of ``where`` seen from one end."""
    f = flows.c
    return sa.select(
        f.run_id,
        host.label("host"),
        hour_of(f.ts, dialect).label("hour"),
        peer.label("peer"),
        sa.literal(role).label("role"),
        sa.func.coalesce(f.proto, "").label("proto"),
        sa.func.coalesce(f.resp_p, NO_PORT).label("port"),
        sa.func.coalesce(f.service, "").label("service"),
        sa.func.coalesce(f.conn_state, "").label("conn_state"),
        sent.label("sent"),
        received.label("received"),
        f.ts,
        f.last_ts,
    ).where(*where)


def sums_of(where: Sequence, dialect: sa.Dialect, sign: int = 1) -> sa.Select:
    """``peer_hours`` rows of the flows ``where`` selects, their counts times ``sign`` (-1: to subtract)."""
    f = flows.c
    sides = sa.union_all(
        _side(where, dialect, "client", f.orig_h, f.resp_h, f.orig_ip_bytes, f.resp_ip_bytes),
        _side(where, dialect, "server", f.resp_h, f.orig_h, f.resp_ip_bytes, f.orig_ip_bytes),
    ).subquery()
    key = [sides.c[k] for k in KEY]
    signed = sa.literal(sign, sa.BigInteger)
    return sa.select(
        *key,
        (signed * sa.func.count()).label("flows"),
        (signed * sa.func.coalesce(sa.func.sum(sides.c.sent), 0)).label("sent"),
        (signed * sa.func.coalesce(sa.func.sum(sides.c.received), 0)).label("received"),
        sa.func.min(sides.c.ts).label("first_ts"),
        sa.func.max(sides.c.last_ts).label("last_ts"),
    ).group_by(*key)


STORED = sa.select(*(flows.c[name] for name in SIDE_COLUMNS)).where(
    flows.c.run_id == sa.bindparam("run_id"), flows.c.uid.in_(sa.bindparam("uids", expanding=True))
)  # the stored versions of some of a run's flows


def window_sums(conn: sa.Connection, run_id: str, columns: Mapping[str, Sequence], written: Sequence[bool]) -> list:
    """``peer_hours`` rows (in its column order) to add for the flows a window writes: new versions less stored ones.

    Read before the upsert, in its transaction. ``columns`` are the window's conn.log columns,
    ``written`` which of its flows it writes. Summed in a dict rather than in SQL or a DataFrame:
    it costs least for a window's few thousand flows.
    """
    uids = list(compress(columns["uid"], written))
    stored = []
    for at in range(0, len(uids), UIDS_PER_STATEMENT):
        stored += conn.execute(STORED, {"run_id": run_id, "uids": uids[at : at + UIDS_PER_STATEMENT]}).all()
    sums: dict[tuple, list] = {}
    _add(sums, zip(*(compress(columns[name], written) for name in SIDE_COLUMNS), strict=True), 1)
    _add(sums, stored, -1)
    return [(run_id, *key, *summed) for key, summed in sums.items()]


def _add(sums: dict[tuple, list], versions, sign: int) -> None:
    """Add (``sign`` 1) or take out (-1) flow versions, given as SIDE_COLUMNS tuples, at both their ends.

    The hour is the division and truncation SQL does; first and last time are only ever widened.
    """
    for ts, last, orig, resp, proto, port, service, state, orig_bytes, resp_bytes in versions:
        hour = int(ts / HOUR_S) * HOUR_S
        grouped = (proto or "", NO_PORT if port is None else port, service or "", state or "")
        for key, sent, received in (
            ((orig, hour, resp, "client", *grouped), orig_bytes, resp_bytes),
            ((resp, hour, orig, "server", *grouped), resp_bytes, orig_bytes),
        ):
            found = sums.get(key)
            if found is None:
                sums[key] = [sign, sign * sent, sign * received, ts, last]
            else:
                found[0] += sign
                found[1] += sign * sent
                found[2] += sign * received
                found[3] = min(found[3], ts)
                found[4] = max(found[4], last)


def adding_sets(quote) -> str:
    """The SET clause that adds a window's rows to the stored ones (``excluded``: the row offered)."""
    table = quote(peer_hours.name)
    sums = [f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in ("flows", "sent", "received")]
    return ", ".join([*sums, *kept_ends(quote, table, "first_ts", "last_ts")])


def backfill(conn: sa.Connection) -> None:
    """Sum every stored flow into the (empty) table: the schema step of an older store."""
    conn.execute(peer_hours.insert().from_select(COLUMNS, sums_of([sa.true()], conn.dialect)))
