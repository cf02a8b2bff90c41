"""Large inputs split across threads: whole-file decodes and the counting kernels of evstream.ops.

Every kernel is a numba kernel that releases the GIL, and positioned reads release it too, so the
parts of a large input run at once on every core. A file format decodes each part from a state it
can know at the part's start (or a relative one: time offsets counted from zero), then joins the
parts so the result is identical to a decode in one piece: time offsets added, the parts' events
moved together, boundaries checked, and a part whose assumed start state proves wrong decoded
again after its predecessor. Counting kernels split their frames, each thread writing its own.

The default thread count is the CPUs this process may run on (at most 8), or the environment
variable ``EVSTREAM_THREADS`` (set it to 1 inside already parallel code, e.g. data-loader workers).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MIN_PART_RECORDS = 1 << 20
"""A file is split only into parts of at least this many records (smaller ones are not worth a thread)."""
MAX_THREADS = 8


def decode_threads(threads: int | None) -> int:
    """``threads`` checked, or the default: ``EVSTREAM_THREADS``, else the CPUs this process may run
    on, at most :data:`MAX_THREADS`."""
    if threads is None and os.environ.get("EVSTREAM_THREADS"):
        threads = os.environ["EVSTREAM_THREADS"]
        if not threads.isdigit():
            raise ValueError(f"EVSTREAM_THREADS must be a whole number, got {threads!r}")
    if threads is None:
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            available = os.cpu_count() or 1
        return max(1, min(available, MAX_THREADS))
    if int(threads) < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return int(threads)


def split(n: int, threads: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges cutting ``n`` records into at most ``threads`` parts of at least
    :data:`MIN_PART_RECORDS`."""
    parts = max(1, min(threads, n // MIN_PART_RECORDS))
    bounds = [n * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def split_weighted(weights: np.ndarray, threads: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges cutting items of ``weights`` (events per frame, say) into at most
    ``threads`` consecutive groups of about equal weight, each at least :data:`MIN_PART_RECORDS`."""
    total = int(weights.sum())
    parts = max(1, min(threads, len(weights), total // MIN_PART_RECORDS))
    cumulative = np.cumsum(weights)
    cuts = {int(np.searchsorted(cumulative, total * i / parts, side="left")) + 1 for i in range(1, parts)}
    bounds = [0, *sorted(cut for cut in cuts if 0 < cut < len(weights)), len(weights)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def run_parts(function: Callable, parts: Sequence) -> list:
    """``function(part)`` for every part, in threads when there are several; an exception a part raises
    is returned in its place (the caller raises the one first in file order)."""

    def guarded(part):
        try:
            return function(part)
        except Exception as err:  # re-raised by the caller, in file order
            return err

    if len(parts) == 1:
        return [guarded(parts[0])]
    with ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(guarded, parts))


def compact(events: np.ndarray, starts: Sequence[int], counts: Sequence[int]) -> int:
    """Move the parts ``events[starts[k]:starts[k] + counts[k]]`` (in increasing order) together from
    ``starts[0]``; returns the events in all. Nothing moves when the parts already touch."""
    size = events.itemsize
    base = events.ctypes.data
    filled = starts[0] + counts[0]
    for start, count in zip(starts[1:], counts[1:], strict=True):
        if start != filled:  # memmove: overlapping ranges without numpy's temporary copy
            ctypes.memmove(base + filled * size, base + start * size, count * size)
        filled += count
    return filled - starts[0]
