"""On-disk cache of per-sample representations, keyed by everything that decides what a sample holds.

Decoding and binning a neuromorphic dataset takes hours (spikingjelly#208/#592); the cache
makes every epoch after the first read small ``.npy`` files instead. A cached array is stored
under its sample's index, so the key must change whenever an index could mean another sample
or another array: it hashes the dataset, the split, the sample list (files, labels, windows; for
DVS128 Gesture this is the trial list), the size and mtime (ns) of every source file, and the
transform's parameters. The parameters are read from the transform's ``repr``, which frozen
dataclasses fill with every field; a transform whose ``repr`` holds a memory address (a plain
function, a lambda, an object without a ``__repr__``) has no stable parameters, so it is not
cached (:func:`transform_signature` says so once, with a warning).

Files are written atomically (:func:`~evstream.io.atomic.atomic_output`: parallel DataLoader
workers and ``evstream cache`` shards are safe, and a killed writer leaves no half entry) and read
memory-mapped: a training crop of T frames out of a long stack only reads those frames.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from evstream.io.atomic import atomic_output

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def cache_key(*parts) -> str:
    """A short stable hash of the parts' ``repr``."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def transform_signature(transform: Callable, owner: str) -> str | None:
    """The transform's ``repr`` when it names its parameters; None, with a warning, when it does not.

    Args:
        transform: the representation to cache.
        owner: who asks (a dataset name), for the warning.
    """
    text = repr(transform)
    if _ADDRESS.search(text):
        warnings.warn(f"{owner}: transform {text} has no stable parameters (its repr holds a memory address), "
                      f"so its results are not cached; use a frozen dataclass to cache them", stacklevel=3)
        return None
    return text


def file_signature(paths: Iterable[os.PathLike | str]) -> tuple[tuple[str, int, int], ...]:
    """``(name, size, mtime_ns)`` of each file, in the given order: any edit or replacement changes it."""
    out = []
    for path in paths:
        stat = os.stat(path)
        out.append((os.fspath(path), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def open_cache(cache_dir: os.PathLike | str | None, owner: str, transform: Callable | None, *,
               files: Iterable[os.PathLike | str], parts: tuple) -> RepresentationCache | None:
    """The cache of one dataset split, or None (no folder, or a transform without stable parameters).

    Args:
        cache_dir: the cache root (None: no cache).
        owner: the dataset's name (part of the key and of the warning).
        transform: the cached representation (its parameters enter the key); None for a dataset
            whose representation is fixed by ``parts``.
        files: every file the split's samples are read from, listing and label files included.
        parts: everything else that decides the samples (root, split, sample list, options).
    """
    if cache_dir is None:
        return None
    signature = None
    if transform is not None:
        signature = transform_signature(transform, owner)
        if signature is None:
            return None
    key = cache_key(owner, signature, parts, file_signature(sorted(set(map(os.fspath, files)))))
    return RepresentationCache(cache_dir, key)


class RepresentationCache:
    """``get(index, compute)`` returns the cached array of a sample, computing and storing it once."""

    def __init__(self, root: os.PathLike | str, key: str):
        self.folder = Path(root) / key
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, index: int) -> Path:
        """The file of sample ``index``'s entry (present once the entry is complete)."""
        return self.folder / f"{index:07d}.npy"

    def has(self, index: int) -> bool:
        """Whether sample ``index`` is cached."""
        return self.path(index).exists()

    def get(self, index: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The array of sample ``index`` (memory-mapped copy-on-write: slicing reads only the slice)."""
        path = self.path(index)
        if path.exists():
            return np.load(path, mmap_mode="c")
        value = np.asarray(compute())
        with atomic_output(path) as tmp:
            np.save(tmp, value)
        return value
