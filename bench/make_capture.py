"""Build a large benchmark capture by replaying the public captures (python3 bench/make_capture.py --packets N).

Each round appends every public capture (../shared/pcaps, or tests/data/pcaps in a clone) once, one
after the other in time, with the timestamps moved onto a common clock and the IPv4 addresses of round
r shifted (second octet + r), so that rounds look like different hosts rather than one replayed
conversation. The output is a classic
pcap (microsecond timestamps, Ethernet), written to bench/out/ (git-ignored).

``--rate PPS`` rewrites the timestamps so that the same packets arrive evenly at PPS packets a
second (a busy link: 100,000 packets/s puts 500,000 packets in each 5 s window), packet order kept.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from traffic_analyzer.capture.fast_pcap import _open_reader  # noqa: E402

SHARED = ROOT.parent / "shared" / "pcaps"  # all 30 public captures, on the project's machines
REPO_PCAPS = ROOT / "tests" / "data" / "pcaps"  # the 10 a clone carries (their licenses allow it)
OUT = ROOT / "bench" / "out"
START_S = 1_700_000_000  # the replay starts here (epoch seconds)
GAP_S = 1.0  # seconds between one replayed capture and the next
ETH_HEADER = 14
ETHERTYPE_IPV4 = 0x0800


def captures_folder() -> Path:
    """../shared/pcaps where it is present, else the repository's copy, so that a clone can build a replay."""
    return SHARED if (SHARED / "labels.csv").exists() else REPO_PCAPS


def shared_captures() -> list[Path]:
    return sorted(p for p in captures_folder().iterdir() if p.suffix in (".pcap", ".pcapng", ".cap"))


def load(path: Path) -> tuple[bytes, np.ndarray, np.ndarray]:
    """(frame bytes back to back, frame offsets, timestamps) of one Ethernet capture."""
    with path.open("rb") as fh:
        reader = _open_reader(fh, path)
        blobs, offsets, stamps, base = [], [], [], 0
        for buf, records, _ in reader.chunks(64 * 2**20):
            for start, caplen in zip(records.start.tolist(), records.caplen.tolist(), strict=True):
                blobs.append(bytes(buf[start : start + caplen]))
                offsets.append(base)
                base += caplen
            stamps.append(records.ts)
    return b"".join(blobs), np.array(offsets + [base], dtype=np.int64), np.concatenate(stamps)


def build(packets: int, out: Path) -> Path:
    """Write a capture of (at least) ``packets`` frames; reuses an existing file of that size."""
    if out.exists() and out.stat().st_size > 0:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    captures = [load(p) for p in shared_captures()]
    tmp = out.with_suffix(".part")
    written = 0
    clock = float(START_S)
    with tmp.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        round_no = 0
        while written < packets:
            for data, offsets, stamps in captures:
                if written >= packets:
                    break
                count = min(len(stamps), packets - written)
                ts = clock + (stamps[:count] - stamps[0])
                clock = float(ts[-1]) + GAP_S
                fh.write(_records(data, offsets[: count + 1], ts, round_no))
                written += count
            round_no += 1
    tmp.replace(out)
    return out


def at_rate(source: Path, rate_pps: float, out: Path) -> Path:
    """The capture ``source`` with its packets spaced evenly at ``rate_pps`` (order and bytes kept)."""
    if out.exists() and out.stat().st_size > 0:
        return out
    data = bytearray(source.read_bytes())
    pos, index = 24, 0  # after the classic pcap header that build() writes
    while pos + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        usec = round(index * 1e6 / rate_pps)
        struct.pack_into("<II", data, pos, START_S + usec // 1_000_000, usec % 1_000_000)
        pos += 16 + caplen
        index += 1
    tmp = out.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def _records(data: bytes, offsets: np.ndarray, ts: np.ndarray, round_no: int) -> bytes:
    """pcap records of the frames, IPv4 addresses shifted by the round number."""
    frames = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]].copy()
    starts = offsets[:-1] - offsets[0]
    sizes = np.diff(offsets)
    if round_no:
        ipv4 = (sizes >= ETH_HEADER + 20) & (frames[np.minimum(starts + 12, len(frames) - 1)] == 0x08)
        ipv4 &= frames[np.minimum(starts + 13, len(frames) - 1)] == 0x00
        for field in (ETH_HEADER + 12 + 1, ETH_HEADER + 16 + 1):  # second octet of source and destination
            pos = starts[ipv4] + field
            frames[pos] = (frames[pos].astype(np.int64) + round_no) % 256
    sec = np.floor(ts).astype(np.int64)
    usec = np.round((ts - sec) * 1e6).astype(np.int64)
    carry = usec >= 1_000_000
    sec[carry] += 1
    usec[carry] -= 1_000_000
    headers = np.stack([sec, usec, sizes, sizes], axis=1).astype("<u4")
    out = np.empty(len(frames) + 16 * len(sizes), dtype=np.uint8)
    record_starts = starts + 16 * np.arange(len(sizes))
    header_pos = record_starts[:, None] + np.arange(16)
    out[header_pos.ravel()] = headers.view(np.uint8).ravel()
    body = np.repeat(record_starts + 16 - starts, sizes) + np.arange(len(frames))
    out[body] = frames
    return out.tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=None, help="space the packets evenly at this many per second")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = build(args.packets, OUT / f"replay-{args.packets}.pcap")
    if args.rate:
        out = at_rate(out, args.rate, args.out or OUT / f"replay-{args.packets}-at-{args.rate:.0f}pps.pcap")
    elif args.out:
        out.replace(args.out)
        out = args.out
    print(out)


if __name__ == "__main__":
    main()
