"""Write a benign corpus: a synthetic office day (or more) with every ordinary behaviour that trips detectors.

    .venv/bin/python bench/make_benign_corpus.py --seed 1 --hours 24 --hosts 50 --out bench/out/benign-24h.pcap

Writes OUT (classic pcap, Ethernet, microsecond timestamps; bulk data as snaplen-cut offload segments)
and OUT.labels.csv (one labels.csv row, kind benign). The same seed gives a byte-identical capture;
nothing is sent on any network.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth.corpus import CorpusConfig, write_benign_corpus  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True, help="randomness seed: the same seed writes the same file")
    parser.add_argument("--out", type=Path, required=True, help="pcap to write; the label goes to OUT.labels.csv")
    parser.add_argument("--hours", type=float, default=24.0, help="network time to cover (default %(default)s)")
    parser.add_argument("--hosts", type=int, default=50, help="office workstations (default %(default)s)")
    parser.add_argument(
        "--start-hour", type=float, default=0.0, help="o'clock the capture starts (default %(default)s)"
    )
    args = parser.parse_args(argv)
    config = CorpusConfig(seed=args.seed, hours=args.hours, hosts=args.hosts, start_hour=args.start_hour)
    try:
        config.validate()
    except ValueError as exc:
        parser.error(str(exc))
    began = time.perf_counter()
    summary = write_benign_corpus(config, args.out)
    took = time.perf_counter() - began
    print(
        f"wrote {summary.path}: {summary.packets} packets, {summary.wire_bytes / 1e9:.2f} GB on the wire, "
        f"{summary.path.stat().st_size / 1e6:.0f} MB on disk in {took:.1f} s; label in {summary.labels_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
