"""The live loop's processing: validation, filters, windows on the event clock, the model, the latest result.

Two threads keep it from falling behind. The **ingest** thread drains the source's queue as fast
as batches come (validation, filters and windowing are cheap numba and numpy work): every batch is
validated once (:class:`BatchValidator`: off-sensor events dropped, an unsorted batch sorted, both
counted) and cut into windows by :class:`~evstream.live.windowing.EventWindows`, which handles
time going back, forward gaps and pass ends. The **model** thread takes the newest complete
window (a one-slot queue: older windows are dropped and counted when the model is slower than the
windows come; a lossless source, e.g. an unpaced replay, waits for it instead) and publishes the
result to a :class:`LatestSlot` that the GUI polls. A window older than ``max_lag_ms`` when the
model could take it is dropped too: latency stays bounded, memory flat. Every loop checks the
stop flag; :meth:`Pipeline.stop` returns within its timeout whatever the source or model does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evstream.live.queues import DropOldestQueue, LatestSlot
from evstream.live.source import EventSource, SourceError
from evstream.live.validate import BatchValidator
from evstream.live.windowing import REORDER_US, EventWindows, Window

_POLL_S = 0.05  # the model thread's longest wait before it looks at the stop flag again


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
    label: str | None = None  # ground truth from the source (a playlist's folder name), if any


@dataclass
class PipelineStats:
    """Counters and recent latencies, read by the GUI, the run summary and the benchmarks.

    ``dropped_windows`` are complete windows the model never saw (it was busy with a newer one, or
    the window was older than ``max_lag_ms``); ``source_drops`` are batches the source's queue
    dropped before the pipeline saw them: two different losses, shown apart.
    """

    windows: int = 0
    dropped_windows: int = 0
    events: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    events_per_s: float = 0.0
    source_drops: int = 0
    off_sensor_events: int = 0
    unsorted_batches: int = 0
    late_events: int = 0  # a reordering step back reached into a window already processed
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
    """Run ``filters`` and ``model`` on consecutive windows of a source, in two threads (module docstring).

    Args:
        source: a started or unstarted :class:`EventSource`.
        window_us: window length on the event clock.
        filters: callables events -> events applied to every batch in order. A transform with a
            ``stream()`` method (Denoise, RefractoryPeriod, BackgroundActivityFilter, HotPixelFilter)
            runs as its stream: its state carries across batches (chunked == whole), steps back up
            to the windows' reordering tolerance pass, and every filter with a ``reset()`` starts
            afresh after each pass (a loop's turn, the next file).
        model: callable events -> output for each window (None: events only, for viewing).
        max_lag_ms: drop a window that completes more than this late.
        max_pending_events: bound on the events held for the open window (the oldest are dropped).
        on_result: called with every :class:`WindowResult` in the model thread (a headless video
            sink that must see every window); the GUI polls :attr:`results` instead.
        taps: callables given every validated batch before the filters, in the ingest thread (e.g.
            :meth:`~evstream.live.dv_server.DvNetworkServer.send` republishing the stream); they must not block.
    """

    def __init__(self, source: EventSource, *, window_us: int = 50_000, filters: Sequence[Callable] = (),
                 model: Callable[[np.ndarray], Any] | None = None, max_lag_ms: float = 150.0,
                 max_pending_events: int = 8 << 20, on_result: Callable[[WindowResult], None] | None = None,
                 taps: Sequence[Callable[[np.ndarray], Any]] = ()):
        self.source, self.model, self.taps = source, model, list(taps)
        self.filters = [f.stream(max_step_back_us=REORDER_US) if hasattr(f, "stream") else f for f in filters]
        self.on_result = on_result
        self.max_lag_s = max_lag_ms / 1e3
        self.model_enabled = True  # toggled from the GUI
        self.filters_enabled = True
        self.results = LatestSlot()
        self.stats = PipelineStats()
        self.validator = BatchValidator(source.sensor_size)
        self.windows = EventWindows(window_us, max_pending_events, self.stats)
        self.window_us = self.windows.window_us
        self.error: BaseException | None = None
        self._lossless = getattr(source, "lossless", False)
        self._ready = DropOldestQueue(4 if self._lossless else 1)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ingest_at_end = False
        self._busy = False
        self._late_windows = 0

    def start(self) -> "Pipeline":
        self.source.start()
        self._threads = [threading.Thread(target=self._guarded, args=(target,), name=name, daemon=True)
                         for target, name in ((self._ingest, "pipeline-ingest"), (self._work, "pipeline-model"))]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the source and the processing; returns within ``timeout`` seconds (threads are daemons)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._ready.close()
        self.source.stop(max(deadline - time.monotonic(), 0.0))
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))

    def join(self, timeout: float | None = None) -> None:
        """Wait for a finite source to be processed to its end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    @property
    def at_end(self) -> bool:
        """The last pass ended and every window of it is processed (a replay holding at its end)."""
        return self._ingest_at_end and len(self._ready) == 0 and not self._busy

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _guarded(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as err:  # shown by the GUI / raised by the app: never swallowed
            self.error = err
            self._stop.set()
            self._ready.close()
            self.source.stop(0.0)

    # --- ingest thread -----------------------------------------------------------------------
    def _ingest(self) -> None:
        """Drain the source into windows; at its end (or its failure, kept in ``source.error``) the
        partial last window still goes to the model: nothing received is lost."""
        try:
            for batch in self._batches():
                if self._stop.is_set():
                    return
                self.stats.source_drops = self.source.dropped
                events = self.validator(batch.events)
                counts = self.validator.counts
                self.stats.off_sensor_events = counts.off_sensor_events
                self.stats.unsorted_batches = counts.unsorted_batches
                for tap in self.taps:
                    tap(events)
                if self.filters_enabled:
                    for f in self.filters:
                        events = f(events)
                if len(events):
                    self._ingest_at_end = False
                self._submit(self.windows.push(events, batch.t_end_us, batch.pass_end, batch.label), batch.wall_time)
                if batch.pass_end:
                    self._ingest_at_end = True
                    self._reset_filters()
            if not self._stop.is_set():
                self._submit(self.windows.finish(), time.monotonic())
                self._ingest_at_end = True
        finally:
            self._ready.close()

    def _batches(self):
        """The source's batches, ending quietly when the source fails (its error stays on the source)."""
        try:
            yield from self.source.batches(timeout=None)
        except SourceError:
            if self.source.error is None:
                raise

    def _reset_filters(self) -> None:
        """Forget the stateful filters' history: the next pass starts over in time."""
        for f in self.filters:
            if hasattr(f, "reset"):
                f.reset()

    def _submit(self, windows: list[Window], arrived: float) -> None:
        for window in windows:
            if self._stop.is_set():
                return
            self.stats.events += len(window.events)
            dt = window.t_end_us - window.t_start_us
            self.stats.events_per_s = 0.9 * self.stats.events_per_s + 0.1 * len(window.events) / (dt / 1e6)
            self._ready.put((window, arrived), block=self._lossless)
            self.stats.dropped_windows = self._late_windows + self._ready.dropped

    # --- model thread ------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            item = self._ready.get(_POLL_S)
            if item is None:
                if self._ready.closed:
                    break
                continue
            self._busy = True
            try:
                self._process(*item)
            finally:
                self._busy = False

    def _process(self, window: Window, arrived: float) -> None:
        if time.monotonic() - arrived > self.max_lag_s:
            self._late_windows += 1
            self.stats.dropped_windows = self._late_windows + self._ready.dropped
            return
        start = time.monotonic()
        output = self.model(window.events) if self.model is not None and self.model_enabled else None
        done = time.monotonic()
        latency = (done - arrived) * 1e3
        self.stats.windows += 1
        self.stats.latencies_ms.append(latency)
        result = WindowResult(window.t_start_us, window.t_end_us, window.events, output, latency,
                              {"model": (done - start) * 1e3}, window.sequence, window.partial, window.label)
        self.results.set(result)
        if self.on_result is not None:
            self.on_result(result)
