"""Write the per-window digests of the public captures that tests/integration/test_parity.py checks.

Usage: python3 scripts/make_golden.py. Run it only when a change of results is intended, and say in the
commit which results changed and why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from parity import window_digests  # noqa: E402

SHARED = ROOT.parent / "shared" / "pcaps"
GOLDEN = ROOT / "tests" / "data" / "golden_windows.json"


def main() -> None:
    captures = sorted(p for p in SHARED.iterdir() if p.suffix in (".pcap", ".pcapng", ".cap"))
    golden = {p.name: window_digests(p) for p in captures}
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(golden)} captures, {sum(map(len, golden.values()))} windows)")


if __name__ == "__main__":
    main()
