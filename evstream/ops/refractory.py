"""Refractory period (tonic ``RefractoryPeriod`` / ``refractory_period_numpy`` semantics), for one array or a stream."""

from __future__ import annotations

import math

import numpy as np

from evstream._jit import inline_kernel, kernel
from evstream.events import check_sensor_size
from evstream.ops._time_table import OLD, REBASE_AT, TimeTableFilter, check_window, rebase
from evstream.ops.streams import BASE, LOWEST, STOP, TOLERANCE


@inline_kernel
def _refractory_events(events, table, clock, limit, width, height, out, stream):
    """Keep the events more than ``limit`` us after their pixel's previous one; ``stream`` (a constant) stops at a
    step back."""
    n = 0
    base_t = clock[BASE]
    lowest = clock[LOWEST]
    tolerance = clock[TOLERANCE]
    clock[STOP] = -1
    for i in range(events.shape[0]):
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        t_abs = events[i].t
        if stream and t_abs < lowest:  # a step back: the caller resets and goes on from event i
            clock[STOP] = i
            break
        if x >= width or y >= height:
            n = -(i + 1)
            break
        if stream:
            lowest = max(lowest, t_abs - tolerance)
        t = t_abs - base_t
        if t > REBASE_AT:
            base_t, t = rebase(table, clock, t), 0
        # kept when t - t_previous > limit, i.e. t_previous < t - limit: compared in int32
        if table[y + 1, x + 1] < np.int32(max(t - limit, OLD)):
            out[n] = events[i]
            n += 1
        table[y + 1, x + 1] = np.int32(t)
    clock[LOWEST] = lowest
    return n


@kernel
def _refractory_array(events, table, clock, limit, width, height, out):
    """:func:`_refractory_events` on one array (no step-back check)."""
    return _refractory_events(events, table, clock, limit, width, height, out, False)


@kernel
def _refractory_stream(events, table, clock, limit, width, height, out):
    """:func:`_refractory_events` on a stream's batch: stops at a step back."""
    return _refractory_events(events, table, clock, limit, width, height, out, True)


class RefractoryPeriod(TimeTableFilter):
    """tonic ``RefractoryPeriod``: drop an event that follows its pixel's previous event (kept or
    dropped) by ``refractory_period`` us or less.

    Each call filters its array from a fresh state (a dataset transform); :meth:`stream` keeps
    the state from batch to batch.

    Args:
        sensor_size: ``(W, H, P)``.
        refractory_period: microseconds (tonic's ``delta``, the name of its functional argument).
    """

    _kernels = (_refractory_array, _refractory_stream)

    def __init__(self, sensor_size, refractory_period: float):
        self.sensor_size = check_sensor_size(sensor_size)
        self.refractory_period = check_window("refractory_period", refractory_period)
        # tonic keeps t - t_previous > refractory_period: for integer times, > floor(refractory_period);
        # its table starts at -refractory_period, so a first event is kept when t > 0
        self._limit = math.floor(self.refractory_period)
        self._initial_us = -self._limit

    def __repr__(self) -> str:
        return f"RefractoryPeriod(sensor_size={self.sensor_size}, refractory_period={self.refractory_period:g})"


def refractory_period(events: np.ndarray, sensor_size, refractory_period: float) -> np.ndarray:
    """Drop events that come ``refractory_period`` us or less after their pixel's previous event.

    Args:
        events: EVENT_DTYPE array, in time order.
        sensor_size: ``(W, H, P)``.
        refractory_period: microseconds.

    Returns:
        The kept events, a new array in input order: the same as tonic's ``refractory_period_numpy``.
    """
    return RefractoryPeriod(sensor_size, refractory_period)(events)
