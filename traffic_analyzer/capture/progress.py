"""The progress bar both file readers show on stderr while they work through a capture file."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm


def file_progress_bar(path: Path, enabled: bool) -> tqdm:
    """A byte-counting bar for ``path``: shown after 1 s, only on a terminal, gone when done."""
    return tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=path.name,
        file=sys.stderr,
        delay=1.0,
        disable=None if enabled else True,
        leave=False,
    )
