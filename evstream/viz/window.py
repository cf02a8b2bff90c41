"""The live Qt window (pyqtgraph on PySide6): events, boxes, depth, class bars, live plots, controls.

It never blocks on the model: a 60 Hz timer polls the pipeline's latest-value slot and repaints
only when a new result arrived (LIVE.md: one queued signal per frame fell seconds behind).
Plots have fixed ranges, rescaled by hand now and then (auto-ranging cost 25% of the frame rate).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from evstream.live.pipeline import Pipeline
from evstream.live.replay import FileReplaySource
from evstream.outputs import Classification, DepthMap, Detections
from evstream.viz.render import EventImage

HISTORY = 300  # points in the rolling plots


class LivePlot:
    """A rolling line plot with a hand-managed y range."""

    def __init__(self, layout: pg.GraphicsLayoutWidget, title: str, row: int, colour):
        self.plot = layout.addPlot(row=row, col=0, title=title)
        self.plot.setMouseEnabled(False, False)
        self.plot.enableAutoRange(False)
        self.plot.setXRange(0, HISTORY, padding=0)
        self.curve = self.plot.plot(pen=pg.mkPen(colour, width=1.5))
        self.values: deque = deque(maxlen=HISTORY)
        self.top = 1.0

    def add(self, value: float) -> None:
        self.values.append(float(value) if np.isfinite(value) else 0.0)
        data = np.fromiter(self.values, float)
        peak = data.max(initial=0.0)
        if peak > self.top or peak < 0.3 * self.top:
            self.top = max(peak * 1.3, 1e-6)
            self.plot.setYRange(0, self.top, padding=0)
        self.curve.setData(data)


class LiveWindow(QtWidgets.QMainWindow):
    """Shows a running :class:`Pipeline`; replay controls appear when its source is a file replay."""

    def __init__(self, pipeline: Pipeline, *, title: str = "evstream", fps: float = 60.0, tau_us: float = 30_000.0):
        super().__init__()
        self.pipeline = pipeline
        self.setWindowTitle(title)
        width, height = pipeline.source.sensor_size[:2]
        self.event_image = EventImage(width, height, tau_us)
        self._seen = 0
        self._build(width, height)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(int(1000 / fps))

    # --- layout ----------------------------------------------------------------------------
    def _build(self, width: int, height: int) -> None:
        central = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(central)
        self.setCentralWidget(central)

        self.views = pg.GraphicsLayoutWidget()
        self.event_view = self.views.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.event_item = pg.ImageItem(axisOrder="row-major")
        self.event_view.addItem(self.event_item)
        self.event_view.setRange(xRange=(0, width), yRange=(0, height), padding=0)
        self.box_item = pg.PlotDataItem(connect="pairs", pen=pg.mkPen((80, 255, 80), width=2))
        self.event_view.addItem(self.box_item)
        self.labels: list[pg.TextItem] = []
        self.depth_view = self.views.addViewBox(row=0, col=1, lockAspect=True, invertY=True, enableMouse=False)
        self.depth_item = pg.ImageItem(axisOrder="row-major")
        self.depth_item.setColorMap(pg.colormap.get("inferno"))
        self.depth_view.addItem(self.depth_item)
        self.depth_view.setVisible(False)
        grid.addWidget(self.views, 0, 0, 2, 1)

        side = pg.GraphicsLayoutWidget()
        self.bars_plot = side.addPlot(row=0, col=0, title="class probabilities")
        self.bars_plot.setYRange(0, 1, padding=0)
        self.bars_plot.setMouseEnabled(False, False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=(255, 200, 40))
        self.bars_plot.addItem(self.bars)
        self.history_plot = side.addPlot(row=1, col=0, title="history")
        self.history_item = pg.ImageItem(axisOrder="row-major")
        self.history_plot.addItem(self.history_item)
        self.history: deque = deque(maxlen=HISTORY)
        self.bars_plot.setVisible(False)  # shown with the first classification
        self.history_plot.setVisible(False)
        self.rate_plot = LivePlot(side, "events / s", 2, (255, 200, 40))
        self.latency_plot = LivePlot(side, "latency (ms)", 3, (90, 220, 255))
        self.drops_plot = LivePlot(side, "dropped windows", 4, (255, 90, 90))
        self.firing_plot = LivePlot(side, "firing rate", 5, (80, 255, 80))
        grid.addWidget(side, 0, 1, 2, 1)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        self._build_controls()
        self.status = QtWidgets.QLabel("")
        self.statusBar().addWidget(self.status, 1)

    def _build_controls(self) -> None:
        bar = self.addToolBar("controls")
        replay = self.pipeline.source if isinstance(self.pipeline.source, FileReplaySource) else None
        self.pause_button = QtWidgets.QPushButton("pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setEnabled(replay is not None)
        self.pause_button.toggled.connect(lambda on: replay.set_paused(on) if replay else None)
        bar.addWidget(self.pause_button)
        self.speed_box = QtWidgets.QDoubleSpinBox()
        self.speed_box.setRange(0.05, 20.0)
        self.speed_box.setSingleStep(0.25)
        self.speed_box.setPrefix("speed x")
        self.speed_box.setValue(replay.speed if replay and np.isfinite(replay.speed) else 1.0)
        self.speed_box.setEnabled(replay is not None)
        self.speed_box.valueChanged.connect(lambda v: replay.set_speed(v) if replay else None)
        bar.addWidget(self.speed_box)
        self.seek_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.seek_slider.setRange(0, 1000)
        self.seek_slider.setEnabled(replay is not None and replay.time_range is not None)
        self.seek_slider.sliderReleased.connect(self._seek)
        bar.addWidget(self.seek_slider)
        self.model_box = QtWidgets.QCheckBox("model")
        self.model_box.setChecked(True)
        self.model_box.toggled.connect(lambda on: setattr(self.pipeline, "model_enabled", on))
        bar.addWidget(self.model_box)
        self.filter_box = QtWidgets.QCheckBox("filters")
        self.filter_box.setChecked(True)
        self.filter_box.toggled.connect(lambda on: setattr(self.pipeline, "filters_enabled", on))
        bar.addWidget(self.filter_box)
        self._replay = replay

    def _seek(self) -> None:
        replay = self._replay
        start, end = replay.time_range or (None, None)
        if start is not None:
            replay.seek(int(start + (end - start) * self.seek_slider.value() / 1000))

    # --- painting --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Repaint from the newest result (if any) and the pipeline's counters."""
        error = self.pipeline.source.error or self.pipeline.error
        if error is not None:
            self.status.setText(f"error: {error}")
            self.status.setStyleSheet("color: #ff6060")
        version, result = self.pipeline.results.get()
        if version == self._seen or result is None:
            return
        self._seen = version
        self.event_image.update(result.events, result.t_end_us - result.t_start_us)
        self.event_item.setImage(self.event_image.rgb(), autoLevels=False)
        self._draw_output(result.output)
        stats = self.pipeline.stats
        self.rate_plot.add(stats.events_per_s)
        self.latency_plot.add(result.latency_ms)
        self.drops_plot.add(stats.dropped_windows + self.pipeline.source.dropped)
        self.firing_plot.add(getattr(result.output, "firing_rate", None) or 0.0)
        if error is None:
            self.status.setText(f"t = {result.t_end_us / 1e6:.3f} s   {stats.events_per_s / 1e6:.2f} M events/s   "
                                f"latency {result.latency_ms:.1f} ms   dropped {stats.dropped_windows}")

    def _draw_output(self, output) -> None:
        if isinstance(output, Detections):
            self._draw_boxes(output)
        else:
            self.box_item.setData([], [])
            self._draw_labels([], [], [])
        if isinstance(output, Classification):
            self.bars_plot.setVisible(True)
            self.history_plot.setVisible(True)
            p = np.asarray(output.probabilities, float)
            self.bars.setOpts(x=np.arange(len(p)), height=p)
            self.history.append(p)
            self.history_item.setImage(np.array(self.history).T, levels=(0, 1))
        if isinstance(output, DepthMap):
            self.depth_view.setVisible(True)
            self.depth_item.setImage(np.nan_to_num(output.depth_m, nan=output.d_max), levels=(0, output.d_max))

    def _draw_boxes(self, detections: Detections) -> None:
        boxes = np.asarray(detections.boxes_xyxy, float).reshape(-1, 4)
        x0, y0, x1, y1 = boxes.T
        xs = np.stack([x0, x1, x1, x1, x1, x0, x0, x0], axis=1).ravel()
        ys = np.stack([y0, y0, y0, y1, y1, y1, y1, y0], axis=1).ravel()
        self.box_item.setData(xs, ys)
        names = [detections.names[int(c)] if int(c) < len(detections.names) else str(int(c))
                 for c in detections.classes]
        self._draw_labels(boxes, names, detections.scores)

    def _draw_labels(self, boxes, names, scores) -> None:
        while len(self.labels) < len(names):
            label = pg.TextItem(color=(80, 255, 80), anchor=(0, 1))
            self.event_view.addItem(label)
            self.labels.append(label)
        for k, label in enumerate(self.labels):
            if k < len(names):
                label.setText(f"{names[k]} {float(scores[k]):.2f}")
                label.setPos(boxes[k][0], boxes[k][1])
                label.setVisible(True)
            else:
                label.setVisible(False)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.timer.stop()
        self.pipeline.stop()
        super().closeEvent(event)
