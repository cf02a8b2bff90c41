"""The processing thread of the live loop: validation, filters, windows on the event clock, model, latest result.

Windows are ``[t0 + k*window_us, t0 + (k+1)*window_us)`` on the source's event clock; a window
is complete when the clock passes its end. The clock is kept honest against what sources really do:

- **time going back** (a loop restarting, a seek back, a camera restarting) ends the current
  window sequence (its partial window is processed) and starts a new one at the new time;
- **a forward gap** (a quiet scene, one corrupt timestamp far in the future) skips the empty
  windows in O(1), counted, keeping one so the viewer sees the quiet;
- **the end of a pass** (a batch marked ``pass_end``, or the source ending) processes the partial
  last window, so every event of a recording reaches the model;
- **pending events are bounded** (``max_pending_events``; the oldest are dropped and counted);
- a complete window older than ``max_lag_ms`` is dropped and counted: the processing fell behind.

Every batch is validated once on entry (:class:`BatchValidator`: off-sensor events dropped, an
unsorted batch sorted, both counted). Every loop checks the stop flag; :meth:`Pipeline.stop`
returns within its timeout whatever the source or model does. Results go to a
:class:`LatestSlot` that the GUI polls.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evstream.events import concat_events, empty_events
from evstream.live.queues import LatestSlot
from evstream.live.source import EventSource
from evstream.live.validate import BatchValidator

KEEP_EMPTY_WINDOWS = 1
"""Empty windows of a forward gap that are still processed (the rest are skipped in O(1))."""


@dataclass(frozen=True)
class WindowResult:
    """What the pipeline hands to the GUI for one window.

    ``sequence`` grows by one with each new window sequence (a loop's turn, a jump back in time);
    ``partial`` marks the last window of a pass, shorter than the others.
    """

    t_start_us: int
    t_end_us: int
    events: np.ndarray
    output: Any
    latency_ms: float  # from the arrival of the window's last batch to the result being ready
    stage_ms: dict[str, float]
    sequence: int = 0
    partial: bool = False


@dataclass
class PipelineStats:
    """Counters and recent latencies, read by the GUI, the run summary and the benchmarks.

    ``dropped_windows`` are windows the processing was too late for; ``source_drops`` are batches
    the source's queue dropped before the pipeline saw them: two different losses, shown apart.
    """

    windows: int = 0
    dropped_windows: int = 0
    events: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    events_per_s: float = 0.0
    source_drops: int = 0
    off_sensor_events: int = 0
    unsorted_batches: int = 0
    late_events: int = 0  # older than the open window but too close to it to be a jump back
    discontinuities: int = 0  # jumps back in event time (a restarted or seeking source)
    passes: int = 0  # window sequences ended: a recording's end, each loop's turn, each jump back
    skipped_windows: int = 0
    overflow_events: int = 0
    partial_windows: int = 0

    def latency_percentiles(self) -> tuple[float | None, float | None]:
        """(p50, p99) of the recent end-to-end latencies in ms (None when no window was processed)."""
        if not self.latencies_ms:
            return None, None
        values = np.fromiter(self.latencies_ms, float)
        return float(np.percentile(values, 50)), float(np.percentile(values, 99))

    def counters(self) -> dict[str, int]:
        """Every counter by name (for summaries)."""
        return {name: getattr(self, name) for name in (
            "windows", "dropped_windows", "source_drops", "events", "off_sensor_events", "unsorted_batches",
            "late_events", "discontinuities", "passes", "skipped_windows", "overflow_events", "partial_windows")}


class Pipeline:
    """Run ``filters`` and ``model`` on consecutive windows of a source, in a thread.

    Args:
        source: a started or unstarted :class:`EventSource`.
        window_us: window length on the event clock.
        filters: callables events -> events applied to every batch in order (stateful filters keep
            their state across batches: chunked == whole).
        model: callable events -> output for each window (None: events only, for viewing).
        max_lag_ms: drop a window that completes more than this late.
        max_pending_events: bound on the events held for the open window (the oldest are dropped).
        on_result: called with every :class:`WindowResult` in the processing thread (a headless
            video sink that must see every window); the GUI polls :attr:`results` instead.
    """

    def __init__(self, source: EventSource, *, window_us: int = 50_000, filters: Sequence[Callable] = (),
                 model: Callable[[np.ndarray], Any] | None = None, max_lag_ms: float = 150.0,
                 max_pending_events: int = 8 << 20, on_result: Callable[[WindowResult], None] | None = None):
        if window_us <= 0:
            raise ValueError(f"window_us must be positive, got {window_us}")
        self.source, self.window_us, self.filters, self.model = source, int(window_us), list(filters), model
        self.on_result = on_result
        self.max_lag_s = max_lag_ms / 1e3
        self.max_pending_events = int(max_pending_events)
        self.model_enabled = True  # toggled from the GUI
        self.filters_enabled = True
        self.results = LatestSlot()
        self.stats = PipelineStats()
        self.validator = BatchValidator(source.sensor_size)
        self.error: BaseException | None = None
        self.at_end = False  # the last pass ended and its events are processed (cleared by new events)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self._window_end: int | None = None
        self._clock = 0
        self._sequence = 0

    def start(self) -> "Pipeline":
        self.source.start()
        self._thread = threading.Thread(target=self._guarded, name="pipeline", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the source and the processing; returns within ``timeout`` seconds (threads are daemons)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.source.stop(max(deadline - time.monotonic(), 0.0))
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))

    def join(self, timeout: float | None = None) -> None:
        """Wait for a finite source to be processed to its end."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as err:  # shown by the GUI / raised by the app: never swallowed
            self.error = err

    # --- the window clock ------------------------------------------------------------------
    def _run(self) -> None:
        for batch in self.source.batches(timeout=None):
            if self._stop.is_set():
                return
            self.stats.source_drops = self.source.dropped
            events = self.validator(batch.events)
            counts = self.validator.counts
            self.stats.off_sensor_events, self.stats.unsorted_batches = (counts.off_sensor_events,
                                                                         counts.unsorted_batches)
            if self.filters_enabled:
                for f in self.filters:
                    events = f(events)
            t_end = max(int(batch.t_end_us), int(events["t"][-1]) + 1 if len(events) else 0)
            if self._window_end is not None:
                events = self._handle_time_going_back(events, t_end, batch.wall_time)
            if len(events):
                self.at_end = False
                self._hold(events)
                if self._window_end is None:
                    self._window_end = int(events["t"][0]) + self.window_us
            if self._window_end is not None:
                self._clock = max(self._clock, t_end)
                self._complete_windows(batch.wall_time)
            if batch.pass_end:
                self._end_pass(batch.wall_time)
                self.at_end = True
        if not self._stop.is_set():
            self._end_pass(time.monotonic())
            self.at_end = True

    def _handle_time_going_back(self, events: np.ndarray, t_end: int, arrived: float) -> np.ndarray:
        """Events (or a clock) before the open window: a jump back ends the sequence; a small step
        back (late events from a reordering driver) drops the late events."""
        window_start = self._window_end - self.window_us
        first = int(events["t"][0]) if len(events) else t_end
        if first >= window_start:
            return events
        if window_start - first > self.window_us:
            self._end_pass(arrived)
            self.stats.discontinuities += 1
            return events
        keep = int(np.searchsorted(events["t"], window_start, side="left"))
        self.stats.late_events += keep
        return events[keep:]

    def _hold(self, events: np.ndarray) -> None:
        """Add events to the open window's buffer, dropping the oldest beyond the bound."""
        self._pending.append(events)
        self._pending_count += len(events)
        if self._pending_count > self.max_pending_events:
            held = concat_events(self._pending)
            excess = len(held) - self.max_pending_events
            self.stats.overflow_events += excess
            self._pending, self._pending_count = [held[excess:]], self.max_pending_events

    def _take_before(self, t_us: int) -> np.ndarray:
        """Remove and return the held events with ``t < t_us``."""
        if not self._pending:
            return empty_events()
        held = self._pending[0] if len(self._pending) == 1 else concat_events(self._pending)
        cut = int(np.searchsorted(held["t"], t_us, side="left"))
        rest = held[cut:]
        self._pending = [rest] if len(rest) else []
        self._pending_count = len(rest)
        return held[:cut]

    def _skip_empty_windows(self) -> None:
        """Jump over the complete windows that hold no event, keeping :data:`KEEP_EMPTY_WINDOWS` (O(1))."""
        horizon = self._clock if not self._pending else min(self._clock, int(self._pending[0]["t"][0]) + 1)
        empty = (horizon - self._window_end) // self.window_us  # whole windows ending at or before the horizon
        if empty > KEEP_EMPTY_WINDOWS:
            skip = empty - KEEP_EMPTY_WINDOWS
            self._window_end += skip * self.window_us
            self.stats.skipped_windows += skip

    def _complete_windows(self, arrived: float) -> None:
        while self._clock >= self._window_end and not self._stop.is_set():
            self._skip_empty_windows()
            window = self._take_before(self._window_end)
            self._process(window, self._window_end - self.window_us, self._window_end, arrived, partial=False)
            self._window_end += self.window_us

    def _end_pass(self, arrived: float) -> None:
        """Process the partial last window of a pass (if it holds events) and close the sequence."""
        if self._window_end is not None and self._pending and not self._stop.is_set():
            window = self._take_before(self._window_end)
            if len(window):
                self.stats.partial_windows += 1
                end = min(max(self._clock, int(window["t"][-1]) + 1), self._window_end)
                self._process(window, self._window_end - self.window_us, end, arrived, partial=True)
        if self._window_end is not None:
            self.stats.passes += 1
            self._sequence += 1
        self._pending, self._pending_count = [], 0
        self._window_end, self._clock = None, 0

    def _process(self, window: np.ndarray, t_start: int, t_end: int, arrived: float, *, partial: bool) -> None:
        stats = self.stats
        stats.events += len(window)
        stats.events_per_s = 0.9 * stats.events_per_s + 0.1 * len(window) / ((t_end - t_start) / 1e6)
        if time.monotonic() - arrived > self.max_lag_s:
            stats.dropped_windows += 1
            return
        start = time.monotonic()
        output = self.model(window) if self.model is not None and self.model_enabled else None
        done = time.monotonic()
        latency = (done - arrived) * 1e3
        stats.windows += 1
        stats.latencies_ms.append(latency)
        result = WindowResult(t_start, t_end, window, output, latency, {"model": (done - start) * 1e3},
                              self._sequence, partial)
        self.results.set(result)
        if self.on_result is not None:
            self.on_result(result)
