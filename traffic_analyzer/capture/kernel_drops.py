"""Kernel drop counters of another process's packet socket, read while it captures.

dumpcap only reports its socket's drops when it exits, and the kernel keeps them nowhere else
(not in ``/proc``, not in ``ss``'s socket memory counters for a ring-buffer socket). So the
analyzer takes a duplicate of dumpcap's packet socket with ``pidfd_getfd(2)`` (Linux 5.6+,
root; done before the analyzer drops root, the duplicate keeps working after) and reads the
socket's ``PACKET_STATISTICS``. That read hands the drops over and zeroes the kernel's
counter, so dumpcap's own total at exit counts only the drops since our last read: the run's
kernel drops are our sum plus dumpcap's final figure (:func:`dumpcap_final_drops`).
"""

from __future__ import annotations

import ctypes
import os
import re
import socket
import struct
from pathlib import Path

SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture (added in 5.6)
SOL_PACKET = 263
PACKET_STATISTICS = 6
TPACKET_STATS_V3 = struct.Struct("=III")  # tp_packets, tp_drops, tp_freeze_q_cnt (V3 rings, libpcap's)
_SOCKET_LINK = re.compile(r"^socket:\[(\d+)\]$")
_FINAL_DROPS = re.compile(r"Packets received/dropped on interface '[^']*': \d+/(\d+)")


class KernelDropCounter:
    """Running total of the kernel drops of one packet socket held by another process."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.dropped = 0
        self.received = 0

    @classmethod
    def attach(cls, pid: int) -> KernelDropCounter | None:
        """Duplicate ``pid``'s packet socket; None when the system or our privileges do not allow it."""
        inodes = _packet_socket_inodes(pid)
        if not inodes or not hasattr(os, "pidfd_open"):
            return None
        try:
            fd_number = _fd_of_inode(pid, inodes)
            if fd_number is None:
                return None
            pidfd = os.pidfd_open(pid)
        except OSError:
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd_number, 0)
        finally:
            os.close(pidfd)
        if fd < 0:
            return None
        return cls(socket.socket(fileno=fd))

    def read(self) -> int:
        """Add the drops since the last read to the total, and return the total."""
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS_V3.size)
        except OSError:
            return self.dropped
        packets, drops, _ = TPACKET_STATS_V3.unpack(raw.ljust(TPACKET_STATS_V3.size, b"\0"))
        self.received += packets
        self.dropped += drops
        return self.dropped

    def fileno(self) -> int:
        """The duplicated socket, for the root keeper to pass on to the analyzer."""
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()


def _packet_socket_inodes(pid: int) -> set[str]:
    """Inodes of the packet sockets in ``pid``'s network namespace (``/proc/PID/net/packet``)."""
    try:
        lines = Path(f"/proc/{pid}/net/packet").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {line.split()[-1] for line in lines if line.split()}


def _fd_of_inode(pid: int, inodes: set[str]) -> int | None:
    """The number of ``pid``'s file descriptor that is one of those sockets."""
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            match = _SOCKET_LINK.match(os.readlink(entry))
        except OSError:
            continue
        if match and match.group(1) in inodes:
            return int(entry.name)
    return None


def dumpcap_final_drops(stderr: str) -> int | None:
    """Drops dumpcap reports at exit (kernel, its own and flushed), summed over interfaces."""
    found = _FINAL_DROPS.findall(stderr)
    return sum(int(n) for n in found) if found else None
