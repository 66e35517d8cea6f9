"""Cut the packets matching a Wireshark display filter out of capture files into one capped pcap, with tshark.

This is the evidence cut for frames the fast decoders cannot read (link types only tshark knows);
everything else is cut in-process, many alerts in one pass (:mod:`.pcap_cut`). tshark does the
filtering (``tshark -r FILE -Y FILTER -w PART -F pcap``) and mergecap puts the parts of several
ring-buffer files back in time order. The cap is applied to the classic pcap records afterwards:
tshark's ``-c`` counts packets read, not packets kept, so it cannot cap a filtered output.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from ..errors import CaptureError
from .tshark import tshark_path

EXTRACT_TIMEOUT_S = 300.0  # one tshark pass over one file; a stuck one is given up
PCAP_HEADER_BYTES = 24  # the classic pcap global header
RECORD_HEADER_BYTES = 16  # ts_sec, ts_frac, incl_len, orig_len
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
_CUT_SHORT = "cut short in the middle of a packet"  # a ring file still being written ends mid-packet


def extract_packets(sources: list[Path], display_filter: str, out: Path, max_packets: int, max_bytes: int) -> int:
    """Write the packets of ``sources`` matching ``display_filter`` to the pcap ``out``, first ones first.

    At most ``max_packets`` packets and ``max_bytes`` bytes of file are kept. Returns how many
    packets ``out`` holds; with none, ``out`` is not written. Raises CaptureError if tshark fails.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".extract-", dir=out.parent) as tmp:
        parts = []
        for i, source in enumerate(sources):
            part = Path(tmp) / f"part{i}.pcap"
            try:
                _filter_file(source, display_filter, part)
            except CaptureError:
                if source.exists():
                    raise
                continue  # a ring file rotated away while we read it
            if part.exists() and part.stat().st_size > PCAP_HEADER_BYTES:
                parts.append(part)
        if not parts:
            return 0
        merged = parts[0] if len(parts) == 1 else _merge(parts, Path(tmp) / "merged.pcap")
        capped = Path(tmp) / "capped.pcap"
        kept = cap_pcap(merged, capped, max_packets, max_bytes)
        os.replace(capped, out)
        return kept


def _filter_file(source: Path, display_filter: str, part: Path) -> None:
    cmd = [tshark_path(), "-n", "-r", str(source), "-Y", display_filter, "-w", str(part), "-F", "pcap"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=EXTRACT_TIMEOUT_S, errors="replace")
    except subprocess.TimeoutExpired:
        raise CaptureError(f"tshark took over {EXTRACT_TIMEOUT_S:.0f} s to filter {source}") from None
    if done.returncode != 0 and _CUT_SHORT not in done.stderr:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise CaptureError(f"tshark could not filter {source}: {last}")


def _merge(parts: list[Path], merged: Path) -> Path:
    mergecap = shutil.which("mergecap")
    if mergecap is None:
        raise CaptureError("mergecap is not installed (it comes with tshark's wireshark-common)")
    done = subprocess.run(
        [mergecap, "-F", "pcap", "-w", str(merged), *map(str, parts)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise CaptureError(f"mergecap could not merge evidence parts: {done.stderr.strip()}")
    return merged


def cap_pcap(source: Path, out: Path, max_packets: int, max_bytes: int) -> int:
    """Copy the first records of the classic pcap ``source`` that fit the caps; returns how many."""
    kept = 0
    with source.open("rb") as src, out.open("wb") as dst:
        header = src.read(PCAP_HEADER_BYTES)
        order = _PCAP_MAGICS.get(header[:4])
        if len(header) < PCAP_HEADER_BYTES or order is None:
            raise CaptureError(f"{source} is not a classic pcap file")
        dst.write(header)
        written = PCAP_HEADER_BYTES
        while kept < max_packets:
            record_header = src.read(RECORD_HEADER_BYTES)
            if len(record_header) < RECORD_HEADER_BYTES:
                break
            (length,) = struct.unpack(order + "I", record_header[8:12])
            if written + RECORD_HEADER_BYTES + length > max_bytes:
                break
            data = src.read(length)
            if len(data) < length:
                break
            dst.write(record_header + data)
            written += RECORD_HEADER_BYTES + length
            kept += 1
    return kept
