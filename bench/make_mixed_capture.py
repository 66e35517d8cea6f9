"""Write a labelled lab capture: a small office's benign traffic with ten attacks injected at labelled times.

    .venv/bin/python bench/make_mixed_capture.py --seed 1 --out bench/out/mixed-1.pcap [--seconds 184] [--hosts 40]
    .venv/bin/python bench/make_mixed_capture.py --seed 2 --out bench/out/benign-2.pcap --benign   # to train on
    .venv/bin/python bench/make_mixed_capture.py --seed 3 --out bench/out/quiet-3.pcap --quiet    # 900 s, 6 quiet

``--quiet`` injects six low-and-slow attacks instead of the ten loud ones (slow SYN scan, lateral scan of
nine LAN hosts, DNS exfiltration in A queries, slow SSH guessing, HTTP beacon with 30 % jitter, ICMP
tunnel), one after another at seeded times; its capture is 900 s long unless ``--seconds`` says otherwise.

Writes OUT (classic pcap, Ethernet, microsecond timestamps, full packets) and OUT.labels.csv (labels.csv
format). The same seed gives a byte-identical capture; nothing is sent on any network.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth.mixed import NOMINAL_S, QUIET_S, MixedConfig, write_mixed_capture  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True, help="randomness seed: the same seed writes the same file")
    parser.add_argument("--out", type=Path, required=True, help="pcap to write; labels go to OUT.labels.csv")
    parser.add_argument(
        "--seconds", type=float, help=f"capture length in seconds (default {NOMINAL_S:g}, with --quiet {QUIET_S:g})"
    )
    parser.add_argument("--hosts", type=int, default=40, help="office workstations (default %(default)s)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--benign", action="store_true", help="no attacks: the same office as a baseline to train on")
    kind.add_argument("--quiet", action="store_true", help="six quiet, slow attacks instead of the ten loud ones")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else QUIET_S if args.quiet else NOMINAL_S
    config = MixedConfig(seed=args.seed, seconds=seconds, hosts=args.hosts, benign=args.benign, quiet=args.quiet)
    try:
        config.validate()
    except ValueError as exc:
        parser.error(str(exc))
    began = time.perf_counter()
    summary = write_mixed_capture(config, args.out)
    took = time.perf_counter() - began
    attacks = sum(r.kind != "benign" for r in summary.labels)
    print(
        f"wrote {summary.path}: {summary.packets} packets, {summary.wire_bytes / 1e6:.1f} MB on the wire, "
        f"{attacks} labelled attacks in {took:.1f} s; labels in {summary.labels_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
