"""``evstream live``, ``evstream replay`` and ``evstream demo``: a source, the pipeline, the window
(or, without a display, an MP4 and a summary written to a folder).

Every run ends with a summary (printed as JSON and written beside the video): how it ended (the
recording's end, ``--seconds``, Ctrl-C, an error), the pipeline's counters, latencies, and the
files written. A model trained on another sensor is fed through the ``--fit`` policy, said in
the summary and the window.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from evstream.errors import UserError
from evstream.jsonout import to_json
from evstream.live.models import MODELS_DIR, TASKS
from evstream.live.score import PlaylistScore

RECORDINGS = MODELS_DIR.parent / "recordings"
DEMOS = {  # recording, task of its bundled model
    "road": (RECORDINGS / "gen1_road/test/sim_road_0002_td.dat", "detection"),
    "gesture": (RECORDINGS / "dvs_gesture/user24_fluorescent.aedat", "gesture"),
    "depth": (RECORDINGS / "mvsec_depth/sim_corridor1_data.hdf5", "depth"),
}
FINISH_S = 30.0
"""How long a stopped run waits for the model's last call: a thread left inside torch when the
interpreter exits aborts the process ("terminate called without an active exception")."""
STATUS_EVERY_S = 5.0
"""How often a headless run refreshes its summary file while it runs."""
QT_XCB_PACKAGES = "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0"
"""Debian/Ubuntu packages Qt's xcb platform plugin needs beyond a desktop's usual X libraries."""


def has_display() -> bool:
    """Whether a display is configured (an X or Wayland display, and Qt not forced offscreen)."""
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def qt_window_problem() -> str | None:
    """Why Qt cannot open a window here (None when it can).

    Qt aborts the whole process when its platform plugin cannot start (missing xcb libraries),
    so a child process tries first and only its failure is seen.
    """
    if not has_display():
        return "no display found"
    probe = "from PySide6.QtWidgets import QApplication; QApplication([])"
    try:
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "Qt did not start within 30 s"
    if run.returncode == 0:
        return None
    lines = [line.strip() for line in run.stderr.splitlines() if line.strip()]
    unreachable = next((line for line in lines if "could not connect to display" in line), None)
    if unreachable is not None:
        return f"Qt {unreachable.split(': ', 1)[-1]} (is an X server running there?)"
    return (f"Qt cannot start its window system plugin ({lines[0] if lines else f'rc {run.returncode}'}); on "
            f"Debian/Ubuntu install Qt's X11 libraries: sudo apt-get install {QT_XCB_PACKAGES}")


def write_summary(path: Path, summary: dict) -> str:
    """Write ``summary`` as strict JSON (NaN as null) to ``path`` atomically; returns the one-line JSON text."""
    from evstream.io.atomic import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(to_json(summary, indent=2) + "\n")
    return to_json(summary)


def _summary(source, pipeline, model_info: str, ended: str, wall_s: float) -> dict:
    p50, p99 = pipeline.stats.latency_percentiles()
    return {**source.info(), "model": model_info, "ended": ended, **pipeline.stats.counters(),
            "latency_ms_p50": p50, "latency_ms_p99": p99, "wall_s": round(wall_s, 3),
            "error": str(pipeline.error or source.error) if (pipeline.error or source.error) else None}


def run_headless(source, model, window_us: int, out: Path, seconds: float | None, name: str, *,
                 model_info: str = "no model (events only)", video: bool = True, taps=()) -> tuple[dict, int]:
    """Process a source to its end, ``seconds`` of event time, or Ctrl-C, into ``out/<name>.mp4`` and a summary.

    While it runs, ``out/<name>.json`` is refreshed every few seconds (``"ended": "running"``), so a
    long or looping run can be watched. Returns ``(summary, exit status)``: 0 at the end or after
    ``seconds``, 130 after Ctrl-C, 2 on an error.
    """
    from evstream.live.pipeline import Pipeline
    from evstream.viz.dashboard import Dashboard
    from evstream.viz.headless import VideoSink, save_png

    out.mkdir(parents=True, exist_ok=True)
    dashboard = Dashboard(source.sensor_size, source_info=source.info(), model_info=model_info)
    sink = VideoSink(out / f"{name}.mp4", fps=min(1e6 / window_us, 60.0)) if video else None
    last: dict = {}
    processed = [0]  # event time covered by processed windows, over every loop
    score = PlaylistScore()

    def write(result) -> None:
        processed[0] += result.t_end_us - result.t_start_us
        score.update(result)
        if sink is not None:
            frame = dashboard.frame(result, pipeline.stats)
            sink.write(frame)
            last["frame"] = frame

    lossless = getattr(source, "lossless", False)
    pipeline = Pipeline(source, window_us=window_us, model=model, max_lag_ms=1e9 if lossless else 150.0,
                        on_result=write, taps=taps)
    interrupted = threading.Event()
    previous_handler = signal.signal(signal.SIGINT, lambda *_: interrupted.set())  # a second Ctrl-C too
    start = next_status = time.monotonic()
    ended = "end of stream"
    try:
        pipeline.start()
        while pipeline.running:
            if interrupted.is_set():
                ended = "interrupted (Ctrl-C)"
                break
            if seconds is not None and processed[0] >= seconds * 1e6:
                ended = f"{seconds:g} s of event time"
                break
            if time.monotonic() >= next_status:
                next_status += STATUS_EVERY_S
                write_summary(out / f"{name}.json", _summary(source, pipeline, model_info, "running",
                                                             time.monotonic() - start))
            time.sleep(0.02)
    finally:
        pipeline.stop()
        pipeline.join(FINISH_S)  # the model thread finishes its window (and the video sink its frame)
        if sink is not None:
            sink.close()
        signal.signal(signal.SIGINT, previous_handler)
    if pipeline.error is not None or source.error is not None:
        ended = "error"
    files = []
    if sink is not None and sink.frames and sink.path.exists():
        files.append(str(sink.path))
    if "frame" in last:
        save_png(out / f"{name}.png", last["frame"])
        files.append(str(out / f"{name}.png"))
    summary = _summary(source, pipeline, model_info, ended, time.monotonic() - start)
    score.finish()
    if score.samples or score.unscored:
        summary["playlist"] = score.summary()
    summary["files"] = [*files, str(out / f"{name}.json")]
    status = 2 if ended == "error" else 130 if ended.startswith("interrupted") else 0
    return summary, status


def run_window(source, model, window_us: int, title: str, seconds: float | None = None,
               screenshots: list[tuple[float, Path]] = (), model_info: str | None = None,
               taps=()) -> tuple[dict, int]:
    """Show the live window (sized from the screen) until it is closed, Ctrl-C, or ``seconds`` of event
    time; save each ``(seconds, png)`` of ``screenshots`` when that much event time was shown.

    Returns ``(summary, exit status)`` as :func:`run_headless`.
    """
    import pyqtgraph as pg
    from pyqtgraph.Qt import QtCore

    from evstream.live.pipeline import Pipeline
    from evstream.viz.window import LiveWindow

    app = pg.mkQApp(title)
    pipeline = Pipeline(source, window_us=window_us, model=model, taps=taps)
    window = LiveWindow(pipeline, title=title, model_info=model_info)
    interrupted = threading.Event()

    def on_sigint(*_) -> None:
        interrupted.set()
        window.close()

    previous_handler = signal.signal(signal.SIGINT, on_sigint)
    shown = {"sequence": None, "start_us": 0, "end_us": 0, "before_us": 0}  # event time shown, over loops
    pending = sorted(screenshots)
    ended = ["window closed"]

    def check_end() -> None:
        _, result = pipeline.results.get()
        if result is None:
            return
        if result.sequence != shown["sequence"]:  # a new pass (a loop, a seek back): count the last one
            shown["before_us"] += shown["end_us"] - shown["start_us"]
            shown.update(sequence=result.sequence, start_us=result.t_start_us)
        shown["end_us"] = result.t_end_us
        elapsed_us = shown["before_us"] + shown["end_us"] - shown["start_us"]
        while pending and elapsed_us >= pending[0][0] * 1e6:
            _, path = pending.pop(0)
            window.grab().save(str(path))
            print(f"evstream: screenshot saved to {path}", flush=True)
        if seconds is not None and elapsed_us >= seconds * 1e6 and watchdog.isActive():
            watchdog.stop()
            ended[0] = f"{seconds:g} s of event time"
            window.close()

    watchdog = QtCore.QTimer(window)
    watchdog.timeout.connect(check_end)
    watchdog.start(100)
    start = time.monotonic()
    try:
        window.show()
        pipeline.start()
        app.exec()
    finally:
        pipeline.stop()
        pipeline.join(FINISH_S)
        signal.signal(signal.SIGINT, previous_handler)
    if interrupted.is_set():
        ended[0] = "interrupted (Ctrl-C)"
    if pipeline.error is not None or source.error is not None:
        ended[0] = "error"
    summary = _summary(source, pipeline, model_info or "no model (events only)", ended[0], time.monotonic() - start)
    if window.score.samples or window.score.unscored:
        summary["playlist"] = window.score.summary()
    status = 2 if ended[0] == "error" else 130 if interrupted.is_set() else 0
    return summary, status


def _view(source, args, name: str) -> int:
    from evstream.live.models import load_live_model

    model, message = load_live_model(args.task, checkpoint_path=args.checkpoint, source_size=source.sensor_size,
                                     fit=args.fit, device=args.device)
    window_us = int(args.window_ms * 1000) if args.window_ms else (model.window_us if model else 50_000)
    width, height = source.sensor_size[:2]
    print(f"evstream: {source.name}, {width}x{height}; model: {message}", flush=True)
    with _dv_server(args.serve_dv, source.sensor_size) as server:
        taps = [server.send] if server is not None else []
        problem = None if args.headless else qt_window_problem()
        if args.headless or problem is not None:
            out = Path(args.out)
            if problem is not None:
                print(f"evstream: {problem}: writing the view to {out}/ instead of opening a window", flush=True)
            summary, status = run_headless(source, model, window_us, out, args.seconds, name, model_info=message,
                                           video=not args.no_video, taps=taps)
            print(write_summary(out / f"{name}.json", summary), flush=True)
        else:
            summary, status = run_window(source, model, window_us, f"evstream - {source.name}", args.seconds,
                                         _screenshots(args), message, taps)
            print(to_json(summary), flush=True)
    if summary["error"]:
        print(f"evstream: error: {summary['error']}", file=sys.stderr)
    return status


def _screenshots(args) -> list[tuple[float, Path]]:
    """``(seconds, png)`` for ``--screenshot PNG [--screenshot-at S,...]`` (numbered when several)."""
    if not args.screenshot:
        return []
    times = [float(t) for t in args.screenshot_at.split(",")] if args.screenshot_at else \
        [args.seconds if args.seconds is not None else 0.0]
    path = Path(args.screenshot)
    if len(times) == 1:
        return [(times[0], path)]
    return [(t, path.with_name(f"{path.stem}_{k + 1}{path.suffix}")) for k, t in enumerate(times)]


@contextlib.contextmanager
def _dv_server(address: str | None, sensor_size):
    """A DV network server on ``[HOST:]PORT`` for the run (None without ``--serve-dv``)."""
    if address is None:
        yield None
        return
    from evstream.live.dv_server import DvNetworkServer

    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise UserError(f"--serve-dv {address!r}: expected PORT or HOST:PORT")
    server = DvNetworkServer(int(port), sensor_size, host=host or "127.0.0.1")
    print(f"evstream: serving the event stream in the DV network format on {host or '127.0.0.1'}:{server.port}",
          flush=True)
    try:
        yield server
    finally:
        server.close()


def _headless(args) -> bool:
    return args.headless or not has_display()


def _live(args) -> int:
    from evstream.live.sources import open_source

    return _view(open_source(args.source, timeout_s=args.timeout), args, args.source.split(":")[0])


def _replay(args) -> int:
    from evstream.io.options import reader_options
    from evstream.live.replay import FileReplaySource

    speed = args.speed if args.speed is not None else (float("inf") if _headless(args) else 1.0)
    source = FileReplaySource(args.file, speed=speed, loop=args.loop, hold_at_end=not _headless(args),
                              **reader_options(args))
    return _view(source, args, Path(args.file).stem)


def _demo(args) -> int:
    from evstream.live.replay import FileReplaySource

    names = list(DEMOS) if args.recording == "all" else [args.recording]
    headless = _headless(args)
    status = 0
    for name in names:
        path, task = DEMOS[name]
        args.task = args.task or task
        speed = args.speed if args.speed is not None else (float("inf") if headless else 1.0)
        source = FileReplaySource(path, speed=speed, loop=args.loop or not headless)
        status = max(status, _view(source, args, f"demo_{name}"))
        args.task = None if args.task == task else args.task
        if not headless or status == 130:
            break
    return status


def _view_arguments(parser: argparse.ArgumentParser, task_default: str | None) -> None:
    parser.add_argument("--task", default=task_default, choices=TASKS,
                        help="which bundled model runs on the windows (none: events only)")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="run this model instead of the bundled one (any checkpoint 'evstream eval --export' "
                             "writes; its kind is read from the file)")
    parser.add_argument("--fit", default="crop", choices=["crop", "resize", "pad"],
                        help="how events of another sensor reach the model's input, keeping the aspect: crop "
                             "(scale to cover, crop the excess), resize (scale to fit, empty borders), pad (no "
                             "scaling, centred)")
    parser.add_argument("--window-ms", type=float, metavar="MS", help="window length (default: the model's)")
    parser.add_argument("--device", default="cpu", help="torch device of the model: cpu, cuda, cuda:1, ...")
    parser.add_argument("--headless", action="store_true",
                        help="no window: write an MP4, a PNG of the last frame and a JSON summary to --out")
    parser.add_argument("--out", default="evstream_out", metavar="DIR", help="folder for the headless output")
    parser.add_argument("--no-video", action="store_true", help="headless: write the summary only, no MP4")
    parser.add_argument("--seconds", type=float, metavar="S", help="stop after this much event time")
    parser.add_argument("--serve-dv", metavar="[HOST:]PORT",
                        help="also publish the event stream in the DV network format (dv-processing's NetworkReader, "
                             "DV's net_tcp_client read it) on HOST (default 127.0.0.1) and PORT")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="with a window: save it to this PNG when --seconds of event time were shown (or at "
                             "--screenshot-at)")
    parser.add_argument("--screenshot-at", metavar="S[,S...]",
                        help="with --screenshot: the event times (seconds, over loops) to save it at; several times "
                             "give PNG_1, PNG_2, ...")


def _replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speed", type=float, metavar="X",
                        help="replay speed, 1 = real time (default: 1 in the window, as fast as possible headless)")
    parser.add_argument("--loop", action="store_true", help="start again at the end of the recording")


def register(subparsers) -> None:
    """Add the ``live``, ``replay`` and ``demo`` subcommands."""
    from evstream.io.options import add_reader_arguments

    live = subparsers.add_parser("live", help="run a live source through a model in the window")
    live.add_argument("--source", required=True, metavar="SPEC",
                      help="dv[:SERIAL] | dvnet:HOST:PORT | metavision[:PATH] | webcam[:N] | video:FILE | synthetic")
    live.add_argument("--timeout", type=float, default=5.0, metavar="S",
                      help="seconds a source may stay silent (connect, read) before it is reported as stalled")
    _view_arguments(live, "none")
    live.set_defaults(run=_live)

    replay = subparsers.add_parser("replay", help="replay an event file in real time in the window")
    replay.add_argument("file", metavar="PATH",
                        help="an event file of any format evstream reads, or a folder played as a playlist (each "
                             "file's folder name is its ground truth, e.g. N-MNIST's Test/<digit>/)")
    _replay_arguments(replay)
    add_reader_arguments(replay)
    _view_arguments(replay, "none")
    replay.set_defaults(run=_replay)

    demo = subparsers.add_parser("demo", help="the bundled recordings with the bundled models (no camera needed)")
    demo.add_argument("--recording", default="road", choices=[*DEMOS, "all"],
                      help="which bundled recording (all: each in turn, headless)")
    _replay_arguments(demo)
    _view_arguments(demo, None)
    demo.set_defaults(run=_demo)
