"""What analysts say about alerts: acknowledgements and the allow-list, kept beside the results.

The dashboard writes them when someone clicks "Acknowledge" or "Allow-list"; the analysis loop only
reads the allow-list, to stop raising alerts that were declared harmless. They live in the result
store's database (same engine URL) but in their own tables and their own :data:`metadata`:
:class:`~traffic_analyzer.store.writer.ResultWriter` never touches them, and only
:class:`AnnotationStore` creates them, on its first write, so a store nobody annotated has none.

API for the analysis loop
-------------------------
``AllowList.load(url)``
    The allow-list of the store at ``url`` (``store_url(data_dir)``), read in one small query; an
    empty list while nobody allow-listed anything (nothing is created). Reload it once per window,
    or keep one :class:`AnnotationStore` and call :meth:`AnnotationStore.allow_list`, so entries
    added in the dashboard take effect from the next window on.
``allow_list.allows(kind, attacker, victims)``, or the pure ``allowed(kind, attacker, victims, entries)``
    True when the alert is allow-listed: it should then be neither stored nor sent to the channels.

An entry covers an alert when

- scope ``host``: the alert's attacker is the entry's ``attacker`` (any kind, any victims);
- scope ``pair``: the attacker is the entry's ``attacker`` and *every* victim of the alert has a
  pair entry with that attacker (an alert that also hits an unlisted victim still fires);
- scope ``kind``: the alert's kind is the entry's ``kind`` (any attacker, any victims).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import AnalyzerError
from .engine import open_engine

ALLOW_SCOPES = ("host", "pair", "kind")  # what an allow-list entry matches, see the module docstring

metadata = sa.MetaData()  # apart from the analysis tables' metadata: create_all of one never makes the other

acknowledgements = sa.Table(
    "alert_acknowledgements",
    metadata,
    sa.Column("alert_id", sa.String, primary_key=True),  # alerts.alert_id; stable while the alert is updated
    sa.Column("acknowledged_at", sa.Float, nullable=False),  # wall-clock epoch seconds
)

allow_list = sa.Table(
    "allow_list",
    metadata,
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String, nullable=False),  # host, pair or kind
    sa.Column("attacker", sa.String, nullable=False, default=""),  # "" where the scope does not use it
    sa.Column("victim", sa.String, nullable=False, default=""),
    sa.Column("kind", sa.String, nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),  # why, e.g. the alert it was made from
    sa.UniqueConstraint("scope", "attacker", "victim", "kind", name="allow_list_entry"),
)


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry; fields its scope does not use are empty strings."""

    scope: str  # host, pair or kind
    attacker: str = ""  # host and pair entries
    victim: str = ""  # pair entries
    kind: str = ""  # kind entries
    note: str = ""
    created_at: float | None = None  # set by the store
    entry_id: int | None = None  # set by the store

    def __post_init__(self) -> None:
        needed = {"host": ("attacker",), "pair": ("attacker", "victim"), "kind": ("kind",)}.get(self.scope)
        if needed is None:
            raise ValueError(f"allow-list scope must be one of {', '.join(ALLOW_SCOPES)}, not {self.scope!r}")
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.scope} allow-list entry needs {' and '.join(missing)}")

    def describe(self) -> str:
        """What the entry silences, in words: "alerts from 10.0.0.1 against 10.0.0.2"."""
        if self.scope == "host":
            return f"all alerts from {self.attacker}"
        if self.scope == "pair":
            return f"alerts from {self.attacker} against {self.victim}"
        return f"all {self.kind} alerts"


def allowed(alert_kind: str, attacker: str, victims: list[str], entries: Iterable[AllowEntry]) -> bool:
    """True when ``entries`` allow-list an alert of this kind, attacker and victims (rules in the module doc)."""
    entries = tuple(entries)
    if any(e.scope == "kind" and e.kind == alert_kind for e in entries):
        return True
    if any(e.scope == "host" and e.attacker == attacker for e in entries):
        return True
    paired = {e.victim for e in entries if e.scope == "pair" and e.attacker == attacker}
    return bool(victims) and all(victim in paired for victim in victims)


@dataclass(frozen=True)
class AllowList:
    """A snapshot of the allow-list, for deciding alert after alert without touching the database."""

    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def load(cls, url: str) -> AllowList:
        """The allow-list stored at ``url``; empty while there is none. Raises AnalyzerError if unreadable."""
        store = AnnotationStore(url)
        try:
            return store.allow_list()
        finally:
            store.close()

    def allows(self, alert_kind: str, attacker: str, victims: list[str]) -> bool:
        """True when the alert is allow-listed and should be dropped."""
        return allowed(alert_kind, attacker, victims, self.entries)


def _entry(row: sa.Row) -> AllowEntry:
    return AllowEntry(
        scope=row.scope,
        attacker=row.attacker,
        victim=row.victim,
        kind=row.kind,
        note=row.note,
        created_at=row.created_at,
        entry_id=row.entry_id,
    )


class AnnotationStore:
    """Acknowledgements and allow-list entries of one result store.

    The dashboard is the only writer of these tables, as the analysis loop is of the others;
    SQLite's WAL and busy timeout let both write the same file. Reading never creates anything.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the result store, the one the analyzer writes (``store_url(data_dir)``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)
        self._tables_exist = False  # once seen, never checked again: nothing drops them

    def _readable(self, conn: sa.Connection) -> bool:
        if not self._tables_exist:
            inspector = sa.inspect(conn)
            self._tables_exist = all(inspector.has_table(t.name) for t in metadata.sorted_tables)
        return self._tables_exist

    def _read(self, query: sa.Select) -> list[sa.Row]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query)) if self._readable(conn) else []
        except sa.exc.OperationalError as exc:
            raise AnalyzerError(f"cannot read the allow-list and acknowledgements of {self.url}: {exc.orig}") from exc

    def _write(self, statements: list[sa.Executable]) -> None:
        try:
            if not self._tables_exist:
                metadata.create_all(self.engine)
                self._tables_exist = True
            with self.engine.begin() as conn:
                for statement in statements:
                    conn.execute(statement)
        except sa.exc.OperationalError as exc:
            raise AnalyzerError(f"cannot save to the result store {self.url}: {exc.orig}") from exc

    def acknowledge(self, alert_id: str) -> None:
        """Mark an alert as seen; acknowledging it again keeps the first time."""
        exists = sa.exists().where(acknowledgements.c.alert_id == alert_id)
        insert = sa.insert(acknowledgements).from_select(
            ["alert_id", "acknowledged_at"], sa.select(sa.literal(alert_id), sa.literal(time.time())).where(~exists)
        )
        self._write([insert])

    def acknowledged(self) -> dict[str, float]:
        """alert_id -> when it was acknowledged (epoch seconds)."""
        rows = self._read(sa.select(acknowledgements))
        return {row.alert_id: row.acknowledged_at for row in rows}

    def add(self, entry: AllowEntry) -> None:
        """Allow-list ``entry``; adding an entry that is already there changes nothing."""
        key = {"scope": entry.scope, "attacker": entry.attacker, "victim": entry.victim, "kind": entry.kind}
        exists = sa.exists().where(*(allow_list.c[name] == value for name, value in key.items()))
        values = {**key, "created_at": time.time(), "note": entry.note}
        insert = sa.insert(allow_list).from_select(
            list(values), sa.select(*(sa.literal(v) for v in values.values())).where(~exists)
        )
        self._write([insert])

    def remove(self, entry_id: int) -> None:
        """Take an entry off the allow-list; alerts it covered fire again from the next window."""
        self._write([allow_list.delete().where(allow_list.c.entry_id == entry_id)])

    def allow_entries(self) -> list[AllowEntry]:
        """Every allow-list entry, oldest first."""
        return [_entry(row) for row in self._read(sa.select(allow_list).order_by(allow_list.c.entry_id))]

    def allow_list(self) -> AllowList:
        """A snapshot of the allow-list for :meth:`AllowList.allows`."""
        return AllowList(tuple(self.allow_entries()))

    def close(self) -> None:
        self.engine.dispose()
