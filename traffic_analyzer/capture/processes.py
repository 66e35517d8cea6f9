"""The capture processes (tshark, dumpcap) this analyzer started, and how to end them.

After the analyzer drops root (see :mod:`traffic_analyzer.privileges`) the capture processes
still run as root and cannot be signalled by it; a small root *keeper* process, started just
before the drop, ends them on request, and also when the analyzer dies (even by kill -9),
so no root capture is left behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil

CAPTURE_PROCESS_NAMES = ("tshark", "dumpcap")
_keeper: subprocess.Popen | None = None
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """preexec_fn: the kernel sends the child SIGTERM when the thread that started it ends.

    For captures that write files rather than into our pipe (the evidence ring): without it a
    crashed or SIGKILLed analyzer would leave a root dumpcap capturing forever.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def capture_processes(pid: int | None = None) -> list[psutil.Process]:
    """tshark/dumpcap processes descending from ``pid`` (default: this process)."""
    try:
        children = psutil.Process(pid or os.getpid()).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            if child.name() in CAPTURE_PROCESS_NAMES:
                found.append(child)
        except psutil.Error:
            continue
    return found


def terminate_capture_processes() -> None:
    """End this analyzer's capture processes, through the keeper when they outrank us."""
    denied = False
    for proc in capture_processes():
        try:
            proc.terminate()
        except psutil.AccessDenied:
            denied = True
        except psutil.Error:
            continue
    if denied and _keeper is not None and _keeper.poll() is None:
        try:
            _keeper.stdin.write(b"stop\n")
            _keeper.stdin.flush()
        except OSError:
            pass


def start_keeper() -> None:
    """Start the root keeper (call while still root, right before dropping privileges)."""
    global _keeper
    if _keeper is None or _keeper.poll() is not None:
        _keeper = subprocess.Popen(
            [sys.executable, "-m", "traffic_analyzer.capture.processes", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            close_fds=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )


def stop_keeper() -> None:
    """Let the keeper end the captures and exit (its stdin closes)."""
    global _keeper
    if _keeper is not None:
        try:
            _keeper.stdin.close()
            _keeper.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        _keeper = None


def _keep(analyzer_pid: int) -> None:
    """The keeper's loop: each 'stop' line, and the end of input, ends the analyzer's captures.

    The captures are looked up every half second, so they are still known once the analyzer
    is gone (its children then belong to init).
    """
    known: dict[int, psutil.Process] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            for proc in capture_processes(analyzer_pid):
                known.setdefault(proc.pid, proc)

    threading.Thread(target=watch, daemon=True).start()
    for line in iter(sys.stdin.buffer.readline, b""):
        if line.strip() == b"stop":
            _end(analyzer_pid, known)
    done.set()
    _end(analyzer_pid, known)


def _end(analyzer_pid: int, known: dict[int, psutil.Process]) -> None:
    for proc in capture_processes(analyzer_pid):
        known.setdefault(proc.pid, proc)
    alive = [proc for proc in list(known.values()) if proc.is_running()]
    for proc in alive:
        try:
            proc.terminate()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=5)


if __name__ == "__main__":
    _keep(int(sys.argv[1]))
