"""The capture processes (tshark, dumpcap) this analyzer started, and how to end and restart them.

After the analyzer drops root (see :mod:`traffic_analyzer.privileges`) the capture processes
still run as root and cannot be signalled by it; a small root *keeper* process, started just
before the drop, ends them on request, and also when the analyzer dies (even by kill -9),
so no root capture is left behind.

The keeper also restarts a capture that died after the drop, which the analyzer itself no
longer may. The design keeps what an unprivileged (possibly compromised) analyzer can ask of
root to the minimum:

- The one command the keeper may run is fixed by the analyzer *while still root*, on the
  keeper's command line: the dumpcap command of the configured interface, filter and buffer.
  A request must name exactly that command; anything else (another program, interface, filter
  or option) is refused, and only one such capture runs at a time.
- Requests travel over a private Unix socket pair made before the drop (no path in the file
  system, so no other process can connect). The keeper answers a start with the read ends of
  dumpcap's stdout (the pcap stream) and stderr, passed with ``SCM_RIGHTS``: the analyzer reads
  the capture as if it had started dumpcap itself, and the restart-with-back-off of
  :mod:`.live` works the same before and after the drop.
- Besides starting, the analyzer may only ask about, or end, the processes the keeper started
  for it, and for a duplicate of their packet socket to count kernel drops (:mod:`.kernel_drops`).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from ..errors import CaptureError
from .kernel_drops import KernelDropCounter

CAPTURE_PROCESS_NAMES = ("tshark", "dumpcap")
_keeper: subprocess.Popen | None = None
_channel: KeeperChannel | None = None  # the analyzer's end of the socket pair to the keeper
PR_SET_PDEATHSIG = 1  # linux/prctl.h
MESSAGE_BYTES = 65_536  # largest request or answer (a command line with a long capture filter)
ANSWER_TIMEOUT_S = 10.0  # the keeper answers at once; longer means it hangs or is gone
POLL_S = 0.05  # how often a wait for a kept capture asks whether it ended
KEEPER_GONE = -1  # returncode of a kept capture whose keeper no longer answers (it ended it)


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


def terminate_capture_processes(orphans: bool = False) -> None:
    """End this analyzer's capture processes, through the keeper when they outrank us.

    ``orphans``: ask the keeper in any case, for root captures that are no longer our
    descendants (the dumpcap of a killed tshark belongs to init, and holds our pipe open).
    """
    denied = orphans
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


def start_keeper(capture_command: list[str] | None = None) -> None:
    """Start the root keeper (call while still root, right before dropping privileges).

    ``capture_command`` is the one command the keeper will start again on request; None: none.
    """
    global _keeper, _channel
    if _keeper is None or _keeper.poll() is not None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            _keeper = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "traffic_analyzer.capture.processes",
                    str(os.getpid()),
                    str(theirs.fileno()),
                    json.dumps(capture_command or []),
                    *[str(proc.pid) for proc in capture_processes()],  # known to it before they can be orphaned
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                close_fds=True,
                pass_fds=(theirs.fileno(),),
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            )
        _channel = KeeperChannel(ours)


def stop_keeper() -> None:
    """Let the keeper end the captures and exit (its stdin and our socket close)."""
    global _keeper, _channel
    if _channel is not None:
        _channel.close()
        _channel = None
    if _keeper is not None:
        try:
            _keeper.stdin.close()
            _keeper.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        _keeper = None


def keeper_running() -> bool:
    """Whether a root keeper can start captures for us (after the privilege drop)."""
    return _channel is not None and _keeper is not None and _keeper.poll() is None


def start_kept_capture(command: list[str]) -> KeptCapture:
    """Have the root keeper start ``command`` (the configured capture) and hand us its output."""
    if _channel is None:
        raise CaptureError("no root keeper is running to start the capture with root privileges")
    answer, fds = _channel.ask({"start": command}, max_fds=2)
    if "pid" not in answer or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        raise CaptureError(f"the root keeper refused to start the capture: {answer.get('refused', answer)}")
    return KeptCapture(_channel, int(answer["pid"]), fds[0], fds[1])


class KeeperChannel:
    """The analyzer's end of the keeper's socket: one request, one answer (with file descriptors)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._sock.settimeout(ANSWER_TIMEOUT_S)
        self._lock = threading.Lock()  # the reader thread and a stop from the main thread may both ask

    def ask(self, request: dict, max_fds: int = 0) -> tuple[dict, list[int]]:
        """Send ``request``; the answer and the descriptors that came with it (ours to close)."""
        with self._lock:
            try:
                self._sock.send(json.dumps(request).encode())
                message, fds, _, _ = socket.recv_fds(self._sock, MESSAGE_BYTES, max(max_fds, 1))
            except OSError as exc:
                raise CaptureError(
                    f"the root keeper does not answer ({exc}); the capture needs root privileges"
                ) from exc
        if not message:
            raise CaptureError("the root keeper is gone; the capture needs root privileges")
        return json.loads(message), fds

    def close(self) -> None:
        self._sock.close()


class KeptCapture:
    """A capture the root keeper started for us, used like the ``subprocess.Popen`` of one we started.

    ``stdout`` and ``stderr`` are the process's own pipes; waiting, polling and ending go through
    the keeper, since the process runs as root.
    """

    def __init__(self, channel: KeeperChannel, pid: int, stdout_fd: int, stderr_fd: int) -> None:
        self._channel = channel
        self.pid = pid
        self.stdout = os.fdopen(stdout_fd, "rb", buffering=0)
        self.stderr = os.fdopen(stderr_fd, "rb")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self._channel.ask({"status": self.pid})[0].get("returncode")
            except CaptureError:
                self.returncode = KEEPER_GONE  # a gone keeper took its captures with it
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"dumpcap (pid {self.pid})", timeout)
            time.sleep(POLL_S)
        return code

    def terminate(self) -> None:
        try:
            self._channel.ask({"end": self.pid})
        except CaptureError:
            pass  # the keeper is gone, and with it the capture

    def drop_counter(self) -> KernelDropCounter | None:
        """The kernel drop counter of the capture's packet socket, duplicated by the keeper."""
        try:
            _, fds = self._channel.ask({"drops": self.pid}, max_fds=1)
        except CaptureError:
            return None
        return KernelDropCounter(socket.socket(fileno=fds[0])) if fds else None


class _CaptureStarter:
    """The keeper's side of the socket: starts the one configured capture and nothing else."""

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = allowed
        self.started: dict[int, subprocess.Popen] = {}

    def serve(self, channel: socket.socket) -> None:
        """Answer requests until the analyzer closes its end (it stopped or died)."""
        while True:
            try:
                message = channel.recv(MESSAGE_BYTES)
            except OSError:
                return
            if not message:
                return
            answer, fds = self.answer(message)
            try:
                socket.send_fds(channel, [json.dumps(answer).encode()], fds)
            except OSError:
                return
            finally:
                for fd in fds:
                    os.close(fd)

    def answer(self, message: bytes) -> tuple[dict, list[int]]:
        try:
            request = json.loads(message)
        except ValueError:
            return {"refused": "not a request"}, []
        if not isinstance(request, dict) or len(request) != 1:
            return {"refused": "not a request"}, []
        ((kind, value),) = request.items()
        if kind == "start":
            return self._start(value)
        proc = self.started.get(value) if isinstance(value, int) else None
        if proc is None:
            return {"refused": "not a capture this keeper started"}, []
        if kind == "status":
            return {"returncode": proc.returncode}, []
        if kind == "end":
            if proc.returncode is None:
                proc.terminate()
            return {"ok": True}, []
        if kind == "drops":
            counter = KernelDropCounter.attach(proc.pid) if proc.returncode is None else None
            if counter is None:
                return {"ok": False}, []
            fd = os.dup(counter.fileno())
            counter.close()
            return {"ok": True}, [fd]
        return {"refused": f"unknown request {kind!r}"}, []

    def _start(self, command: object) -> tuple[dict, list[int]]:
        if not self.allowed or command != self.allowed:
            return {"refused": "only the configured capture command may be started with root privileges"}, []
        if any(proc.returncode is None for proc in self.started.values()):
            return {"refused": "the capture is still running"}, []
        try:
            proc = subprocess.Popen(
                self.allowed,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
                preexec_fn=die_with_parent,  # the serving thread lives as long as the analyzer's socket
            )
        except OSError as exc:
            return {"refused": f"cannot run {self.allowed[0]}: {exc.strerror}"}, []
        self.started = {pid: p for pid, p in self.started.items() if p.returncode is None}
        self.started[proc.pid] = proc
        # reap it the moment it ends: its status is known, and no zombie keeps _end waiting
        threading.Thread(target=proc.wait, daemon=True).start()
        fds = [os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno())]
        proc.stdout.close()  # the analyzer holds the only read ends from now on
        proc.stderr.close()
        return {"pid": proc.pid}, fds


def _keep(analyzer_pid: int, channel: socket.socket, allowed: list[str], running: list[int]) -> None:
    """The keeper's loop: each 'stop' line, and the end of input, ends the analyzer's captures.

    The captures are looked up every half second, so they are still known once the analyzer
    is gone (its children then belong to init). Requests to start a capture are served on
    ``channel`` meanwhile. ``running`` are the captures the analyzer had when it started us.
    """
    known: dict[int, psutil.Process] = {}
    for pid in running:
        try:
            proc = psutil.Process(pid)
            if proc.name() in CAPTURE_PROCESS_NAMES:
                known[pid] = proc
        except psutil.Error:
            continue
    done = threading.Event()
    threading.Thread(target=_CaptureStarter(allowed).serve, args=(channel,), daemon=True).start()

    def watch() -> None:
        while True:
            for proc in capture_processes(analyzer_pid):
                known.setdefault(proc.pid, proc)
            if done.wait(0.5):
                return

    threading.Thread(target=watch, daemon=True).start()
    for line in iter(sys.stdin.buffer.readline, b""):
        if line.strip() == b"stop":
            _end(analyzer_pid, known)
    done.set()
    _end(analyzer_pid, known)


def _end(analyzer_pid: int, known: dict[int, psutil.Process]) -> None:
    for proc in capture_processes(analyzer_pid) + capture_processes(os.getpid()):  # ours: the restarted ones
        known.setdefault(proc.pid, proc)
    alive = [proc for proc in list(known.values()) if proc.is_running()]
    for proc in alive:
        try:
            proc.terminate()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=5)


if __name__ == "__main__":
    _keep(
        int(sys.argv[1]), socket.socket(fileno=int(sys.argv[2])), json.loads(sys.argv[3]), list(map(int, sys.argv[4:]))
    )
