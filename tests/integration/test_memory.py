"""Freed memory goes back to the system: the allocator's retained heap shrinks after a trim."""

from __future__ import annotations

import numpy as np
import psutil
import pytest

from traffic_analyzer.memory import release_free_memory


def test_a_trim_returns_freed_heap_pages():
    process = psutil.Process()
    # many small-to-mid buffers (below glibc's mmap threshold) freed at once: the heap keeps them
    chunks = [np.ones(10_000, dtype=np.float64) for _ in range(3000)]  # ~240 MB on the heap
    held = process.memory_info().rss
    del chunks[:-1]  # the newest stays: the heap top is in use, so glibc cannot shrink it by itself
    before_trim = process.memory_info().rss
    if not release_free_memory():
        pytest.skip("this C library has no malloc_trim")
    after_trim = process.memory_info().rss
    assert before_trim > held - 50 * 2**20, "the allocator already returned the memory without a trim"
    assert after_trim < before_trim - 100 * 2**20
