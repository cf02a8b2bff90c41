"""Windows on the event clock, kept honest against what live sources really do.

Windows are ``[t0 + k*window_us, t0 + (k+1)*window_us)``; one is complete when the source's clock
passes its end (empty windows included). :class:`EventWindows` takes validated batches and returns
the windows each one completes:

- **time going back** by more than :data:`REORDER_US` (a loop's turn, a seek back, a camera
  restarting) ends the current sequence (its partial window is returned) and starts a new one at
  the new time; a smaller step back (a driver reordering packets) is sorted in, except events
  older than the open window, which are dropped as late;
- **a forward gap** (a quiet scene, one corrupt timestamp far in the future) skips the empty
  windows in O(1), keeping :data:`KEEP_EMPTY_WINDOWS` so a viewer sees the quiet;
- **the end of a pass** (a batch marked ``pass_end``, or the stream's end) returns the partial last
  window, so every event of a recording is windowed;
- **held events are bounded** (``max_pending_events``; the oldest are dropped).

Everything is counted in the :class:`~evstream.live.pipeline.PipelineStats` it is given. No
threads here: the pipeline calls it from its ingest thread.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from evstream.events import concat_events, empty_events

REORDER_US = 1000
"""A step back in event time up to this long is a reordering driver (events sorted in); a longer one
is a jump back that starts a new window sequence."""
KEEP_EMPTY_WINDOWS = 1
"""Empty windows of a forward gap that are still returned (the rest are skipped in O(1))."""


class Window(NamedTuple):
    """A complete (or, at a pass end, partial) window of events."""

    events: np.ndarray
    t_start_us: int
    t_end_us: int
    sequence: int
    partial: bool
    label: str | None = None  # the ground truth the source gave the sequence's first batch


class EventWindows:
    """``push(events, t_end_us, pass_end) -> [Window, ...]``; ``finish()`` at the end of the stream.

    Args:
        window_us: window length.
        max_pending_events: bound on the events held for the open window.
        stats: counters to update (late_events, discontinuities, passes, skipped_windows,
            overflow_events, partial_windows).
    """

    def __init__(self, window_us: int, max_pending_events: int, stats):
        if window_us <= 0:
            raise ValueError(f"window_us must be positive, got {window_us}")
        self.window_us, self.max_pending_events, self.stats = int(window_us), int(max_pending_events), stats
        self.sequence = 0
        self._reset()

    def _reset(self) -> None:
        self._pending: list[np.ndarray] = []
        self._count = 0
        self._unsorted = False  # a reordered batch was sorted in: sort the held events before cutting
        self._window_end: int | None = None
        self._clock = 0
        self._last_t = -1  # newest event time held in this sequence
        self._label: str | None = None

    def push(self, events: np.ndarray, t_end_us: int, pass_end: bool = False, label: str | None = None) -> list[Window]:
        """Add a time-sorted batch whose source clock reached ``t_end_us``; the windows it completes.

        ``label`` (a playlist's ground truth) is kept for the sequence this batch opens."""
        done: list[Window] = []
        t_end = max(int(t_end_us), int(events["t"][-1]) + 1 if len(events) else 0)
        if self._window_end is not None and len(events):
            events = self._time_going_back(events, done)
        if len(events):
            self._hold(events)
            if self._window_end is None:
                self._window_end = int(events["t"][0]) + self.window_us
                self._label = label
        if self._window_end is not None:
            self._clock = max(self._clock, t_end)
            while self._clock >= self._window_end:
                self._skip_empty_windows()
                done.append(Window(self._take_before(self._window_end), self._window_end - self.window_us,
                                   self._window_end, self.sequence, False, self._label))
                self._window_end += self.window_us
        if pass_end:
            self._end_pass(done)
        return done

    def finish(self) -> list[Window]:
        """The partial last window of the stream (if it holds events)."""
        done: list[Window] = []
        self._end_pass(done)
        return done

    def _time_going_back(self, events: np.ndarray, done: list[Window]) -> np.ndarray:
        first = int(events["t"][0])
        if first >= self._last_t:
            return events
        if self._last_t - first > REORDER_US:
            self._end_pass(done)
            self.stats.discontinuities += 1
            return events
        keep = int(np.searchsorted(events["t"], self._window_end - self.window_us, side="left"))
        self.stats.late_events += keep
        self._unsorted = True
        return events[keep:]

    def _held(self) -> np.ndarray:
        """The held events as one sorted array (kept consolidated for the next call)."""
        held = self._pending[0] if len(self._pending) == 1 else concat_events(self._pending)
        if self._unsorted:
            held, self._unsorted = held[np.argsort(held["t"], kind="stable")], False
        self._pending = [held]
        return held

    def _hold(self, events: np.ndarray) -> None:
        self._pending.append(events)
        self._count += len(events)
        self._last_t = max(self._last_t, int(events["t"][-1]))
        if self._count > self.max_pending_events:
            held = self._held()
            excess = len(held) - self.max_pending_events
            self.stats.overflow_events += excess
            self._pending, self._count = [held[excess:]], self.max_pending_events

    def _take_before(self, t_us: int) -> np.ndarray:
        if not self._pending:
            return empty_events()
        held = self._held()
        cut = int(np.searchsorted(held["t"], t_us, side="left"))
        rest = held[cut:]
        self._pending, self._count = ([rest] if len(rest) else []), len(rest)
        return held[:cut]

    def _skip_empty_windows(self) -> None:
        """Jump over the complete windows that hold no event, keeping :data:`KEEP_EMPTY_WINDOWS` (O(1))."""
        horizon = self._clock if not self._pending else min(self._clock, int(self._held()["t"][0]) + 1)
        empty = (horizon - self._window_end) // self.window_us  # whole windows ending at or before the horizon
        if empty > KEEP_EMPTY_WINDOWS:
            skip = empty - KEEP_EMPTY_WINDOWS
            self._window_end += skip * self.window_us
            self.stats.skipped_windows += skip

    def _end_pass(self, done: list[Window]) -> None:
        if self._window_end is None:
            return
        window = self._take_before(self._window_end) if self._pending else empty_events()
        if len(window):
            self.stats.partial_windows += 1
            end = min(max(self._clock, int(window["t"][-1]) + 1), self._window_end)
            done.append(Window(window, self._window_end - self.window_us, end, self.sequence, True, self._label))
        self.stats.passes += 1
        self.sequence += 1
        self._reset()
