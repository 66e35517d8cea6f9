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


def distinct_per_code(owner: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """How many distinct values (codes, -1 for missing) each of ``n`` owner codes has: a group-by's nunique."""
    present = value >= 0
    pairs = np.unique(np.stack([owner[present], value[present]]), axis=1)
    return np.bincount(pairs[0], minlength=n)


class Remembered:
    """A per-value ``test`` (as for :func:`per_distinct`) whose answers are kept across calls.

    Windows keep meeting the same addresses, histories and names: each is tested once, not once per
    window. At most ``most`` answers are kept; past that the memory starts over. Answers are keyed by
    value, so give one instance values of one kind (texts): 1 and 1.0 would share an answer.
    """

    def __init__(self, test: Callable[[pd.Series], pd.Series | np.ndarray], most: int = 100_000) -> None:
        self.test = test
        self.most = most
        self.answers: dict = {}
        self.dtype: np.dtype | None = None  # of the test's answers

    def __call__(self, values: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        if len(codes) == 0:
            return np.asarray(self.test(values.iloc[:0]))
        answers = self.answers
        keys = uniques.tolist()  # Python values: iterating an extension array is slow
        unknown = [u for u in keys if u not in answers]
        if unknown:
            if len(answers) + len(unknown) > self.most:
                answers.clear()
                unknown = keys
            found = np.asarray(self.test(pd.Series(unknown, dtype=values.dtype)))
            self.dtype = found.dtype
            answers.update(zip(unknown, found.tolist(), strict=True))
        return np.array([answers[u] for u in keys], dtype=self.dtype)[codes]


_PAIR_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant: (a, b) and (b, a) hash apart


def _hashes_of_texts(values: pd.Series) -> np.ndarray:
    text = pd.Series(values, dtype=object).fillna("").astype(str).to_numpy(dtype=object)
    return pd.util.hash_array(text) if len(text) else np.zeros(0, dtype=np.uint64)


_text_hashes = Remembered(_hashes_of_texts)  # addresses recur window after window


def text_hashes(values: pd.Series) -> np.ndarray:
    """A 64-bit hash of each value's text, computed once per distinct value (missing: the hash of "")."""
    return _text_hashes(values) if len(values) else np.zeros(0, dtype=np.uint64)


def pair_hashes(first: pd.Series, second: pd.Series) -> np.ndarray:
    """A 64-bit key per ordered pair of values, e.g. (source, destination): integer keys instead of "a|b" text."""
    with np.errstate(over="ignore"):
        return text_hashes(first) * _PAIR_MULTIPLIER + text_hashes(second)


def pair_hashes_both_ways(first: pd.Series, second: pd.Series) -> np.ndarray:
    """``pair_hashes(first, second)`` followed by ``pair_hashes(second, first)``, each text hashed once."""
    a, b = text_hashes(first), text_hashes(second)
    with np.errstate(over="ignore"):
        return np.concatenate([a * _PAIR_MULTIPLIER + b, b * _PAIR_MULTIPLIER + a])


def count_by(keys: dict[str, pd.Series], count: str, sums: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """A sorted group-by's size (``count``) and integer sums over the ``keys`` columns, as a frame.

    Factorize and bincount: the same rows as ``groupby(keys, sort=True)`` (a row with a missing key
    counts nowhere) at a fraction of its fixed cost, which is most of the cost on a window's table.
    """
    factors = [pd.factorize(values, sort=True) for values in keys.values()]
    valid = np.logical_and.reduce([codes >= 0 for codes, _ in factors])
    combined = np.zeros(int(valid.sum()), dtype=np.int64)
    for codes, uniques in factors:
        combined = combined * len(uniques) + codes[valid]
    groups, inverse = np.unique(combined, return_inverse=True)
    columns: dict[str, object] = {}
    rest = groups
    for name, (_, uniques) in reversed(list(zip(keys, factors, strict=True))):
        columns[name] = uniques.take(rest % max(len(uniques), 1)).array
        rest = rest // max(len(uniques), 1)
    out = {name: columns[name] for name in keys}
    out[count] = np.bincount(inverse, minlength=len(groups)).astype(np.int64)
    for name, values in (sums or {}).items():
        out[name] = np.bincount(inverse, weights=values[valid], minlength=len(groups)).astype(np.int64)
    return pd.DataFrame(out)
