"""``evstream live``, ``evstream replay`` and ``evstream demo``: a source, the pipeline, the window
(or, without a display, an MP4 and a summary written to a folder)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from evstream.live.models import MODELS_DIR

RECORDINGS = MODELS_DIR.parent / "recordings"
DEMOS = {  # recording, task of its bundled model
    "road": (RECORDINGS / "gen1_road/test/sim_road_0002_td.dat", "detection"),
    "gesture": (RECORDINGS / "dvs_gesture/user24_fluorescent.aedat", "gesture"),
    "depth": (RECORDINGS / "mvsec_depth/sim_corridor1_data.hdf5", "depth"),
}


def has_display() -> bool:
    """Whether a window can be shown (an X or Wayland display, and Qt not forced offscreen)."""
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_headless(source, model, window_us: int, out: Path, seconds: float | None, name: str) -> dict:
    """Process a source to its end (or ``seconds`` of event time) into ``out/<name>.mp4`` and a summary."""
    from evstream.live.pipeline import Pipeline
    from evstream.viz.dashboard import Dashboard
    from evstream.viz.headless import VideoSink, save_png

    out.mkdir(parents=True, exist_ok=True)
    dashboard = Dashboard(source.sensor_size)
    video = VideoSink(out / f"{name}.mp4", fps=min(1e6 / window_us, 60.0))
    last = {}

    def write(result):
        frame = dashboard.frame(result, pipeline.stats)
        video.write(frame)
        last["frame"] = frame

    pipeline = Pipeline(source, window_us=window_us, model=model, max_lag_ms=1e9, on_result=write)
    start = time.monotonic()
    with pipeline:
        first_t = None
        while pipeline.running:
            version, result = pipeline.results.get()
            if result is not None:
                first_t = result.t_start_us if first_t is None else first_t
                if seconds is not None and result.t_end_us - first_t >= seconds * 1e6:
                    break
            time.sleep(0.01)
    video.close()
    if pipeline.error is not None:
        raise pipeline.error
    if "frame" in last:
        save_png(out / f"{name}.png", last["frame"])
    p50, p99 = pipeline.stats.latency_percentiles()
    summary = {"source": source.name, "windows": pipeline.stats.windows, "events": pipeline.stats.events,
               "dropped_windows": pipeline.stats.dropped_windows, "source_drops": source.dropped,
               "latency_ms_p50": p50, "latency_ms_p99": p99, "wall_s": time.monotonic() - start,
               "video": str(out / f"{name}.mp4"), "frames": video.frames}
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_window(source, model, window_us: int, title: str, seconds: float | None = None,
               screenshot: Path | None = None, model_info: str | None = None) -> int:
    """Show the live window (sized from the screen) until it is closed, Ctrl-C, or ``seconds`` of event
    time (then save ``screenshot`` and quit)."""
    import pyqtgraph as pg
    from pyqtgraph.Qt import QtCore

    from evstream.live.pipeline import Pipeline
    from evstream.viz.window import LiveWindow

    app = pg.mkQApp(title)
    pipeline = Pipeline(source, window_us=window_us, model=model)
    window = LiveWindow(pipeline, title=title, model_info=model_info)
    signal.signal(signal.SIGINT, lambda *_: window.close())
    shown = {"sequence": None, "start_us": 0, "end_us": 0, "before_us": 0}  # event time shown, over loops

    def check_end() -> None:
        _, result = pipeline.results.get()
        if result is None:
            return
        if result.sequence != shown["sequence"]:  # a new pass (a loop, a seek back): count the last one
            shown["before_us"] += shown["end_us"] - shown["start_us"]
            shown.update(sequence=result.sequence, start_us=result.t_start_us)
        shown["end_us"] = result.t_end_us
        elapsed_us = shown["before_us"] + shown["end_us"] - shown["start_us"]
        if seconds is not None and elapsed_us >= seconds * 1e6 and watchdog.isActive():
            watchdog.stop()
            if screenshot is not None:
                window.grab().save(str(screenshot))
                print(f"evstream: screenshot saved to {screenshot}")
            window.close()

    watchdog = QtCore.QTimer(window)
    watchdog.timeout.connect(check_end)
    watchdog.start(100)
    window.show()
    pipeline.start()
    app.exec()
    pipeline.stop()
    if pipeline.error is not None or source.error is not None:
        print(f"evstream: {pipeline.error or source.error}", file=sys.stderr)
        return 1
    return 0


def _view(source, task: str, args, name: str) -> int:
    from evstream.live.models import load_live_model

    model, window_us, message = load_live_model(task, device=args.device)
    window_us = int(args.window_ms * 1000) if args.window_ms else (window_us or 50_000)
    print(f"evstream: {source.name}, {source.sensor_size[0]}x{source.sensor_size[1]}; {message}")
    if args.headless or not has_display():
        out = Path(args.out)
        if not args.headless:
            print(f"evstream: no display found: writing the view to {out}/ instead of opening a window")
        summary = run_headless(source, model, window_us, out, args.seconds, name)
        print(json.dumps(summary))
        return 0
    return run_window(source, model, window_us, f"evstream - {source.name}", args.seconds,
                      Path(args.screenshot) if args.screenshot else None)


def _live(args) -> int:
    from evstream.live.sources import open_source

    return _view(open_source(args.source), args.task, args, args.source.split(":")[0])


def _replay(args) -> int:
    from evstream.live.replay import FileReplaySource

    speed = float("inf") if (args.headless or not has_display()) else args.speed
    source = FileReplaySource(args.file, speed=speed, loop=args.loop and not args.headless)
    return _view(source, args.task, args, Path(args.file).stem)


def _demo(args) -> int:
    from evstream.live.replay import FileReplaySource

    names = list(DEMOS) if args.recording == "all" else [args.recording]
    headless = args.headless or not has_display()
    status = 0
    for name in names:
        path, task = DEMOS[name]
        source = FileReplaySource(path, speed=float("inf") if headless else 1.0, loop=not headless)
        status |= _view(source, task, args, f"demo_{name}")
        if not headless:
            break
    return status


def _view_arguments(parser: argparse.ArgumentParser, task_default: str) -> None:
    parser.add_argument("--task", default=task_default, choices=["none", "gesture", "detection", "depth"],
                        help="which bundled model runs on the windows")
    parser.add_argument("--window-ms", type=float, help="window length (default: the model's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--headless", action="store_true", help="no window: write an MP4 and a summary to --out")
    parser.add_argument("--out", default="evstream_out", help="folder for --headless output")
    parser.add_argument("--seconds", type=float, help="stop after this much event time")
    parser.add_argument("--screenshot", help="with a window: save it to this PNG when --seconds is reached")


def register(subparsers) -> None:
    """Add the ``live``, ``replay`` and ``demo`` subcommands."""
    live = subparsers.add_parser("live", help="run a live source through a model in the window")
    live.add_argument("--source", required=True,
                      help="dv[:SERIAL] | dvnet:HOST:PORT | metavision[:PATH] | webcam[:N] | video:FILE | synthetic")
    _view_arguments(live, "none")
    live.set_defaults(run=_live)

    replay = subparsers.add_parser("replay", help="replay an event file in real time in the window")
    replay.add_argument("file")
    replay.add_argument("--speed", type=float, default=1.0)
    replay.add_argument("--loop", action="store_true")
    _view_arguments(replay, "none")
    replay.set_defaults(run=_replay)

    demo = subparsers.add_parser("demo", help="the bundled recordings with the bundled models (no camera needed)")
    demo.add_argument("--recording", default="road", choices=[*DEMOS, "all"])
    _view_arguments(demo, "none")
    demo.set_defaults(run=_demo, task=None)
