"""Column tests computed once per distinct value.

A busy window holds hundreds of thousands of flows but only a few hundred distinct addresses,
histories or MACs; pandas string methods run per row, so factorizing first and mapping back makes
such tests cost what the distinct values cost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


def per_distinct(values: pd.Series, test: Callable[[pd.Series], pd.Series | np.ndarray]) -> np.ndarray:
    """``test`` applied to the distinct values of ``values`` (as a Series), spread back over every row.

    Missing values reach ``test`` as missing, once.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if len(codes) == 0:
        return np.asarray(test(values.iloc[:0]))
    out = test(pd.Series(uniques, dtype=values.dtype))
    return np.asarray(out)[codes]


_PAIR_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant: (a, b) and (b, a) hash apart


def text_hashes(values: pd.Series) -> np.ndarray:
    """A 64-bit hash of each value's text, computed once per distinct value (missing: the hash of "")."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    text = pd.Series(uniques, dtype=object).fillna("").astype(str).to_numpy(dtype=object)
    return pd.util.hash_array(text)[codes] if len(codes) else np.zeros(0, dtype=np.uint64)


def pair_hashes(first: pd.Series, second: pd.Series) -> np.ndarray:
    """A 64-bit key per ordered pair of values, e.g. (source, destination): integer keys instead of "a|b" text."""
    with np.errstate(over="ignore"):
        return text_hashes(first) * _PAIR_MULTIPLIER + text_hashes(second)
