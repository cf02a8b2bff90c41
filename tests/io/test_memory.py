"""Streaming memory is bounded by the window, not the file: a 2 GB file iterates under 500 MB RSS."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import evstream

CHILD = """
import os, sys
import evstream

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20

count = peak = 0
with evstream.open_events(sys.argv[1]) as reader:
    for window in reader.time_windows(50_000):  # the first window also compiles the kernels (if not cached)
        count += len(window)
        peak = max(peak, rss_mb())
print(count, peak)
"""


@pytest.mark.slow
def test_iterating_a_2gb_dat_file_stays_under_500mb(tmp_path):
    path = tmp_path / "big_td.dat"
    n_chunk, chunks = 10_000_000, 26  # 260 M events x 8 bytes = 2.08 GB
    rng = np.random.default_rng(0)
    with evstream.open_writer(path, (304, 240, 2)) as writer:
        chunk = np.empty(n_chunk, dtype=evstream.EVENT_DTYPE)
        chunk["x"] = rng.integers(0, 304, n_chunk)
        chunk["y"] = rng.integers(0, 240, n_chunk)
        chunk["p"] = rng.integers(0, 2, n_chunk)
        base = np.arange(n_chunk, dtype=np.int64) // 16  # 16 M events/s
        for k in range(chunks):
            chunk["t"] = base + k * (n_chunk // 16)
            writer.write(chunk)
    assert path.stat().st_size > 2_000_000_000
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
    count, peak_mb = (int(v) for v in out.stdout.split())
    assert count == n_chunk * chunks
    assert peak_mb < 500, f"peak RSS {peak_mb} MB"  # resident memory sampled at every window
