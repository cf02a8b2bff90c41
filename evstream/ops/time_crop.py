"""Keep the events inside a time interval (tonic's ``CropTime``), stateless."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream.ops._events import contiguous_events


def crop_time(events: np.ndarray, min_time: float = 0, max_time: float | None = None) -> np.ndarray:
    """The events with ``min_time <= t <= max_time`` (both ends kept, as tonic), in input order.

    Args:
        events: EVENT_DTYPE array (any order).
        min_time: microseconds.
        max_time: microseconds; None keeps everything from ``min_time`` on.

    Returns:
        A new array (tonic's boolean selection; times need not be sorted).
    """
    events = contiguous_events(events)
    t = events["t"]
    keep = t >= min_time
    if max_time is not None:
        keep &= t <= max_time
    return events[keep]


@dataclass(frozen=True)
class CropTime:
    """tonic's ``CropTime(min=0, max=None)``: :func:`crop_time` per call.

    Unlike tonic's, ``max=None`` means "to the end" on every call: tonic's instance stores the
    first sample's largest time as its ``max`` and crops later samples there.
    """

    min: float = 0
    max: float | None = None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return crop_time(events, self.min, self.max)
