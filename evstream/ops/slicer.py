"""Slicing an event stream into windows of fixed duration or fixed count, with overlap.

``slice_by_time`` / ``slice_by_count`` cut one array; :class:`Slicer` cuts a stream of batches
(the live loop) and returns exactly the same windows, holding at most one window of events.

Time windows start at ``start_us`` (default: the first event's time) every
``window_us - overlap_us`` microseconds; window k is ``[start + k * stride, start + k * stride + window_us)``.
A window is complete once an event at or after its end has been seen. Count windows are
``events[k * stride : k * stride + event_count]`` with ``stride = event_count - overlap``. The
complete windows are tonic's ``slice_events_by_time`` / ``slice_events_by_count`` windows
(``include_incomplete=False``) whenever the stream holds at least one window. Incomplete windows
are the ones that hold the last event (one window without overlap); tonic counts them differently.
"""

from __future__ import annotations

import numpy as np

from evstream.events import concat_events, empty_events
from evstream.ops._events import contiguous_events
from evstream.ops.frames import search_times


def _check_stride(length: int, overlap: int, name: str) -> int:
    if length <= 0 or not 0 <= overlap < length:
        raise ValueError(f"need {name} > 0 and 0 <= overlap < {name}, got {length} and {overlap}")
    return length - overlap


def _time_windows(events: np.ndarray, first: int, stop: int, start_us: int, stride: int, window_us: int):
    """(start, end) index pairs of windows ``first .. stop - 1`` in the time-sorted ``events``."""
    starts = start_us + stride * np.arange(first, stop, dtype=np.int64)
    return zip(search_times(events, starts).tolist(), search_times(events, starts + window_us).tolist(), strict=True)


def slice_by_time(events: np.ndarray, window_us: int, overlap_us: int = 0, include_incomplete: bool = False,
                  start_us: int | None = None) -> list[np.ndarray]:
    """Cut time-sorted events into windows of ``window_us``, consecutive windows sharing ``overlap_us``.

    Args:
        events: EVENT_DTYPE array sorted by time.
        window_us: window length in microseconds.
        overlap_us: overlap of consecutive windows (``0 <= overlap_us < window_us``).
        include_incomplete: also return the windows that hold the last event but end after it.
        start_us: start of the first window (default: the first event's time).

    Returns:
        List of windows, views into ``events`` (empty windows included).
    """
    events = contiguous_events(events)
    stride = _check_stride(int(window_us), int(overlap_us), "window_us")
    if len(events) == 0:
        return []
    t = events["t"]
    start = int(t[0]) if start_us is None else int(start_us)
    span = int(t[-1]) - start
    if span < 0:
        return []
    count = span // stride + 1 if include_incomplete else max((span - window_us) // stride + 1, 0)
    return [events[a:b] for a, b in _time_windows(events, 0, count, start, stride, int(window_us))]


def slice_by_count(events: np.ndarray, event_count: int, overlap: int = 0,
                   include_incomplete: bool = False) -> list[np.ndarray]:
    """Cut events into windows of ``event_count`` events, consecutive windows sharing ``overlap`` events.

    Args:
        events: EVENT_DTYPE array.
        event_count: events per window.
        overlap: events shared by consecutive windows (``0 <= overlap < event_count``).
        include_incomplete: also return the shorter windows that hold the last event.

    Returns:
        List of windows, views into ``events``.
    """
    events = contiguous_events(events)
    stride = _check_stride(int(event_count), int(overlap), "event_count")
    n = len(events)
    count = (n - 1) // stride + 1 if include_incomplete and n else max((n - event_count) // stride + 1, 0)
    return [events[k * stride:k * stride + event_count] for k in range(count)]


class Slicer:
    """Stream slicer: ``push(batch)`` returns the windows completed so far, ``flush()`` the rest.

    Give either ``window_us`` (time windows, with ``overlap_us`` and optional ``start_us``) or
    ``event_count`` (count windows, with ``overlap``). Batches must continue each other in time.
    Windows returned by successive ``push`` calls, then ``flush``, equal ``slice_by_time`` /
    ``slice_by_count`` of the concatenated batches with ``include_incomplete=True``.

    Example:
        >>> slicer = Slicer(window_us=50_000, overlap_us=25_000)
        >>> for batch in reader:
        ...     for window in slicer.push(batch):
        ...         frame = to_frame(window, sensor_size)
    """

    def __init__(self, window_us: int | None = None, overlap_us: int = 0, *, event_count: int | None = None,
                 overlap: int = 0, start_us: int | None = None):
        if (window_us is None) == (event_count is None):
            raise ValueError("give exactly one of window_us and event_count")
        self.by_time = window_us is not None
        self.length = int(window_us if self.by_time else event_count)
        self.overlap = int(overlap_us if self.by_time else overlap)
        self.stride = _check_stride(self.length, self.overlap, "window_us" if self.by_time else "event_count")
        self.start_us = start_us
        self.reset()

    def reset(self) -> None:
        """Drop buffered events and start a new stream."""
        self._buffer = empty_events(0)
        self._origin = None if self.start_us is None else int(self.start_us)
        self._next = 0  # index of the next window to emit
        self._last_us = None  # time of the last event pushed

    @property
    def buffered(self) -> np.ndarray:
        """Events held for windows not yet complete (less than one window of events)."""
        return self._buffer

    def push(self, batch: np.ndarray) -> list[np.ndarray]:
        """Add a batch; return the windows it completes (possibly none, possibly empty windows)."""
        batch = contiguous_events(batch)
        if len(batch) == 0:
            return []
        t = batch["t"]
        if np.any(t[1:] < t[:-1]) or (self._last_us is not None and t[0] < self._last_us):
            raise ValueError("Slicer: events must be sorted by time across batches")
        self._last_us = int(t[-1])
        self._buffer = concat_events([self._buffer, batch])
        if self.by_time:
            return self._emit_time(include_incomplete=False)
        return self._emit_count(include_incomplete=False)

    def flush(self) -> list[np.ndarray]:
        """End the stream: return the incomplete windows holding the last event, then reset."""
        windows = self._emit_time(True) if self.by_time else self._emit_count(True)
        self.reset()
        return windows

    def _emit_time(self, include_incomplete: bool) -> list[np.ndarray]:
        buffer = self._buffer
        if len(buffer) == 0:
            return []
        if self._origin is None:
            self._origin = int(buffer["t"][0])
        t = buffer["t"]
        span = int(t[-1]) - self._origin
        stop = span // self.stride + 1 if include_incomplete else (span - self.length) // self.stride + 1
        windows = []
        if stop > self._next:
            windows = [buffer[a:b] for a, b in _time_windows(buffer, self._next, stop, self._origin, self.stride,
                                                             self.length)]
            self._next = stop
        # keep only what the next window can hold: memory stays below one window
        self._buffer = buffer[int(search_times(buffer, self._origin + self._next * self.stride)):]
        return windows

    def _emit_count(self, include_incomplete: bool) -> list[np.ndarray]:
        windows = slice_by_count(self._buffer, self.length, self.overlap, include_incomplete)
        self._buffer = self._buffer[len(windows) * self.stride:]
        return windows

    def __repr__(self) -> str:
        if self.by_time:
            return f"Slicer(window_us={self.length}, overlap_us={self.overlap}, start_us={self.start_us})"
        return f"Slicer(event_count={self.length}, overlap={self.overlap})"
