"""The live window offscreen, checked by its pixels, labels and state: events and boxes where expected,
class names and colours, depth colours equal to the video's, labels inside the frame and apart,
replay controls that follow the playback, the end of the recording, drops shown apart, the info panel."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pg = pytest.importorskip("pyqtgraph")
from pyqtgraph.Qt import QtCore, QtWidgets  # noqa: E402

from evstream import make_events, write_events  # noqa: E402
from evstream.live.pipeline import Pipeline, PipelineStats, WindowResult  # noqa: E402
from evstream.live.replay import FileReplaySource  # noqa: E402
from evstream.live.source import EventSource  # noqa: E402
from evstream.outputs import Classification, DepthMap, Detections  # noqa: E402
from evstream.viz.captions import END_OF_RECORDING  # noqa: E402
from evstream.viz.dashboard import Dashboard  # noqa: E402
from evstream.viz.render import bar_rgb, class_rgb, depth_rgb  # noqa: E402
from evstream.viz.window import SLIDER_STEPS, LiveWindow  # noqa: E402

T0 = 5_000_000  # the recordings' clock does not start at 0


@pytest.fixture(scope="module")
def app():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


class SquareSource(EventSource):
    """ON events filling the square x, y in [40, 60) every millisecond for 0.2 s (unpaced)."""

    def __init__(self):
        super().__init__()
        self.sensor_size = (160, 120, 2)

    def _run(self):
        ys, xs = np.mgrid[40:60, 40:60]
        for k in range(200):
            n = xs.size
            self._emit(make_events(xs.ravel(), ys.ravel(), np.full(n, T0 + k * 1000), np.ones(n)), T0 + (k + 1) * 1000)
            time.sleep(0.0005)


@pytest.fixture
def recording(tmp_path):
    """1 s of a bar moving right (40 events per ms), 160x120, starting at T0, as a DAT file."""
    t = np.repeat(np.arange(T0, T0 + 1_000_000, 1000), 40)
    x = 20 + (t - T0) // 10_000
    y = np.tile(np.arange(40, 80), 1000)
    path = tmp_path / "bar_td.dat"
    write_events(path, make_events(x, y, t, np.ones(len(t))), (160, 120, 2))
    return path


def _spin(app, seconds, until=lambda: False):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        app.processEvents()
        time.sleep(0.005)
    return until()


def _run_to_end(app, pipeline, window):
    window.resize(1000, 620)
    window.show()
    pipeline.start()
    assert _spin(app, 60, until=lambda: not pipeline.running and window._seen == pipeline.results.get()[0])
    _spin(app, 0.15)  # the plots redraw at 20 Hz


def _plot_pixel(widget, plot, x, y):
    """RGB on screen of plot coordinates (x, y) of a PlotItem inside a GraphicsLayoutWidget."""
    image = widget.grab().toImage()
    point = widget.mapFromScene(plot.vb.mapViewToScene(QtCore.QPointF(x, y)))
    colour = image.pixelColor(point.x(), point.y())
    return [colour.red(), colour.green(), colour.blue()]


def _status_time(window) -> float:
    """The time the status bar shows, in seconds."""
    return float(window.status.text().split()[1])


def _overlap(a, b):
    return a[0] < b[0] + b[2] - 1e-9 and b[0] < a[0] + a[2] - 1e-9 and a[1] < b[1] + b[3] - 1e-9 and b[1] < a[1] + a[3] - 1e-9


def test_window_shows_events_and_boxes(app):
    box = Detections(np.array([[20.0, 20.0, 100.0, 80.0]]), np.array([0]), np.array([0.9]), ("car",))
    pipeline = Pipeline(SquareSource(), window_us=10_000, model=lambda w: box, max_lag_ms=1e9)
    window = LiveWindow(pipeline, fps=100)
    _run_to_end(app, pipeline, window)
    assert window._seen == 20  # 0.2 s in 10 ms windows, every one painted or superseded
    panel = window.event_panel
    inside, outside = panel.pixel_rgb(50, 50), panel.pixel_rgb(130, 100)
    assert inside[0] > 150 and inside[1] > 120 and inside[2] < 120  # warm ON colour
    assert outside.max() < 60  # dark background
    assert panel.pixel_rgb(60, 80).tolist() == list(class_rgb(0))  # the box's bottom edge, in the class colour
    assert 0 < _status_time(window) <= 0.2  # relative to the first window seen, not 5.2 s
    window.close()
    assert not pipeline.running


def test_class_names_label_the_bars_in_their_colours(app):
    probs = Classification(np.array([0.1, 0.8, 0.1]), ("clap", "wave", "roll"), firing_rate=0.05)
    pipeline = Pipeline(SquareSource(), window_us=10_000, model=lambda w: probs, max_lag_ms=1e9)
    window = LiveWindow(pipeline, fps=100, model_info="gesture · test net")
    _run_to_end(app, pipeline, window)
    panel = window.class_panel
    assert panel.isVisible() and not window.depth_panel.isVisible()
    ticks = panel.bars_plot.getAxis("left")._tickLevels[0]  # the ticks set on the axis (no public getter)
    assert [name for _, name in ticks] == ["clap", "wave", "roll"]
    assert _plot_pixel(panel.graphics, panel.bars_plot, 0.4, 1) == list(bar_rgb(1, True))
    assert _plot_pixel(panel.graphics, panel.bars_plot, 0.05, 0) == list(bar_rgb(0, False))
    assert [label.toPlainText() for label in panel.percent] == ["10%", "80%", "10%"]
    assert "firing rate" in window.plots
    firing = window.plots["firing rate"].curves[0].getData()[1]
    assert firing[-1] == pytest.approx(5.0)  # percent of neurons
    window.close()


def test_firing_rate_panel_only_when_a_model_runs(app):
    window = LiveWindow(Pipeline(SquareSource(), window_us=10_000))
    assert "firing rate" not in window.plots and set(window.plots) == {"event rate", "latency", "drops"}
    assert not window.model_box.isEnabled() and not window.play_button.isVisibleTo(window)  # live: no replay controls
    window.close()


def test_depth_colours_and_bar_match_the_video(app):
    depth = np.full((60, 80), 20.0, np.float32)
    depth[:, :40] = 2.0
    output = DepthMap(depth, d_max=40.0, firing_rate=0.1)
    pipeline = Pipeline(SquareSource(), window_us=10_000, model=lambda w: output, max_lag_ms=1e9)
    window = LiveWindow(pipeline, fps=100)
    _run_to_end(app, pipeline, window)
    near, far = depth_rgb(np.array([[2.0, 20.0]]), d_max=40.0)[0].tolist()
    panel = window.depth_panel
    assert panel.isVisible() and panel.frame_wh == (80, 60)  # the model's resolution, not the sensor's
    assert panel.pixel_rgb(20.5, 30.5).tolist() == near and panel.pixel_rgb(60.5, 30.5).tolist() == far
    dashboard = Dashboard((160, 120, 2))
    frame = dashboard.frame(pipeline.results.get()[1], pipeline.stats)
    x, y, w, h = dashboard.layout.output
    assert frame[y + h // 2, x + w // 4].tolist() == near and frame[y + h // 2, x + 3 * w // 4].tolist() == far
    assert [text.toPlainText() for text, _ in panel.ticks] == ["1 m", "2 m", "5 m", "10 m", "20 m", "40 m"]
    bar = panel.bar.mapRectToView(panel.bar.boundingRect())
    assert bar.top() == pytest.approx(0) and bar.bottom() == pytest.approx(60)  # as tall as the depth map
    bottom_colour = panel.pixel_rgb(bar.center().x(), 59.5)
    assert np.abs(bottom_colour - depth_rgb(np.array([[1.0]]), d_max=40.0)[0, 0]).max() <= 8  # near at the bottom
    last = pipeline.results.get()[1]
    pipeline.results.set(WindowResult(last.t_end_us, last.t_end_us + 10_000, last.events[:0], None, 1.0, {}))
    _spin(app, 0.1)
    assert panel.image.image is None  # the model switched off: no stale depth on screen
    window.close()


def test_box_labels_stay_inside_the_frame_and_apart(app):
    boxes = np.array([[0, 0, 30, 20], [2, 1, 32, 21], [120, 90, 160, 120], [125, 95, 160, 120], [60, 50, 90, 80],
                      [62, 52, 92, 82], [64, 54, 94, 84], [140, 0, 160, 30]], float)
    detections = Detections(boxes, np.array([0, 1, 0, 1, 0, 1, 0, 1]), np.linspace(0.9, 0.3, 8), ("car", "pedestrian"))
    pipeline = Pipeline(SquareSource(), window_us=10_000, model=lambda w: detections, max_lag_ms=1e9)
    window = LiveWindow(pipeline, fps=100)
    _run_to_end(app, pipeline, window)
    for size in ((1000, 620), (700, 450)):  # labels are re-placed when the view changes size
        window.resize(*size)
        _spin(app, 0.3)
        rects = window.event_panel.label_rects()
        assert len(rects) >= 4
        for k, (x, y, w, h) in enumerate(rects):
            assert x >= -1e-6 and y >= -1e-6 and x + w <= 160 + 1e-6 and y + h <= 120 + 1e-6
            assert not any(_overlap(rects[k], other) for other in rects[k + 1:])
    labels = [label for label in window.event_panel.labels if label.isVisible()]
    assert all(label.fill.color().getRgb()[:3] == class_rgb(0 if label.toPlainText().startswith("car") else 1)
               for label in labels)
    window.close()


def test_replay_controls_follow_playback_pause_seek_and_the_end(app, recording):
    source = FileReplaySource(recording, speed=1.0, hold_at_end=True)
    pipeline = Pipeline(source, window_us=50_000)
    window = LiveWindow(pipeline, fps=100, model_info=None)
    window.show()
    pipeline.start()
    _spin(app, 0.35)
    assert window.play_button.text() == "Pause" and window.state()[0] == "playing"
    first = window.seek_slider.value()
    assert _spin(app, 3, until=lambda: window.seek_slider.value() > first + 1000)  # the slider follows
    position = (source.position_us - T0) / 1e6
    assert abs(window.seek_slider.value() / SLIDER_STEPS * 0.999 - position) < 0.05
    assert 0 < _status_time(window) <= 0.999  # relative time (the file starts at 5 s)

    window.play_button.click()
    assert window.play_button.text() == "Play" and window.state() == ("paused", "paused")
    _spin(app, 0.1)
    held = source.position_us
    _spin(app, 0.2)
    assert source.position_us == held  # the replay stopped

    window.seek_slider.setSliderPosition(SLIDER_STEPS // 10)  # a drag to 10 % while paused, released
    window.seek_slider.sliderReleased.emit()
    _spin(app, 0.3)
    assert abs(window.seek_slider.value() - SLIDER_STEPS // 10) < 20  # shows the target, still paused
    sequence = window.timeline.sequence
    window.play_button.click()
    assert window.play_button.text() == "Pause"
    assert _spin(app, 3, until=lambda: source.position_us != held)
    assert source.position_us < T0 + 300_000  # plays on from the target, not fast-forwarding to where it was
    assert _spin(app, 3, until=lambda: window.timeline.sequence != sequence)  # back in time: a new sequence

    assert _spin(app, 5, until=lambda: window.state()[0] == "ended")
    _spin(app, 0.1)
    assert window.event_panel.message.isVisible() and window.event_panel.message.toPlainText() == END_OF_RECORDING
    assert END_OF_RECORDING in window.state_label.text()
    assert window.play_button.text() == "Play" and window.play_button.isEnabled()
    assert window.seek_slider.value() == SLIDER_STEPS
    window.play_button.click()  # play again from the start
    assert _spin(app, 2, until=lambda: window.state()[0] == "playing" and source.position_us < T0 + 500_000)
    _spin(app, 0.05)
    assert not window.event_panel.message.isVisible()
    window.close()


def test_info_panel_names_the_file_sensor_duration_position_and_model(app, recording):
    source = FileReplaySource(recording, speed=1.0)
    pipeline = Pipeline(source, window_us=50_000)
    window = LiveWindow(pipeline, fps=100, model_info="detection · SpikeYOLO rt · input 160x128")
    window.show()
    pipeline.start()
    _spin(app, 0.6)
    text = window.info_label.text()
    for expected in ("replay:bar_td.dat", "dat", "160 × 120", "0.999 s", "position", "events/s", "50 ms",
                     "detection · SpikeYOLO rt · input 160x128"):
        assert expected in text, expected
    window.close()


def test_drops_are_shown_apart_and_agree(app):
    pipeline = Pipeline(SquareSource(), window_us=10_000, max_lag_ms=1e9)
    window = LiveWindow(pipeline, fps=100)
    _run_to_end(app, pipeline, window)
    pipeline.stats.source_drops, pipeline.stats.dropped_windows = 3, 680
    _, last = pipeline.results.get()
    pipeline.results.set(WindowResult(last.t_end_us, last.t_end_us + 10_000, last.events[:0], None, 1.0, {},
                                      last.sequence))
    _spin(app, 0.2)
    status = window.status.text()
    assert "3 source batches" in status and "680 late windows" in status and "683" not in status
    source_curve, late_curve = window.plots["drops"].curves
    assert source_curve.getData()[1][-1] == 3 and late_curve.getData()[1][-1] == 680
    window.close()


def test_errors_show_as_one_line(app):
    class Failing(EventSource):
        def __init__(self):
            super().__init__()
            self.sensor_size = (160, 120, 2)

        def _run(self):
            raise OSError("camera unplugged\nsecond line of a traceback")

    pipeline = Pipeline(Failing(), model=lambda w: None)
    window = LiveWindow(pipeline)
    pipeline.start()
    _spin(app, 0.3)
    assert window.status.text() == "error: Failing: camera unplugged"  # the source's name, the first line
    assert window.event_panel.message.isVisible() and "camera unplugged" in window.event_panel.message.toPlainText()
    window.close()


def test_initial_size_comes_from_the_screen(app):
    window = LiveWindow(Pipeline(SquareSource(), window_us=10_000))
    area = app.primaryScreen().availableGeometry()
    assert window.width() <= area.width() and window.height() <= area.height()
    assert (window.width(), window.height()) != (1280, 720)
    window.close()


def test_qt_binding_does_not_leak_none(app):
    widget = QtWidgets.QLabel("x")
    widget.show()
    before = sys.getrefcount(None)
    for _ in range(20_000):
        widget.update()
        app.processEvents()
    assert abs(sys.getrefcount(None) - before) < 1000  # PySide6 6.12 on 3.11 loses one per call
    widget.close()
