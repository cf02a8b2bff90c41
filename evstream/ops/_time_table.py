"""Per-pixel last-event times for the streaming filters (denoise, background activity, refractory period).

The times live in a padded ``[H + 2, W + 2]`` int32 table relative to a base time (half the cache
footprint of int64, which matters at 1280x720); :func:`rebase` moves the base forward when the
stream outgrows int32, so any recording length works. Windows (filter times) must stay below
2**29 us (~9 min); timestamps must start after -2**30 us and never step back by more than 2**29 us
(readers give sorted times).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from evstream._jit import kernel
from evstream.events import check_sensor_size
from evstream.ops._events import compacted, contiguous_events, raise_if_off_sensor

OLD = -(2**31) + 1
"""Table value meaning "longer ago than any window": the padding, and times pushed out by a rebase."""
REBASE_AT = 2**30
"""Relative time at which a kernel moves the base forward (:func:`rebase`)."""
_MAX_WINDOW = 2**29
"""Largest window (us) a filter accepts: relative differences then never overflow."""


@kernel
def rebase(table, base, t_rel):
    """Move the base forward by ``t_rel`` (times below the int32 range become ``OLD``); returns the new base.

    The filter kernels keep the base in a local, compute ``t - base`` per event and call this when it
    exceeds :data:`REBASE_AT` (reading ``base[0]`` per event, which numba cannot prove unchanged by
    the table writes, made them ~3x slower).
    """
    base[0] += t_rel
    flat = table.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = max(np.int64(flat[i]) - t_rel, OLD)
    return base[0]


def check_window(name: str, value: float) -> float:
    """Validate a filter's time window (us): ``0 <= value < 2**29``."""
    value = float(value)
    if not 0 <= value < _MAX_WINDOW:
        raise ValueError(f"{name} must be in [0, 2**29) microseconds, got {value}")
    return value


class TimeTable:
    """Per-pixel last-event times: a padded ``[H + 2, W + 2]`` int32 table and its int64 base.

    Args:
        sensor_size: ``(W, H, P)``.
        initial_us: the virtual time of every pixel's previous event before the first call
            (tonic and dv-processing start from a table of zeros, i.e. ``initial_us = 0``).
    """

    def __init__(self, sensor_size, initial_us: int = 0):
        self.sensor_size = check_sensor_size(sensor_size)
        self.initial_us = initial_us
        width, height, _ = self.sensor_size
        self.table = np.full((height + 2, width + 2), OLD, dtype=np.int32)
        self.table[1:-1, 1:-1] = initial_us
        self.base = np.zeros(1, dtype=np.int64)

    def run(self, filter_kernel, events: np.ndarray, *params) -> np.ndarray:
        """Apply ``filter_kernel(events, table, base, *params, width, height, out) -> n`` to a batch.

        Returns the kept events (a new array); raises ValueError naming the first event off the
        sensor (the table then holds every event before it).
        """
        events = contiguous_events(events)
        width, height, _ = self.sensor_size
        out = np.empty_like(events)
        n = filter_kernel(events, self.table, self.base, *params, width, height, out)
        raise_if_off_sensor(n, events, width, height)
        return compacted(out, n)

    def reset(self) -> None:
        """Forget every pixel's history: back to ``initial_us`` everywhere."""
        self.table[1:-1, 1:-1] = self.initial_us
        self.base[0] = 0


class TimeTableFilter:
    """Base of the streaming filters kept on a :class:`TimeTable` (denoise, background activity, refractory).

    A subclass's ``__init__`` sets ``state`` (its TimeTable) and ``_limit`` (the integer window its
    kernel takes); the class names its kernel ``_kernel(events, table, base, limit, width, height, out) -> n``
    (a staticmethod). Batch after batch the filter returns what one call on the concatenation returns.
    """

    _kernel: ClassVar[Callable]
    state: TimeTable
    _limit: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Filter the next batch. Shape: ``[N] -> [M <= N]`` EVENT_DTYPE."""
        return self.state.run(self._kernel, events, self._limit)

    def reset(self) -> None:
        """Forget every pixel's history."""
        self.state.reset()
