"""Per-pixel last-event times for the time-table filters (denoise, background activity, refractory period).

The times live in a padded ``[H + 2, W + 2]`` int32 table relative to a base time (half the cache
footprint of int64, which matters at 1280x720); :func:`rebase` moves the base forward when the
stream outgrows int32, so any recording length works. Windows (filter times) must stay below
2**29 us (~9 min); timestamps must start after -2**30 us and, within one array, never step back by
more than 2**29 us (readers give sorted times).

A filter called as a transform runs on a fresh :class:`TimeTable` (stateless); its ``stream()`` keeps
one from batch to batch (:class:`TimeTableStream`) and resets it where time goes back
(:mod:`evstream.ops.streams`). A filter gives only its rule to :func:`time_table_events`, and has two
kernels from that one loop: the one-array kernel, and the stream kernel that also checks each event's
time against ``lowest``, the newest time so far less the stream's ``max_step_back_us`` (one loop with
a runtime flag cost 6-12 %).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from evstream._jit import inline_kernel, kernel
from evstream.events import check_sensor_size
from evstream.ops._events import compacted, contiguous_events, raise_if_off_sensor
from evstream.ops.streams import BASE, NEVER, STOP, check_step_back, filter_events, new_clock, restart, warn_reset

OLD = -(2**31) + 1
"""Table value meaning "longer ago than any window": the padding, and times pushed out by a rebase."""
_MAX_WINDOW = 2**29
"""Largest window (us) a filter accepts: relative differences then never overflow."""


@kernel
def rebase(table, clock, t_rel):
    """Move the base forward by ``t_rel`` (times below the int32 range become ``OLD``); returns the new base.

    :func:`~evstream.ops.streams.filter_events` calls it when an event's time relative to the base exceeds
    :data:`~evstream.ops.streams.REBASE_AT`.
    """
    clock[BASE] += t_rel
    flat = table.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = max(np.int64(flat[i]) - t_rel, OLD)
    return clock[BASE]


@inline_kernel
def since(t, limit):
    """The int32 table time ``limit`` us before the relative time ``t`` (or :data:`OLD`): a previous time ``t'``
    is inside the window when ``t - t' < limit``, i.e. ``t' > since(t, limit)``."""
    return np.int32(max(t - limit, OLD))


@inline_kernel
def record_time(table, limit, x, y, t):
    """Note an event (kept or not) at its pixel: its time becomes the pixel's."""
    table[y + 1, x + 1] = np.int32(t)


@inline_kernel
def time_table_events(events, table, clock, limit, width, height, out, stream, keeps):
    """A time-table filter's kernel body: :func:`~evstream.ops.streams.filter_events` on ``table``.

    ``keeps(table, limit, x, y, t)`` is the filter's rule: it reads the table, where every event then
    records its time (:func:`record_time`). ``stream`` (a constant) stops at a step back. Returns the number
    kept, or ``-(i + 1)`` at the first event off the sensor.
    """
    return filter_events(events, width, height, clock, out, stream, keeps, record_time, table, limit, rebase)


def check_window(name: str, value: float) -> float:
    """Validate a filter's time window (us): ``0 <= value < 2**29``."""
    value = float(value)
    if not 0 <= value < _MAX_WINDOW:
        raise ValueError(f"{name} must be in [0, 2**29) microseconds, got {value}")
    return value


class TimeTable:
    """Per-pixel last-event times: a padded ``[H + 2, W + 2]`` int32 table and its int64 ``clock``.

    Args:
        sensor_size: ``(W, H, P)``.
        initial_us: the virtual time of every pixel's previous event at the start (tonic and
            dv-processing start from a table of zeros, i.e. ``initial_us = 0``).
        max_step_back_us: a stream's tolerance for events older than the newest so far;
            :data:`~evstream.ops.streams.NEVER` for one array.
    """

    def __init__(self, sensor_size, initial_us: int = 0, max_step_back_us: int = NEVER):
        self.sensor_size = check_sensor_size(sensor_size)
        self.initial_us = initial_us
        width, height, _ = self.sensor_size
        self.table = np.full((height + 2, width + 2), OLD, dtype=np.int32)
        self.table[1:-1, 1:-1] = initial_us
        self.clock = new_clock(max_step_back_us)

    def run(self, filter_kernel, events: np.ndarray, limit: int, name: str) -> np.ndarray:
        """Apply ``filter_kernel(events, table, clock, limit, width, height, out) -> n`` to a batch.

        Where the kernel stops at a step back, warns (naming the filter ``name``), resets and runs on.
        Returns the kept events (a new array); raises ValueError naming the first event off the
        sensor (the table then holds every event before it).
        """
        events = contiguous_events(events)
        width, height, _ = self.sensor_size
        out = np.empty_like(events)
        kept = start = 0
        while True:
            n = filter_kernel(events[start:], self.table, self.clock, limit, width, height, out[kept:])
            raise_if_off_sensor(n - start if n < 0 else n, events, width, height)
            kept += n
            if self.clock[STOP] < 0:
                return compacted(out, kept)
            start += int(self.clock[STOP])
            warn_reset(name, self.clock, int(events["t"][start]), start)
            self.reset()

    def reset(self) -> None:
        """Forget every pixel's history: back to ``initial_us`` everywhere, no time seen yet."""
        self.table[1:-1, 1:-1] = self.initial_us
        restart(self.clock)


class TimeTableFilter:
    """Base of the time-table filters: a stateless transform, and its :meth:`stream` form.

    A subclass's ``__init__`` sets ``sensor_size``, ``_limit`` (the integer window its kernels take)
    and ``_initial_us``; the class names its ``_kernels``, each
    ``kernel(events, table, clock, limit, width, height, out) -> n``: the one-array kernel, and the
    stream kernel, which stops at an event below ``clock[LOWEST]`` (writing its index to ``clock[STOP]``).
    """

    _kernels: ClassVar[tuple[Callable, Callable]]
    sensor_size: tuple[int, int, int]
    _limit: int
    _initial_us: int = 0

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Filter one array from a fresh state (a reused instance equals a fresh one). ``[N] -> [M <= N]``."""
        return TimeTable(self.sensor_size, self._initial_us).run(self._kernels[0], events, self._limit,
                                                                 type(self).__name__)

    def stream(self, max_step_back_us: int = 0) -> TimeTableStream:
        """The stateful form: batch after batch, what one call on the concatenation returns.

        Args:
            max_step_back_us: events up to this much older than the newest so far are filtered as
                they come (a driver reordering packets); an older one resets the history
                (:class:`~evstream.ops.streams.StreamResetWarning`).
        """
        return TimeTableStream(self, check_step_back(max_step_back_us))


class TimeTableStream:
    """A time-table filter's stream form (made by :meth:`TimeTableFilter.stream`): ``stream(batch) -> kept``."""

    def __init__(self, transform: TimeTableFilter, max_step_back_us: int):
        self.transform = transform
        self.max_step_back_us = max_step_back_us
        self.state = TimeTable(transform.sensor_size, transform._initial_us, max_step_back_us)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Filter the next batch. Shape: ``[N] -> [M <= N]`` EVENT_DTYPE."""
        return self.state.run(self.transform._kernels[1], events, self.transform._limit, type(self.transform).__name__)

    def reset(self) -> None:
        """Forget every pixel's history (a new recording starts)."""
        self.state.reset()

    def __repr__(self) -> str:
        return f"{self.transform!r}.stream(max_step_back_us={self.max_step_back_us})"
