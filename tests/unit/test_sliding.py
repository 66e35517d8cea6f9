"""SlidingTable on hand-built rows: ageing, merging by key, per-group and total caps, and what it counts."""

from __future__ import annotations

import pandas as pd
import pytest

from traffic_analyzer.detection.sliding import SlidingTable

pytestmark = pytest.mark.unit

EMPTY = pd.DataFrame({"key": pd.Series(dtype=object), "ts": pd.Series(dtype=float), "n": pd.Series(dtype="int64")})


def rows(*triples: tuple[str, float, int]) -> pd.DataFrame:
    return pd.DataFrame(triples, columns=["key", "ts", "n"]).astype(EMPTY.dtypes)


def test_rows_older_than_the_horizon_are_aged_out_and_counted() -> None:
    table = SlidingTable(EMPTY, horizon_s=10, max_rows=100)
    table.add(rows(("a", 0.0, 1), ("b", 5.0, 1)), now=5.0)
    kept = table.add(rows(("c", 12.0, 1)), now=12.0)
    assert list(kept["key"]) == ["b", "c"] and table.aged_out == 1
    assert list(table.add(EMPTY, now=30.0)["key"]) == [] and table.aged_out == 3


def test_new_rows_already_too_old_are_dropped_without_counting() -> None:
    table = SlidingTable(EMPTY, horizon_s=10, max_rows=100)
    assert table.add(rows(("late", 1.0, 1)), now=20.0).empty and table.aged_out == 0


def test_rows_of_one_key_merge_by_rule_and_keep_their_place() -> None:
    table = SlidingTable(EMPTY, horizon_s=60, max_rows=100, key="key", merge={"ts": "max", "n": "sum"})
    table.add(rows(("a", 1.0, 1), ("b", 2.0, 1), ("a", 3.0, 2)), now=3.0)
    kept = table.add(rows(("b", 9.0, 5), ("c", 8.0, 1)), now=9.0)
    assert kept.values.tolist() == [["a", 3.0, 3], ["b", 9.0, 6], ["c", 8.0, 1]]


def test_first_and_last_rules() -> None:
    table = SlidingTable(EMPTY, horizon_s=60, max_rows=100, key="key", merge={"n": "last"})
    table.add(rows(("a", 1.0, 1)), now=1.0)
    assert table.add(rows(("a", 2.0, 7)), now=2.0).values.tolist() == [["a", 1.0, 7]]  # ts keeps the first


def test_the_cap_keeps_the_newest_and_counts_the_rest() -> None:
    table = SlidingTable(EMPTY, horizon_s=60, max_rows=2, by_time=True)
    kept = table.add(rows(("a", 3.0, 1), ("b", 1.0, 1), ("c", 2.0, 1)), now=3.0)
    assert list(kept["key"]) == ["c", "a"] and table.capped == 1 and len(table) == 2


def test_per_group_cap_keeps_each_groups_last_rows() -> None:
    table = SlidingTable(EMPTY, horizon_s=60, max_rows=100, per_group=(["key"], 2))
    kept = table.add(rows(("a", 1.0, 1), ("a", 2.0, 2), ("a", 3.0, 3), ("b", 1.5, 1)), now=3.0)
    assert kept.values.tolist() == [["a", 2.0, 2], ["a", 3.0, 3], ["b", 1.5, 1]] and table.capped == 1


def test_merge_rules_must_name_columns_and_known_rules() -> None:
    with pytest.raises(ValueError, match="merge rules"):
        SlidingTable(EMPTY, 10, 10, key="key", merge={"n": "median"})
    with pytest.raises(ValueError, match="merge rules"):
        SlidingTable(EMPTY, 10, 10, key="key", merge={"missing": "max"})
