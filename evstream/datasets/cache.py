"""On-disk cache of per-sample representations, keyed by the dataset, split and transform.

Decoding and binning a neuromorphic dataset takes hours (spikingjelly#208/#592); the cache
makes every epoch after the first read small ``.npz`` files instead. The key is a hash of the
transform's ``repr`` (frozen dataclasses print all their parameters), so changing a parameter
never serves stale frames. Files are written atomically, so parallel DataLoader workers are safe.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def cache_key(*parts) -> str:
    """A short stable hash of the parts' ``repr``."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


class RepresentationCache:
    """``get(index, compute)`` returns the cached array of a sample, computing and storing it once."""

    def __init__(self, root: os.PathLike | str, key: str):
        self.folder = Path(root) / key
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(self, index: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
        path = self.folder / f"{index:07d}.npz"
        if path.exists():
            with np.load(path) as data:
                return data["x"]
        value = np.asarray(compute())
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=self.folder)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x=value)
        os.replace(tmp, path)
        return value
