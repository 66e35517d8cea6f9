"""Poll a dashboard URL like an open browser tab: GET it every INTERVAL_S for SECONDS; print how many answered 200.

Run inside a test's network namespace: python poll_dashboard.py URL SECONDS INTERVAL_S
"""

from __future__ import annotations

import sys
import time
import urllib.request


def main(url: str, seconds: float, interval_s: float) -> None:
    answered, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                answer.read()
                answered += answer.status == 200
        except OSError:
            pass
        time.sleep(interval_s)
    print(answered)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))
