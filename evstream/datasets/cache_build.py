"""Fill a data set's representation cache ahead of training: resumable, on N processes, shardable.

The entries are the ones the datasets' own :class:`~evstream.datasets.cache.RepresentationCache`
would write on first access (same key, same files), so a trainer built with the same settings finds
them and reads instead of decoding. Each entry is written atomically, so a run killed at any point
leaves complete entries only (and perhaps a hidden temporary file, removed by the next run of the
same shard); a rerun skips what is there. Shard ``I/N`` takes every N-th entry from the I-th, in
the datasets' deterministic sample order: the N shards split the entries between them, each writes
only its own entries, and they can run at once or one after another, on one machine or several
sharing the cache folder, under any scheduler.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from evstream.errors import UserError

__all__ = ["CacheEntries", "Shard", "build_cache", "cache_entries"]

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
_PARTIAL = re.compile(r"\.(\d{7})\.npy\..*")  # atomic_output's temporary file of an entry


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based): entries ``index, index + count, index + 2 count, ...``."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise UserError(f"shard {self.index}/{self.count}: need 0 <= I < N (shards are numbered from 0)")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` -> ``Shard(I, N)``; a :class:`UserError` for anything else."""
        match = _SHARD.fullmatch(text)
        if match is None:
            raise UserError(f"shard {text!r}: expected I/N, e.g. 0/4 for the first of four shards")
        return cls(int(match[1]), int(match[2]))

    def take(self, items: Sequence) -> list:
        """This shard's items of ``items``."""
        return list(items[self.index::self.count])


@dataclass(frozen=True)
class CacheEntries:
    """Sample indices of one cached dataset: ``dataset.representation(i)`` fills entry ``i``."""

    dataset: torch.utils.data.Dataset
    indices: tuple[int, ...]


def cache_entries(datasets: Iterable[torch.utils.data.Dataset]) -> list[CacheEntries]:
    """The cache entries that reading ``datasets`` fills: ``Subset`` wrappers unwrapped, datasets sharing
    a cache folder merged (e.g. the training and validation subsets of one split), in order.

    A dataset with no cache (no folder, or a representation without stable parameters) is a
    :class:`UserError`.
    """
    merged: dict[str, tuple[torch.utils.data.Dataset, set[int]]] = {}
    for dataset in datasets:
        indices = range(len(dataset))
        while isinstance(dataset, torch.utils.data.Subset):
            indices = [dataset.indices[i] for i in indices]
            dataset = dataset.dataset
        cache = getattr(dataset, "_cache", None)
        if cache is None:
            raise UserError(f"{type(dataset).__name__} {getattr(dataset, 'split', '')}: no representation cache "
                            "(no cache folder: the data folder is read-only and none was given, or the "
                            "representation has no stable parameters)")
        _, seen = merged.setdefault(os.fspath(cache.folder), (dataset, set()))
        seen.update(int(i) for i in indices)
    return [CacheEntries(dataset, tuple(sorted(seen))) for dataset, seen in merged.values()]


def _remove_partial(entries: list[tuple[int, int]], groups: list[CacheEntries]) -> None:
    """Delete the temporary files a killed writer left for these entries (``(group, index)`` pairs)."""
    wanted: dict[int, set[int]] = {}
    for group, index in entries:
        wanted.setdefault(group, set()).add(index)
    for group, indices in wanted.items():
        folder = groups[group].dataset._cache.folder
        for name in os.listdir(folder):
            match = _PARTIAL.fullmatch(name)
            if match and int(match[1]) in indices:
                (folder / name).unlink(missing_ok=True)


_WORKER_GROUPS: list[CacheEntries] = []


def _start_worker(groups: list[CacheEntries]) -> None:
    """Worker set-up: the datasets, one thread each (N workers share the cores), Ctrl-C left to the parent."""
    global _WORKER_GROUPS
    _WORKER_GROUPS = groups
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["EVSTREAM_THREADS"] = "1"
    torch.set_num_threads(1)


def _fill(entry: tuple[int, int]) -> None:
    """Compute and store one entry in a worker."""
    group, index = entry
    _WORKER_GROUPS[group].dataset.representation(index)


def build_cache(datasets: Iterable[torch.utils.data.Dataset], *, workers: int = 1, shard: Shard = Shard(),
                progress: bool = True, limit: int | None = None) -> dict[str, int]:
    """Fill this shard's missing cache entries of ``datasets`` (:func:`cache_entries`) on ``workers`` processes.

    Args:
        datasets: what the trainer reads (e.g. ``task.datasets()``); each needs ``representation(i)``.
        workers: processes computing entries (1: this process).
        shard: which part of the entries this run fills.
        progress: show a tqdm bar over the shard's entries (those already cached count as done).
        limit: stop after computing this many entries (None: all); a run cut short, as a kill would.

    Returns:
        ``{"entries": the shard's entries, "cached_before": found complete, "built": computed now}``.
    """
    if int(workers) < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    groups = cache_entries(datasets)
    mine = shard.take([(g, i) for g, group in enumerate(groups) for i in group.indices])
    _remove_partial(mine, groups)
    todo = [(g, i) for g, i in mine if not groups[g].dataset._cache.has(i)]
    summary = {"entries": len(mine), "cached_before": len(mine) - len(todo), "built": 0}
    if limit is not None:
        todo = todo[:max(int(limit), 0)]
    with tqdm(total=len(mine), initial=summary["cached_before"], desc="cache", unit="sample",
              disable=not progress) as bar:
        if int(workers) == 1 or len(todo) <= 1:
            for group, index in todo:
                groups[group].dataset.representation(index)
                summary["built"] += 1
                bar.update()
        else:
            with multiprocessing.Pool(min(int(workers), len(todo)), _start_worker, (groups,)) as pool:
                for _ in pool.imap_unordered(_fill, todo):
                    summary["built"] += 1
                    bar.update()
    return summary
