"""Shared fixtures: where the shared test data is, and reference decodes as EVENT_DTYPE.

The shared data (../shared: recordings, vectors, datasets, design) sits beside the checkout in CI but not in a
plain clone. SHARED, RECORDINGS and VECTORS are only paths; a test opens them only after requesting the `shared`
fixture (as an argument, through another fixture, or with request.getfixturevalue for one parameter), so
without the folder it is skipped with one reason instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from evstream import EVENT_DTYPE

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
RECORDINGS = SHARED / "recordings"
VECTORS = SHARED / "vectors"


def load_reference(path: Path) -> np.ndarray:
    """A peer reference decode (packed x, y, t, p:u1) converted to EVENT_DTYPE."""
    ref = np.load(path)
    out = np.empty(len(ref), dtype=EVENT_DTYPE)
    for name in ("x", "y", "t", "p"):
        out[name] = ref[name]
    return out


@pytest.fixture
def one_torch_thread():
    """Small nets on a shared 2-core machine: one torch thread avoids oversubscription."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def umask_022():
    """The usual umask (new files 0644), whatever the test runner's is."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder; skips the requesting test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared test data not found at {SHARED}")
    return SHARED


@pytest.fixture
def nmnist_few(shared, tmp_path) -> Path:
    """An N-MNIST tree of 20 real training recordings (the first 2 per digit), linked from the shared set."""
    root = tmp_path / "few"
    for digit in range(10):
        folder = root / "Train" / str(digit)
        folder.mkdir(parents=True)
        for source in sorted((shared / f"datasets/nmnist_small/Train/{digit}").glob("*.bin"))[:2]:
            (folder / source.name).symlink_to(source)
    return root


@pytest.fixture(scope="module", params=["real", "random"])
def real_or_random(request) -> str:
    """Runs a test on a real shared recording and on a random stream; only the "real" run needs ../shared."""
    if request.param == "real":
        request.getfixturevalue("shared")
    return request.param


def synthetic_events(n: int, width: int = 346, height: int = 260, seed: int = 0, rate_hz: float = 1e6) -> np.ndarray:
    """Random time-sorted events (for writers, kernels and round trips)."""
    rng = np.random.default_rng(seed)
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["x"] = rng.integers(0, width, n)
    events["y"] = rng.integers(0, height, n)
    events["t"] = np.cumsum(rng.exponential(1e6 / rate_hz, n)).astype(np.int64)
    events["p"] = rng.integers(0, 2, n)
    return events
