"""A bounded ring buffer of recent raw packets: dumpcap writing a few rotating pcapng files.

Alert evidence is cut out of it (see :mod:`traffic_analyzer.alerts.evidence`). dumpcap's own
ring (``-b files:N -b filesize:KB``) keeps the total under ``ring_mb``: N files of at most
``filesize`` each, where a file may pass its size by the one packet that crossed it, which the
file size leaves room for. When the analyzer will drop root, dumpcap runs as that account
with only the capture capabilities (util-linux ``setpriv``), so the account can read the
files it writes (dumpcap creates them mode 0600).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from ..errors import CaptureError
from ..privileges import Account
from .processes import die_with_parent, terminate_capture_processes

RING_FILES = 8  # files in the ring; the oldest is dropped when a new one starts
SNAPLEN = 65_535  # bytes kept of each packet
PACKET_SLACK_BYTES = SNAPLEN + 1_024  # how far one packet (pcapng block) can push a file past its size
MIN_FILE_KB = 16  # dumpcap needs a usable file size
RING_NAME = "ring.pcapng"  # dumpcap names the files ring_00001_<time>.pcapng
START_TIMEOUT_S = 10.0  # dumpcap opens the interface and creates its first file within this
STOP_TIMEOUT_S = 5.0
_RING_FILE = re.compile(r"^ring_(\d+)_\d+\.pcapng$")


def file_size_kb(ring_mb: float) -> int:
    """dumpcap's per-file size (kB = 1000 bytes) so that RING_FILES files, each one packet over, fit ring_mb."""
    per_file = int(ring_mb * 1_000_000) // RING_FILES - PACKET_SLACK_BYTES
    return max(MIN_FILE_KB, per_file // 1000)


class RingBuffer:
    """dumpcap capturing ``interface`` into ``folder``, bounded by ``ring_mb`` megabytes (10^6 bytes)."""

    def __init__(
        self,
        folder: Path,
        interface: str,
        bpf_filter: str | None = None,
        ring_mb: float = 100.0,
        account: Account | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.interface = interface
        self.bpf_filter = bpf_filter
        self.ring_mb = ring_mb
        self.account = account
        self._proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        dumpcap = shutil.which("dumpcap")
        if dumpcap is None:
            raise CaptureError("dumpcap is not installed (it comes with tshark: ./setup.sh installs it)")
        cmd = [dumpcap, "-i", self.interface, "-s", str(SNAPLEN), "-q"]
        if self.bpf_filter:
            cmd += ["-f", self.bpf_filter]
        cmd += ["-b", f"files:{RING_FILES}", "-b", f"filesize:{file_size_kb(self.ring_mb)}"]
        cmd += ["-w", str(self.folder / RING_NAME)]
        if self.account is None or os.geteuid() != 0:
            return cmd
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise CaptureError("setpriv (util-linux) is needed to run the evidence ring buffer as " + self.account.name)
        caps = "+net_raw,+net_admin"
        groups = ",".join(map(str, self.account.groups))
        return [
            setpriv,
            f"--reuid={self.account.uid}",
            f"--regid={self.account.gid}",
            f"--groups={groups}",
            f"--inh-caps={caps}",
            f"--ambient-caps={caps}",
            *cmd,
        ]

    def start(self) -> None:
        """Clear old ring files and start dumpcap; raises CaptureError if it cannot capture."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.files():
            old.unlink(missing_ok=True)
        if self.account is not None and os.geteuid() == 0:
            os.chown(self.folder, self.account.uid, self.account.gid)
        log = (self.folder / "dumpcap.log").open("w")
        with log:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                close_fds=True,
                preexec_fn=die_with_parent,  # started from the run's main thread, which lives as long as the run
            )
        # reap dumpcap the moment it ends (the live capture's stop ends it too): a zombie child would
        # keep the root keeper waiting for it
        threading.Thread(target=self._proc.wait, name="evidence-ring-reaper", daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.files():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                detail = (self.folder / "dumpcap.log").read_text(errors="replace").strip().splitlines()
                raise CaptureError(f"dumpcap could not start the evidence ring buffer: {' '.join(detail[-1:])}")
            time.sleep(0.05)

    def files(self) -> list[Path]:
        """The ring's files, oldest first."""
        found = [(int(m.group(1)), p) for p in self.folder.glob("ring_*.pcapng") if (m := _RING_FILE.match(p.name))]
        return [p for _, p in sorted(found)]

    def size_bytes(self) -> int:
        total = 0
        for path in self.files():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue  # rotated away meanwhile
        return total

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """End dumpcap (it flushes and closes its file on SIGTERM); safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.terminate()
            except ProcessLookupError:
                pass
            except PermissionError:  # started as root before the analyzer dropped it
                terminate_capture_processes()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
