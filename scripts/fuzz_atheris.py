"""Coverage-guided fuzzing of the fast frame decoder with atheris (libFuzzer for Python); not run in CI.

    .venv/bin/python -m pip install atheris==2.3.0
    .venv/bin/python scripts/fuzz_atheris.py --make-corpus fuzz-corpus/    # seed inputs from the captures
    .venv/bin/python scripts/fuzz_atheris.py -max_total_time=600 -rss_limit_mb=3072 fuzz-corpus/

Each input is a few frames of one link type, decoded in memory by the same FrameDecoder the fast
reader uses (no file, so libFuzzer runs hundreds of inputs a second and steers by the decoder's
branch coverage). Any exception is a finding: libFuzzer stops and writes the input as ``crash-*``.
Add the input to the file-level fuzz run's regression captures (tests/data/fuzz_regressions/).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["traffic_analyzer.packets"]):
    from traffic_analyzer.packets.decode_batch import FrameDecoder
    from traffic_analyzer.packets.decode_frames import HEADER_BYTES, LINK_TYPE_NAMES, Frames
    from traffic_analyzer.records.packets import PACKET_SCHEMA

LINKTYPES = sorted(LINK_TYPE_NAMES)
MAX_FRAMES = 16
PAD = HEADER_BYTES + 8  # zero bytes after the last frame, as the file readers leave


def frames_from(data: bytes) -> tuple[Frames, np.ndarray]:
    """Frames of one link type cut from the input: a link-type byte, then (2-byte length, frame) pairs."""
    linktype = LINKTYPES[data[0] % len(LINKTYPES)] if data else LINKTYPES[0]
    parts, off = [], 1
    while off < len(data) and len(parts) < MAX_FRAMES:
        size = int.from_bytes(data[off : off + 2], "big")
        parts.append(data[off + 2 : off + 2 + size])
        off += 2 + size
    starts = np.cumsum([0] + [len(p) for p in parts])[: len(parts)].astype(np.int64)
    caplen = np.array([len(p) for p in parts], dtype=np.int64)
    frames = Frames(
        buf=np.frombuffer(b"".join(parts) + bytes(PAD), dtype=np.uint8).copy(),
        start=starts,
        caplen=caplen,
        length=caplen.copy(),
        linktype=np.full(len(parts), linktype, dtype=np.int64),
    )
    return frames, 1_700_000_000.0 + np.arange(len(parts)) * 0.001


def corpus_input(linktype: int, frames: list[bytes]) -> bytes:
    """The input that frames_from reads back as these frames."""
    return bytes([LINKTYPES.index(linktype)]) + b"".join(len(f).to_bytes(2, "big") + f for f in frames)


def make_corpus(folder: Path) -> int:
    """Seed inputs: the crafted hostile frames and a few frames of each tiny and public capture."""
    from fuzz_cases import load_seeds

    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for seed in load_seeds():
        if len(seed.data) < 24 or seed.pcapng:
            continue
        linktype = int.from_bytes(seed.data[20:24], "little" if seed.data[0] == 0xD4 or seed.data[0] == 0x4D else "big")
        if linktype not in LINKTYPES:
            continue
        frames = [seed.data[frame : frame + min(caplen, 0xFFFF)] for _, frame, caplen in seed.records]
        for i in range(0, min(len(frames), 64), 4):
            (folder / f"{seed.name}-{i}").write_bytes(corpus_input(linktype, frames[i : i + 4]))
            count += 1
    return count


def test_one_input(data: bytes) -> None:
    frames, ts = frames_from(data)
    table = FrameDecoder().table(frames, ts)  # a fresh decoder: TCP state would otherwise pile up forever
    if list(table.columns) != list(PACKET_SCHEMA) or len(table) != len(ts):
        raise AssertionError(f"a packet table of {len(table)} rows and columns {list(table.columns)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--make-corpus":
        print(f"{make_corpus(Path(sys.argv[2]))} seed inputs in {sys.argv[2]}")
    else:
        atheris.Setup(sys.argv, test_one_input)
        atheris.Fuzz()
