"""Which reader decodes a capture file: the in-process fast reader, or tshark where it cannot.

Both give the same packet table (``tests/integration/test_fast_pcap.py``); the fast one is about 12 times
quicker and needs no tshark process, tshark knows every link type. ``auto`` reads with the fast
reader and switches a file to tshark when it meets a link type the fast reader cannot decode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from .fast_pcap import FastPcapSource, UnsupportedLinkTypeError
from .pcap_file import PcapFileSource, check_capture_file
from .source import CaptureStats

FILE_READERS = ("auto", "fast", "tshark")

_log = logging.getLogger("traffic_analyzer")


class CaptureFileSource:
    """Packets of one pcap/pcapng file, through the reader ``reader`` names (auto, fast or tshark).

    ``stats.source`` says which reader did the work, e.g. ``file scan.pcap (fast)``.
    """

    def __init__(self, path: str | Path, reader: str = "auto", progress: bool = True) -> None:
        if reader not in FILE_READERS:
            raise ValueError(f"reader must be one of {', '.join(FILE_READERS)}, not {reader!r}")
        self.path = Path(path)
        self.reader = reader
        self.progress = progress
        self.stats = CaptureStats(source=f"file {self.path}")
        self.used: str | None = None  # the reader in use once check() or batches() chose one
        self._inner: FastPcapSource | PcapFileSource | None = None

    def check(self) -> None:
        """Fail now, with one line, if the file cannot be read; choose the reader."""
        if self.reader == "tshark":
            check_capture_file(self.path)
            self._use("tshark")
            return
        try:
            FastPcapSource(self.path, progress=False).check()
        except UnsupportedLinkTypeError as exc:
            if self.reader == "fast":
                raise
            self._use("tshark", why=str(exc))
            return
        self._use("fast")

    def stop(self) -> None:
        if self._inner is not None:
            self._inner.stop()

    def batches(self) -> Iterator[pd.DataFrame]:
        if self._inner is None:
            self.check()
        try:
            yield from self._read(skip=0)
        except UnsupportedLinkTypeError as exc:  # a pcapng interface declared after the first megabyte
            if self.reader == "fast":
                raise
            read = self.stats.packets
            self._use("tshark", why=f"{exc} (from packet {read + 1} on)")
            yield from self._read(skip=read)
        self.stats.finished = True

    def _read(self, skip: int) -> Iterator[pd.DataFrame]:
        """The inner reader's batches, without its first ``skip`` packets (already handed on)."""
        assert self._inner is not None
        for packets in self._inner.batches():
            if skip:
                drop = min(skip, len(packets))
                packets, skip = packets.iloc[drop:].reset_index(drop=True), skip - drop
                if packets.empty:
                    continue
            self.stats.packets += len(packets)
            self.stats.bytes += int(packets["length"].sum())
            yield packets

    def _use(self, reader: str, why: str = "") -> None:
        self.used = reader
        self._inner = (FastPcapSource if reader == "fast" else PcapFileSource)(self.path, progress=self.progress)
        self.stats.source = f"file {self.path} ({reader})"
        if why:
            _log.info("%s; reading it with tshark", why)
        else:
            _log.info("reading %s with the %s reader", self.path, reader)
