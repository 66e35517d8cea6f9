"""Frames built from numpy columns and row positions, for detectors that do their work on arrays.

Boolean masks, ``take``, ``astype`` and group-bys on a window's frames cost more in pandas' fixed
overhead than the work itself; detectors select rows as numpy positions instead, build each frame
once, and visit only the groups that matter.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd


def frame(columns: dict[str, np.ndarray], index: pd.Index | None = None) -> pd.DataFrame:
    """A frame of these columns with their numpy dtypes: object columns stay object.

    (Given a bare object array of strings, pandas would infer its own string dtype instead.)
    """
    return pd.DataFrame(
        {
            name: pd.Series(v, index=index, dtype=object, copy=False) if v.dtype == object else v
            for name, v in columns.items()
        },
        index=index,
        copy=False,
    )


def rows_of(table: pd.DataFrame, at: np.ndarray, columns: list[str], **more: np.ndarray) -> pd.DataFrame:
    """Rows ``at`` (positions) of these columns of ``table``, dtypes and index labels kept: ``table[columns].iloc[at]``
    without the block manager's copies; ``more`` columns (numpy, one value per row) are added after them."""
    taken = {c: table[c].array[at] for c in columns}
    return pd.DataFrame({**taken, **more}, index=table.index[at], copy=False)


def columns_of(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """These columns of ``table`` (dtypes and index kept): ``table[columns]`` without copying them."""
    return pd.DataFrame({c: table[c].array for c in columns}, index=table.index, copy=False)


def groups_of(rows: pd.DataFrame, keys: list[str], least: int = 1) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """(key, rows) of each group by ``keys`` with at least ``least`` rows: what iterating a sorted group-by
    yields for them (key order, rows in table order), found in numpy since most groups are too small."""
    if not len(rows):
        return
    codes = [pd.factorize(rows[k].to_numpy(dtype=object), sort=True)[0] for k in keys]
    known = np.flatnonzero(np.logical_and.reduce([c >= 0 for c in codes]))  # a missing key counts nowhere
    group = np.zeros(len(known), dtype=np.int64)
    for c in codes:
        group = group * (int(c.max(initial=0)) + 1) + c[known]
    order = known[np.argsort(group, kind="stable")]  # each group's rows together, groups in key order
    _, sizes = np.unique(group, return_counts=True)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    for g in np.flatnonzero(sizes >= least):
        part = rows.take(order[starts[g] : starts[g] + sizes[g]])
        yield tuple(part[k].iloc[0] for k in keys), part
