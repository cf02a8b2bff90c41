"""Screenshots of the live window on the bundled demo recordings with their models, and frames of the
headless video (for the README).

Run under a virtual display, e.g.::

    xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshots/make_screenshots.py

The replay speed is lowered for the slower models so that a shared CPU keeps up (the window
shows the speed it ran at). Each PNG is written with maximum compression.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyqtgraph as pg

from evstream.live.models import load_live_model
from evstream.live.pipeline import Pipeline
from evstream.live.replay import FileReplaySource
from evstream.viz.commands import DEMOS
from evstream.viz.dashboard import Dashboard
from evstream.viz.headless import save_png
from evstream.viz.window import LiveWindow

CHECKPOINTS = {"detection": "detector_spikeyolo.pt", "gesture": "gesture_tasnn.pt", "depth": "depth_spiking_unet.pt"}


def shoot(app, name: str, speed: float, at_s: float, out: Path, end_shot: bool) -> None:
    """Replay demo ``name`` at ``speed``; save the window after ``at_s`` seconds of wall time, and
    (``end_shot``) once it holds at the end of the recording."""
    path, task = DEMOS[name]
    model, _ = load_live_model(task)
    window_us = model.window_us
    source = FileReplaySource(path, speed=speed, hold_at_end=True)
    pipeline = Pipeline(source, window_us=window_us, model=model)
    window = LiveWindow(pipeline, title=f"evstream - {source.name}",
                        model_info=f"{task} · {CHECKPOINTS[task]} · window {window_us / 1e3:g} ms")
    window.show()
    pipeline.start()
    targets = [(at_s, out / f"window_{name}.png", lambda: True)]
    if end_shot:
        targets.append((600.0, out / f"window_{name}_end.png", lambda: window.state()[0] == "ended"))
    start = time.monotonic()
    for deadline, file, ready in targets:
        while time.monotonic() - start < deadline and not (deadline == 600.0 and ready()):
            app.processEvents()
            time.sleep(0.005)
        for _ in range(20):  # let the last result and the status settle
            app.processEvents()
            time.sleep(0.01)
        window.grab().save(str(file), "PNG", 0)
        print(f"{file}: {file.stat().st_size // 1024} KB, state {window.state()[0]}")
    window.close()


def video_frame(name: str, out: Path) -> None:
    """Process demo ``name`` to its end, as ``--headless`` does, and save the frame two thirds in."""
    path, task = DEMOS[name]
    model, _ = load_live_model(task)
    window_us = model.window_us
    source = FileReplaySource(path, speed=float("inf"))
    dashboard = Dashboard(source.sensor_size, source_info=source.info(),
                          model_info=f"{task} · {CHECKPOINTS[task]} · window {window_us / 1e3:g} ms")
    frames = []
    pipeline = Pipeline(source, window_us=window_us, model=model, max_lag_ms=1e9,
                        on_result=lambda result: frames.append(dashboard.frame(result, pipeline.stats)))
    with pipeline:
        pipeline.join()
    file = out / f"video_{name}.png"
    save_png(file, frames[len(frames) * 2 // 3], compression=9)
    print(f"{file}: {file.stat().st_size // 1024} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="folder for the PNGs")
    parser.add_argument("--demos", nargs="*", default=["road", "gesture", "depth"], choices=list(DEMOS),
                        help="which demo recordings to show")
    parser.add_argument("--speeds", type=float, nargs="+", default=[0.1, 1.0, 0.05],
                        help="replay speed of each demo (lower for the slower models)")
    parser.add_argument("--at", type=float, nargs="+", default=[12.0, 14.0, 14.0],
                        help="wall seconds after which each demo's screenshot is taken")
    parser.add_argument("--video", nargs="*", default=["depth"], choices=list(DEMOS),
                        help="demos of which a headless video frame is saved too")
    args = parser.parse_args()
    for name in args.video:
        video_frame(name, args.out)
    if args.demos:
        app = pg.mkQApp("evstream")
        for k, (name, speed, at_s) in enumerate(zip(args.demos, args.speeds, args.at)):
            shoot(app, name, speed, at_s, args.out, end_shot=k == 0)


if __name__ == "__main__":
    main()
