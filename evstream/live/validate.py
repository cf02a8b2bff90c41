"""Events entering the live loop are checked once: on the sensor, sorted in time.

A live source (a camera driver, a network peer, a decoder of a file being written) can hand over
events off its declared sensor or out of order; the kernels downstream assume neither. The
:class:`BatchValidator` runs one numba pass per batch that counts both, then drops off-sensor
events and sorts an unsorted batch (stable, so equal times keep their order), counting each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream._jit import kernel
from evstream.events import check_sensor_size


@kernel
def _scan(xs, ys, ts, width, height):
    """``(events off the sensor, whether the times are non-decreasing)`` in one pass."""
    off = 0
    ordered = True
    previous = ts[0] if ts.shape[0] else 0
    for i in range(xs.shape[0]):
        off += (xs[i] >= width) | (ys[i] >= height)
        ordered &= ts[i] >= previous
        previous = ts[i]
    return off, ordered


@dataclass
class ValidationCounts:
    """What the validator removed or repaired so far."""

    off_sensor_events: int = 0
    unsorted_batches: int = 0


class BatchValidator:
    """``validator(events) -> events`` on the sensor and sorted by time; :attr:`counts` says what it did.

    Args:
        sensor_size: ``(W, H, P)`` the source declares.
    """

    def __init__(self, sensor_size):
        self.width, self.height, _ = check_sensor_size(sensor_size)
        self.counts = ValidationCounts()

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if len(events) == 0:
            return events
        off, ordered = _scan(events["x"], events["y"], events["t"], self.width, self.height)
        if off:
            self.counts.off_sensor_events += int(off)
            events = events[(events["x"] < self.width) & (events["y"] < self.height)]
        if not ordered:
            self.counts.unsorted_batches += 1
            events = events[np.argsort(events["t"], kind="stable")]
        return events
