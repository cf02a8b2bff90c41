"""Stateless spatial operations: crop / ROI, translation, flips, integer downsampling, polarity merge.

All are one kernel, a window test plus ``x' = (a * x + b) // f`` per axis, that writes the kept,
remapped events to a new array or a reused ``out`` buffer (the input is never changed). Having no
state, a stream is processed batch by batch with the same functions. The frozen dataclasses are thin
transforms over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream._jit import kernel
from evstream.events import EVENT_DTYPE, check_sensor_size
from evstream.ops._events import compacted, contiguous_events, raise_if_off_sensor

_ALL = (0, 2**16)
"""A window holding every uint16 coordinate."""
RECIPROCAL_SHIFT = 40
"""``v // f == (v * ceil(2**40 / f)) >> 40`` for ``0 <= v < 2**23``, ``f <= 2**17``: no division per event."""


@kernel
def _mapped(v, scale, offset, reciprocal):
    """``(scale * v + offset) // f`` with ``reciprocal`` from :func:`_reciprocal` (no division)."""
    return ((scale * v + offset) * reciprocal) >> RECIPROCAL_SHIFT


@kernel
def _remap_kernel(events, windows, x_map, y_map, merge, strict, out):
    """Keep events with ``x0 <= x < x0 + w`` and ``y0 <= y < y0 + h`` (``windows = (x0, w, y0, h)``, w, h >= 0)
    and write ``(a * x + b) // f`` to ``out``, in one branch-free pass.

    ``x_map`` is ``(a, b, m)`` with ``m`` from :func:`_reciprocal` and ``a * x + b >= 0`` inside the window.
    ``strict``: an event outside the window is an error (returns ``-(i + 1)``) instead of dropped.
    Dropped events are written too, then overwritten (no branch to mispredict): ``out`` is as long as ``events``.
    """
    x_low, x_width, y_low, y_height = np.uint64(windows[0]), np.uint64(windows[1]), np.uint64(windows[2]), \
        np.uint64(windows[3])
    p_mask = 0 if merge else -1
    n = 0
    for i in range(events.shape[0]):
        e = events[i]
        x = np.int64(e.x)
        y = np.int64(e.y)
        keep = (np.uint64(x) - x_low < x_width) & (np.uint64(y) - y_low < y_height)
        if strict and not keep:
            return -(i + 1)
        o = out[n]
        o.x = _mapped(x, x_map[0], x_map[1], x_map[2])
        o.y = _mapped(y, y_map[0], y_map[1], y_map[2])
        o.t = e.t
        o.p = e.p & p_mask
        n += np.int64(keep)
    return n


@kernel
def _map_every_kernel(events, windows, x_map, y_map, merge, out):
    """:func:`_remap_kernel` for the ops that drop nothing (flips, downsampling, merge): event i goes to
    ``out[i]`` and the window test only accumulates, so the loop has no exit and no moving output
    index (1.2x faster). Returns 1 when some event lies outside the window (``out`` is then garbage).
    """
    x_low, x_width, y_low, y_height = np.uint64(windows[0]), np.uint64(windows[1]), np.uint64(windows[2]), \
        np.uint64(windows[3])
    p_mask = 0 if merge else -1
    outside = 0
    for i in range(events.shape[0]):
        e = events[i]
        x = np.int64(e.x)
        y = np.int64(e.y)
        outside |= (np.uint64(x) - x_low >= x_width) | (np.uint64(y) - y_low >= y_height)
        o = out[i]
        o.x = _mapped(x, x_map[0], x_map[1], x_map[2])
        o.y = _mapped(y, y_map[0], y_map[1], y_map[2])
        o.t = e.t
        o.p = e.p & p_mask
    return outside


def _reciprocal(factor: int) -> int:
    """The multiplier of :data:`RECIPROCAL_SHIFT` for ``// factor`` (a factor over 2**17 maps any uint16 to 0)."""
    return -(-(1 << RECIPROCAL_SHIFT) // min(factor, 1 << 17))


def _remap(events, x_window=_ALL, y_window=_ALL, x_map=(1, 0, 1), y_map=(1, 0, 1), merge=False, strict=False,
           out=None) -> np.ndarray:
    """Run :func:`_remap_kernel` with ``[lo, hi)`` windows and ``(a, b, f)`` maps, into ``out`` if given.

    ``strict`` (an event outside the window is an error) suits the ops that never drop; they take the
    faster :func:`_map_every_kernel`, and :func:`_remap_kernel` only names the bad event.
    """
    events = contiguous_events(events)
    if out is None:
        buffer = np.empty_like(events)
    elif out.dtype != EVENT_DTYPE or out.ndim != 1 or not out.flags.c_contiguous or len(out) < len(events):
        raise ValueError(f"out must be a C-contiguous 1-D EVENT_DTYPE array of at least {len(events)} events")
    else:
        buffer = out
    windows = np.array([(low, max(high - low, 0)) for low, high in (x_window, y_window)], np.int64).reshape(-1)
    maps = [np.array((a, b, _reciprocal(f)), np.int64) for a, b, f in (x_map, y_map)]
    if strict and not _map_every_kernel(events, windows, *maps, merge, buffer):
        n = len(events)
    else:
        n = _remap_kernel(events, windows, *maps, merge, strict, buffer)
    raise_if_off_sensor(n, events, x_window[1], y_window[1])
    return compacted(buffer, n) if out is None else out[:n]


def crop(events: np.ndarray, roi, out: np.ndarray | None = None) -> np.ndarray:
    """Keep the events inside a region of interest, in its coordinates.

    Args:
        events: EVENT_DTYPE array.
        roi: ``(x, y, width, height)`` of the region (dv-processing / OpenCV rectangle order).
        out: optional reused EVENT_DTYPE buffer, at least as long as ``events``; the result is its head.

    Returns:
        The events with ``x <= ex < x + width`` and ``y <= ey < y + height``, shifted by ``-x, -y``.
        Their sensor size is ``(width, height, P)``.
    """
    x0, y0, width, height = (int(v) for v in roi)
    if min(x0, y0) < 0 or min(width, height) <= 0:
        raise ValueError(f"roi must be (x >= 0, y >= 0, width > 0, height > 0), got {roi!r}")
    return _shifted(events, x0, y0, x0, y0, width, height, out)


def center_crop(events: np.ndarray, sensor_size, size, out: np.ndarray | None = None) -> np.ndarray:
    """tonic ``CenterCrop``: a ``size = (width, height)`` (or int) window at the sensor's centre.

    A size larger than the sensor pads instead: events keep their place inside the larger frame.
    """
    width, height, _ = check_sensor_size(sensor_size)
    size_x, size_y = (size, size) if np.isscalar(size) else size
    off_x, off_y = (width - int(size_x)) // 2, (height - int(size_y)) // 2
    return _shifted(events, off_x, off_y, max(off_x, 0), max(off_y, 0), int(size_x), int(size_y), out)


def _shifted(events, shift_x, shift_y, x0, y0, width, height, out) -> np.ndarray:
    return _remap(events, (x0, x0 + width), (y0, y0 + height), (1, -shift_x, 1), (1, -shift_y, 1), out=out)


def translate(events: np.ndarray, sensor_size, dx: int, dy: int, out: np.ndarray | None = None) -> np.ndarray:
    """Shift events by ``(dx, dy)`` pixels, dropping those that leave the sensor."""
    width, height, _ = check_sensor_size(sensor_size)
    dx, dy = int(dx), int(dy)
    return _shifted(events, -dx, -dy, max(-dx, 0), max(-dy, 0), width - abs(dx), height - abs(dy), out)


def flip_lr(events: np.ndarray, sensor_size, out: np.ndarray | None = None) -> np.ndarray:
    """Mirror left-right: ``x -> W - 1 - x`` (tonic ``RandomFlipLR`` when it flips)."""
    width, height, _ = check_sensor_size(sensor_size)
    return _remap(events, (0, width), (0, height), x_map=(-1, width - 1, 1), strict=True, out=out)


def flip_ud(events: np.ndarray, sensor_size, out: np.ndarray | None = None) -> np.ndarray:
    """Mirror up-down: ``y -> H - 1 - y`` (tonic ``RandomFlipUD`` when it flips)."""
    width, height, _ = check_sensor_size(sensor_size)
    return _remap(events, (0, width), (0, height), y_map=(-1, height - 1, 1), strict=True, out=out)


def downsample(events: np.ndarray, factor, out: np.ndarray | None = None) -> np.ndarray:
    """Spatial downsampling by integer division of the coordinates (TA-SNN's ``ds``); no event is dropped.

    Args:
        events: EVENT_DTYPE array.
        factor: int, or ``(fx, fy)``; the new sensor size is ``(ceil(W / fx), ceil(H / fy), P)``.
        out: optional reused buffer, as in :func:`crop`.
    """
    fx, fy = (factor, factor) if np.isscalar(factor) else factor
    fx, fy = int(fx), int(fy)
    if fx < 1 or fy < 1:
        raise ValueError(f"downsample factor must be >= 1, got {factor!r}")
    return _remap(events, x_map=(1, 0, fx), y_map=(1, 0, fy), strict=True, out=out)


def merge_polarities(events: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Set every polarity to 0 (tonic ``MergePolarities``); use ``P = 1`` in the sensor size after it."""
    return _remap(events, merge=True, strict=True, out=out)


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
