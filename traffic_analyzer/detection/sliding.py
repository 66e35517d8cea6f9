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
        self.aged_out = 0  # rows dropped for age, over the table's life
        self.capped = 0  # rows dropped by the cap: evidence the detector no longer sees

    def add(self, new: pd.DataFrame, now: float) -> pd.DataFrame:
        """Fold ``new`` rows in at time ``now``; returns the rows kept."""
        horizon = now - self.horizon_s
        old = self._recent(self.rows, horizon)
        if new.empty:  # the remembered rows are merged, capped and in order already: only age them
            self.rows = old if _numbered(old) else old.reset_index(drop=True)
            return self.rows
        new = self._recent(new, horizon, count=False)
        if self.key is not None and len(new):
            both = self._merged(old, new)
        elif len(new):
            both = pd.concat([old, new], ignore_index=True) if len(old) else new.reset_index(drop=True)
        else:
            both = old
        if self.per_group is not None and len(both):
            columns, most = self.per_group
            kept = _last_of_groups(both, columns, most)
            if not kept.all():
                self.capped += int((~kept).sum())
                both = both[kept]
        if self.by_time and len(both):
            ts = both[self.time].to_numpy(dtype=float)
            if (ts[1:] < ts[:-1]).any():  # remembered rows are in order, and new ones mostly later: often no sort
                both = both.iloc[np.argsort(ts, kind="stable")]
        if len(both) > self.max_rows:
            self.capped += len(both) - self.max_rows
            both = both.iloc[-self.max_rows :]
        self.rows = both if _numbered(both) else both.reset_index(drop=True)
        return self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def clear(self) -> None:
        self.rows = self.rows.iloc[:0]

    def _recent(self, frame: pd.DataFrame, horizon: float, count: bool = True) -> pd.DataFrame:
        keep = frame[self.time].to_numpy(dtype=float) >= horizon
        if keep.all():
            return frame
        if count:
            self.aged_out += int((~keep).sum())
        return frame.take(np.flatnonzero(keep))

    def _merged(self, old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
        """One row per key: ``new`` grouped, then merged into the matching ``old`` rows; fresh keys appended."""
        assert self.key is not None
        grouped = self._group(new)
        if old.empty:
            return grouped
        at = pd.Index(old[self.key]).get_indexer(grouped[self.key])
        seen = at >= 0
        old = old.reset_index(drop=True)
        if seen.any():
            old = old.copy()
            rows = at[seen]
            for column, rule in self.merge.items():
                if rule == "first":
                    continue
                before = old[column].to_numpy()[rows]
                after = grouped[column].to_numpy()[seen]
                combined = _combine(rule, before, after)
                old[column] = _put(old[column], rows, combined)
        if seen.all():
            return old
        fresh = grouped if not seen.any() else grouped[~seen]
        return pd.concat([old, fresh], ignore_index=True)

    def _group(self, new: pd.DataFrame) -> pd.DataFrame:
        assert self.key is not None
        if not new[self.key].duplicated().any():
            return new.reset_index(drop=True)
        spec = {c: (c, self.merge.get(c, "first")) for c in new.columns if c != self.key}
        return new.groupby(self.key, sort=False).agg(**spec).reset_index()[list(new.columns)]


def _last_of_groups(frame: pd.DataFrame, columns: list[str], most: int) -> np.ndarray:
    """Which rows ``groupby(columns).tail(most)`` keeps, as a mask: the last ``most`` of each group, and no row
    with a missing key (a group-by drops those). In numpy, without the group-by's fixed cost."""
    codes = [pd.factorize(frame[c].to_numpy())[0] for c in columns]
    known = np.logical_and.reduce([c >= 0 for c in codes])
    group = np.zeros(len(frame), dtype=np.int64)
    for c in codes:
        group = group * (int(c.max(initial=0)) + 1) + c
    order = np.argsort(group, kind="stable")  # each group's rows together, in table order
    ordered = group[order]
    first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # where each group starts
    size = np.diff(np.r_[first, len(order)])
    from_end = np.repeat(first + size, size) - np.arange(len(order))  # 1 for a group's last row
    keep = np.empty(len(frame), dtype=bool)
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
