"""Capture on one interface with the pyshark and the tshark backends at once; pickle both tables.

Run inside a test's network namespace: python capture_both.py IFACE SECONDS OUT.pkl
"""

from __future__ import annotations

import pickle
import sys
import threading
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from traffic_analyzer.capture.live import PysharkLiveSource, TsharkLiveSource  # noqa: E402


def main(iface: str, seconds: float, out: str) -> None:
    tables: dict[str, pd.DataFrame] = {}

    def capture(source_class) -> None:
        source = source_class(iface, "udp", duration_s=seconds, window_s=1.0)
        tables[source_class.backend] = pd.concat(list(source.batches()), ignore_index=True)

    threads = [threading.Thread(target=capture, args=(cls,)) for cls in (PysharkLiveSource, TsharkLiveSource)]
    for t in threads:
        t.start()
    print("started", flush=True)
    for t in threads:
        t.join(timeout=seconds + 30)
    Path(out).write_bytes(pickle.dumps(tables))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3])
