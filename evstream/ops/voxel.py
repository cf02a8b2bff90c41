"""Voxel grid: signed events spread over time bins by linear interpolation (Zhu et al. 2019).

Same values as tonic's ``ToVoxelGrid`` with 0/1 integer polarity, without tonic's two traps:
the caller's array is never modified, and boolean polarity (tonic's own dtype, which tonic turns
into all +1) is converted to 0/1 first, so OFF events always count -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream._jit import PREFETCH_AHEAD, kernel, prefetch_for_write
from evstream.events import check_sensor_size
from evstream.ops._events import contiguous_events
from evstream.ops.frames import event_status, frame_buffer, raise_for_status


@kernel
def _bin_position(t, t0, span, n_bins):
    """tonic's ``B (t - t0) / span`` in the same floating-point operations (0 when span is 0)."""
    return n_bins * (np.float64(t) - np.float64(t0)) / np.float64(span) if span > 0 else 0.0


@kernel
def _first_in_bin(events, t0, span, n_bins, b):
    """The first index whose bin ``int(position)`` is >= b (positions never decrease along sorted events)."""
    low = 0
    high = events.shape[0]
    while low < high:
        middle = (low + high) >> 1
        if int(_bin_position(events[middle].t, t0, span, n_bins)) < b:
            low = middle + 1
        else:
            high = middle
    return low


@kernel
def _weights(e, t0, span, n_bins):
    """The left and right parts ``(2p - 1)(1 - d)`` and ``(2p - 1) d`` of event ``e``, in tonic's operations."""
    position = _bin_position(e.t, t0, span, n_bins)
    sign = 2.0 * e.p - 1.0
    fraction = position - int(position)
    return sign * (1.0 - fraction), sign * fraction


@kernel
def _voxel_grid(events, bounds, pixels, rights, out):
    """Add ``(2p - 1)(1 - d)`` to bin ``i`` and ``(2p - 1) d`` to bin ``i + 1``, where ``i + d = B (t - t0) / span``.

    ``out`` is ``[B, 1, H, W]`` float; ``bounds`` from :func:`_bin_bounds`. Plane b first takes the
    left parts of bin b's events, then the right parts of bin b - 1's, saved in the scratch
    ``pixels``/``rights [2, max events per bin]``: tonic's summation order, one plane at a time.
    Each pass prefetches the pixel ``PREFETCH_AHEAD`` events ahead, so the random read-modify-writes
    on planes beyond L2 overlap.
    Returns the status of the first bad event (the caller raises; the grid is then partial).
    """
    n_bins = out.shape[0]
    height = out.shape[2]
    width = out.shape[3]
    planes = out.reshape(n_bins, height * width)
    t0 = events[0].t
    span = events[events.shape[0] - 1].t - t0
    saved = 0
    for b in range(n_bins):
        now = b % 2
        plane = planes[b]
        part = events[bounds[b]:bounds[b + 1]]  # indices from 0: no negative-index wraparound per event
        count = part.shape[0]
        previous_t = part[0].t if count else 0
        for i in range(count):
            if i + PREFETCH_AHEAD < count:
                ahead = part[i + PREFETCH_AHEAD]
                prefetch_for_write(plane, np.int64(ahead.y) * width + ahead.x)
            e = part[i]
            status = event_status(e, previous_t, True, width, height)
            if status:
                return status
            previous_t = e.t
            left, right = _weights(e, t0, span, n_bins)
            pixel = e.y * width + e.x
            plane[pixel] += left
            pixels[now, i] = pixel
            rights[now, i] = right
        for j in range(saved):
            if j + PREFETCH_AHEAD < saved:
                prefetch_for_write(plane, np.int64(pixels[1 - now, j + PREFETCH_AHEAD]))
            plane[pixels[1 - now, j]] += rights[1 - now, j]
        saved = count
    return 0


@kernel
def _bin_bounds(events, bounds):
    """``bounds[b]`` = the first index in a bin >= b, for b = 0 .. B (B = ``len(bounds) - 1``)."""
    n_bins = bounds.shape[0] - 1
    t0 = events[0].t
    span = events[events.shape[0] - 1].t - t0
    for b in range(n_bins + 1):
        bounds[b] = _first_in_bin(events, t0, span, n_bins, b)


def to_voxel_grid(events: np.ndarray, sensor_size, n_time_bins: int, out: np.ndarray | None = None) -> np.ndarray:
    """Voxel grid of the events' whole time range, tonic's ``to_voxel_grid_numpy`` with int polarity.

    Args:
        events: time-sorted events; bool or signed polarity is converted, the input is never modified.
        sensor_size: ``(W, H, 2)``.
        n_time_bins: number of time bins B; the first event is at bin 0, the last at bin B.
        out: optional reused ``[B, 1, H, W]`` float buffer (zeroed first).

    Shape:
        ``[B, 1, H, W]`` (tonic's shape).

    Returns:
        float64 grid, equal to tonic's (same operations, same summation order per pixel).
        All events at one timestamp go to bin 0 with weight 1 (tonic divides by zero there).
    """
    width, height, polarities = check_sensor_size(sensor_size)
    if polarities != 2:
        raise ValueError(f"to_voxel_grid: sensor_size must have 2 polarities, got {sensor_size!r}")
    if not int(n_time_bins) > 0:
        raise ValueError(f"to_voxel_grid: n_time_bins must be > 0, got {n_time_bins}")
    events = contiguous_events(events, convert=True)
    grid = frame_buffer((int(n_time_bins), 1, height, width), np.float64, out, "to_voxel_grid")
    if not len(events):
        return grid
    bounds = np.empty(int(n_time_bins) + 1, np.int64)
    _bin_bounds(events, bounds)
    longest = int(np.diff(bounds).max())
    pixels, rights = np.empty((2, longest), np.int32), np.empty((2, longest))
    status = _voxel_grid(events, bounds, pixels, rights, grid)
    raise_for_status(status, "to_voxel_grid")
    return grid


@dataclass(frozen=True)
class ToVoxelGrid:
    """Transform calling :func:`to_voxel_grid` (tonic's ``ToVoxelGrid`` arguments)."""

    sensor_size: tuple[int, int, int]
    n_time_bins: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_voxel_grid(events, self.sensor_size, self.n_time_bins)
