"""Rows a detector remembers across windows: the one "add, age out, merge, cap" mechanism (Zeek's SumStats epochs).

Slow attacks span many windows, so detectors keep recent evidence; without a bound that state is a
memory leak on a busy link. :class:`SlidingTable` keeps rows at most ``horizon_s`` old and at most
``max_rows`` of them (the newest), optionally one row per key merged by a rule per column, and counts
what it let go so that a detector can say its view was cut.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

MERGES = ("first", "last", "min", "max", "sum")  # how a column of one key's rows becomes one value


class SlidingTable:
    """Recent rows of one kind, bounded in age and count.

    Parameters
    ----------
    empty : DataFrame
        An empty frame with the table's columns and dtypes.
    horizon_s : float
        Rows whose ``time`` column is older than ``now - horizon_s`` are aged out.
    max_rows : int
        At most this many rows are kept: the last ones in the table's order.
    time : str
        The column holding each row's time (epoch seconds).
    key : str, optional
        With a key, rows of one key are merged into one by ``merge`` ({column: one of MERGES};
        unnamed columns keep their first value), the remembered row before the new ones.
    by_time : bool
        Order rows by time (stable) before the cap, instead of by arrival.
    per_group : (columns, int), optional
        At most this many rows (the last) of each group of these columns, e.g. queries per (client, domain).
    """

    def __init__(
        self,
        empty: pd.DataFrame,
        horizon_s: float,
        max_rows: int,
        time: str = "ts",
        key: str | None = None,
        merge: Mapping[str, str] | None = None,
        by_time: bool = False,
        per_group: tuple[list[str], int] | None = None,
    ) -> None:
        bad = {c: m for c, m in (merge or {}).items() if m not in MERGES or c not in empty.columns}
        if bad:
            raise ValueError(f"merge rules must name columns of the table and one of {MERGES}: {bad}")
        self.horizon_s = horizon_s
        self.max_rows = max_rows
        self.time = time
        self.key = key
        self.merge = dict(merge or {})
        self.by_time = by_time
        self.per_group = per_group
        self.rows = empty.reset_index(drop=True)
        # A keyed table whose every other column takes the newest value replaces merged rows whole.
        self._replaces = key is not None and all(self.merge.get(c) == "last" for c in empty.columns if c != key)
        self.aged_out = 0  # rows dropped for age, over the table's life
        self.capped = 0  # rows dropped by the cap: evidence the detector no longer sees

    def add(self, new: pd.DataFrame, now: float) -> pd.DataFrame:
        """Fold ``new`` rows in at time ``now``; returns the rows kept.

        The rows kept are chosen as positions (aged out, merged, capped per group and in all, put in
        time order) and taken once at the end: on a table of thousands of rows each frame copy costs
        more than all the choosing.
        """
        horizon = now - self.horizon_s
        rows = self.rows
        kept = np.flatnonzero(rows[self.time].to_numpy(dtype=float) >= horizon)
        self.aged_out += len(rows) - len(kept)
        if len(new):
            recent = new[self.time].to_numpy(dtype=float) >= horizon
            new = new if recent.all() else new[recent]
        if new.empty:  # the remembered rows are merged, capped and in order already: only age them
            self.rows = rows if len(kept) == len(rows) else rows.take(kept).reset_index(drop=True)
            return self.rows
        if self.key is not None:
            base, at = self._merged(rows, kept, new)
        elif len(kept):
            base = pd.concat([rows, new], ignore_index=True)
            at = np.concatenate([kept, len(rows) + np.arange(len(new))])
        else:
            base, at = new.reset_index(drop=True), np.arange(len(new))
        if self.per_group is not None and len(at):
            columns, most = self.per_group
            keep = _last_of_groups([base[c].to_numpy()[at] for c in columns], most)
            if not keep.all():
                self.capped += int((~keep).sum())
                at = at[keep]
        if self.by_time and len(at):
            ts = base[self.time].to_numpy(dtype=float)[at]
            if (ts[1:] < ts[:-1]).any():  # remembered rows are in order, and new ones mostly later: often no sort
                at = at[np.argsort(ts, kind="stable")]
        if len(at) > self.max_rows:
            self.capped += len(at) - self.max_rows
            at = at[-self.max_rows :]
        whole = len(at) == len(base) and bool((at == np.arange(len(base))).all())
        both = base if whole else base.take(at)
        self.rows = both if _numbered(both) else both.reset_index(drop=True)
        return self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def clear(self) -> None:
        self.rows = self.rows.iloc[:0]

    def _merged(self, rows: pd.DataFrame, kept: np.ndarray, new: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """One row per key: ``new`` grouped, then merged into the matching remembered rows (those ``kept``);
        fresh keys appended. Returns a frame and the positions of the merged table's rows in it."""
        assert self.key is not None
        grouped = self._group(new)
        if not len(kept):
            return grouped, np.arange(len(grouped))
        at = pd.Index(rows[self.key].iloc[kept]).get_indexer(grouped[self.key])
        seen = at >= 0
        if seen.any() and self._replaces and rows.dtypes.equals(grouped.dtypes):
            # Every column takes the newest value: a merged row is the new row, in the remembered row's place.
            base = pd.concat([rows, grouped], ignore_index=True)
            kept = kept.copy()
            kept[at[seen]] = len(rows) + np.flatnonzero(seen)
            return base, np.concatenate([kept, len(rows) + np.flatnonzero(~seen)])
        if seen.any():
            rows = rows.copy(deep=False)  # copy-on-write: whole columns are replaced below, the remembered ones kept
            targets = kept[at[seen]]
            for column, rule in self.merge.items():
                if rule == "first":
                    continue
                before = rows[column].to_numpy()[targets]
                after = grouped[column].to_numpy()[seen]
                combined = _combine(rule, before, after)
                rows[column] = _put(rows[column], targets, combined)
        if seen.all():
            return rows, kept
        base = pd.concat([rows, grouped], ignore_index=True)
        return base, np.concatenate([kept, len(rows) + np.flatnonzero(~seen)])

    def _group(self, new: pd.DataFrame) -> pd.DataFrame:
        assert self.key is not None
        if not new[self.key].duplicated().any():
            return new.reset_index(drop=True)
        spec = {c: (c, self.merge.get(c, "first")) for c in new.columns if c != self.key}
        return new.groupby(self.key, sort=False).agg(**spec).reset_index()[list(new.columns)]


def _last_of_groups(columns: list[np.ndarray], most: int) -> np.ndarray:
    """Which rows ``groupby(columns).tail(most)`` keeps, given the columns' values: the last ``most`` of each
    group, and no row with a missing key (a group-by drops those). In numpy, without the group-by's fixed cost."""
    codes = [pd.factorize(values)[0] for values in columns]
    known = np.logical_and.reduce([c >= 0 for c in codes])
    group = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        group = group * (int(c.max(initial=0)) + 1) + c
    order = np.argsort(group, kind="stable")  # each group's rows together, in table order
    ordered = group[order]
    first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # where each group starts
    size = np.diff(np.r_[first, len(order)])
    from_end = np.repeat(first + size, size) - np.arange(len(order))  # 1 for a group's last row
    keep = np.empty(len(group), dtype=bool)
    keep[order] = from_end <= most
    return keep & known


def _numbered(frame: pd.DataFrame) -> bool:
    """Is the frame's index already 0, 1, 2 ... (what ``reset_index(drop=True)`` would make)?"""
    index = frame.index
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _combine(rule: str, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    if rule == "last":
        return after
    if rule == "sum":
        return before + after
    return np.minimum(before, after) if rule == "min" else np.maximum(before, after)


def _put(column: pd.Series, rows: np.ndarray, values: np.ndarray) -> pd.Series:
    out = column.to_numpy(copy=True)
    out[rows] = values
    return pd.Series(out, index=column.index, dtype=column.dtype)
