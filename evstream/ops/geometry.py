"""Stateless spatial operations: crop / ROI, translation, flips, integer downsampling, polarity merge.

All are one kernel: each axis has a lookup table giving every uint16 coordinate its new value, or -1
when the event leaves the window (``x' = (a * x + b) // f`` inside ``[lo, hi)``, or tonic's
``trunc(x * s)`` for a float downsampling factor); the kept, remapped
events go to a new array or a reused ``out`` buffer (the input is never changed). Having no state,
a stream is processed batch by batch with the same functions. The frozen dataclasses are thin
transforms over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from evstream._jit import inline_kernel, kernel
from evstream.events import EVENT_DTYPE, check_sensor_size
from evstream.ops._events import compacted, contiguous_events, raise_if_off_sensor

_ALL = (0, 2**16)
"""A window holding every uint16 coordinate."""


@inline_kernel
def _remap_events(events, x_table, y_table, merge, drop, out):
    """Write every event with ``x_table[x]`` and ``y_table[y]`` as coordinates (polarity 0 if ``merge``);
    a -1 in either marks an event outside the window.

    ``drop`` (crop, translate): keep the others at the head of ``out``, branch-free (a dropped event is
    written too, then overwritten; ``out`` is as long as ``events``); returns how many are kept.
    Otherwise (the ops that drop nothing) event i goes to ``out[i]`` and a -1 only accumulates, so the
    loop has no moving output index to wait on; returns 1 when some event is outside (``out``
    is then garbage), else 0. Callers pass ``drop`` as a constant, which selects one loop.
    """
    p_mask = 0 if merge else -1
    n = 0
    outside = 0
    for i in range(events.shape[0]):
        e = events[i]
        x = x_table[e.x]
        y = y_table[e.y]
        o = out[n] if drop else out[i]
        o.x = x
        o.y = y
        o.t = e.t
        o.p = e.p & p_mask
        if drop:
            n += np.int64((x | y) >= 0)
        else:
            outside |= np.int64((x | y) < 0)
    return n if drop else outside


@kernel
def _remap_kernel(events, x_table, y_table, merge, out):
    """:func:`_remap_events` dropping the events outside the window; returns how many are kept."""
    return _remap_events(events, x_table, y_table, merge, True, out)


@kernel
def _map_every_kernel(events, x_table, y_table, merge, out):
    """:func:`_remap_events` for the ops that drop nothing; returns 1 when some event is outside."""
    return _remap_events(events, x_table, y_table, merge, False, out)


@lru_cache(maxsize=64)
def _axis_table(window: tuple[int, int], scale: int, offset: int, factor: int) -> np.ndarray:
    """int32 ``table[v] = (scale * v + offset) // factor`` for ``lo <= v < hi`` (``window = (lo, hi)``), else -1.

    Cached and read-only: the live loop applies the same op to every batch.
    """
    low, high = max(window[0], 0), min(max(window[1], 0), 2**16)
    table = np.full(2**16, -1, np.int32)
    if low < high:
        table[low:high] = (scale * np.arange(low, high, dtype=np.int64) + offset) // factor
    table.flags.writeable = False
    return table


@lru_cache(maxsize=64)
def _scaled_axis_table(factor: float) -> np.ndarray:
    """int32 ``table[v] = trunc(v * factor)``, the product in float64 (tonic's ``Downsample``), ``0 < factor <= 1``."""
    table = (np.arange(2**16, dtype=np.float64) * factor).astype(np.int32)
    table.flags.writeable = False
    return table


_IDENTITY = _axis_table(_ALL, 1, 0, 1)


def _remap(events, x_table, y_table, merge=False, strict_size=None, out=None) -> np.ndarray:
    """Run the kernels with the axis tables, into ``out`` if given.

    ``strict_size = (W, H)`` (an event outside the tables' window is an error naming it and that
    size) suits the ops that never drop; they take the exit-free :func:`_map_every_kernel`.
    """
    events = contiguous_events(events)
    if out is None:
        buffer = np.empty_like(events)
    elif out.dtype != EVENT_DTYPE or out.ndim != 1 or not out.flags.c_contiguous or len(out) < len(events):
        raise ValueError(f"out must be a C-contiguous 1-D EVENT_DTYPE array of at least {len(events)} events")
    else:
        buffer = out
    if strict_size is None:
        n = _remap_kernel(events, x_table, y_table, merge, buffer)
    elif _map_every_kernel(events, x_table, y_table, merge, buffer):
        first_bad = np.flatnonzero((x_table[events["x"]] < 0) | (y_table[events["y"]] < 0))[0]
        raise_if_off_sensor(-(int(first_bad) + 1), events, *strict_size)
    else:
        n = len(events)
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
    return _remap(events, _axis_table((x0, x0 + width), 1, -shift_x, 1), _axis_table((y0, y0 + height), 1, -shift_y, 1),
                  out=out)


def translate(events: np.ndarray, sensor_size, dx: int, dy: int, out: np.ndarray | None = None) -> np.ndarray:
    """Shift events by ``(dx, dy)`` pixels, dropping those that leave the sensor."""
    width, height, _ = check_sensor_size(sensor_size)
    dx, dy = int(dx), int(dy)
    return _shifted(events, -dx, -dy, max(-dx, 0), max(-dy, 0), width - abs(dx), height - abs(dy), out)


def flip_lr(events: np.ndarray, sensor_size, out: np.ndarray | None = None) -> np.ndarray:
    """Mirror left-right: ``x -> W - 1 - x`` (tonic ``RandomFlipLR`` when it flips)."""
    width, height, _ = check_sensor_size(sensor_size)
    return _remap(events, _axis_table((0, width), -1, width - 1, 1), _axis_table((0, height), 1, 0, 1),
                  strict_size=(width, height), out=out)


def flip_ud(events: np.ndarray, sensor_size, out: np.ndarray | None = None) -> np.ndarray:
    """Mirror up-down: ``y -> H - 1 - y`` (tonic ``RandomFlipUD`` when it flips)."""
    width, height, _ = check_sensor_size(sensor_size)
    return _remap(events, _axis_table((0, width), 1, 0, 1), _axis_table((0, height), -1, height - 1, 1),
                  strict_size=(width, height), out=out)


def downsample(events: np.ndarray, factor=None, out: np.ndarray | None = None, *, spatial_factor=None,
               time_factor: float = 1) -> np.ndarray:
    """Spatial downsampling: integer division (TA-SNN's ``ds``) or tonic's multiplication; no event is dropped.

    Args:
        events: EVENT_DTYPE array.
        factor: int, or ``(fx, fy)``: ``x // fx``; the new sensor size is ``(ceil(W / fx), ceil(H / fy), P)``.
        out: optional reused buffer, as in :func:`crop`.
        spatial_factor: instead of ``factor``, tonic's ``Downsample``: float or ``(sx, sy)`` in
            ``(0, 1]``, ``x' = trunc(x * sx)`` with the product in float64 (tonic's with a Python float).
        time_factor: tonic's: ``t' = trunc(t * time_factor)`` (float64); 1 leaves times as they are.
    """
    if (factor is None) == (spatial_factor is None):
        raise ValueError("downsample takes one of factor (integer divisor) and spatial_factor (tonic's multiplier)")
    if factor is not None:
        fx, fy = (factor, factor) if np.isscalar(factor) else factor
        fx, fy = int(fx), int(fy)
        if fx < 1 or fy < 1:
            raise ValueError(f"downsample factor must be >= 1, got {factor!r}")
        tables = _axis_table(_ALL, 1, 0, fx), _axis_table(_ALL, 1, 0, fy)
    else:
        sx, sy = (spatial_factor, spatial_factor) if np.isscalar(spatial_factor) else spatial_factor
        sx, sy = float(sx), float(sy)
        if not (0 < sx <= 1 and 0 < sy <= 1):
            raise ValueError(f"downsample spatial_factor must be in (0, 1], got {spatial_factor!r}")
        tables = _scaled_axis_table(sx), _scaled_axis_table(sy)
    result = _remap(events, *tables, strict_size=(2**16, 2**16), out=out)
    if time_factor != 1:
        result["t"] = result["t"] * float(time_factor)
    return result


def merge_polarities(events: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Set every polarity to 0 (tonic ``MergePolarities``); use ``P = 1`` in the sensor size after it."""
    return _remap(events, _IDENTITY, _IDENTITY, merge=True, strict_size=(2**16, 2**16), out=out)


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
    """Transform form of :func:`downsample`, with tonic's ``Downsample`` arguments.

    ``Downsample(spatial_factor=0.25)``, ``Downsample(sensor_size=(W, H, P), target_size=(w, h))``
    (``spatial_factor = target / sensor``) and ``time_factor`` are tonic's (coordinates and times
    multiplied, truncated); ``Downsample(factor=4)`` is evstream's integer division.
    """

    time_factor: float = 1
    spatial_factor: float | tuple[float, float] = 1
    sensor_size: tuple[int, int, int] | None = None
    target_size: tuple[int, int] | None = None
    factor: int | tuple[int, int] | None = None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if self.factor is not None:
            return downsample(events, self.factor, time_factor=self.time_factor)
        if self.target_size is not None:
            if self.sensor_size is None:
                raise ValueError("Downsample: target_size needs sensor_size")
            spatial_factor = tuple(np.asarray(self.target_size) / check_sensor_size(self.sensor_size)[:2])
        else:
            spatial_factor = self.spatial_factor
        return downsample(events, spatial_factor=spatial_factor, time_factor=self.time_factor)


@dataclass(frozen=True)
class MergePolarities:
    """Transform form of :func:`merge_polarities`."""

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return merge_polarities(events)
