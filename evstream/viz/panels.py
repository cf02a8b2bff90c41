"""The Qt panels of the live window: event image with boxes and overlay, depth with its colour bar,
class bars and history, live plots. Colours, label placement and plot definitions come from
:mod:`evstream.viz.render` and :mod:`evstream.viz.timeline`, which the headless video uses too.

Speed (LIVE.md): row-major images set without level computation, fixed plot ranges moved by
hand, boxes as one ``PlotDataItem(connect="pairs")`` per class, labels from a reused pool.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from evstream.outputs import Classification, DepthMap, Detections
from evstream.viz.captions import CLASSES_TITLE, DEPTH_TITLE, EVENTS_TITLE, decay_text, depth_subtitle
from evstream.viz.render import (BACKGROUND_RGB, DIM_TEXT_RGB, OFF_RGB, ON_RGB, TEXT_RGB, bar_rgb,
                                 box_label, class_history_rgb, class_name, class_rgb, depth_colour_bar, depth_rgb,
                                 depth_ticks, place_labels)
from evstream.viz.timeline import PlotSpec, Timeline, si_prefix, y_top

BACKGROUND = tuple(int(c) for c in BACKGROUND_RGB)
FONT_PT = 10


def hex_rgb(rgb) -> str:
    """``"#rrggbb"`` of an RGB triple."""
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def style_axes(plot: pg.PlotItem, left: str | None = None, bottom: str | None = None) -> None:
    """Dark-theme axes: readable tick font, dim lines, labelled units, no automatic SI prefix (it
    re-renders every axis label, hidden ones included, at every range change)."""
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    font = QtGui.QFont()
    font.setPointSize(FONT_PT - 1)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setStyle(tickFont=font, tickLength=-4)
        axis.setTextPen(pg.mkPen(DIM_TEXT_RGB))
        axis.setPen(pg.mkPen((70, 70, 82)))
    label_style = {"color": hex_rgb(DIM_TEXT_RGB), "font-size": f"{FONT_PT - 1}pt"}
    if left is not None:
        plot.setLabel("left", left, **label_style)
    if bottom is not None:
        plot.setLabel("bottom", bottom, **label_style)


def graphics_widget() -> pg.GraphicsLayoutWidget:
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground(BACKGROUND)
    widget.ci.setContentsMargins(2, 2, 2, 2)
    return widget


def title_label(html: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(html)
    label.setObjectName("panelTitle")
    label.setTextFormat(QtCore.Qt.TextFormat.RichText)
    return label


def swatch(rgb, text: str) -> str:
    """HTML of a coloured square and its name (legends in titles)."""
    return f"<span style='color:{hex_rgb(rgb)}'>&#9632;</span>&nbsp;{text}"


class ImagePanel(QtWidgets.QWidget):
    """A titled RGB image in a view that keeps its aspect ratio and scales with the panel."""

    def __init__(self, title: str, width: int, height: int):
        super().__init__()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.title = title_label(title)
        layout.addWidget(self.title)
        self.graphics = graphics_widget()
        layout.addWidget(self.graphics, 1)
        self.view = self.graphics.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.frame_wh = (0, 0)
        self.set_frame(width, height)

    def set_frame(self, width: int, height: int) -> None:
        """Show the image area ``[0, width] x [0, height]`` (image pixels)."""
        if (width, height) != self.frame_wh:
            self.frame_wh = (width, height)
            self.view.setRange(xRange=(0, width), yRange=(0, height), padding=0)

    def set_image(self, rgb: np.ndarray) -> None:
        self.image.setImage(rgb, autoLevels=False)
        self.set_frame(rgb.shape[1], rgb.shape[0])

    def pixel_rgb(self, x: float, y: float) -> np.ndarray:
        """The RGB on screen at image coordinates (x, y) (for tests and screenshots)."""
        image = self.graphics.grab().toImage()
        point = self.graphics.mapFromScene(self.view.mapViewToScene(QtCore.QPointF(x, y)))
        colour = image.pixelColor(point.x(), point.y())
        return np.array([colour.red(), colour.green(), colour.blue()])


class EventPanel(ImagePanel):
    """The decaying event image with the polarity legend, detection boxes and a centred message."""

    def __init__(self, width: int, height: int, tau_us: float):
        legend = f"{swatch(ON_RGB, 'ON')} &nbsp; {swatch(OFF_RGB, 'OFF')}"
        super().__init__(f"<b>{EVENTS_TITLE}</b> &nbsp; {legend} &nbsp; "
                         f"<span style='color:{hex_rgb(DIM_TEXT_RGB)}'>{decay_text(tau_us)}</span>", width, height)
        self.boxes: dict[int, pg.PlotDataItem] = {}
        self.labels: list[pg.TextItem] = []
        self.detections: Detections | None = None
        self.label_font = QtGui.QFont()
        self.label_font.setPointSize(FONT_PT - 1)
        self.message = pg.TextItem(anchor=(0.5, 0.5), fill=pg.mkBrush(0, 0, 0, 190), border=pg.mkPen(TEXT_RGB))
        font = QtGui.QFont()
        font.setPointSize(FONT_PT + 4)
        self.message.setFont(font)
        self.message.setZValue(20)
        self.message.setVisible(False)
        self.view.addItem(self.message)
        self.view.sigResized.connect(self._place_labels)

    def set_message(self, text: str | None, rgb=TEXT_RGB) -> None:
        """Show ``text`` across the middle of the image (None hides it)."""
        if text is None:
            self.message.setVisible(False)
            return
        self.message.setColor(pg.mkColor(rgb))
        self.message.setText(text)
        self.message.setPos(self.frame_wh[0] / 2, self.frame_wh[1] / 2)
        self.message.setVisible(True)

    def set_detections(self, detections: Detections | None) -> None:
        """Draw the boxes (one line item per class, in the class colour) and their labels."""
        self.detections = detections
        boxes = np.zeros((0, 4)) if detections is None else np.asarray(detections.boxes_xyxy, float).reshape(-1, 4)
        width, height = self.frame_wh
        lines = np.clip(boxes, 0.5, [width - 0.5, height - 0.5] * 2)  # edges on the frame stay visible
        classes = np.zeros(0, int) if detections is None else np.asarray(detections.classes, int)
        for cls in set(self.boxes) | set(classes.tolist()):
            item = self.boxes.get(cls)
            if item is None:
                item = self.boxes[cls] = pg.PlotDataItem(connect="pairs", pen=pg.mkPen(class_rgb(cls), width=2))
                self.view.addItem(item)
            x0, y0, x1, y1 = lines[classes == cls].T
            item.setData(np.stack([x0, x1, x1, x1, x1, x0, x0, x0], axis=1).ravel(),
                         np.stack([y0, y0, y0, y1, y1, y1, y1, y0], axis=1).ravel())
        self._place_labels()

    def _place_labels(self) -> None:
        """Labels in screen pixels, placed in image coordinates by the video's rule (inside the
        frame, no overlaps); re-run when the view is resized, since their size in image pixels changes."""
        detections = self.detections
        count = 0 if detections is None else len(detections.scores)
        while len(self.labels) < count:
            label = pg.TextItem(color=(16, 16, 20), anchor=(0, 0))
            label.setFont(self.label_font)
            label.setZValue(10)
            self.view.addItem(label)
            self.labels.append(label)
        px, py = self.view.viewPixelSize()
        sizes = []
        for k in range(count):
            label, cls = self.labels[k], int(detections.classes[k])
            text = box_label(detections.names, cls, detections.scores[k])
            if text != label.toPlainText():
                label.setText(text)
                label.fill = pg.mkBrush(class_rgb(cls))
            rect = label.textItem.boundingRect()
            sizes.append((rect.width() * px, rect.height() * py))
        spots = place_labels(np.asarray(detections.boxes_xyxy, float).reshape(-1, 4) if count else np.zeros((0, 4)),
                             sizes, self.frame_wh, None if detections is None else detections.scores)
        for k, label in enumerate(self.labels):
            spot = spots[k] if k < count else None
            if spot is not None:
                label.setPos(*spot)
            label.setVisible(spot is not None)

    def label_rects(self) -> list[tuple[float, float, float, float]]:
        """The visible labels as (x, y, w, h) in image coordinates (for tests)."""
        px, py = self.view.viewPixelSize()
        rects = []
        for label in self.labels:
            if label.isVisible():
                rect = label.textItem.boundingRect()
                rects.append((label.pos().x(), label.pos().y(), rect.width() * px, rect.height() * py))
        return rects


class DepthPanel(ImagePanel):
    """The model's depth map (its own resolution) and, beside it at its height, the colour bar in metres,
    coloured by :func:`~evstream.viz.render.depth_rgb` like the video."""

    BAR_GAP, BAR_WIDTH, LABEL_ROOM = 0.03, 0.05, 0.17  # fractions of the depth map's width

    def __init__(self):
        super().__init__(f"<b>{DEPTH_TITLE}</b>", 1, 1)
        self.bar = pg.ImageItem(depth_colour_bar(256, 1), axisOrder="row-major")  # top row: far
        self.view.addItem(self.bar)
        self.ticks: list[tuple[pg.TextItem, pg.PlotDataItem]] = []
        self.d_max: float | None = None
        self.depth_wh = (0, 0)

    def set_frame(self, width: int, height: int) -> None:
        """The depth map and, right of it, the colour bar and its labels."""
        if (width, height) != self.frame_wh:
            self.frame_wh = (width, height)
            extra = width * (self.BAR_GAP + self.BAR_WIDTH + self.LABEL_ROOM)
            self.view.setRange(xRange=(0, width + extra), yRange=(0, height), padding=0)

    def show_depth(self, depth: DepthMap) -> None:
        height, width = depth.depth_m.shape
        self.set_image(depth_rgb(depth.depth_m, d_max=depth.d_max))
        if depth.d_max != self.d_max or (width, height) != self.depth_wh:
            self.d_max, self.depth_wh = depth.d_max, (width, height)
            self._draw_bar(width, height, depth.d_max)
            self.title.setText(f"<b>{DEPTH_TITLE}</b> &nbsp; <span style='color:{hex_rgb(DIM_TEXT_RGB)}'>"
                               f"{depth_subtitle(width, height)}</span>")

    def clear_output(self) -> None:
        """Show no depth (the model is off)."""
        self.image.clear()

    def _draw_bar(self, width: int, height: int, d_max: float) -> None:
        x = width * (1 + self.BAR_GAP)
        bar_w = width * self.BAR_WIDTH
        self.bar.setRect(QtCore.QRectF(x, 0, bar_w, height))
        for text, tick in self.ticks:
            self.view.removeItem(text)
            self.view.removeItem(tick)
        self.ticks = []
        font = QtGui.QFont()
        font.setPointSize(FONT_PT - 1)
        for position, label in depth_ticks(d_max=d_max):
            y = height * (1 - position)  # near (position 0) at the bottom
            text = pg.TextItem(label, color=TEXT_RGB, anchor=(0, min(max(y / height, 0.0), 1.0)))  # ends: inside
            text.setFont(font)
            text.setPos(x + bar_w * 1.3, y)
            tick = pg.PlotDataItem([x + bar_w, x + bar_w * 1.25], [y, y], pen=pg.mkPen(TEXT_RGB))
            self.view.addItem(text)
            self.view.addItem(tick)
            self.ticks.append((text, tick))


class ClassPanel(QtWidgets.QWidget):
    """Class probabilities as named horizontal bars in the class colours, and their history."""

    def __init__(self):
        super().__init__()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(title_label(f"<b>{CLASSES_TITLE}</b>"))
        self.graphics = graphics_widget()
        layout.addWidget(self.graphics, 1)
        self.bars_plot = self.graphics.addPlot(row=0, col=0)
        self.history_plot = self.graphics.addPlot(row=1, col=0)
        for plot in (self.bars_plot, self.history_plot):
            plot.setMouseEnabled(False, False)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.invertY(True)
        style_axes(self.bars_plot, bottom="probability")
        style_axes(self.history_plot, bottom="time (s)")
        self.bars_plot.setXRange(0, 1, padding=0.02)
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[])
        self.bars_plot.addItem(self.bars)
        self.percent: list[pg.TextItem] = []
        self.history_image = pg.ImageItem(axisOrder="row-major")
        self.history_plot.addItem(self.history_image)
        self.history_plot.setLabel("left", "history", color=hex_rgb(DIM_TEXT_RGB))
        self.names: tuple[str, ...] | None = None
        self.x_range: tuple[float, float] | None = None
        self.times: list[float] = []
        self.history: list[np.ndarray] = []

    def clear(self) -> None:
        """Forget the history (a new window sequence)."""
        self.times.clear()
        self.history.clear()

    def clear_output(self) -> None:
        """Show no probabilities (the model is off); the history stays."""
        self.bars.setOpts(width=np.zeros(len(self.percent)))
        for label in self.percent:
            label.setVisible(False)

    def show_classes(self, output: Classification, t_s: float, window_s: float, x_range: tuple[float, float]) -> None:
        """Show one classification at time ``t_s`` (window ``window_s`` long); ``x_range``: the plots' time axis."""
        p = np.asarray(output.probabilities, float)
        names = tuple(class_name(output.names, k) for k in range(len(p)))
        if names != self.names:
            self.names = names
            ticks = [[(k, name) for k, name in enumerate(names)], []]
            self.bars_plot.getAxis("left").setTicks(ticks)
            self.history_plot.getAxis("left").setTicks(ticks)
            self.bars_plot.setYRange(-0.5, len(names) - 0.5, padding=0)
            self.history_plot.setYRange(-0.5, len(names) - 0.5, padding=0)
            self.clear()
        best = int(np.argmax(p)) if len(p) else -1
        self.bars.setOpts(x0=np.zeros(len(p)), y=np.arange(len(p)), width=p, height=0.7,
                          brushes=[pg.mkBrush(bar_rgb(k, k == best)) for k in range(len(p))], pen=pg.mkPen(None))
        while len(self.percent) < len(p):
            label = pg.TextItem(color=DIM_TEXT_RGB, anchor=(0, 0.5))
            self.bars_plot.addItem(label)
            self.percent.append(label)
        for k, label in enumerate(self.percent):
            label.setVisible(k < len(p))
            if k < len(p):
                label.setText(f"{100 * p[k]:.0f}%")
                label.setPos(min(float(p[k]), 0.86) + 0.01, k)
        self.times.append(t_s)
        self.history.append(p)
        del self.times[:-512], self.history[:-512]
        self.history_image.setImage(class_history_rgb(np.stack(self.history)), autoLevels=False)
        t0, t1 = self.times[0] - window_s, self.times[-1]
        self.history_image.setRect(QtCore.QRectF(t0, -0.5, max(t1 - t0, 1e-3), len(p)))
        if x_range != self.x_range:  # the same stepped axis as the plots: re-rendered only at a step
            self.x_range = x_range
            self.history_plot.setXRange(*x_range, padding=0)


class LivePlot:
    """One plot of :data:`~evstream.viz.timeline.PLOTS`: time in seconds across, the unit up, a hand-managed
    y range (auto-ranging cost 25 % of the frame rate) and the recent history filling the width."""

    def __init__(self, plot: pg.PlotItem, spec: PlotSpec):
        self.plot, self.spec = plot, spec
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.enableAutoRange(False)
        legend = "".join(f" &nbsp; <span style='color:{hex_rgb(s.rgb)}'>&#9473; {s.name}</span>" for s in spec.series
                         if len(spec.series) > 1)  # in the title: it never covers the lines
        plot.setTitle(f"<span style='color:{hex_rgb(TEXT_RGB)};font-size:{FONT_PT}pt'>{spec.title}</span>"
                      f"<span style='font-size:{FONT_PT - 1}pt'>{legend}</span>")
        style_axes(plot, left=spec.unit, bottom="time (s)")
        self.curves = [plot.plot(pen=pg.mkPen(s.rgb, width=2), connect="finite", symbolBrush=s.rgb, symbolPen=None,
                                 symbolSize=5) for s in spec.series]
        self.top, self.factor, self.prefix = 0.0, 1.0, ""
        self.x_range: tuple[float, float] | None = None
        self.set_top(spec.min_top)

    def set_top(self, top: float) -> None:
        """Set the y range to [0, top] (values in the spec's unit), choosing the k / M prefix."""
        self.factor, prefix = si_prefix(top) if self.spec.si else (1.0, "")
        self.top = top
        if prefix != self.prefix:
            self.prefix = prefix
            self.plot.setLabel("left", f"{prefix} {self.spec.unit}".strip())
        self.plot.setYRange(0, top * self.factor, padding=0)

    def update(self, timeline: Timeline) -> None:
        values = [timeline[s.field] for s in self.spec.series]
        top = y_top(values, self.spec.min_top)
        if top > self.top or top < 0.3 * self.top:
            self.set_top(top)
        t = timeline["t_s"]
        for curve, v in zip(self.curves, values):
            curve.setSymbol("o" if np.isfinite(v).sum() == 1 else None)  # one sample: a dot, not an invisible line
            curve.setData(t, v * self.factor)
        x_range = timeline.x_range()
        if x_range != self.x_range:  # the axis re-renders only when the range steps
            self.x_range = x_range
            self.plot.setXRange(*x_range, padding=0)
