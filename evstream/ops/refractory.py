"""Refractory period (tonic ``RefractoryPeriod`` / ``refractory_period_numpy`` semantics), for one array or a stream."""

from __future__ import annotations

import math

import numpy as np

from evstream._jit import kernel
from evstream.events import check_sensor_size
from evstream.ops._time_table import TimeTableFilter, check_window, since, time_table_events


@kernel
def _refractory_keeps(table, limit, x, y, t):
    """The refractory rule: the pixel's previous event is more than ``limit`` us before ``t``."""
    return table[y + 1, x + 1] < since(t, limit)


@kernel
def _refractory_array(events, table, clock, limit, width, height, out):
    """The refractory period on one array (no step-back check)."""
    return time_table_events(events, table, clock, limit, width, height, out, False, _refractory_keeps)


@kernel
def _refractory_stream(events, table, clock, limit, width, height, out):
    """The refractory period on a stream's batch: stops at a step back."""
    return time_table_events(events, table, clock, limit, width, height, out, True, _refractory_keeps)


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
