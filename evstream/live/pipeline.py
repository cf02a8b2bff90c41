"""The processing thread of the live loop: filters, windows on the event clock, model, latest result.

Windows are ``[t0 + k*window_us, t0 + (k+1)*window_us)`` on the source's event clock; a window
is complete when the clock passes its end (empty windows included). When a complete window is
older than ``max_lag_ms`` (its last batch arrived that long ago), the processing has fallen
behind the event clock: the window is dropped and counted instead of queued, so latency stays
bounded and memory flat. Results go to a :class:`LatestSlot` that the GUI polls.
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


@dataclass(frozen=True)
class WindowResult:
    """What the pipeline hands to the GUI for one window."""

    t_start_us: int
    t_end_us: int
    events: np.ndarray
    output: Any
    latency_ms: float  # from the arrival of the window's last batch to the result being ready
    stage_ms: dict[str, float]


@dataclass
class PipelineStats:
    """Counters and recent latencies, read by the GUI and the benchmarks."""

    windows: int = 0
    dropped_windows: int = 0
    events: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    events_per_s: float = 0.0

    def latency_percentiles(self) -> tuple[float, float]:
        """(p50, p99) of the recent end-to-end latencies in ms (nan when none yet)."""
        if not self.latencies_ms:
            return float("nan"), float("nan")
        values = np.fromiter(self.latencies_ms, float)
        return float(np.percentile(values, 50)), float(np.percentile(values, 99))


class Pipeline:
    """Run ``filters`` and ``model`` on consecutive windows of a source, in a thread.

    Args:
        source: a started or unstarted :class:`EventSource`.
        window_us: window length on the event clock.
        filters: callables events -> events applied to every batch in order (stateful filters keep
            their state across batches: chunked == whole).
        model: callable events -> output for each window (None: events only, for viewing).
        max_lag_ms: drop a window that completes more than this late.
        on_result: called with every :class:`WindowResult` in the processing thread (a headless
            video sink that must see every window); the GUI polls :attr:`results` instead.
    """

    def __init__(self, source: EventSource, *, window_us: int = 50_000, filters: Sequence[Callable] = (),
                 model: Callable[[np.ndarray], Any] | None = None, max_lag_ms: float = 150.0,
                 on_result: Callable[[WindowResult], None] | None = None):
        self.source, self.window_us, self.filters, self.model = source, int(window_us), list(filters), model
        self.on_result = on_result
        self.max_lag_s = max_lag_ms / 1e3
        self.model_enabled = True  # toggled from the GUI
        self.filters_enabled = True
        self.results = LatestSlot()
        self.stats = PipelineStats()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> "Pipeline":
        self.source.start()
        self._thread = threading.Thread(target=self._guarded, name="pipeline", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.source.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

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

    def _run(self) -> None:
        pending: list[np.ndarray] = []
        window_end: int | None = None
        for batch in self.source.batches(timeout=None):
            if self._stop.is_set():
                return
            events = batch.events
            if self.filters_enabled:
                for f in self.filters:
                    events = f(events)
            if len(events):
                pending.append(events)
            if window_end is None:
                if not pending:
                    continue
                window_end = int(pending[0]["t"][0]) + self.window_us
            while batch.t_end_us >= window_end:
                held = concat_events(pending) if pending else empty_events()
                cut = int(np.searchsorted(held["t"], window_end, side="left"))
                window, rest = held[:cut], held[cut:]
                pending = [rest] if len(rest) else []
                self._process(window, window_end, batch.wall_time)
                window_end += self.window_us

    def _process(self, window: np.ndarray, window_end: int, arrived: float) -> None:
        stats = self.stats
        stats.events += len(window)
        stats.events_per_s = 0.9 * stats.events_per_s + 0.1 * len(window) / (self.window_us / 1e6)
        if time.monotonic() - arrived > self.max_lag_s:
            stats.dropped_windows += 1
            return
        start = time.monotonic()
        output = self.model(window) if self.model is not None and self.model_enabled else None
        done = time.monotonic()
        latency = (done - arrived) * 1e3
        stats.windows += 1
        stats.latencies_ms.append(latency)
        result = WindowResult(window_end - self.window_us, window_end, window, output, latency,
                              {"model": (done - start) * 1e3})
        self.results.set(result)
        if self.on_result is not None:
            self.on_result(result)
