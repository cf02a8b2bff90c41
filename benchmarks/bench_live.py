"""End-to-end latency of the live loop (event time to result ready) with the bundled models.

A paced source emits random events at a fixed rate in 1 ms batches on the sensor of each
model; the pipeline runs the model on its windows. Prints p50/p99 latency, the windows
processed and dropped, and the sustained input rate, for each model and rate.

    python benchmarks/bench_live.py [--seconds 10] [--rates 0.5e6,2e6,5e6] [--tasks gesture,detection]

Goal (issue 9): p99 <= 50 ms at 2 M events/s with the gesture model on 2 cores. Run with
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184
for torch on CPU (see the README).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from evstream.events import EVENT_DTYPE
from evstream.live.models import load_live_model
from evstream.live.pipeline import Pipeline
from evstream.live.source import EventSource

SENSORS = {"gesture": (128, 128, 2), "detection": (304, 240, 2), "depth": (346, 260, 2), "none": (346, 260, 2)}


class RateSource(EventSource):
    """Random events at ``rate`` events/s in 1 ms batches paced to the wall clock.

    One second of batches is drawn up front and replayed with shifted times, so the source
    thread costs what a camera driver costs (a copy per batch), not the random generator's time.
    """

    def __init__(self, rate: float, sensor_size, seconds: float, seed: int = 0):
        super().__init__(queue_size=4096)
        self.seconds = seconds
        self.name = f"random:{rate / 1e6:g}M/s"
        rng, per_ms = np.random.default_rng(seed), int(rate / 1000)
        self.pool = np.empty((1000, per_ms), dtype=EVENT_DTYPE)
        self.pool["x"] = rng.integers(0, sensor_size[0], self.pool.shape)
        self.pool["y"] = rng.integers(0, sensor_size[1], self.pool.shape)
        self.pool["t"] = np.sort(rng.integers(0, 1000, self.pool.shape), axis=1) + np.arange(1000)[:, None] * 1000
        self.pool["p"] = rng.integers(0, 2, self.pool.shape)

    def _run(self) -> None:
        start = time.monotonic()
        for k in range(int(self.seconds * 1000)):
            if self.stopping:
                return
            events = self.pool[k % 1000].copy()
            events["t"] += (k // 1000) * 1_000_000
            delay = start + (k + 1) / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._emit(events, (k + 1) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="0.5e6,2e6,5e6")
    parser.add_argument("--tasks", default="gesture,detection")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (leave a core for I/O and the GUI)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'task':<10} {'rate M/s':>8} {'window ms':>9} {'p50 ms':>7} {'p99 ms':>7} {'windows':>8} {'dropped':>8} "
          f"{'src dr':>6} {'in M/s':>7}")
    for task in args.tasks.split(","):
        model, message = load_live_model(task)
        window_us = model.window_us if model is not None else 0
        if model is None:
            print(f"{task:<10} skipped: {message}")
            continue
        for rate in (float(r) for r in args.rates.split(",")):
            source = RateSource(rate, SENSORS[task], args.seconds)
            window = np.concatenate(source.pool[:min(window_us // 1000, 1000)])
            for _ in range(3):  # warm-up on full windows: numba compilation and first allocations are not latency
                model(window)
            pipeline = Pipeline(source, window_us=window_us, model=model)
            start = time.monotonic()
            pipeline.start()
            pipeline.join(args.seconds * 3 + 30)
            pipeline.stop()
            wall = time.monotonic() - start
            stats = pipeline.stats
            p50, p99 = stats.latency_percentiles()
            print(f"{task:<10} {rate / 1e6:>8.2f} {window_us / 1e3:>9.1f} {p50:>7.1f} {p99:>7.1f} {stats.windows:>8d} "
                  f"{stats.dropped_windows:>8d} {stats.source_drops:>6d} {stats.events / wall / 1e6:>7.2f}")


if __name__ == "__main__":
    main()
