"""What became of an anomaly model when it was loaded or given a new budget, as plain data.

A file's detection worker loads and scores the model; the main process logs and stores this report
of it, so it never imports scikit-learn or SciPy (their imports are a second of its start-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelReport:
    """The model's metadata after a load or a budget change, and what to log of it."""

    meta: dict[str, Any]  # the run row's and the summary's model metadata (persist.model_info's keys)
    loaded_from: str | None = None  # the saved model's path, when this reports its loading
    placed: str | None = None  # the budget its threshold was moved to (persist.budget_text)
    refused: str | None = None  # why it keeps the threshold it was saved with (saved before budgets)
