"""Speed-ups keep the results: every window's flows, host features and alerts match the recorded digests.

The digests in tests/data/golden_windows.json come from scripts/make_golden.py; regenerate them only
for an intended change of results, and say which and why in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO_PCAPS, SHARED_PCAPS, PublicCaptures
from parity import window_digests

GOLDEN = json.loads((Path(__file__).parents[1] / "data" / "golden_windows.json").read_text())


HERE = {p.name for p in PublicCaptures(REPO_PCAPS, SHARED_PCAPS).iterdir()}  # no stand-ins: golden is of the public


@pytest.mark.parametrize("capture", sorted(set(GOLDEN) & HERE))
def test_every_window_is_analysed_as_before(pcaps: Path, capture: str) -> None:
    got = window_digests(pcaps / capture)
    want = GOLDEN[capture]
    assert len(got) == len(want), f"{capture}: {len(got)} windows, recorded {len(want)}"
    differ = [(i, part) for i, (g, w) in enumerate(zip(got, want, strict=True)) for part in w if g.get(part) != w[part]]
    assert not differ, f"{capture}: windows differ from the recorded results (window, part): {differ[:10]}"
