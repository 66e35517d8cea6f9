"""Rewrites the README's detector-threshold table from the detector classes (detection/catalogue.py)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from traffic_analyzer.detection.catalogue import detector_table  # noqa: E402

TABLE_START, TABLE_END = "<!-- detector-table:start -->", "<!-- detector-table:end -->"

if __name__ == "__main__":
    readme = ROOT / "README.md"
    text = readme.read_text()
    if TABLE_START not in text:
        sys.exit(f"README.md has no {TABLE_START} ... {TABLE_END} block to fill")
    block = f"{TABLE_START}\n{detector_table()}\n{TABLE_END}"
    readme.write_text(re.sub(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), lambda _: block, text, flags=re.S))
    print("wrote the README's detector-threshold table")
