"""Reading pcap/pcapng files through tshark's field output, in bounded chunks."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ..errors import CaptureError, TruncatedCaptureError
from ..records.packets import packets_from_fields
from .progress import file_progress_bar
from .source import CaptureStats
from .tshark import FIELD_ARGS, READ_FIELDS, explain_tshark_error, tshark_path

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",  # classic pcap, microsecond
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",  # classic pcap, nanosecond
    b"\x0a\x0d\x0d\x0a",  # pcapng section header block
}
RECORD_OVERHEAD_BYTES = 16  # per-packet record header in classic pcap; used for the progress estimate
CHUNK_PACKETS = 20_000


def check_capture_file(path: str | Path) -> Path:
    """The file as a Path if it exists and starts like a pcap/pcapng file, else a CaptureError."""
    p = Path(path)
    if not p.exists():
        raise CaptureError(f"capture file {str(p)!r} does not exist")
    if p.is_dir():
        raise CaptureError(f"capture file {str(p)!r} is a directory")
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise CaptureError(f"cannot read capture file {str(p)!r}: {exc.strerror}") from exc
    if len(magic) < 4:
        raise CaptureError(f"{str(p)!r} is empty or too short to be a capture file")
    if magic not in PCAP_MAGICS:
        raise CaptureError(f"{str(p)!r} is not a pcap or pcapng capture file (it starts with {magic.hex()})")
    return p


class PcapFileSource:
    """Packets of a pcap/pcapng file, decoded by tshark into packet-table chunks."""

    def __init__(self, path: str | Path, progress: bool = True, chunk_packets: int = CHUNK_PACKETS) -> None:
        self.path = Path(path)
        self.progress = progress
        self.chunk_packets = chunk_packets
        self.stats = CaptureStats(source=f"file {self.path}")
        self._proc: subprocess.Popen | None = None

    def check(self) -> None:
        """Fail now, with one line, if the file is missing or not a capture."""
        check_capture_file(self.path)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def batches(self) -> Iterator[pd.DataFrame]:
        check_capture_file(self.path)
        cmd = [tshark_path(), "-n", "-r", str(self.path), *FIELD_ARGS]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace"
        )
        stderr_lines: list[str] = []
        drain = threading.Thread(target=lambda: stderr_lines.extend(self._proc.stderr), daemon=True)
        drain.start()
        size = self.path.stat().st_size
        bar = file_progress_bar(self.path, self.progress)
        try:
            reader = pd.read_csv(self._proc.stdout, chunksize=self.chunk_packets, **READ_FIELDS)
            for chunk in _chunks_or_nothing(reader):
                packets = packets_from_fields(chunk)
                self.stats.packets += len(packets)
                self.stats.bytes += int(packets["length"].sum())
                bar.update(min(size - bar.n, int(packets["length"].sum()) + RECORD_OVERHEAD_BYTES * len(packets)))
                yield packets
        finally:
            bar.close()
            self.stop()
            self._proc.stdout.close()
            self._proc.wait()
            drain.join(timeout=5)
        self.stats.finished = True
        stderr = "".join(stderr_lines)
        if "cut short in the middle of a packet" in stderr:
            raise TruncatedCaptureError(
                f"{self.path} is cut short: analysed the {self.stats.packets} packets before the cut"
            )
        if "damaged or corrupt" in stderr:
            raise TruncatedCaptureError(
                f"{self.path} is damaged: analysed the {self.stats.packets} packets before the damage"
            )
        if self._proc.returncode not in (0, None) and self.stats.packets == 0:
            raise CaptureError(explain_tshark_error(stderr))


def _chunks_or_nothing(reader) -> Iterator[pd.DataFrame]:
    """Iterate read_csv chunks; a stream with no rows at all is simply empty."""
    try:
        yield from reader
    except pd.errors.EmptyDataError:
        return
