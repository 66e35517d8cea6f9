"""Rewrites config.example.py and the README's configuration table from the settings catalogue."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from traffic_analyzer.settings import config_example_text, readme_table  # noqa: E402

TABLE_START, TABLE_END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"

if __name__ == "__main__":
    (ROOT / "config.example.py").write_text(config_example_text())
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"{TABLE_START}\n{readme_table()}\n{TABLE_END}"
    readme.write_text(re.sub(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), lambda _: block, text, flags=re.S))
    print("wrote config.example.py and the README's settings table")
