"""Refractory period (tonic ``refractory_period_numpy`` semantics), for one array or a stream."""

from __future__ import annotations

import math

import numpy as np

from evstream._jit import kernel
from evstream.ops._time_table import OLD, REBASE_AT, TimeTable, TimeTableFilter, check_window, rebase


@kernel
def _refractory_kernel(events, table, base, limit, width, height, out):
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
        # kept when t - t_previous > limit, i.e. t_previous < t - limit: compared in int32
        if table[y + 1, x + 1] < np.int32(max(t - limit, OLD)):
            out[n] = events[i]
            n += 1
        table[y + 1, x + 1] = np.int32(t)
    return n


class RefractoryFilter(TimeTableFilter):
    """Streaming tonic ``RefractoryPeriod``: drop an event that follows its pixel's previous event
    (kept or dropped) by ``refractory_period`` us or less.

    Args:
        sensor_size: ``(W, H, P)``.
        refractory_period: microseconds (tonic's name and meaning).
    """

    _kernel = staticmethod(_refractory_kernel)

    def __init__(self, sensor_size, refractory_period: float):
        self.refractory_period = check_window("refractory_period", refractory_period)
        # tonic keeps t - t_previous > refractory_period: for integer times, > floor(refractory_period);
        # its table starts at -refractory_period, so a first event is kept when t > 0
        self._limit = math.floor(self.refractory_period)
        self.state = TimeTable(sensor_size, initial_us=-self._limit)

    def __repr__(self) -> str:
        return f"RefractoryFilter(sensor_size={self.state.sensor_size}, refractory_period={self.refractory_period:g})"


def refractory_period(events: np.ndarray, sensor_size, refractory_period: float) -> np.ndarray:
    """Drop events that come ``refractory_period`` us or less after their pixel's previous event.

    Args:
        events: EVENT_DTYPE array, in time order.
        sensor_size: ``(W, H, P)``.
        refractory_period: microseconds.

    Returns:
        The kept events, a new array in input order: the same as tonic's ``refractory_period_numpy``.
    """
    return RefractoryFilter(sensor_size, refractory_period)(events)
