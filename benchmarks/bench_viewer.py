"""Frames per second of the viewer: the Qt window (offscreen, repaint included) and the headless video frame.

Each model output kind is drawn on its demo sensor: detection (304x240, 20 boxes with labels),
depth (346x260 map) and classification (128x128, 11 classes), with the rolling plots. The
window gets a new result before every repaint, as when results arrive faster than 60 Hz.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_viewer.py [--frames 300]

Frames per CPU second (``process_time``: everything runs in this one thread, and the machine may be
shared). Target (LIVE.md): ~65 frames/s for a full dashboard.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from evstream.events import EVENT_DTYPE  # noqa: E402
from evstream.live.pipeline import Pipeline, PipelineStats, WindowResult  # noqa: E402
from evstream.live.source import EventSource  # noqa: E402
from evstream.outputs import Classification, DepthMap, Detections  # noqa: E402

NAMES = ("hand clap", "right hand wave", "left hand wave", "right arm clockwise", "right arm counter-clockwise",
         "left arm clockwise", "left arm counter-clockwise", "arm roll", "air drums", "air guitar", "other")


class IdleSource(EventSource):
    """A source of the right size that is never started (the benchmark feeds the results itself)."""

    def __init__(self, sensor_size):
        super().__init__()
        self.sensor_size = sensor_size

    def _run(self) -> None:
        return


def outputs(kind: str, rng: np.random.Generator, width: int, height: int):
    """One model output of ``kind`` for a sensor of ``width`` x ``height``."""
    if kind == "detection":
        x0, y0 = rng.uniform(0, width - 40, 20), rng.uniform(0, height - 40, 20)
        boxes = np.stack([x0, y0, x0 + rng.uniform(10, 40, 20), y0 + rng.uniform(10, 40, 20)], axis=1)
        return Detections(boxes, rng.integers(0, 2, 20), rng.random(20), ("car", "pedestrian"), 0.15)
    if kind == "depth":
        return DepthMap(rng.uniform(2, 40, (height, width)).astype(np.float32), 40.0, 0.12)
    return Classification(rng.dirichlet(np.ones(11)), NAMES, 0.05)


def results(kind: str, sensor_size, n: int, window_us: int = 50_000):
    rng = np.random.default_rng(0)
    width, height = sensor_size[:2]
    for k in range(n):
        events = np.zeros(20_000, EVENT_DTYPE)
        events["x"], events["y"] = rng.integers(0, width, 20_000), rng.integers(0, height, 20_000)
        events["p"], events["t"] = rng.integers(0, 2, 20_000), k * window_us + np.arange(20_000)
        yield WindowResult(k * window_us, (k + 1) * window_us, events, outputs(kind, rng, width, height), 5.0, {})


def bench_window(app, kind: str, sensor_size, frames: int) -> float:
    from evstream.viz.window import LiveWindow

    pipeline = Pipeline(IdleSource(sensor_size), window_us=50_000, model=lambda w: None)
    window = LiveWindow(pipeline, model_info=kind)
    window.resize(1360, 850)
    window.show()
    items = list(results(kind, sensor_size, frames + 20))
    for result in items[:20]:  # warm-up: numba, first paints, label pool
        pipeline.results.set(result)
        window.refresh()
        app.processEvents()  # paints what changed
    start = time.process_time()
    for result in items[20:]:
        pipeline.results.set(result)
        window.refresh()
        app.processEvents()  # paints what changed
    rate = frames / (time.process_time() - start)
    window.close()
    return rate


def bench_video(kind: str, sensor_size, frames: int) -> float:
    from evstream.viz.dashboard import Dashboard

    dashboard = Dashboard(sensor_size, source_info={"source": "bench", "sensor": "x", "t_start_us": 0},
                          model_info=kind)
    items = list(results(kind, sensor_size, frames + 5))
    stats = PipelineStats()
    for result in items[:5]:
        dashboard.frame(result, stats)
    start = time.process_time()
    for result in items[5:]:
        dashboard.frame(result, stats)
    return frames / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames timed per output kind")
    args = parser.parse_args()
    import pyqtgraph as pg

    app = pg.mkQApp("bench")
    print(f"{'output':<15} {'window fps':>10} {'video fps':>10}")
    for kind, sensor in (("detection", (304, 240, 2)), ("depth", (346, 260, 2)), ("classification", (128, 128, 2))):
        print(f"{kind:<15} {bench_window(app, kind, sensor, args.frames):>10.1f} "
              f"{bench_video(kind, sensor, args.frames):>10.1f}")


if __name__ == "__main__":
    main()
