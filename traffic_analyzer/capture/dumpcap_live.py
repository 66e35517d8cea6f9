"""The fast live backend: dumpcap writes raw pcap into a pipe, the in-process decoder reads it in batches.

dumpcap (Wireshark's capture engine, C) only copies packets from the kernel to the pipe; the
frames are decoded with the same numpy decoder as files (:class:`~.fast_pcap.FastPcapSource`),
a quarter-second or a few MiB at a time, on a reader thread, with no tshark dissection and no
Python object per packet. Under load the reader keeps a flow sample (:mod:`.sampling`) whose
rate follows how long the analysis took and how many packets wait for it. If even that does not keep up
(the decoded backlog passes :data:`MAX_BACKLOG_PACKETS`), the reader stops reading: the pipe
fills, dumpcap blocks, and the kernel drops packets, which are counted
(:class:`~.kernel_drops.KernelDropCounter`) and shown as ``dropped``.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..errors import CaptureError
from ..packets.decode_batch import FrameDecoder
from ..packets.decode_frames import HEADER_BYTES, LINK_TYPE_NAMES, Frames
from ..records.packets import empty_packets
from .fast_pcap import _PCAP_MAGICS, LINKTYPE_MASK, MAX_FRAME_BYTES, NANOSECONDS, PCAP_HEADER_BYTES, _epoch
from .frame_hash import frame_flow_hash
from .kernel_drops import KernelDropCounter, dumpcap_final_drops
from .live import LiveSource
from .processes import KeptCapture, die_with_parent, keeper_running, start_kept_capture, terminate_capture_processes
from .sampling import MIN_KEEP_RATE, SamplingController, flow_hash, kept_by_hash
from .tshark import explain_tshark_error

KERNEL_BUFFER_MB = 64  # dumpcap -B: the kernel ring that absorbs bursts while we are busy
PIPE_BYTES = 2**20  # pipe capacity asked for (Linux's default pipe-max-size)
READ_BYTES = 2**20  # bytes taken from the pipe per read
DECODE_BYTES = 8 * 2**20  # decode once this much is waiting ...
DECODE_INTERVAL_S = 0.25  # ... or this long after the last decode
MAX_BACKLOG_PACKETS = 2_000_000  # decoded packets waiting for the analysis before the reader pauses
START_TIMEOUT_S = 15.0  # dumpcap writes the pcap header once the interface is open
STOP_TIMEOUT_S = 5.0
PCAP_RECORD_BYTES = 16
_PAD = HEADER_BYTES + 8  # zero bytes after the frames: header gathers of the last frames stay in the buffer


class DumpcapLiveSource(LiveSource):
    """Live capture through dumpcap and the in-process decoder, with flow sampling under load.

    Parameters
    ----------
    interface, bpf_filter, duration_s, window_s
        As for every live backend.
    sampling : SamplingController or None
        Chooses the keep rate window by window; None keeps every packet.
    """

    backend = "dumpcap"

    def __init__(
        self,
        interface: str,
        bpf_filter: str | None = None,
        duration_s: float = 0,
        window_s: float = 5.0,
        sampling: SamplingController | None = None,
    ) -> None:
        super().__init__(interface, bpf_filter, duration_s, window_s)
        self.sampling = sampling or SamplingController(enabled=False)
        self._proc: subprocess.Popen | KeptCapture | None = None
        self._drops: KernelDropCounter | None = None
        self._keep_rate = 1.0  # applied to the packets read now
        self._backlog = 0  # decoded, kept packets not yet taken
        self._window_captured = 0  # packets captured since the last window was taken
        self._window_captured_last = 0  # ... and in the window taken last
        self._taken = threading.Event()
        self._dropped_before = 0

    def command(self) -> list[str]:
        dumpcap = shutil.which("dumpcap")
        if dumpcap is None:
            raise CaptureError("dumpcap (part of tshark) is not installed: run ./setup.sh, or apt-get install tshark")
        cmd = [dumpcap, "-i", self.interface, "-q", "-P", "-w", "-", "-B", str(KERNEL_BUFFER_MB)]
        return cmd + (["-f", self.bpf_filter] if self.bpf_filter else [])

    def batches(self) -> Iterator[pd.DataFrame]:
        for packets in super().batches():
            handed_at = time.monotonic()
            captured, window_s = self._window_captured_last, self.window_s
            yield packets
            busy_s = time.monotonic() - handed_at  # the analysis of this window
            rate = self.sampling.update(busy_s, window_s, captured / window_s, analysed=len(packets))
            with self._lock:
                self._keep_rate = rate  # from the next packet read on

    def _take_batch(self) -> pd.DataFrame:
        with self._lock:
            parts, self._rows = self._rows, []
            self._backlog = 0
            self._window_captured_last, self._window_captured = self._window_captured, 0
        self._taken.set()
        return self._to_packets(parts)

    def _to_packets(self, rows: list) -> pd.DataFrame:
        """The (keep rate, packets) parts read since the last batch, as one table at the lowest rate used.

        Kept hash ranges nest, so packets kept at a higher rate are brought down to the lowest
        exactly as if it had applied all along; a rate rise starts with the next batch.
        """
        rate = min([r for r, _, _ in rows], default=self._keep_rate)
        tables = [p if r == rate else p[kept_by_hash(h, rate)] for r, p, h in rows]
        packets = pd.concat(tables, ignore_index=True) if tables else empty_packets()
        self.stats.sampled_out += sum(len(p) for _, p, _ in rows) - len(packets)
        self.stats.sample_rate = rate
        return packets

    def restart_command(self) -> list[str]:
        return self.command()

    def _start(self) -> subprocess.Popen | KeptCapture:
        """dumpcap, started by us, or by the root keeper once we dropped root (see :mod:`.processes`)."""
        if os.geteuid() != 0 and keeper_running():
            return start_kept_capture(self.command())
        return subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            preexec_fn=die_with_parent,  # this reader thread lives as long as the capture
        )

    def _read(self) -> None:
        proc = self._start()
        self._proc = proc
        drain = threading.Thread(
            target=lambda: self._stderr.extend(line.decode(errors="replace") for line in proc.stderr), daemon=True
        )
        drain.start()
        fd = proc.stdout.fileno()
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # a smaller pipe only means dumpcap blocks sooner
        stream = _PcapStream()
        try:
            header = _read_exactly(fd, PCAP_HEADER_BYTES, START_TIMEOUT_S)
            if header is not None:
                stream.start(header)
                self._drops = _drop_counter(proc)
                self._dropped_before = self.stats.dropped or 0  # drops of earlier (restarted) captures
                self.stats.dropped = self._dropped_before if self._drops is not None else None
                self._pump(fd, stream)
        finally:
            self._finish(proc, drain)

    def _pump(self, fd: int, stream: _PcapStream) -> None:
        """Read the pipe until dumpcap closes it, decoding every DECODE_INTERVAL_S or DECODE_BYTES."""
        decoder = FrameDecoder()
        last_decode = time.monotonic()
        while True:
            while self._backlog > MAX_BACKLOG_PACKETS and not self._stop.is_set():
                self._taken.clear()
                self._taken.wait(0.1)  # the analysis is this far behind: let the kernel buffer, then drop
            ready, _, _ = select.select([fd], [], [], DECODE_INTERVAL_S)
            data = os.read(fd, READ_BYTES) if ready else b""
            if ready and not data:
                self._decode(stream, decoder)
                return
            stream.feed(data)
            now = time.monotonic()
            if stream.waiting_bytes >= DECODE_BYTES or now - last_decode >= DECODE_INTERVAL_S:
                self._decode(stream, decoder)
                last_decode = now

    def _decode(self, stream: _PcapStream, decoder: FrameDecoder) -> None:
        frames, ts = stream.take_frames()
        if self._drops is not None:
            self.stats.dropped = self._dropped_before + self._drops.read()
        if frames is None:
            return
        with self._lock:
            rate = self._keep_rate
        n = len(frames.start)
        hashes = frame_flow_hash(frames)  # from the frame bytes: only the kept frames get decoded
        if hashes is None:  # not Ethernet: decode everything, hash the table
            packets = decoder.table(frames, ts)
            hashes = flow_hash(packets)
            keep = kept_by_hash(hashes, rate)
            kept = packets[keep].reset_index(drop=True) if not keep.all() else packets
        else:
            keep = kept_by_hash(hashes, rate)
            kept = decoder.table(frames if keep.all() else _subset(frames, keep), ts[keep])
        with self._lock:
            self._rows.append((rate, kept, hashes[keep]))
            self._backlog += len(kept)
            budget = self.sampling.budget(self.window_s)
            while budget is not None and self._backlog > budget and self._keep_rate > MIN_KEEP_RATE:
                self._keep_rate = self.sampling.tighten()  # the waiting packets come down with it at take
                self._backlog //= 2
            self._window_captured += n
            self.stats.packets += n
            self.stats.bytes += int(frames.length.sum())
            self.stats.sampled_out += n - len(kept)

    def _finish(self, proc: subprocess.Popen | KeptCapture, drain: threading.Thread) -> None:
        if proc.poll() is None:
            self._kill_capture()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            terminate_capture_processes()
            proc.wait(timeout=STOP_TIMEOUT_S)
        drain.join(timeout=STOP_TIMEOUT_S)
        stderr = "".join(self._stderr)
        final = dumpcap_final_drops(stderr)
        if self._drops is not None:
            self.stats.dropped = self._dropped_before + self._drops.read() + (final or 0)
            self._drops.close()
            self._drops = None
        elif final is not None:
            self.stats.dropped = (self.stats.dropped or 0) + final
        if proc.returncode not in (0, -15) and not self._stop.is_set():
            self.stats.error = explain_tshark_error(stderr, self.interface)

    def _kill_capture(self) -> None:
        """End our dumpcap; after the analyzer dropped root, through the root keeper."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.terminate()
        except PermissionError:
            terminate_capture_processes()


def _drop_counter(proc: subprocess.Popen | KeptCapture) -> KernelDropCounter | None:
    """The kernel drops of dumpcap's packet socket: duplicated by us while root, else by the keeper."""
    if isinstance(proc, KeptCapture):
        return proc.drop_counter()
    return KernelDropCounter.attach(proc.pid)


def _subset(frames: Frames, keep: np.ndarray) -> Frames:
    return Frames(
        buf=frames.buf,
        start=frames.start[keep],
        caplen=frames.caplen[keep],
        length=frames.length[keep],
        linktype=frames.linktype[keep],
    )


def _read_exactly(fd: int, n: int, timeout_s: float) -> bytes | None:
    """``n`` bytes from the pipe, or None if it closes first; a CaptureError if nothing comes in time."""
    got = b""
    deadline = time.monotonic() + timeout_s
    while len(got) < n:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            raise CaptureError(f"dumpcap did not start capturing within {timeout_s:.0f} s")
        data = os.read(fd, n - len(got))
        if not data:
            return None
        got += data
    return got


class _PcapStream:
    """Framing of a classic pcap byte stream: whole records out, the cut-off tail kept for later."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.order = "<"
        self.units = 1_000_000
        self.linktype = 1

    def start(self, header: bytes) -> None:
        magic = struct.unpack("<I", header[:4])[0]
        if magic not in _PCAP_MAGICS:
            raise CaptureError(f"dumpcap wrote something other than pcap (magic {magic:#x})")
        self.order, self.units = _PCAP_MAGICS[magic]
        self.linktype = struct.unpack(self.order + "I", header[20:24])[0] & LINKTYPE_MASK
        if self.linktype not in LINK_TYPE_NAMES:
            known = ", ".join(f"{k} ({v})" for k, v in sorted(LINK_TYPE_NAMES.items()))
            raise CaptureError(
                f"the interface gives link type {self.linktype}, which the dumpcap backend cannot decode "
                f"(it reads {known}); use --backend tshark"
            )

    def feed(self, data: bytes) -> None:
        self.pending += data

    @property
    def waiting_bytes(self) -> int:
        return len(self.pending)

    def take_frames(self) -> tuple[Frames | None, np.ndarray]:
        """The complete records received so far, as frames over one buffer, and their times."""
        n = len(self.pending)
        offsets: list[int] = []
        off = 0
        incl = struct.Struct(self.order + "I").unpack_from
        while off + PCAP_RECORD_BYTES <= n:
            size = incl(self.pending, off + 8)[0]
            if size > MAX_FRAME_BYTES:
                raise CaptureError(f"dumpcap's pcap stream is damaged (a {size}-byte record)")
            if off + PCAP_RECORD_BYTES + size > n:
                break
            offsets.append(off)
            off += PCAP_RECORD_BYTES + size
        if not offsets:
            return None, np.zeros(0)
        buf = np.zeros(off + _PAD, dtype=np.uint8)
        buf[:off] = np.frombuffer(self.pending, dtype=np.uint8, count=off)
        del self.pending[:off]
        at = np.array(offsets, dtype=np.int64)
        words = np.ndarray(shape=(len(buf) - 3,), dtype=np.dtype(self.order + "u4"), buffer=buf, strides=(1,))
        sec, frac, caplen, length = (words[at + 4 * k].astype(np.int64) for k in range(4))
        frames = Frames(
            buf=buf,
            start=at + PCAP_RECORD_BYTES,
            caplen=caplen,
            length=length,
            linktype=np.full(len(at), self.linktype, dtype=np.int64),
        )
        return frames, _epoch(sec, frac * (NANOSECONDS // self.units))
