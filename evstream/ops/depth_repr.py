"""Depth-network inputs on MVSEC: the cumulative stack (models.md §5.1) and StereoSpike's histogram (§5.3).

* Cumulative stacking: the window is cut into T bins with 2-polarity count frames E_k, and step t
  sees ``X_t = sum_{k <= t} E_k``, so later steps carry more context and ``X_T`` is the window's
  whole histogram.
* StereoSpike: per camera one 2-channel count histogram of the 50 ms before each depth map; left
  and right are concatenated to 4 channels. Raw counts, no normalisation.

Channel c counts events of polarity p = c (0 OFF, 1 ON).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream.events import check_sensor_size
from evstream.ops._events import contiguous_events
from evstream.ops.frames import count_into, frame_buffer, search_times


def to_cumulative_stack(events: np.ndarray, sensor_size, n_time_bins: int, start_time=None, end_time=None,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Cumulative 2-polarity count frames ``X_t = sum_{k <= t} E_k`` over ``[start_time, end_time)``.

    Args:
        events: time-sorted events.
        sensor_size: ``(W, H, 2)``.
        n_time_bins: T; bin k is ``[start + k * span // T, start + (k + 1) * span // T)``.
        start_time, end_time: window in µs (default: first event, last event + 1).
        out: optional reused ``[T, 2, H, W]`` float32 buffer.

    Shape:
        ``[T, 2, H, W]`` float32, non-decreasing along T.
    """
    width, height, _ = check_sensor_size(sensor_size)
    if not int(n_time_bins) > 0:
        raise ValueError(f"to_cumulative_stack: n_time_bins must be > 0, got {n_time_bins}")
    events = contiguous_events(events, convert=True)
    stack = frame_buffer((int(n_time_bins), 2, height, width), np.float32, out, "to_cumulative_stack")
    if len(events) == 0 and (start_time is None or end_time is None):
        return stack
    start = int(events["t"][0]) if start_time is None else int(start_time)
    end = int(events["t"][-1]) + 1 if end_time is None else int(end_time)
    edges = start + np.arange(int(n_time_bins) + 1, dtype=np.int64) * (end - start) // int(n_time_bins)
    bounds = search_times(events, edges)
    count_into(events, bounds[:-1], bounds[1:], stack, True, "to_cumulative_stack")
    for k in range(1, len(stack)):  # in place, frame by frame: np.cumsum(axis=0) strides across frames
        stack[k] += stack[k - 1]
    return stack


def to_stereospike_histogram(events: np.ndarray, sensor_size, end_time: int, window_us: int = 50_000,
                             out: np.ndarray | None = None) -> np.ndarray:
    """StereoSpike's per-camera input: event counts per polarity in ``[end_time - window_us, end_time)``.

    Shape:
        ``[2, H, W]`` float32 raw counts.
    """
    width, height, _ = check_sensor_size(sensor_size)
    if not int(window_us) > 0:
        raise ValueError(f"to_stereospike_histogram: window_us must be > 0, got {window_us}")
    events = contiguous_events(events, convert=True)
    histogram = frame_buffer((2, height, width), np.float32, out, "to_stereospike_histogram")
    bounds = search_times(events, [int(end_time) - int(window_us), int(end_time)])
    count_into(events, bounds[:1], bounds[1:], histogram[np.newaxis], True, "to_stereospike_histogram")
    return histogram


def to_stereospike_input(left_events: np.ndarray, right_events: np.ndarray, sensor_size, end_time: int,
                         window_us: int = 50_000) -> np.ndarray:
    """Left and right StereoSpike histograms concatenated (left channels first).

    Shape:
        ``[4, H, W]`` float32.
    """
    width, height, _ = check_sensor_size(sensor_size)
    both = np.zeros((4, height, width), np.float32)
    to_stereospike_histogram(left_events, sensor_size, end_time, window_us, out=both[:2])
    to_stereospike_histogram(right_events, sensor_size, end_time, window_us, out=both[2:])
    return both


@dataclass(frozen=True)
class ToCumulativeStack:
    """Transform calling :func:`to_cumulative_stack` over each sample's own time range."""

    sensor_size: tuple[int, int, int]
    n_time_bins: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_cumulative_stack(events, self.sensor_size, self.n_time_bins)


@dataclass(frozen=True)
class ToStereoSpikeInput:
    """Transform calling :func:`to_stereospike_input` for a (left, right, end_time) triple."""

    sensor_size: tuple[int, int, int]
    window_us: int = 50_000

    def __call__(self, left_events: np.ndarray, right_events: np.ndarray, end_time: int) -> np.ndarray:
        return to_stereospike_input(left_events, right_events, self.sensor_size, end_time, self.window_us)
