"""Frames built from numpy columns, for detectors that do their work on arrays and make a frame at the end.

Boolean masks, ``take`` and ``astype`` on a window's frames cost more in pandas' fixed overhead than
the work itself; detectors select rows as numpy indices instead and build each frame once.
"""

from __future__ import annotations

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


def rows_of(table: pd.DataFrame, at: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Rows ``at`` (positions) of these columns of ``table``, dtypes and index labels kept: ``table[columns].iloc[at]``
    without the block manager's copies."""
    return pd.DataFrame({c: table[c].array[at] for c in columns}, index=table.index[at], copy=False)


def columns_of(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """These columns of ``table`` (dtypes and index kept): ``table[columns]`` without copying them."""
    return pd.DataFrame({c: table[c].array for c in columns}, index=table.index, copy=False)
