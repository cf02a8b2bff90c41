"""The live Qt window (pyqtgraph on PySide6): events, boxes, depth, classes, live plots, info and controls.

It never blocks on the model: a 60 Hz timer polls the pipeline's latest-value slot and repaints
only when a new result arrived (LIVE.md: one queued signal per frame fell seconds behind).
Times are relative to the recording start; the colours, label placement and plots are those of
the headless video (:mod:`evstream.viz.dashboard`).
"""

from __future__ import annotations

import html
import time

import numpy as np
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from evstream.live.pipeline import Pipeline, WindowResult
from evstream.live.replay import FileReplaySource
from evstream.live.score import PlaylistScore
from evstream.outputs import Classification, DepthMap, Detections
from evstream.viz.captions import END_OF_RECORDING, error_text, info_rows, rate_text, seconds_text, status_parts
from evstream.viz.panels import ClassPanel, DepthPanel, EventPanel, LivePlot, graphics_widget, hex_rgb
from evstream.viz.render import BACKGROUND_RGB, DIM_TEXT_RGB, PANEL_RGB, TEXT_RGB, EventImage
from evstream.viz.timeline import PLOTS, Timeline

SLIDER_STEPS = 10_000
INFO_PERIOD_S = 0.25  # the info panel's text is refreshed at 4 Hz
PLOT_HZ = 20  # plots redraw at most this often (each redraw re-renders their time axes)
ERROR_RGB = (255, 110, 110)
STATE_ICONS = {"error": "■", "ended": "■", "finished": "■", "paused": "❚❚", "playing": "▶", "live": "●"}
STYLE = f"""
QWidget {{ background: {hex_rgb(BACKGROUND_RGB)}; color: {hex_rgb(TEXT_RGB)}; font-size: 10pt; }}
QToolBar {{ background: {hex_rgb(PANEL_RGB)}; border: 0; spacing: 8px; padding: 4px; }}
QStatusBar {{ background: {hex_rgb(PANEL_RGB)}; }}
QStatusBar QLabel {{ background: transparent; padding: 0 6px; }}
QLabel#panelTitle {{ padding: 2px 4px; }}
QLabel#info {{ background: {hex_rgb(PANEL_RGB)}; border-radius: 6px; padding: 8px; }}
QPushButton {{ background: #2c2c36; border: 1px solid #44444f; border-radius: 4px; padding: 4px 14px; min-width: 70px; }}
QPushButton:hover {{ background: #383844; }}
QPushButton:disabled, QDoubleSpinBox:disabled {{ color: #666670; }}
QDoubleSpinBox {{ background: #2c2c36; border: 1px solid #44444f; border-radius: 4px; padding: 2px 4px; }}
QSlider::groove:horizontal {{ height: 6px; background: #33333d; border-radius: 3px; }}
QSlider::sub-page:horizontal {{ background: #c89a2c; border-radius: 3px; }}
QSlider::handle:horizontal {{ background: #ffc828; width: 14px; margin: -5px 0; border-radius: 7px; }}
QCheckBox {{ spacing: 6px; }}
QSplitter::handle {{ background: {hex_rgb(PANEL_RGB)}; }}
"""


class PanelArea(QtWidgets.QWidget):
    """The image panels, side by side or stacked, whichever shows the event and depth images larger
    in the current size (the class panel always sits beside the events)."""

    def __init__(self, events: EventPanel, depth: DepthPanel, classes: ClassPanel):
        super().__init__()
        self.events, self.depth = events, depth
        self.box = QtWidgets.QBoxLayout(QtWidgets.QBoxLayout.Direction.LeftToRight, self)
        self.box.setContentsMargins(6, 6, 6, 6)
        self.box.setSpacing(8)
        self.box.addWidget(events, 3)
        self.box.addWidget(depth, 3)
        self.box.addWidget(classes, 2)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self.arrange()

    def arrange(self) -> None:
        """Choose the direction (when the depth panel shows)."""
        if not self.depth.isVisible():
            return
        ew, eh = self.events.frame_wh
        dw, dh = self.depth.frame_wh
        a, b = ew / max(eh, 1), dw / max(dh, 1) * (1 + DepthPanel.BAR_GAP + DepthPanel.BAR_WIDTH + DepthPanel.LABEL_ROOM)
        width, height = max(self.width(), 1), max(self.height(), 1)
        side_by_side = min(height, width / (a + b))
        stacked = min(height / 2, width / max(a, b))
        direction = QtWidgets.QBoxLayout.Direction.LeftToRight if side_by_side >= stacked else \
            QtWidgets.QBoxLayout.Direction.TopToBottom
        if direction != self.box.direction():
            self.box.setDirection(direction)


class LiveWindow(QtWidgets.QMainWindow):
    """Shows a running :class:`Pipeline`; replay controls (play/pause, speed, seek) appear when its
    source is a :class:`FileReplaySource`.

    Args:
        pipeline: the pipeline to show (started by the caller, before or after).
        title: the window title.
        fps: how often the latest result is polled.
        tau_us: decay time constant of the event image.
        model_info: one line describing the model, for the info panel (None: none given).
    """

    def __init__(self, pipeline: Pipeline, *, title: str = "evstream", fps: float = 60.0, tau_us: float = 30_000.0,
                 model_info: str | None = None):
        super().__init__()
        self.pipeline, self.source = pipeline, pipeline.source
        self.replay = self.source if isinstance(self.source, FileReplaySource) else None
        self.source_info = self.source.info()
        self.model_info = model_info
        self.setWindowTitle(title)
        self.setStyleSheet(STYLE)
        width, height = self.source.sensor_size[:2]
        self.event_image = EventImage(width, height, tau_us)
        self.timeline = Timeline(self.source_info.get("t_start_us"))
        self._seen = 0  # version of the last result shown
        self._paused = False
        self._state: tuple | None = None
        self._seek_target: tuple[int, int | None] | None = None  # (t_us, the replay's position before)
        self._next_info = self._next_plots = 0.0
        self._plots_due = False  # a result arrived that the plots do not show yet
        self._last: WindowResult | None = None
        self.score = PlaylistScore()  # running top-1 when the source labels what it plays
        self._build(width, height, tau_us)
        self._fit_to_screen()
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(int(1000 / fps))

    # --- layout ----------------------------------------------------------------------------
    def _build(self, width: int, height: int, tau_us: float) -> None:
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)

        self.event_panel = EventPanel(width, height, tau_us)
        self.depth_panel = DepthPanel()
        self.class_panel = ClassPanel()
        self.depth_panel.setVisible(False)  # shown with the first depth map / classification
        self.class_panel.setVisible(False)
        self.panel_area = PanelArea(self.event_panel, self.depth_panel, self.class_panel)
        splitter.addWidget(self.panel_area)

        side = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(side)
        column.setContentsMargins(6, 6, 6, 6)
        column.setSpacing(6)
        self.info_label = QtWidgets.QLabel()
        self.info_label.setObjectName("info")
        self.info_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.info_label.setWordWrap(True)
        self.info_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
        self.info_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Minimum)
        column.addWidget(self.info_label)
        self.plots_widget = graphics_widget()
        self.plots: dict[str, LivePlot] = {}
        for spec in PLOTS:
            if spec.model_only and self.pipeline.model is None:
                continue
            self.plots[spec.title] = LivePlot(self.plots_widget.addPlot(row=len(self.plots), col=0), spec)
        column.addWidget(self.plots_widget, 1)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 7)
        splitter.setStretchFactor(1, 3)
        self._build_controls()
        self.state_label = QtWidgets.QLabel()
        self.status = QtWidgets.QLabel("waiting for events")
        self.statusBar().addWidget(self.state_label)
        self.statusBar().addWidget(self.status, 1)
        self._update_info()

    def _build_controls(self) -> None:
        bar = self.addToolBar("controls")
        bar.setMovable(False)
        replay = self.replay
        self.play_button = QtWidgets.QPushButton()
        self.play_button.clicked.connect(self.toggle_play)
        self.play_button.setToolTip("play / pause (space)")
        self.speed_box = QtWidgets.QDoubleSpinBox()
        self.speed_box.setRange(0.01, 20.0)
        self.speed_box.setSingleStep(0.25)
        self.speed_box.setPrefix("speed ×")
        self.speed_box.setValue(replay.speed if replay and np.isfinite(replay.speed) else 1.0)
        self.speed_box.setEnabled(bool(replay is not None and np.isfinite(replay.speed)))
        self.speed_box.valueChanged.connect(lambda v: replay.set_speed(v))
        self.seek_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.seek_slider.setRange(0, SLIDER_STEPS)
        self.seek_slider.setPageStep(SLIDER_STEPS // 20)
        self.seek_slider.setMinimumWidth(200)
        self.seek_slider.setEnabled(replay is not None and replay.time_range is not None)
        self.seek_slider.sliderReleased.connect(self._seek_to_slider)
        self.seek_slider.actionTriggered.connect(self._slider_action)
        self.time_label = QtWidgets.QLabel()
        self.time_label.setMinimumWidth(150)
        for widget in (self.play_button, self.speed_box, self.seek_slider, self.time_label):
            bar.addWidget(widget)
            widget.setVisible(replay is not None)
        if replay is None:
            spacer = QtWidgets.QWidget()
            spacer.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
            bar.addWidget(spacer)
        self.model_box = QtWidgets.QCheckBox("model")
        self.model_box.setChecked(True)
        self.model_box.setEnabled(self.pipeline.model is not None)
        self.model_box.toggled.connect(lambda on: setattr(self.pipeline, "model_enabled", on))
        bar.addWidget(self.model_box)
        self.filter_box = QtWidgets.QCheckBox("filters")
        self.filter_box.setChecked(True)
        self.filter_box.setEnabled(bool(self.pipeline.filters))
        self.filter_box.toggled.connect(lambda on: setattr(self.pipeline, "filters_enabled", on))
        bar.addWidget(self.filter_box)
        shortcut = QtGui.QShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_Space), self)
        shortcut.activated.connect(self.toggle_play)

    def _fit_to_screen(self) -> None:
        """Open at 85 % of the available screen (at most 1800 x 1100), not a fixed size."""
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1280, 800)
        self.setMinimumSize(720, 480)
        self.resize(max(min(int(area.width() * 0.85), 1800), 720), max(min(int(area.height() * 0.85), 1100), 480))

    # --- replay controls -------------------------------------------------------------------
    def _start_us(self) -> int:
        time_range = self.replay.time_range if self.replay is not None else None
        return time_range[0] if time_range else (self.timeline.origin_us or 0)

    def toggle_play(self) -> None:
        """Pause, play, or at the end of the recording play again from its start."""
        replay = self.replay
        if replay is None:
            return
        if self._state and self._state[0] == "finished":
            return
        if replay.ended:
            self.seek(self._start_us())
            if not self._paused:  # a pause request would re-anchor the replay clock: only send a change
                self._show_state()
                return
        self._paused = not self._paused
        replay.set_paused(self._paused)
        if not self._paused and self._seek_target is not None:
            replay.seek(self._seek_target[0])  # a seek made while paused: play from its target (a fresh clock)
        self._show_state()

    def seek(self, t_us: int) -> None:
        """Jump the replay to event time ``t_us``; the slider shows the target until the replay gets there."""
        if self.replay is None:
            return
        self._seek_target = (int(t_us), self.replay.position_us)
        self.replay.seek(int(t_us))

    def _seek_to_slider(self) -> None:
        time_range = self.replay.time_range if self.replay is not None else None
        if time_range:
            start, end = time_range
            self.seek(int(start + (end - start) * self.seek_slider.sliderPosition() / SLIDER_STEPS))

    def _slider_action(self, action: int) -> None:
        """A click on the groove (page step) or a key moves the slider: seek there too."""
        if action != QtWidgets.QAbstractSlider.SliderAction.SliderMove.value:
            QtCore.QTimer.singleShot(0, self._seek_to_slider)

    def _position_us(self) -> int | None:
        """The replay position the slider shows: a pending seek's target, else the replay's read position."""
        position = self.replay.position_us
        if self._seek_target is not None:
            target, before = self._seek_target
            if position == before:  # nothing played since the seek (e.g. paused)
                return target
            self._seek_target = None
        return position

    def _follow_position(self) -> None:
        """Move the slider and the time label with the playback (unless the user holds the slider)."""
        if self.replay is None:
            return
        position = self._position_us()
        start = self._start_us()
        duration = self.source_info.get("duration_s")
        t_s = (position - start) / 1e6 if position is not None else 0.0
        t_s = min(max(t_s, 0.0), duration) if duration else t_s  # batch ends may pass the last event
        self.time_label.setText(f"{seconds_text(t_s)} / {seconds_text(duration)}" if duration else seconds_text(t_s))
        if duration and not self.seek_slider.isSliderDown():
            value = int(round(SLIDER_STEPS * min(max(t_s / duration, 0.0), 1.0)))
            if value != self.seek_slider.value():
                self.seek_slider.blockSignals(True)
                self.seek_slider.setValue(value)
                self.seek_slider.blockSignals(False)

    # --- state -----------------------------------------------------------------------------
    def state(self) -> tuple[str, str]:
        """(kind, text): "error", "ended" (a replay holding at its end), "finished" (the source ended),
        "paused", "playing" or "live", with what the status bar says."""
        error = self.pipeline.error or self.source.error
        if error is not None:
            return "error", error_text(error)
        if self.replay is not None and self.replay.ended:
            return "ended", END_OF_RECORDING
        if self.pipeline.at_end and not self.source.running:
            return "finished", "end of recording" if self.replay is not None else "the stream ended"
        if self.replay is None:
            return "live", "live"
        return ("paused", "paused") if self._paused else ("playing", "playing")

    def _show_state(self) -> None:
        state = self.state()
        if state == self._state:
            return
        self._state = state
        kind, text = state
        colour = ERROR_RGB if kind == "error" else TEXT_RGB
        self.state_label.setText(f"<b>{STATE_ICONS[kind]} {html.escape(text)}</b>")
        self.state_label.setStyleSheet(f"color: {hex_rgb(colour)}")
        self.event_panel.set_message(text if kind in ("error", "ended", "finished") else None, colour)
        playing = kind == "playing"
        icon = QtWidgets.QStyle.StandardPixmap.SP_MediaPause if playing else QtWidgets.QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setText("Pause" if playing else "Play")
        self.play_button.setEnabled(kind in ("playing", "paused", "ended"))
        if kind == "error":
            self.status.setText(text)
            self.status.setStyleSheet(f"color: {hex_rgb(ERROR_RGB)}")

    # --- painting --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Follow the playback and the state; repaint from the newest result if there is one."""
        self._show_state()
        self._follow_position()
        version, result = self.pipeline.results.get()
        if result is not None and version != self._seen:
            self._seen = version
            self._show_result(result)
        if self._plots_due and time.monotonic() >= self._next_plots:
            self._plots_due, self._next_plots = False, time.monotonic() + 1 / PLOT_HZ
            for plot in self.plots.values():
                plot.update(self.timeline)
        if time.monotonic() >= self._next_info:
            self._next_info = time.monotonic() + INFO_PERIOD_S
            self._update_info()

    def _show_result(self, result: WindowResult) -> None:
        new_sequence, elapsed_us = self.timeline.add(result, self.pipeline.stats)
        if new_sequence:
            self.event_image.reset()
            self.class_panel.clear()
        self.event_image.update(result.events, elapsed_us)
        self.event_panel.set_image(self.event_image.rgb())
        output = result.output
        self.event_panel.set_detections(output if isinstance(output, Detections) else None)
        t_s = self.timeline.relative_s(result.t_end_us)
        if isinstance(output, DepthMap):
            self.depth_panel.show_depth(output)
            if not self.depth_panel.isVisible():
                self.depth_panel.setVisible(True)
                self.panel_area.arrange()
        elif isinstance(output, Classification):
            self.class_panel.setVisible(True)
            self.class_panel.show_classes(output, t_s, self.timeline.window_us / 1e6, self.timeline.x_range())
        elif output is None:  # the model switched off: no stale output stays on screen
            self.depth_panel.clear_output()
            self.class_panel.clear_output()
        self._plots_due = True
        self._last = result
        self.score.update(result)
        if self._state is None or self._state[0] != "error":
            parts = status_parts(t_s, self.source_info.get("duration_s"), result.latency_ms, self.pipeline.stats)
            self.status.setText("   ·   ".join(parts))

    def _update_info(self) -> None:
        """The info panel: what is shown, where the playback is, how fast events come; for a labelled
        playlist, the sample's truth, the prediction and the running top-1."""
        if self.replay is not None and self.replay.path != self.source_info.get("path"):
            self.source_info = self.source.info()  # a playlist moved on to its next file
        rows = info_rows(self.source_info, self.model_info)
        position = self.replay.position_us if self.replay is not None else (
            self._last.t_end_us if self._last is not None else None)
        stats = self.pipeline.stats
        duration = self.source_info.get("duration_s")
        position_s = (position - self._start_us()) / 1e6 if position is not None else None
        if position_s is not None and duration:
            position_s = min(max(position_s, 0.0), duration)  # batch ends may pass the last event
        live = [("position", seconds_text(position_s)),
                ("events/s", rate_text(stats.events_per_s)),
                ("window", f"{self.pipeline.window_us / 1e3:g} ms"),
                ("processed", f"{stats.windows:,} windows, {stats.events:,} events")]
        last = self._last
        if last is not None and last.label is not None and isinstance(last.output, Classification):
            predicted = last.output.names[int(np.argmax(last.output.probabilities))]
            live += [("truth", f"{last.label}   (predicted {predicted})")]
            if self.score.samples:
                live += [("top-1", f"{self.score.top1:.1%} of {self.score.samples} samples")]
        rows = rows[:-1] + live + rows[-1:]  # the model row last: it is the longest
        dim = hex_rgb(DIM_TEXT_RGB)
        table = "".join(f"<tr><td style='color:{dim};padding-right:10px'>{key}</td><td>{html.escape(value)}</td></tr>"
                        for key, value in rows)
        self.info_label.setText(f"<table cellspacing='2'>{table}</table>")

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.timer.stop()
        self.pipeline.stop()
        super().closeEvent(event)
