"""Digests of what the analysis makes of a capture, window by window: the check that a speed-up changed no result.

Each window's flows, host features and alerts are put in a canonical order, floats rounded to
``DIGITS`` significant digits (a vectorised sum may add in another order), and hashed. Two versions of
the code agree on a capture when every window's three digests are equal; ``scripts/make_golden.py``
writes the digests of the code as it is, ``tests/integration/test_parity.py`` compares against them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from traffic_analyzer.capture.file_reader import CaptureFileSource
from traffic_analyzer.features.host_windows import host_features_of
from traffic_analyzer.pipeline import Analysis, default_detectors, file_windows

DIGITS = 9  # significant digits kept of every float before hashing
WINDOW_S = 5.0  # the analyzer's default window


def _canonical(frame: pd.DataFrame, sort_by: list[str]) -> str:
    frame = frame.reset_index()
    frame = frame[sorted(c for c in frame.columns if c not in ("uid", "index"))]
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            values = frame[column].to_numpy(dtype=float)
            frame[column] = [float(f"{v:.{DIGITS}g}") if np.isfinite(v) else None for v in values]
    frame = frame.astype(object).where(frame.notna(), None)
    keys = [c for c in sort_by if c in frame.columns] + [c for c in frame.columns if c not in sort_by]
    rows = sorted(frame[keys].itertuples(index=False, name=None), key=repr)
    return json.dumps([keys, rows], default=str)


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def window_digests(path: str | Path) -> list[dict[str, str]]:
    """Per window of ``path``: digests of its flows, host features and alerts (uids aside: they are random)."""
    analysis = Analysis(default_detectors(25, 60.0))
    source = CaptureFileSource(path, reader="fast", progress=False)
    out = []
    for packets in file_windows(source.batches(), WINDOW_S):
        result, window = analysis.process(packets, live=False)
        alerts = [_rounded({k: v for k, v in a.as_dict().items() if k != "updates"}) for a in result.alerts]
        out.append(
            {
                "flows": _digest(_canonical(result.flows, ["ts", "orig_h", "orig_p", "resp_h", "resp_p"])),
                "hosts": _digest(_canonical(host_features_of(window), ["index"])),
                "alerts": _digest(json.dumps(sorted(alerts, key=lambda a: (a["kind"], a["attacker"])), default=str)),
            }
        )
    last = analysis.finish()
    out.append({"flows": _digest(_canonical(last.flows, ["ts", "orig_h", "orig_p", "resp_h", "resp_p"]))})
    return out
