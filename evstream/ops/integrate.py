"""spikingjelly-style integrated frames: 2-channel event counts, split by number, by time or by duration.

The same frames as ``spikingjelly.datasets.integrate_events_by_fixed_frames_number`` (``split_by``
``'number'`` or ``'time'``) and ``integrate_events_by_fixed_duration``: channel 1 counts ON events,
channel 0 OFF events, float64 ``[F, 2, H, W]``. The last frame always runs to the last event.
Where spikingjelly fails (an empty time slice, or all events at one timestamp) these functions
return empty frames, or one frame holding every event, instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream.events import check_sensor_size
from evstream.ops._events import contiguous_events
from evstream.ops.frames import count_into, frame_buffer, search_times


def _integrate(events, sensor_size, starts, ends, check_sorted, out, where):
    width, height, _ = check_sensor_size(sensor_size)
    frames = frame_buffer((len(starts), 2, height, width), np.float64, out, where)
    return count_into(events, starts, ends, frames, check_sorted, where)


def integrate_by_number(events: np.ndarray, sensor_size, frames_num: int, out: np.ndarray | None = None) -> np.ndarray:
    """``frames_num`` frames of ``N // frames_num`` events each; the last frame also takes the remainder.

    Args:
        events: events in any order (order defines the split).
        sensor_size: ``(W, H, 2)``.
        frames_num: number of frames M (> 0).
        out: optional reused ``[M, 2, H, W]`` buffer.

    Returns:
        float64 ``[M, 2, H, W]`` counts (spikingjelly ``split_by='number'``).
    """
    if not int(frames_num) > 0:
        raise ValueError(f"integrate_by_number: frames_num must be > 0, got {frames_num}")
    events = contiguous_events(events, convert=True)
    per_frame = len(events) // frames_num
    starts = np.arange(frames_num, dtype=np.int64) * per_frame
    ends = starts + per_frame
    ends[-1] = len(events)
    return _integrate(events, sensor_size, starts, ends, False, out, "integrate_by_number")


def integrate_by_time(events: np.ndarray, sensor_size, frames_num: int, out: np.ndarray | None = None) -> np.ndarray:
    """``frames_num`` frames of ``(t_last - t_first) // frames_num`` µs each; the last runs to the last event.

    Args:
        events: time-sorted events.
        sensor_size: ``(W, H, 2)``.
        frames_num: number of frames M (> 0).
        out: optional reused ``[M, 2, H, W]`` buffer.

    Returns:
        float64 ``[M, 2, H, W]`` counts (spikingjelly ``split_by='time'``).
    """
    if not int(frames_num) > 0:
        raise ValueError(f"integrate_by_time: frames_num must be > 0, got {frames_num}")
    events = contiguous_events(events, convert=True)
    if len(events):
        first, last = int(events["t"][0]), int(events["t"][-1])
        duration = (last - first) // frames_num
        lefts = np.arange(frames_num, dtype=np.int64) * duration + first
        starts, ends = search_times(events, lefts), search_times(events, lefts + duration)
        ends[-1] = len(events)
    else:
        starts = ends = np.zeros(frames_num, np.int64)
    return _integrate(events, sensor_size, starts, ends, True, out, "integrate_by_time")


def integrate_by_duration(events: np.ndarray, sensor_size, duration: int, out: np.ndarray | None = None) -> np.ndarray:
    """Frames of ``duration`` µs from the first event: ``ceil((t_last - t_first) / duration)`` of them.

    Args:
        events: time-sorted events.
        sensor_size: ``(W, H, 2)``.
        duration: frame length in µs (> 0).
        out: optional reused ``[F, 2, H, W]`` buffer.

    Returns:
        float64 ``[F, 2, H, W]`` counts; the last frame also holds the events at or after its end
        (spikingjelly's ``integrate_events_by_fixed_duration``). Empty events give ``F = 0``.
    """
    if not int(duration) > 0:
        raise ValueError(f"integrate_by_duration: duration must be > 0, got {duration}")
    duration = int(duration)
    events = contiguous_events(events, convert=True)
    if len(events):
        first, last = int(events["t"][0]), int(events["t"][-1])
        frames_num = max(-(-(last - first) // duration), 1)
        lefts = np.arange(frames_num, dtype=np.int64) * duration + first
        starts, ends = search_times(events, lefts), search_times(events, lefts + duration)
        ends[-1] = len(events)
    else:
        starts = ends = np.zeros(0, np.int64)
    return _integrate(events, sensor_size, starts, ends, True, out, "integrate_by_duration")


@dataclass(frozen=True)
class IntegrateByNumber:
    """Transform calling :func:`integrate_by_number`."""

    sensor_size: tuple[int, int, int]
    frames_num: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return integrate_by_number(events, self.sensor_size, self.frames_num)


@dataclass(frozen=True)
class IntegrateByTime:
    """Transform calling :func:`integrate_by_time`."""

    sensor_size: tuple[int, int, int]
    frames_num: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return integrate_by_time(events, self.sensor_size, self.frames_num)


@dataclass(frozen=True)
class IntegrateByDuration:
    """Transform calling :func:`integrate_by_duration`."""

    sensor_size: tuple[int, int, int]
    duration: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return integrate_by_duration(events, self.sensor_size, self.duration)
