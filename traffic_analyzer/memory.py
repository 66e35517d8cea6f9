"""Give freed memory back to the system during long runs, and promptly in every analyzer process.

Each analysis window allocates and frees many pandas/numpy buffers of varying sizes; glibc's
allocator keeps the freed pages in its heaps, so a live run's resident memory creeps up by megabytes
a minute although nothing is leaked (a one-hour soak showed it; with a trim every few windows the
same windows stay flat). ``malloc_trim`` returns those pages. Elsewhere (not glibc) this is a no-op.

glibc also raises its mmap threshold after a large buffer is freed (up to 32 MB), after which a window's
big arrays come from the heap and their pages stay with the process: fixing both thresholds at
PROMPT_RETURN_BYTES (:func:`return_freed_memory_promptly`, once at start of each process) took a
``--read`` of the lab capture from 340 to 314 MB at its peak, both processes together.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time

TRIM_EVERY_S = 30.0  # how often a long run trims; a trim takes a few milliseconds
PROMPT_RETURN_BYTES = 128 * 1024  # glibc's default thresholds, kept from growing
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)

_libc = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _malloc_trim = _libc.malloc_trim
except (OSError, AttributeError):
    _malloc_trim = None


def return_freed_memory_promptly() -> bool:
    """Fix glibc's mmap and trim thresholds at PROMPT_RETURN_BYTES; False where there is no mallopt."""
    mallopt = getattr(_libc, "mallopt", None)
    if mallopt is None:
        return False
    return all(mallopt(param, PROMPT_RETURN_BYTES) == 1 for param in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD))


def release_free_memory() -> bool:
    """Collect garbage and hand free heap pages back to the system; False where there is no malloc_trim."""
    gc.collect()
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


class MemoryTrimmer:
    """Calls :func:`release_free_memory` at most every ``every_s`` seconds (ask it once per window)."""

    def __init__(self, every_s: float = TRIM_EVERY_S) -> None:
        self.every_s = every_s
        self._last = time.monotonic()

    def maybe_trim(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            release_free_memory()
