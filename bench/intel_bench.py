"""Time the intel indicators: loading a million of them, and what matching them costs a realistic window.

    .venv/bin/python bench/intel_bench.py [--capture bench/out/mixed-21.pcap] [--indicators 1000000] [--repeat 3]

Writes ``--indicators`` synthetic indicators to bench/out/ (a plain list and a Zeek intel file: IPv4
addresses 45 %, IPv4 CIDR ranges 10 %, IPv6 addresses and ranges 3 %, domains 40 %, URLs 2 %, seeded),
a few dozen of them taken from the capture so that windows really match, then:

- load time: ``load_intel`` on both files, best of ``--repeat``, with the peak memory it adds (RSS);
- hand-over: pickling the set, as it travels to the detection worker on a large ``--read``;
- per window: the capture's windows are metered once (flows, as ``runner.py`` does), then the
  ``intel_match`` detector runs over all of them with the million indicators (with none it returns
  at once): the median and the worst window, beside what the other fourteen detectors take on the
  same windows; then again with a million indicators that list nothing of the capture (its ranges
  in 240.0.0.0/4), as a site's lists mostly are: what every window pays, first with every window's values
  new to the detector, then with the same windows again (values seen before, as most of a site's are);
- end to end (``--end-to-end``): the real command, ``--read`` of the capture (no evidence, a fresh
  data folder each time), without indicators and with the million that list nothing, alternated,
  best of ``--repeat``: what a user waits for, loading included.

The capture defaults to the synthetic lab capture (``bench/make_mixed_capture.py --seed 21``),
written to bench/out/ when it is not there.
"""

from __future__ import annotations

import argparse
import pickle
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from traffic_analyzer.capture.file_reader import CaptureFileSource  # noqa: E402
from traffic_analyzer.detection.intel_files import load_intel  # noqa: E402
from traffic_analyzer.detection.intel_match import IntelMatchDetector  # noqa: E402
from traffic_analyzer.pipeline import Analysis, default_detectors, file_windows  # noqa: E402

OUT = ROOT / "bench" / "out"
DEFAULT_CAPTURE = OUT / "mixed-21.pcap"
TLDS = ("com", "net", "org", "ru", "xyz", "top", "info", "cn", "io", "biz")


def write_indicators(count: int, windows: list, seed: int = 7, matching: bool = True) -> tuple[Path, Path]:
    """A plain list (addresses, ranges, domains) and a Zeek file (its share of each type plus the URLs); without
    ``matching`` the ranges are reserved space (240.0.0.0/4) and none of the capture's values is added."""
    rng = random.Random(seed)
    plain, zeek = [], ["#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc"]
    for _ in range(count):
        r = rng.random()
        if r < 0.45:
            address = rng.randrange(1 << 24, 224 << 24)
            item, kind = f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}", "ADDR"
        elif r < 0.55:
            bits = rng.choice((20, 22, 24, 24, 24, 26, 28))  # feeds list small ranges (DROP: /24 and under, mostly)
            net = (rng.getrandbits(32) if matching else 0xF0000000 | rng.getrandbits(28)) & ~((1 << (32 - bits)) - 1)
            item, kind = f"{net >> 24 & 255}.{net >> 16 & 255}.{net >> 8 & 255}.{net & 255}/{bits}", "SUBNET"
        elif r < 0.58:
            words = [f"{rng.getrandbits(16):x}" for _ in range(3)]
            item, kind = (f"2001:db8:{':'.join(words)}::1", "ADDR") if r < 0.57 else (f"2a00:{words[0]}::/32", "SUBNET")
        elif r < 0.98:
            item, kind = f"{rng.getrandbits(48):x}.{rng.choice(TLDS)}", "DOMAIN"
        else:
            item, kind = f"{rng.getrandbits(40):x}.{rng.choice(TLDS)}/{rng.getrandbits(24):x}/gate.php", "URL"
        if kind != "URL" and rng.random() < 0.7:
            plain.append(item)
        else:
            zeek.append(f"{item}\tIntel::{kind}\tbench-feed\tsynthetic")
    seen = _seen_in(windows, rng) if matching else []  # a few real hits, as a feed naming some of the traffic gives
    plain += seen
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"intel-{count}" if matching else f"intel-{count}-quiet"
    plain_path, zeek_path = OUT / f"{name}.txt", OUT / f"{name}.dat"
    plain_path.write_text("# synthetic indicators (bench/intel_bench.py)\n" + "\n".join(plain) + "\n")
    zeek_path.write_text("\n".join(zeek) + "\n")
    print(f"wrote {len(plain) + len(zeek) - 1:,} indicators ({len(seen)} seen in the capture) to {plain_path.name}, "
          f"{zeek_path.name}")  # fmt: skip
    return plain_path, zeek_path


def _seen_in(windows: list, rng: random.Random) -> list[str]:
    addresses, names = set(), set()
    for window in windows:
        addresses.update(window.flows["resp_h"].dropna().astype(str))
        names.update(window.packets["dns_qname"].dropna().astype(str))
    return rng.sample(sorted(addresses), min(20, len(addresses))) + rng.sample(sorted(names), min(20, len(names)))


def metered_windows(capture: Path) -> list:
    """The capture's windows as the detectors see them (flows metered once, no detector run)."""
    analysis = Analysis(detectors=[])
    source = CaptureFileSource(str(capture), reader="auto", progress=False)
    return [analysis.process(packets, live=False)[1] for packets in file_windows(source.batches(), 5.0)]


def per_window_ms(detector, windows: list) -> list[float]:
    times = []
    for window in windows:
        started = time.perf_counter()
        detector.detect(window)
        times.append((time.perf_counter() - started) * 1000)
    return times


class _LookUps:
    """The three look-ups alone on a window's distinct addresses, names and URLs: what a window costs when
    nothing in it is listed (the rest of intel_match's time is reporting the matches)."""

    def __init__(self, intel) -> None:
        self.intel = intel

    def detect(self, window) -> None:
        flows, p = window.flows, window.packets
        endpoints = pd.concat([flows["orig_h"], flows["resp_h"]]).dropna().unique()
        names = pd.concat([p["dns_qname"], p["http_host"], p["tls_sni"]]).dropna().unique()
        urls = (p["http_host"] + p["http_uri"]).dropna().unique()
        self.intel.match_addresses(pd.Series(endpoints, dtype=object))
        self.intel.match_domains(pd.Series(names, dtype=object))
        self.intel.match_urls(pd.Series(urls, dtype=object))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE, help="capture whose windows are matched")
    parser.add_argument("--indicators", type=int, default=1_000_000, help="synthetic indicators (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many loads and passes (default 3)")
    parser.add_argument("--end-to-end", action="store_true", help="also time --read with and without the lists")
    args = parser.parse_args(argv)
    if not args.capture.exists() and args.capture == DEFAULT_CAPTURE:
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_mixed_capture.py"), "--seed", "21", "--out",
                        str(DEFAULT_CAPTURE)], check=True)  # fmt: skip
    windows = metered_windows(args.capture)
    packets = sum(len(w.packets) for w in windows)
    print(f"{args.capture.name}: {len(windows)} windows, {packets:,} packets ({packets // len(windows):,} a window)")
    files = write_indicators(args.indicators, windows)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loads = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        intel, reports = load_intel([str(f) for f in files])
        loads.append(time.perf_counter() - started)
    rss_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(f"load {len(intel):,} indicators {intel.counts()}: best {min(loads):.2f} s of {args.repeat}, "
          f"peak RSS +{rss_mb:.0f} MB; warnings: {[r.warning() for r in reports if r.warning()]}")  # fmt: skip
    started = time.perf_counter()
    blob = pickle.dumps(IntelMatchDetector(indicators=intel))
    dumped = time.perf_counter() - started
    started = time.perf_counter()
    pickle.loads(blob)
    print(f"hand-over to the detection worker: pickle {dumped:.2f} s + unpickle "
          f"{time.perf_counter() - started:.2f} s, {len(blob) / 2**20:.0f} MB")  # fmt: skip

    runs = [per_window_ms(IntelMatchDetector(indicators=intel), windows) for _ in range(args.repeat)]
    cost = [min(t) for t in zip(*runs, strict=True)]  # each window's best of the runs
    looked = [per_window_ms(_LookUps(intel), windows) for _ in range(args.repeat)]
    lookups = [min(t) for t in zip(*looked, strict=True)]
    alerts = IntelMatchDetector(indicators=intel)
    found = {a.key for w in windows for a in alerts.detect(w)}
    others = default_detectors(25, 60.0)
    others_ms = sum(sum(per_window_ms(d, windows)) for d in others if d.name != "intel_match") / len(windows)
    print(
        f"intel_match per window with {len(intel):,} indicators: median {statistics.median(cost):.1f} ms, "
        f"worst {max(cost):.1f} ms ({len(found)} alerts); the look-ups alone (nothing listed): median "
        f"{statistics.median(lookups):.1f} ms, worst {max(lookups):.1f} ms; the other detectors: {others_ms:.0f} ms"
    )
    quiet, _ = load_intel([str(f) for f in write_indicators(args.indicators, windows, matching=False)])
    runs = [per_window_ms(IntelMatchDetector(indicators=quiet), windows) for _ in range(args.repeat)]
    cost = [min(t) for t in zip(*runs, strict=True)]
    silent = IntelMatchDetector(indicators=quiet)
    raised = sum(len(silent.detect(w)) for w in windows)
    again = [min(t) for t in zip(*(per_window_ms(silent, windows) for _ in range(args.repeat)), strict=True)]
    print(
        f"intel_match per window with {len(quiet):,} indicators none of which the capture shows: median "
        f"{statistics.median(cost):.1f} ms, worst {max(cost):.1f} ms ({raised} alerts); "
        f"{100 * statistics.median(cost) / others_ms:.1f} % of the other detectors' time; the same windows "
        f"again (their values seen before, as most of a site's are): median {statistics.median(again):.2f} ms, "
        f"worst {max(again):.2f} ms"
    )
    if args.end_to_end:
        quiet_files = [str(OUT / f"intel-{args.indicators}-quiet.{ext}") for ext in ("txt", "dat")]
        end_to_end(args.capture, quiet_files, args.repeat)
    return 0


def end_to_end(capture: Path, files: list[str], repeat: int) -> None:
    """``--read`` wall time without lists and with ``files``, alternated so both see the same machine.

    Each kind keeps its data folder across runs (the store is removed before each), as a user's does: the
    first run with the lists parses them, the later ones read the parsed set the first one kept there.
    """
    runs = {"without indicators": [], "with the quiet million": [a for f in files for a in ("--intel", f)]}
    times: dict[str, list[float]] = {label: [] for label in runs}
    with tempfile.TemporaryDirectory(prefix="nta-intel-") as root:
        for _ in range(repeat):
            for n, (label, extra) in enumerate(runs.items()):
                folder = Path(root) / str(n)
                for old in folder.glob("analyzer.db*"):
                    old.unlink()
                command = [sys.executable, str(ROOT / "network_traffic_analyzer.py"), "--read", str(capture),
                           "--no-dashboard", "--no-evidence", "--data-dir", str(folder), *extra]  # fmt: skip
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                times[label].append(time.perf_counter() - started)
    base = min(times["without indicators"])
    for label, seconds in times.items():
        print(
            f"--read {capture.name} {label}: first {seconds[0]:.2f} s, best {min(seconds):.2f} s of {repeat} "
            f"({min(seconds) / base:.3f}x)"
        )


if __name__ == "__main__":
    sys.exit(main())
