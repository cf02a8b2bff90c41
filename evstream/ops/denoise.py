"""Neighbourhood noise filters: tonic's ``denoise`` and dv-processing's background-activity filter.

Both keep, per pixel, the time of the pixel's last event and keep an event only when a
neighbouring pixel fired recently. The pure functions start from a fresh state; the classes
keep their state between calls, so feeding a stream batch after batch returns exactly what one
call on the concatenation returns.

The per-pixel times live in a :class:`~evstream.ops._time_table.TimeTable` (windows below 2**29 us).
"""

from __future__ import annotations

import math

import numpy as np

from evstream._jit import kernel
from evstream.ops._time_table import OLD, REBASE_AT, TimeTable, TimeTableFilter, check_window, rebase


@kernel
def _denoise_kernel(events, table, base, limit, width, height, out):
    n = 0
    base_t = base[0]
    for i in range(events.shape[0]):
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        if x >= width or y >= height:
            return -(i + 1)
        t = events[i].t - base_t
        if t > REBASE_AT:
            base_t, t = rebase(table, base, t), 0
        # neighbour t' supports when t - t' < limit, i.e. t' > t - limit: compared in int32
        since = np.int32(max(t - limit, OLD))
        up, row, down = table[y], table[y + 1], table[y + 2]
        row[x + 1] = np.int32(t)
        if (row[x] > since) | (row[x + 2] > since) | (up[x + 1] > since) | (down[x + 1] > since):
            out[n] = events[i]
            n += 1
    return n


class Denoise(TimeTableFilter):
    """Streaming tonic ``Denoise``: keeps an event when a 4-neighbour fired less than ``filter_time`` us before.

    Args:
        sensor_size: ``(W, H, P)``.
        filter_time: temporal neighbourhood in microseconds (tonic's name and meaning).

    Example:
        >>> f = Denoise((346, 260, 2), filter_time=10_000)
        >>> kept = [f(batch) for batch in batches]   # == denoise(concatenated, ...) split up
    """

    _kernel = staticmethod(_denoise_kernel)

    def __init__(self, sensor_size, filter_time: float = 10_000):
        self.filter_time = check_window("filter_time", filter_time)
        # tonic keeps t_neighbour + filter_time > t; for integer times that is t - t_neighbour < ceil(filter_time)
        self._limit = math.ceil(self.filter_time)
        self.state = TimeTable(sensor_size)

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
    base_t = base[0]
    for i in range(events.shape[0]):
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        if x >= width or y >= height:
            return -(i + 1)
        t = events[i].t - base_t
        if t > REBASE_AT:
            base_t, t = rebase(table, base, t), 0
        since = np.int32(max(t - duration, OLD))
        up, row, down = table[y], table[y + 1], table[y + 2]
        if ((up[x] > since) | (up[x + 1] > since) | (up[x + 2] > since) | (row[x] > since) | (row[x + 2] > since)
                | (down[x] > since) | (down[x + 1] > since) | (down[x + 2] > since)):
            out[n] = events[i]
            n += 1
        row[x + 1] = np.int32(t)
    return n


class BackgroundActivityFilter(TimeTableFilter):
    """Streaming background-activity filter (dv-processing ``BackgroundActivityNoiseFilter``).

    Keeps an event when one of its 8 neighbours (not the pixel itself) fired less than
    ``duration_us`` before it; every event, kept or not, updates its pixel. Pixels start at time 0.

    Args:
        sensor_size: ``(W, H, P)``.
        duration_us: support window in microseconds (dv's ``backgroundActivityDuration``, 2 ms).
    """

    _kernel = staticmethod(_background_activity_kernel)

    def __init__(self, sensor_size, duration_us: int = 2000):
        self.duration_us = int(check_window("duration_us", duration_us))
        self._limit = self.duration_us
        self.state = TimeTable(sensor_size)

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
