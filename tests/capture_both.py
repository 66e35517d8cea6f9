"""Capture on one interface with several live backends at once; pickle their tables.

Run inside a test's network namespace: python capture_both.py IFACE SECONDS OUT.pkl [BACKENDS]
(BACKENDS: comma-separated, default pyshark,tshark).
"""

from __future__ import annotations

import pickle
import sys
import threading
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from traffic_analyzer.capture.dumpcap_live import DumpcapLiveSource  # noqa: E402
from traffic_analyzer.capture.live import PysharkLiveSource, TsharkLiveSource  # noqa: E402

BACKENDS = {cls.backend: cls for cls in (PysharkLiveSource, TsharkLiveSource, DumpcapLiveSource)}


def main(iface: str, seconds: float, out: str, backends: str = "pyshark,tshark") -> None:
    tables: dict[str, pd.DataFrame] = {}
    stats: dict[str, dict] = {}

    def capture(source_class) -> None:
        source = source_class(iface, "udp", duration_s=seconds, window_s=1.0)
        tables[source_class.backend] = pd.concat(list(source.batches()), ignore_index=True)
        stats[source_class.backend] = source.stats.as_dict()

    classes = [BACKENDS[name] for name in backends.split(",")]
    threads = [threading.Thread(target=capture, args=(cls,)) for cls in classes]
    for t in threads:
        t.start()
    print("started", flush=True)
    for t in threads:
        t.join(timeout=seconds + 30)
    Path(out).write_bytes(pickle.dumps({"tables": tables, "stats": stats}))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3], *sys.argv[4:5])
