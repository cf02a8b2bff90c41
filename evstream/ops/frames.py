"""Count frames: events summed per (frame, polarity, y, x), sliced exactly as tonic slices them.

:func:`to_frame` gives the same frames as ``tonic.functional.to_frame_numpy`` for its four slicing
modes (time window, event count, number of time bins, number of event bins) with ``overlap`` and
``include_incomplete``. Slicing is computed once per call from the timestamps (binary search,
O(frames log N), no copy of the ``t`` column); one numba pass then counts each slice's events
into the output buffer.

The counting kernel :func:`_count_ranges` is shared by the other count-based representations
(TA-SNN stacks, the depth representations, spikingjelly-style integration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream._jit import PREFETCH_AHEAD, PREFETCH_MIN_BYTES, inline_kernel, kernel, prefetch_for_write
from evstream._parallel import decode_threads, run_parts, split_weighted
from evstream.events import check_sensor_size
from evstream.ops._events import contiguous_events

STATUS_BAD_COORDINATE = 1
STATUS_UNSORTED = 2


@kernel
def on_sensor(e, width, height):
    """Whether event ``e`` lies on a ``width x height`` sensor with polarity 0 or 1."""
    return e.x < width and e.y < height and 0 <= e.p <= 1


@kernel
def event_status(e, previous_t, check_sorted, width, height):
    """The counting-kernel status of one event: ``STATUS_UNSORTED`` when ``check_sorted`` and ``e.t`` is
    below the previous event's ``previous_t``, ``STATUS_BAD_COORDINATE`` when it is not :func:`on_sensor`.

    Every representation kernel checks its events this way and skips the ones with a bad coordinate.
    """
    status = 0
    if check_sorted and e.t < previous_t:
        status = STATUS_UNSORTED
    if not on_sensor(e, width, height):
        status |= STATUS_BAD_COORDINATE
    return status


@inline_kernel
def for_each_binned_event(events, bounds, width, height, apply, target):
    """Call ``apply(target, k, e)`` for each event ``e`` of bin ``k``, ``events[bounds[k]:bounds[k + 1]]``, in order.

    Every event is checked as the counting kernels check theirs (:func:`event_status`, times sorted
    within a bin); those off the ``width x height`` sensor are skipped. Returns the bins' status.
    """
    status = 0
    for k in range(bounds.shape[0] - 1):
        part = events[bounds[k]:bounds[k + 1]]  # indices from 0: no negative-index wraparound per event
        previous_t = part[0].t if part.shape[0] else 0
        for i in range(part.shape[0]):
            e = part[i]
            bad = event_status(e, previous_t, True, width, height)
            previous_t = e.t
            if bad:
                status |= bad
                if bad & STATUS_BAD_COORDINATE:
                    continue
            apply(target, k, e)
    return status


@inline_kernel
def _count_slices(events, starts, ends, check_sorted, lookahead, out):
    """Add 1 at ``out[f, min(p, C - 1), y, x]`` for every event in ``events[starts[f]:ends[f]]``.

    ``out`` is ``[F, C, H, W]`` (C = 1 merges polarities). Returns 0, or ``STATUS_BAD_COORDINATE`` when an
    event lies outside the frame (it is skipped), or ``STATUS_UNSORTED`` when ``check_sorted`` and the
    timestamps inside a slice decrease. ``lookahead > 0`` prefetches the cell that many events ahead.
    """
    channels = out.shape[1]
    height = out.shape[2]
    width = out.shape[3]
    status = 0
    for f in range(starts.shape[0]):
        part = events[starts[f]:ends[f]]  # indices from 0: no negative-index wraparound per event
        count = part.shape[0]
        previous_t = part[0].t if count else 0
        for i in range(count):
            if lookahead and i + lookahead < count:
                ahead = part[i + lookahead]
                channel = np.int64(min(ahead.p, channels - 1))
                prefetch_for_write(out, ((f * channels + channel) * height + ahead.y) * width + ahead.x)
            e = part[i]
            bad = event_status(e, previous_t, check_sorted, width, height)
            previous_t = e.t
            if bad:
                status |= bad
                if bad & STATUS_BAD_COORDINATE:
                    continue
            out[f, min(e.p, channels - 1), e.y, e.x] += 1
    return status


@kernel
def _count_ranges(events, starts, ends, check_sorted, out):
    """:func:`_count_slices` without prefetching."""
    return _count_slices(events, starts, ends, check_sorted, 0, out)


@kernel
def _count_ranges_prefetching(events, starts, ends, check_sorted, out):
    """:func:`_count_slices` prefetching ``PREFETCH_AHEAD`` events ahead (frames beyond ``PREFETCH_MIN_BYTES``)."""
    return _count_slices(events, starts, ends, check_sorted, PREFETCH_AHEAD, out)


@kernel
def _search_times(events, values, out):
    """``out[k]`` = the first index i with ``events[i].t >= values[k]`` (numpy's ``searchsorted``, side left)."""
    for k in range(values.shape[0]):
        low = 0
        high = events.shape[0]
        value = values[k]
        while low < high:
            middle = (low + high) >> 1
            if events[middle].t < value:
                low = middle + 1
            else:
                high = middle
        out[k] = low


def search_times(events: np.ndarray, values) -> np.ndarray:
    """``np.searchsorted(events["t"], values)`` without numpy's copy of the strided ``t`` column.

    Args:
        events: contiguous EVENT_DTYPE events sorted by t; values: int or float times.

    Returns:
        int64 indices, the shape of ``values``.
    """
    values = np.asarray(values)
    flat = np.ascontiguousarray(values.reshape(-1), dtype=np.float64 if values.dtype.kind == "f" else np.int64)
    out = np.empty(values.shape, np.int64)  # not ascontiguousarray's shape: it makes a scalar 1-D
    _search_times(events, flat, out.reshape(-1))
    return out


def raise_for_status(status: int, where: str) -> None:
    """Turn a counting kernel's status into a ValueError naming the function."""
    if status & STATUS_BAD_COORDINATE:
        raise ValueError(f"{where}: events outside sensor_size (x >= W, y >= H or p not in {{0, 1}})")
    if status & STATUS_UNSORTED:
        raise ValueError(f"{where}: events must be sorted by t")


def frame_buffer(shape: tuple[int, ...], dtype, out: np.ndarray | None, where: str,
                 zeroed: bool = True) -> np.ndarray:
    """An output buffer: ``out`` after checking its shape and contiguity, else a new array; zeroed unless
    ``zeroed=False`` (for kernels that write every element)."""
    if out is None:
        return np.zeros(shape, dtype=dtype) if zeroed else np.empty(shape, dtype=dtype)
    if out.shape != tuple(shape) or not out.flags.c_contiguous:
        raise ValueError(f"{where}: out must be a C-contiguous array of shape {tuple(shape)}, got {out.shape}")
    if zeroed:
        out.fill(0)
    return out


def count_into(events: np.ndarray, starts, ends, out: np.ndarray, check_sorted: bool, where: str) -> np.ndarray:
    """Run the counting kernel over index slices ``[starts[f], ends[f])`` into ``out`` and check its status.

    Frames of a large input are counted by several threads, each writing its own frames
    (:mod:`evstream._parallel`): the same counts as one thread.
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    count = _count_ranges_prefetching if len(out) and out[0].nbytes >= PREFETCH_MIN_BYTES else _count_ranges
    parts = split_weighted(np.maximum(ends - starts, 0), decode_threads(None))
    statuses = run_parts(lambda part: count(events, starts[part[0]:part[1]], ends[part[0]:part[1]], check_sorted,
                                            out[part[0]:part[1]]), parts)
    for status in statuses:
        if isinstance(status, Exception):
            raise status
    raise_for_status(int(np.bitwise_or.reduce(np.array(statuses, dtype=np.int64))) if statuses else 0, where)
    return out


def _time_window_slices(events, time_window, overlap, include_incomplete, start_time, end_time):
    stride = time_window - overlap
    if not stride > 0:
        raise ValueError(f"to_frame: time_window - overlap must be > 0, got {stride}")
    if len(events) == 0 and (start_time is None or end_time is None):
        return np.zeros(1, np.int64), np.zeros(1, np.int64)
    start = events["t"][0] if start_time is None else start_time
    end = events["t"][-1] if end_time is None else end_time
    rounding = np.ceil if include_incomplete else np.floor
    n_slices = max(int(rounding((end - start - time_window) / stride) + 1), 1)
    window_starts = np.arange(n_slices) * stride + start
    return search_times(events, window_starts), search_times(events, window_starts + time_window)


def _event_count_slices(n_events, event_count, overlap, include_incomplete):
    stride = event_count - overlap
    if not stride > 0:
        raise ValueError(f"to_frame: event_count - overlap must be > 0, got {stride}")
    count = min(event_count, n_events)
    rounding = np.ceil if include_incomplete else np.floor
    n_slices = int(rounding((n_events - count) / stride) + 1)
    starts = (np.arange(n_slices) * stride).astype(np.int64)
    return np.minimum(starts, n_events), np.minimum(starts + count, n_events)


def _time_bin_slices(events, n_time_bins, overlap):
    if len(events) == 0:
        return np.zeros(n_time_bins, np.int64), np.zeros(n_time_bins, np.int64)
    first, last = events["t"][0], events["t"][-1]
    window = (last - first) // n_time_bins * (1 + overlap)
    window_starts = np.arange(n_time_bins) * (window * (1 - overlap)) + first
    return search_times(events, window_starts), search_times(events, window_starts + window)


def _event_bin_slices(n_events, n_event_bins, overlap):
    count = int(n_events // n_event_bins * (1 + overlap))
    starts = np.arange(n_event_bins, dtype=np.int64) * int(count * (1 - overlap))
    return np.minimum(starts, n_events), np.minimum(starts + count, n_events)


def frame_slices(events, time_window=None, event_count=None, n_time_bins=None, n_event_bins=None, overlap=0.0,
                 include_incomplete=False, start_time=None, end_time=None) -> tuple[np.ndarray, np.ndarray]:
    """Index slices ``[starts[f], ends[f])`` of each frame, exactly as tonic's slicers cut them.

    Args:
        events: contiguous EVENT_DTYPE events, time-sorted for the time modes.
        time_window, event_count, n_time_bins, n_event_bins: exactly one sets the slicing mode.
        overlap: µs for ``time_window``, events for ``event_count``, a fraction of a bin (< 1) for the bins.
        include_incomplete: keep the last, shorter slice (``time_window`` and ``event_count`` only).
        start_time, end_time: optional window range for ``time_window`` (default: first and last event).

    Returns:
        ``(starts, ends)``, two int64 arrays with one entry per frame. Empty events give one empty
        slice (``time_window``, ``event_count``) or ``n_*_bins`` empty slices.
    """
    modes = {"time_window": time_window, "event_count": event_count, "n_time_bins": n_time_bins,
             "n_event_bins": n_event_bins}
    chosen = [name for name, value in modes.items() if value is not None]
    if len(chosen) != 1:
        raise ValueError("to_frame: set exactly one of time_window, event_count, n_time_bins or n_event_bins")
    if not modes[chosen[0]] > 0:
        raise ValueError(f"to_frame: {chosen[0]} must be > 0, got {modes[chosen[0]]}")
    if n_time_bins is not None or n_event_bins is not None:
        if not 0 <= overlap < 1:
            raise ValueError(f"to_frame: overlap for bins is a fraction in [0, 1), got {overlap}")
    if time_window is not None:
        starts, ends = _time_window_slices(events, time_window, overlap, include_incomplete, start_time, end_time)
    elif event_count is not None:
        starts, ends = _event_count_slices(len(events), event_count, overlap, include_incomplete)
    elif n_time_bins is not None:
        starts, ends = _time_bin_slices(events, int(n_time_bins), overlap)
    else:
        starts, ends = _event_bin_slices(len(events), int(n_event_bins), overlap)
    return starts.astype(np.int64), ends.astype(np.int64)


def to_frame(events: np.ndarray, sensor_size, time_window=None, event_count=None, n_time_bins=None,
             n_event_bins=None, overlap=0.0, include_incomplete=False, start_time=None, end_time=None,
             out: np.ndarray | None = None) -> np.ndarray:
    """Count events into frames, one frame per slice, the same as ``tonic.functional.to_frame_numpy``.

    Args:
        events: time-sorted events (:data:`~evstream.events.EVENT_DTYPE` or any x, y, t, p array).
        sensor_size: ``(W, H, P)``; ``P = 1`` merges polarities (all events must then share one).
        time_window, event_count, n_time_bins, n_event_bins, overlap, include_incomplete,
        start_time, end_time: tonic's slicing (see :func:`frame_slices`).
        out: optional reused ``[F, P, H, W]`` buffer (any numeric dtype); it is zeroed first.

    Shape:
        ``[F, P, H, W]``, F = number of slices.

    Time-sliced modes need time-sorted events: a decrease inside a frame raises ValueError.

    Returns:
        int16 counts like tonic (a pixel with more than 32767 events in one frame wraps, as in tonic).
        Empty events give one zero frame (``time_window``, ``event_count``) or ``n_*_bins`` zero frames.
    """
    width, height, polarities = check_sensor_size(sensor_size)
    events = contiguous_events(events, convert=True)
    if polarities == 1 and len(events) and events["p"].min() != events["p"].max():
        raise ValueError("to_frame: single polarity sensor, but events contain both polarities")
    starts, ends = frame_slices(events, time_window, event_count, n_time_bins, n_event_bins, overlap,
                                include_incomplete, start_time, end_time)
    frames = frame_buffer((len(starts), polarities, height, width), np.int16, out, "to_frame")
    time_sliced = time_window is not None or n_time_bins is not None
    if time_sliced and len(events) and events["t"][0] > events["t"][-1]:
        raise_for_status(STATUS_UNSORTED, "to_frame")
    return count_into(events, starts, ends, frames, time_sliced, "to_frame")


@dataclass(frozen=True)
class ToFrame:
    """Transform calling :func:`to_frame` (tonic's ``ToFrame`` arguments)."""

    sensor_size: tuple[int, int, int]
    time_window: float | None = None
    event_count: int | None = None
    n_time_bins: int | None = None
    n_event_bins: int | None = None
    overlap: float = 0.0
    include_incomplete: bool = False
    start_time: float | None = None
    end_time: float | None = None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_frame(events, self.sensor_size, self.time_window, self.event_count, self.n_time_bins,
                        self.n_event_bins, self.overlap, self.include_incomplete, self.start_time, self.end_time)
