"""Neighbourhood noise filters: tonic's ``denoise`` and dv-processing's background-activity filter.

Both keep, per pixel, the time of the pixel's last event and keep an event only when a
neighbouring pixel fired recently. The pure functions start from a fresh state; the classes
keep their state between calls, so feeding a stream batch after batch returns exactly what one
call on the concatenation returns.

The per-pixel times live in a padded ``[H + 2, W + 2]`` int32 table relative to a base time
(half the cache footprint of int64, which matters at 1280x720); the kernel moves the base
forward when the stream outgrows int32, so any recording length works. Windows (filter times)
must stay below 2**29 us (~9 min); timestamps must start after -2**30 us and never step back by
more than 2**29 us (readers give sorted times).
"""

from __future__ import annotations

import math

import numpy as np

from evstream._jit import kernel
from evstream.events import EVENT_DTYPE, check_sensor_size

_OLD = -(2**31) + 1
"""Table value meaning "longer ago than any window": the padding, and times pushed out by a rebase."""
_REBASE_AT = 2**30
"""Relative time at which the kernel moves the base forward."""
_MAX_WINDOW = 2**29
"""Largest window (us) a filter accepts: relative differences then never overflow."""


@kernel
def _rebase(table, base, t_rel):
    """Move the base forward by ``t_rel``; times that fall below the int32 range become ``_OLD``."""
    base[0] += t_rel
    flat = table.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = max(np.int64(flat[i]) - t_rel, _OLD)


class TimeTable:
    """Per-pixel last-event times: a padded ``[H + 2, W + 2]`` int32 table and its int64 base.

    Args:
        sensor_size: ``(W, H, P)``.
        initial_us: the virtual time of every pixel's previous event before the first call
            (tonic and dv-processing start from a table of zeros, i.e. ``initial_us = 0``).
    """

    def __init__(self, sensor_size, initial_us: int = 0):
        self.sensor_size = check_sensor_size(sensor_size)
        width, height, _ = self.sensor_size
        self.table = np.full((height + 2, width + 2), _OLD, dtype=np.int32)
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


def raise_if_off_sensor(code: int, events: np.ndarray, width: int, height: int) -> None:
    """Turn a kernel's error code ``-(i + 1)`` (event i is off the sensor) into a ValueError naming the event."""
    if code < 0:
        bad = events[-code - 1]
        raise ValueError(f"event {-code - 1} at (x={bad['x']}, y={bad['y']}) is outside the {width}x{height} sensor")


def compacted(out: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` events a kernel wrote to ``out``; a small result is copied so it does not pin ``out``."""
    return out[:n] if 2 * n >= len(out) else copy_events(out[:n])


def copy_events(events: np.ndarray) -> np.ndarray:
    """A copy of a contiguous event array, made as bytes (numpy copies packed records field by field, ~6x slower)."""
    return events.view(np.uint8).copy().view(EVENT_DTYPE)


def contiguous_events(events) -> np.ndarray:
    """A C-contiguous EVENT_DTYPE array (the input itself when it already is one)."""
    events = np.asarray(events)
    if events.dtype != EVENT_DTYPE or events.ndim != 1:
        raise TypeError(f"expected a 1-D EVENT_DTYPE array, got {events.dtype} with shape {events.shape} "
                        "(convert with evstream.as_events)")
    return np.ascontiguousarray(events)


def check_window(name: str, value: float) -> float:
    """Validate a filter's time window (us): ``0 <= value < 2**29``."""
    value = float(value)
    if not 0 <= value < _MAX_WINDOW:
        raise ValueError(f"{name} must be in [0, 2**29) microseconds, got {value}")
    return value


@kernel
def _denoise_kernel(events, table, base, limit, width, height, out):
    n = 0
    for i in range(events.shape[0]):
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        if x >= width or y >= height:
            return -(i + 1)
        t = events[i].t - base[0]
        if t > _REBASE_AT:
            _rebase(table, base, t)
            t = 0
        # neighbour t' supports when t - t' < limit, i.e. t' > t - limit: compared in int32
        since = np.int32(max(t - limit, _OLD))
        up, row, down = table[y], table[y + 1], table[y + 2]
        row[x + 1] = np.int32(t)
        if (row[x] > since) | (row[x + 2] > since) | (up[x + 1] > since) | (down[x + 1] > since):
            out[n] = events[i]
            n += 1
    return n


class Denoise:
    """Streaming tonic ``Denoise``: keeps an event when a 4-neighbour fired less than ``filter_time`` us before.

    Args:
        sensor_size: ``(W, H, P)``.
        filter_time: temporal neighbourhood in microseconds (tonic's name and meaning).

    Example:
        >>> f = Denoise((346, 260, 2), filter_time=10_000)
        >>> kept = [f(batch) for batch in batches]   # == denoise(concatenated, ...) split up
    """

    def __init__(self, sensor_size, filter_time: float = 10_000):
        self.filter_time = check_window("filter_time", filter_time)
        # tonic keeps t_neighbour + filter_time > t; for integer times that is t - t_neighbour < ceil(filter_time)
        self._limit = math.ceil(self.filter_time)
        self.state = TimeTable(sensor_size)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Filter the next batch. Shape: ``[N] -> [M <= N]`` EVENT_DTYPE."""
        return self.state.run(_denoise_kernel, events, self._limit)

    def reset(self) -> None:
        """Forget every pixel's history."""
        self.state = TimeTable(self.state.sensor_size)

    def __repr__(self) -> str:
        return f"Denoise(sensor_size={self.state.sensor_size}, filter_time={self.filter_time:g})"


def denoise(events: np.ndarray, sensor_size, filter_time: float = 10_000) -> np.ndarray:
    """Drop events with no 4-neighbour event in the last ``filter_time`` us (tonic ``denoise_numpy``).

    The same events as tonic for timestamps >= 0, except that tonic sizes its grid from the
    events' largest x and y, so when every event is on pixel (0, 0) tonic drops them all.

    Args:
        events: EVENT_DTYPE array, in time order.
        sensor_size: ``(W, H, P)``.
        filter_time: temporal neighbourhood in microseconds.

    Returns:
        The kept events, a new array in input order.
    """
    return Denoise(sensor_size, filter_time)(events)


@kernel
def _background_activity_kernel(events, table, base, duration, width, height, out):
    n = 0
    for i in range(events.shape[0]):
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        if x >= width or y >= height:
            return -(i + 1)
        t = events[i].t - base[0]
        if t > _REBASE_AT:
            _rebase(table, base, t)
            t = 0
        since = np.int32(max(t - duration, _OLD))
        up, row, down = table[y], table[y + 1], table[y + 2]
        if ((up[x] > since) | (up[x + 1] > since) | (up[x + 2] > since) | (row[x] > since) | (row[x + 2] > since)
                | (down[x] > since) | (down[x + 1] > since) | (down[x + 2] > since)):
            out[n] = events[i]
            n += 1
        row[x + 1] = np.int32(t)
    return n


class BackgroundActivityFilter:
    """Streaming background-activity filter (dv-processing ``BackgroundActivityNoiseFilter``).

    Keeps an event when one of its 8 neighbours (not the pixel itself) fired less than
    ``duration_us`` before it; every event, kept or not, updates its pixel. Pixels start at time 0.

    Args:
        sensor_size: ``(W, H, P)``.
        duration_us: support window in microseconds (dv's ``backgroundActivityDuration``, 2 ms).
    """

    def __init__(self, sensor_size, duration_us: int = 2000):
        self.duration_us = int(check_window("duration_us", duration_us))
        self.state = TimeTable(sensor_size)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Filter the next batch. Shape: ``[N] -> [M <= N]`` EVENT_DTYPE."""
        return self.state.run(_background_activity_kernel, events, self.duration_us)

    def reset(self) -> None:
        """Forget every pixel's history."""
        self.state = TimeTable(self.state.sensor_size)

    def __repr__(self) -> str:
        return f"BackgroundActivityFilter(sensor_size={self.state.sensor_size}, duration_us={self.duration_us})"


def background_activity_filter(events: np.ndarray, sensor_size, duration_us: int = 2000) -> np.ndarray:
    """Drop events with no 8-neighbour event in the last ``duration_us`` (dv-processing semantics).

    Args:
        events: EVENT_DTYPE array, in time order.
        sensor_size: ``(W, H, P)``.
        duration_us: support window in microseconds.

    Returns:
        The kept events, a new array in input order: the same events as dv-processing's
        ``dv.noise.BackgroundActivityNoiseFilter`` given the same resolution and duration.
    """
    return BackgroundActivityFilter(sensor_size, duration_us)(events)
