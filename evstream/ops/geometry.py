"""Stateless spatial operations: crop / ROI, translation, flips, integer downsampling, polarity merge.

All are one kernel, a window test plus ``x' = (a * x + b) // f`` per axis, that writes the kept,
remapped events to a new array (the input is never changed). Having no state, a stream is processed
batch by batch with the same functions. The frozen dataclasses are thin transforms over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream._jit import kernel
from evstream.events import check_sensor_size
from evstream.ops._events import compacted, contiguous_events, raise_if_off_sensor

_ALL = (0, 2**16)
"""A window holding every uint16 coordinate."""


@kernel
def _remap_kernel(events, x_window, y_window, x_map, y_map, merge, strict, out):
    """Keep events with ``lo <= x < hi`` (and y) and write ``(a * x + b) // f`` to ``out``.

    ``strict``: an event outside the window is an error (returns ``-(i + 1)``) instead of dropped.
    """
    n = 0
    for i in range(events.shape[0]):
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        if x < x_window[0] or x >= x_window[1] or y < y_window[0] or y >= y_window[1]:
            if strict:
                return -(i + 1)
            continue
        out[n].x = (x_map[0] * x + x_map[1]) // x_map[2]
        out[n].y = (y_map[0] * y + y_map[1]) // y_map[2]
        out[n].t = events[i].t
        out[n].p = 0 if merge else events[i].p
        n += 1
    return n


def _remap(events, x_window=_ALL, y_window=_ALL, x_map=(1, 0, 1), y_map=(1, 0, 1), merge=False,
           strict=False) -> np.ndarray:
    events = contiguous_events(events)
    out = np.empty_like(events)
    n = _remap_kernel(events, np.array(x_window, np.int64), np.array(y_window, np.int64),
                      np.array(x_map, np.int64), np.array(y_map, np.int64), merge, strict, out)
    raise_if_off_sensor(n, events, x_window[1], y_window[1])
    return compacted(out, n)


def crop(events: np.ndarray, roi) -> np.ndarray:
    """Keep the events inside a region of interest, in its coordinates.

    Args:
        events: EVENT_DTYPE array.
        roi: ``(x, y, width, height)`` of the region (dv-processing / OpenCV rectangle order).

    Returns:
        The events with ``x <= ex < x + width`` and ``y <= ey < y + height``, shifted by ``-x, -y``.
        Their sensor size is ``(width, height, P)``.
    """
    x0, y0, width, height = (int(v) for v in roi)
    if min(x0, y0) < 0 or min(width, height) <= 0:
        raise ValueError(f"roi must be (x >= 0, y >= 0, width > 0, height > 0), got {roi!r}")
    return _shifted(events, x0, y0, x0, y0, width, height)


def center_crop(events: np.ndarray, sensor_size, size) -> np.ndarray:
    """tonic ``CenterCrop``: a ``size = (width, height)`` (or int) window at the sensor's centre.

    A size larger than the sensor pads instead: events keep their place inside the larger frame.
    """
    width, height, _ = check_sensor_size(sensor_size)
    size_x, size_y = (size, size) if np.isscalar(size) else size
    off_x, off_y = (width - int(size_x)) // 2, (height - int(size_y)) // 2
    return _shifted(events, off_x, off_y, max(off_x, 0), max(off_y, 0), int(size_x), int(size_y))


def _shifted(events, shift_x, shift_y, x0, y0, width, height) -> np.ndarray:
    return _remap(events, (x0, x0 + width), (y0, y0 + height), (1, -shift_x, 1), (1, -shift_y, 1))


def translate(events: np.ndarray, sensor_size, dx: int, dy: int) -> np.ndarray:
    """Shift events by ``(dx, dy)`` pixels, dropping those that leave the sensor."""
    width, height, _ = check_sensor_size(sensor_size)
    dx, dy = int(dx), int(dy)
    return _shifted(events, -dx, -dy, max(-dx, 0), max(-dy, 0), width - abs(dx), height - abs(dy))


def flip_lr(events: np.ndarray, sensor_size) -> np.ndarray:
    """Mirror left-right: ``x -> W - 1 - x`` (tonic ``RandomFlipLR`` when it flips)."""
    width, height, _ = check_sensor_size(sensor_size)
    return _remap(events, (0, width), (0, height), x_map=(-1, width - 1, 1), strict=True)


def flip_ud(events: np.ndarray, sensor_size) -> np.ndarray:
    """Mirror up-down: ``y -> H - 1 - y`` (tonic ``RandomFlipUD`` when it flips)."""
    width, height, _ = check_sensor_size(sensor_size)
    return _remap(events, (0, width), (0, height), y_map=(-1, height - 1, 1), strict=True)


def downsample(events: np.ndarray, factor) -> np.ndarray:
    """Spatial downsampling by integer division of the coordinates (TA-SNN's ``ds``); no event is dropped.

    Args:
        events: EVENT_DTYPE array.
        factor: int, or ``(fx, fy)``; the new sensor size is ``(ceil(W / fx), ceil(H / fy), P)``.
    """
    fx, fy = (factor, factor) if np.isscalar(factor) else factor
    fx, fy = int(fx), int(fy)
    if fx < 1 or fy < 1:
        raise ValueError(f"downsample factor must be >= 1, got {factor!r}")
    return _remap(events, x_map=(1, 0, fx), y_map=(1, 0, fy))


def merge_polarities(events: np.ndarray) -> np.ndarray:
    """Set every polarity to 0 (tonic ``MergePolarities``); use ``P = 1`` in the sensor size after it."""
    return _remap(events, merge=True)


@dataclass(frozen=True)
class Crop:
    """Transform form of :func:`crop`."""

    roi: tuple[int, int, int, int]

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return crop(events, self.roi)


@dataclass(frozen=True)
class CenterCrop:
    """Transform form of :func:`center_crop`."""

    sensor_size: tuple[int, int, int]
    size: int | tuple[int, int]

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return center_crop(events, self.sensor_size, self.size)


@dataclass(frozen=True)
class FlipLR:
    """Transform form of :func:`flip_lr`."""

    sensor_size: tuple[int, int, int]

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return flip_lr(events, self.sensor_size)


@dataclass(frozen=True)
class FlipUD:
    """Transform form of :func:`flip_ud`."""

    sensor_size: tuple[int, int, int]

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return flip_ud(events, self.sensor_size)


@dataclass(frozen=True)
class Downsample:
    """Transform form of :func:`downsample` (integer factor)."""

    factor: int | tuple[int, int]

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return downsample(events, self.factor)


@dataclass(frozen=True)
class MergePolarities:
    """Transform form of :func:`merge_polarities`."""

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return merge_polarities(events)
