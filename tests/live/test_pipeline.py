"""The pipeline: windows equal slicing the stream; a slow model drops windows, keeps latency bounded."""

from __future__ import annotations

import threading
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
        self.lossless = speed == float("inf")  # unpaced: no clock to fall behind, every window is processed

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


class BatchSource(EventSource):
    """Emits prepared ``(events, t_end_us[, pass_end])`` batches unpaced, then ends (or idles until stopped)."""

    def __init__(self, batches, sensor_size=(346, 260, 2), idle_at_end=False):
        super().__init__(queue_size=100_000)
        self.prepared, self.sensor_size, self.idle_at_end = batches, sensor_size, idle_at_end
        self.lossless = True

    def _run(self):
        for events, t_end, *flags in self.prepared:
            if self.stopping:
                return
            self._emit(events, t_end, pass_end=bool(flags and flags[0]))
        while self.idle_at_end and not self.stopping:
            time.sleep(0.01)


def _batches(events, batch_us=1000):
    """An event array cut into consecutive ``batch_us`` batches (the replay source's shape)."""
    t0 = int(events["t"][0])
    edges = np.arange(t0 + batch_us, int(events["t"][-1]) + batch_us + 1, batch_us)
    cuts = np.searchsorted(events["t"], edges)
    return [(events[a:b], int(e)) for a, b, e in zip(np.r_[0, cuts[:-1]], cuts, edges)]


def _run_to_end(pipeline, timeout=30):
    seen = []
    pipeline.on_result = seen.append
    pipeline.start()
    pipeline.join(timeout)
    assert not pipeline.running and pipeline.error is None
    return seen


def test_time_going_back_starts_a_new_window_sequence_and_keeps_every_event():
    events = synthetic_events(20_000, rate_hz=1e6)  # 20 ms, played twice as a looping source would
    passes = _batches(events) + _batches(events)
    seen = _run_to_end(Pipeline(BatchSource(passes), window_us=5000, max_lag_ms=1e9, model=len))
    first = [r for r in seen if r.sequence == 0]
    second = [r for r in seen if r.sequence == 1]
    assert first and second and {r.sequence for r in seen} == {0, 1}
    for run in (first, second):  # each pass: windows from its own start, every event exactly once
        np.testing.assert_array_equal(concat_events([r.events for r in run]), events)
        assert run[0].t_start_us == int(events["t"][0])
        assert [r.partial for r in run] == [False] * (len(run) - 1) + [True]
    assert seen[-1].t_end_us == passes[-1][1]  # the partial window ends at the source's last clock


def test_pass_end_processes_the_partial_last_window():
    events = synthetic_events(12_345, rate_hz=1e6)
    batches = _batches(events)
    batches[-1] = (*batches[-1], True)
    pipeline = Pipeline(BatchSource(batches, idle_at_end=True), window_us=5000, max_lag_ms=1e9)
    seen = []
    pipeline.on_result = seen.append
    pipeline.start()
    deadline = time.monotonic() + 20
    while not pipeline.at_end and time.monotonic() < deadline:
        time.sleep(0.01)
    pipeline.stop()
    assert pipeline.at_end and pipeline.stats.events == len(events) and pipeline.stats.partial_windows == 1
    np.testing.assert_array_equal(concat_events([r.events for r in seen]), events)


def test_a_jump_far_into_the_future_is_skipped_in_constant_time_and_stop_is_prompt():
    events = synthetic_events(5000, rate_hz=1e6)
    future = events[-1:].copy()
    future["t"] = 2**50
    model_calls = []
    source = BatchSource(_batches(events) + [(future, 2**50 + 1)], idle_at_end=True)
    pipeline = Pipeline(source, window_us=1000, max_lag_ms=1e9, model=lambda w: model_calls.append(len(w)))
    pipeline.start()
    deadline = time.monotonic() + 20
    while pipeline.stats.skipped_windows == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pipeline.running  # still listening, not stepping through 2^40 empty windows
    assert pipeline.stats.skipped_windows > 2**40
    assert len(model_calls) < 20
    start = time.monotonic()
    pipeline.stop()
    assert time.monotonic() - start < 1.0 and not pipeline.running


def test_stop_returns_within_a_second_whatever_the_source_does():
    release = threading.Event()

    class Stuck(EventSource):
        def __init__(self):
            super().__init__()
            self.sensor_size = (64, 64, 2)

        def _run(self):  # a driver that ignores the stop flag
            release.wait(30)

    pipeline = Pipeline(Stuck(), window_us=1000).start()
    time.sleep(0.05)
    start = time.monotonic()
    pipeline.stop()
    elapsed = time.monotonic() - start
    release.set()
    assert elapsed < 1.0


def test_off_sensor_and_unsorted_live_events_are_dropped_or_sorted_and_counted():
    events = synthetic_events(3000, width=64, height=48, rate_hz=1e6)
    bad = events.copy()
    bad["x"][::100] = 1000  # 30 events off a 64x48 sensor, as a faulty driver might send
    bad["y"][5] = 48
    shuffled = bad[:1000][::-1].copy()  # one batch out of order
    batches = [(shuffled, int(bad["t"][999]) + 1), (bad[1000:], int(bad["t"][-1]) + 1)]
    pipeline = Pipeline(BatchSource(batches, sensor_size=(64, 48, 2)), window_us=500, max_lag_ms=1e9)
    seen = _run_to_end(pipeline)
    assert pipeline.stats.off_sensor_events == int((~((bad["x"] < 64) & (bad["y"] < 48))).sum())
    assert pipeline.stats.unsorted_batches == 1
    kept = concat_events([r.events for r in seen])
    first = shuffled[(shuffled["x"] < 64) & (shuffled["y"] < 48)]
    rest = bad[1000:][(bad["x"][1000:] < 64) & (bad["y"][1000:] < 48)]
    expected = concat_events([first[np.argsort(first["t"], kind="stable")], rest])
    np.testing.assert_array_equal(kept, expected)
    assert np.all(np.diff(kept["t"]) >= 0)


def test_off_sensor_counts_reach_the_stats():
    events = synthetic_events(1000, width=64, height=48, rate_hz=1e6)
    events["x"][:7] = 5000
    pipeline = Pipeline(BatchSource([(events, int(events["t"][-1]) + 1)], sensor_size=(64, 48, 2)),
                        window_us=500, max_lag_ms=1e9)
    _run_to_end(pipeline)
    assert pipeline.stats.off_sensor_events == 7 and pipeline.stats.events == 993


def test_pending_events_are_bounded_and_the_overflow_counted():
    events = synthetic_events(50_000, rate_hz=1e6)  # 50 ms, all inside one 1 s window
    pipeline = Pipeline(BatchSource(_batches(events)), window_us=1_000_000, max_lag_ms=1e9,
                        max_pending_events=10_000)
    seen = _run_to_end(pipeline)
    assert pipeline.stats.overflow_events == 40_000
    np.testing.assert_array_equal(seen[-1].events, events[-10_000:])  # the newest kept


def test_a_reordering_driver_is_sorted_in_and_events_of_processed_windows_dropped_as_late():
    events = synthetic_events(6000, rate_hz=1e6)  # 6 ms, windows of 1 ms
    t0, t = int(events["t"][0]), events["t"]
    a, b, c = np.searchsorted(t, [t0 + 2500, t0 + 2900, t0 + 1950])
    # batch 2 reaches 2.9 ms; batch 3 resends 1.95-2.5 ms (0.95 ms back: reordering, not a jump)
    batches = [(events[:a], int(t[a])), (events[a:b], int(t[b - 1]) + 1), (events[c:a], int(t[b - 1]) + 1),
               (events[b:], int(t[-1]) + 1)]
    pipeline = Pipeline(BatchSource(batches), window_us=1000, max_lag_ms=1e9)
    seen = _run_to_end(pipeline)
    kept = concat_events([r.events for r in seen])
    assert np.all(np.diff(kept["t"]) >= 0) and pipeline.stats.discontinuities == 0
    late = int((t[c:a] < t0 + 2000).sum())  # the window [1, 2) ms was processed before they came
    assert late > 0 and pipeline.stats.late_events == late
    assert len(kept) == len(events) + (a - c) - late  # the resent events inside the open window are held again
