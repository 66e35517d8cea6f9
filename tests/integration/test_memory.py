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


FREED_BIG_BUFFER = """
import sys, numpy, psutil
sys.path.insert(0, {root!r})
from traffic_analyzer.memory import return_freed_memory_promptly
if {prompt}:
    assert return_freed_memory_promptly()
rss = lambda: psutil.Process().memory_info().rss
big = numpy.ones(3 << 20); del big  # 24 MB, mapped; freeing it raises glibc's thresholds by default
start = rss()
window = numpy.ones(2 << 20); del window  # a window's 16 MB array, freed
print(rss() - start)
"""


@pytest.mark.parametrize("prompt", [True, False], ids=["prompt", "glibc-default"])
def test_a_big_buffer_freed_after_a_bigger_one_goes_back_with_the_fixed_thresholds(prompt):
    """By default glibc raises its mmap threshold after freeing a large buffer, so the next large buffers come
    from the heap and stay with the process once freed; with the thresholds fixed they are unmapped."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    code = FREED_BIG_BUFFER.format(root=root, prompt=prompt)
    kept = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    if prompt:
        assert kept < 4 << 20
    else:
        assert kept > 12 << 20  # the default's behaviour, which the fix is for (if glibc changes, so does this)
