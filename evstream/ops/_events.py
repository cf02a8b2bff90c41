"""Input and output handling shared by the ops: checked contiguous event arrays, fast copies, kernel results.

The ops' kernels take C-contiguous :data:`~evstream.events.EVENT_DTYPE` arrays, write kept events
to an ``out`` buffer and report the first event off the sensor as ``-(i + 1)``; these helpers
prepare their input and turn their output into the arrays the public functions return.
"""

from __future__ import annotations

import numpy as np

from evstream.events import EVENT_DTYPE, as_events


def contiguous_events(events, *, convert: bool = False) -> np.ndarray:
    """A C-contiguous 1-D EVENT_DTYPE array (the input itself when it already is one).

    Args:
        events: the input events.
        convert: first convert any structured array with fields x, y, t, p (tonic's, bool or
            signed polarity) with :func:`~evstream.events.as_events`, as the representations do;
            without it any other dtype is a TypeError (the filters return the input's own records).
    """
    events = np.asarray(events)
    if convert:
        events = as_events(events)
    if events.dtype != EVENT_DTYPE or events.ndim != 1:
        raise TypeError(f"expected a 1-D EVENT_DTYPE array, got {events.dtype} with shape {events.shape} "
                        "(convert with evstream.as_events)")
    return np.ascontiguousarray(events)


def copy_events(events: np.ndarray) -> np.ndarray:
    """A copy of a contiguous event array, made as bytes (numpy copies packed records field by field, ~6x slower)."""
    return events.view(np.uint8).copy().view(EVENT_DTYPE)


def copy_into(out: np.ndarray, start: int, events: np.ndarray) -> None:
    """Write contiguous ``events`` to ``out[start:]``, as bytes (see :func:`copy_events`)."""
    size = EVENT_DTYPE.itemsize
    out.view(np.uint8)[start * size:(start + len(events)) * size] = events.view(np.uint8)


def compacted(out: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` events a kernel wrote to ``out``; a small result is copied so it does not pin ``out``."""
    return out[:n] if 2 * n >= len(out) else copy_events(out[:n])


def raise_if_off_sensor(code: int, events: np.ndarray, width: int, height: int) -> None:
    """Turn a kernel's error code ``-(i + 1)`` (event i is off the sensor) into a ValueError naming the event."""
    if code < 0:
        bad = events[-code - 1]
        raise ValueError(f"event {-code - 1} at (x={bad['x']}, y={bad['y']}) is outside the {width}x{height} sensor")
