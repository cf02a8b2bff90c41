"""Neighbourhood noise filters: tonic's ``denoise`` and dv-processing's background-activity filter.

Both keep, per pixel, the time of the pixel's last event and keep an event only when a
neighbouring pixel fired recently. The functions and the transforms start every call from a fresh
state (a per-sample transform); a transform's ``stream()`` keeps the state from batch to batch, so
feeding a stream batch after batch returns exactly what one call on the concatenation returns.

The per-pixel times live in a :class:`~evstream.ops._time_table.TimeTable` (windows below 2**29 us).
"""

from __future__ import annotations

import math

import numpy as np

from evstream._jit import kernel
from evstream.events import check_sensor_size
from evstream.ops._time_table import TimeTableFilter, check_window, since, time_table_events


@kernel
def _denoise_keeps(table, limit, x, y, t):
    """Denoise's rule: a 4-neighbour fired less than ``limit`` us before ``t``."""
    window = since(t, limit)
    up, row, down = table[y], table[y + 1], table[y + 2]
    return (row[x] > window) | (row[x + 2] > window) | (up[x + 1] > window) | (down[x + 1] > window)


@kernel
def _denoise_array(events, table, clock, limit, width, height, out):
    """Denoise one array (no step-back check)."""
    return time_table_events(events, table, clock, limit, width, height, out, False, _denoise_keeps)


@kernel
def _denoise_stream(events, table, clock, limit, width, height, out):
    """Denoise a stream's batch: stops at a step back."""
    return time_table_events(events, table, clock, limit, width, height, out, True, _denoise_keeps)


class Denoise(TimeTableFilter):
    """tonic ``Denoise``: keep an event when a 4-neighbour fired less than ``filter_time`` us before.

    Each call filters its array from a fresh state (a dataset transform); :meth:`stream` keeps
    the state from batch to batch.

    Args:
        sensor_size: ``(W, H, P)`` (tonic's ``Denoise`` sizes its grid from each sample's events).
        filter_time: temporal neighbourhood in microseconds (tonic's name and meaning).

    Example:
        >>> dataset_transform = Denoise((34, 34, 2), filter_time=10_000)   # sample -> kept events
        >>> stream = Denoise((346, 260, 2), filter_time=10_000).stream()
        >>> kept = [stream(batch) for batch in batches]   # == denoise(concatenated, ...) split up
    """

    _kernels = (_denoise_array, _denoise_stream)

    def __init__(self, sensor_size, filter_time: float = 10_000):
        self.sensor_size = check_sensor_size(sensor_size)
        self.filter_time = check_window("filter_time", filter_time)
        # tonic keeps t_neighbour + filter_time > t; for integer times that is t - t_neighbour < ceil(filter_time)
        self._limit = math.ceil(self.filter_time)

    def __repr__(self) -> str:
        return f"Denoise(sensor_size={self.sensor_size}, filter_time={self.filter_time:g})"


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
def _background_activity_keeps(table, duration, x, y, t):
    """The background-activity rule: an 8-neighbour fired less than ``duration`` us before ``t``."""
    window = since(t, duration)
    up, row, down = table[y], table[y + 1], table[y + 2]
    return ((up[x] > window) | (up[x + 1] > window) | (up[x + 2] > window) | (row[x] > window)
            | (row[x + 2] > window) | (down[x] > window) | (down[x + 1] > window) | (down[x + 2] > window))


@kernel
def _background_activity_array(events, table, clock, duration, width, height, out):
    """The background-activity filter on one array (no step-back check)."""
    return time_table_events(events, table, clock, duration, width, height, out, False, _background_activity_keeps)


@kernel
def _background_activity_stream(events, table, clock, duration, width, height, out):
    """The background-activity filter on a stream's batch: stops at a step back."""
    return time_table_events(events, table, clock, duration, width, height, out, True, _background_activity_keeps)


class BackgroundActivityFilter(TimeTableFilter):
    """Background-activity filter (dv-processing ``BackgroundActivityNoiseFilter``).

    Keeps an event when one of its 8 neighbours (not the pixel itself) fired less than
    ``duration_us`` before it; every event, kept or not, updates its pixel. Pixels start at time 0.
    Each call starts from a fresh state; :meth:`stream` keeps it from batch to batch (dv-processing's
    filter object is such a stream).

    Args:
        sensor_size: ``(W, H, P)``.
        duration_us: support window in microseconds (dv's ``backgroundActivityDuration``, 2 ms).
    """

    _kernels = (_background_activity_array, _background_activity_stream)

    def __init__(self, sensor_size, duration_us: int = 2000):
        self.sensor_size = check_sensor_size(sensor_size)
        self.duration_us = int(check_window("duration_us", duration_us))
        self._limit = self.duration_us

    def __repr__(self) -> str:
        return f"BackgroundActivityFilter(sensor_size={self.sensor_size}, duration_us={self.duration_us})"


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
