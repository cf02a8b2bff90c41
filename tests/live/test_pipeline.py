"""The pipeline: windows equal slicing the stream; a slow model drops windows, keeps latency bounded."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

from evstream.events import concat_events
from evstream.live.pipeline import Pipeline
from evstream.live.source import EventSource
from tests.conftest import synthetic_events


class ArraySource(EventSource):
    """Emits an array in 1 ms batches, paced at ``speed`` x real time (inf: unpaced)."""

    finite = True

    def __init__(self, events, speed=float("inf")):
        super().__init__(queue_size=100_000)
        self.events, self.speed, self.sensor_size = events, speed, (346, 260, 2)

    def _run(self):
        t, start = self.events["t"], time.monotonic()
        edges = np.arange(t[0] + 1000, t[-1] + 1001, 1000)
        cuts = np.searchsorted(t, edges)
        begin = 0
        for edge, cut in zip(edges, cuts):
            if self.stopping:
                return
            delay = start + (edge - t[0]) / 1e6 / self.speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._emit(self.events[begin:cut], int(edge))
            begin = cut


def test_windows_equal_slicing_the_stream():
    events = synthetic_events(200_000, rate_hz=2e6)  # 0.1 s
    seen = []
    pipeline = Pipeline(ArraySource(events), window_us=7000, model=lambda w: seen.append(w) or len(w),
                        max_lag_ms=1e9)
    pipeline.start()
    pipeline.join(30)
    t0 = int(events["t"][0])
    n_complete = (int(events["t"][-1]) + 1 - t0) // 7000
    assert len(seen) >= n_complete
    for k, window in enumerate(seen[:n_complete]):
        lo, hi = np.searchsorted(events["t"], [t0 + k * 7000, t0 + (k + 1) * 7000])
        np.testing.assert_array_equal(window, events[lo:hi])
    assert pipeline.stats.dropped_windows == 0


def test_slow_model_drops_windows_with_bounded_latency_and_flat_memory():
    events = synthetic_events(300_000, rate_hz=1e6)  # 0.3 s of real time

    def slow(window):  # 10x slower than the 10 ms windows arrive
        time.sleep(0.1)
        return len(window)

    tracemalloc.start()
    pipeline = Pipeline(ArraySource(events, speed=1.0), window_us=10_000, model=slow, max_lag_ms=150)
    pipeline.start()
    time.sleep(0.15)
    _, early_peak = tracemalloc.get_traced_memory()
    pipeline.join(30)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = pipeline.stats
    assert stats.dropped_windows > 10 and stats.windows >= 2
    assert max(stats.latencies_ms) < 300
    assert peak < early_peak + 20e6
