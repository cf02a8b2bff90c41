"""The headless view: the window's panels and colours composed into one RGB frame per window.

Top: the info line (source, format, sensor, duration, model) and the running caption (time
relative to the recording start, event rate, latency, both kinds of drops). Middle: the event
image with boxes and the polarity legend, and the model's output panel (depth with its colour
bar in metres, or class bars and their history). Bottom: the window's plots. A video has one
frame size, so the layout is fixed by the first frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from evstream.live.pipeline import PipelineStats, WindowResult
from evstream.outputs import Classification, DepthMap, Detections
from evstream.viz.captions import (CLASSES_TITLE, DEPTH_TITLE, EVENTS_TITLE, decay_text, depth_subtitle, info_line,
                                   status_parts)
from evstream.viz.chart import line_chart
from evstream.viz.render import (BACKGROUND_RGB, DIM_TEXT_RGB, OFF_RGB, ON_RGB, PANEL_RGB, TEXT_RGB,
                                 EventImage, canvas, class_bars, class_history_rgb, depth_colour_bar, depth_rgb,
                                 depth_ticks, draw_boxes, put_text, text_size)
from evstream.viz.timeline import PLOTS, Timeline

MARGIN = 8
TITLE_H = 22
PLOTS_H = 150
CLASS_PANEL_W = 440
COLOUR_BAR_W = 16
COLOUR_BAR_TEXT_W = 56
CAPTION_SCALE = 0.46
LINE_H = 20
MIN_WIDTH = 960


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    events: tuple[int, int, int, int]  # x, y, w, h of the event image
    output: tuple[int, int, int, int] | None  # the output panel's image area
    output_kind: type | None
    plots: tuple[int, int, int, int]
    has_model: bool  # the firing-rate plot is shown


def _wrap(text: str, width: int, scale: float) -> list[str]:
    """``text`` split at spaces into lines no wider than ``width`` pixels."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}".strip()
        if line and text_size(candidate, scale)[0] > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line]


class Dashboard:
    """Keeps the decaying event image and the plotted history, and turns each :class:`WindowResult`
    into a frame.

    Args:
        sensor_size: ``(W, H, P)`` of the source.
        tau_us: decay time constant of the event image.
        source_info: the source's :meth:`~evstream.live.source.EventSource.info` (the info line;
            its ``t_start_us`` is the origin of the times shown).
        model_info: one line describing the model (None: no model).
        height: frame height in pixels; max_width: the widest frame.
    """

    def __init__(self, sensor_size, tau_us: float = 30_000.0, *, source_info: dict | None = None,
                 model_info: str | None = None, height: int = 720, max_width: int = 1600):
        width, sensor_h = int(sensor_size[0]), int(sensor_size[1])
        self.sensor_wh = (width, sensor_h)
        self.events = EventImage(width, sensor_h, tau_us)
        self.source_info = dict(source_info or {"source": "events", "sensor": f"{width}x{sensor_h}"})
        self.model_info = model_info
        self.timeline = Timeline(self.source_info.get("t_start_us"))
        self.height, self.max_width = int(height), int(max_width)
        self.info = info_line(self.source_info, model_info)
        self.layout: _Layout | None = None
        self.history: list[np.ndarray] = []

    # --- layout ------------------------------------------------------------------------------
    def _layout(self, output) -> _Layout:
        kind = type(output) if isinstance(output, (DepthMap, Classification)) else None
        sw, sh = self.sensor_wh
        side, out_aspect = 0, 0.0  # fixed width right of the output panel; output width per pixel of height
        if kind is DepthMap:
            dh, dw = output.depth_m.shape
            side, out_aspect = MARGIN + COLOUR_BAR_W + COLOUR_BAR_TEXT_W, dw / dh
        fixed = 2 * MARGIN + (MARGIN + side + (CLASS_PANEL_W if kind is Classification else 0) if kind else 0)
        caption_lines = len(_wrap(self.info, MIN_WIDTH - 2 * MARGIN, CAPTION_SCALE)) + 1
        top = MARGIN + caption_lines * LINE_H + MARGIN + TITLE_H
        panel_h = int(min(self.height - top - PLOTS_H - 2 * MARGIN, (self.max_width - fixed) / (sw / sh + out_aspect)))
        ew = int(panel_h * sw / sh)
        ow = int(panel_h * out_aspect) if kind is DepthMap else CLASS_PANEL_W if kind else 0
        content = ew + (MARGIN + ow + side if kind else 0)
        width = max(content + 2 * MARGIN, MIN_WIDTH)
        width += width % 2
        x0 = (width - content) // 2
        output_box = (x0 + ew + MARGIN, top, ow, panel_h) if kind else None
        plots = (MARGIN, self.height - PLOTS_H - MARGIN, width - 2 * MARGIN, PLOTS_H)
        has_model = output is not None or self.model_info is not None
        return _Layout(width, self.height, (x0, top, ew, panel_h), output_box, kind, plots, has_model)

    # --- frames ------------------------------------------------------------------------------
    def frame(self, result: WindowResult, stats: PipelineStats | None = None) -> np.ndarray:
        """The frame ``[H, W, 3]`` RGB of one result (``stats``: the pipeline's counters, for the caption)."""
        new_sequence, elapsed_us = self.timeline.add(result, stats)
        if new_sequence:
            self.events.reset()
            self.history.clear()
        self.events.update(result.events, elapsed_us)
        output = result.output
        if self.layout is None:
            self.layout = self._layout(output)
        layout = self.layout
        img = canvas(layout.height, layout.width, BACKGROUND_RGB)
        self._caption(img, result, stats)
        self._event_panel(img, output)
        if layout.output_kind is DepthMap:
            self._depth_panel(img, output if isinstance(output, DepthMap) else None)
        elif layout.output_kind is Classification:
            self._class_panel(img, output if isinstance(output, Classification) else None)
        self._plots(img)
        return img

    def caption(self, result: WindowResult, stats: PipelineStats | None) -> list[str]:
        """The lines above the panels: the info line (wrapped to the frame) and the running numbers."""
        lines = _wrap(self.info, self.layout.width - 2 * MARGIN, CAPTION_SCALE)
        parts = status_parts(self.timeline.relative_s(result.t_end_us), self.source_info.get("duration_s"),
                             result.latency_ms, stats)
        parts.insert(1, f"{len(result.events):,} events")
        return [*lines, " · ".join(parts)]

    def _caption(self, img: np.ndarray, result: WindowResult, stats: PipelineStats | None) -> None:
        lines = self.caption(result, stats)
        for k, line in enumerate(lines):
            put_text(img, line, MARGIN, MARGIN + k * LINE_H, CAPTION_SCALE, DIM_TEXT_RGB if k < len(lines) - 1 else TEXT_RGB)

    def _title(self, img: np.ndarray, x: int, y: int, text: str) -> int:
        """A panel title at (x, y - TITLE_H); returns the x after it."""
        put_text(img, text, x, y - TITLE_H + 3, 0.45, TEXT_RGB)
        return x + text_size(text, 0.45)[0]

    def _event_panel(self, img: np.ndarray, output) -> None:
        x, y, w, h = self.layout.events
        panel = cv2.resize(self.events.rgb(), (w, h), interpolation=cv2.INTER_NEAREST)
        if isinstance(output, Detections):
            panel = draw_boxes(panel, output.boxes_xyxy, output.classes, output.scores, output.names,
                               scale=w / self.sensor_wh[0], font_scale=0.42)
        img[y:y + h, x:x + w] = panel
        after = self._title(img, x, y, EVENTS_TITLE)
        for name, rgb in (("ON", ON_RGB), ("OFF", OFF_RGB)):  # the polarity legend
            swatch = after + 14
            cv2.rectangle(img, (swatch, y - TITLE_H + 5), (swatch + 11, y - TITLE_H + 16),
                          tuple(int(c) for c in rgb), -1)
            put_text(img, name, swatch + 16, y - TITLE_H + 4, 0.42, TEXT_RGB)
            after = swatch + 16 + text_size(name, 0.42)[0]
        put_text(img, decay_text(self.events.tau_us), after + 14, y - TITLE_H + 5, 0.4, DIM_TEXT_RGB)

    def _depth_panel(self, img: np.ndarray, depth: DepthMap | None) -> None:
        x, y, w, h = self.layout.output
        if depth is None:
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), PANEL_RGB, -1)
            d_max = 80.0
        else:
            d_max = depth.d_max
            img[y:y + h, x:x + w] = cv2.resize(depth_rgb(depth.depth_m, d_max=d_max), (w, h),
                                               interpolation=cv2.INTER_NEAREST)
            dh, dw = depth.depth_m.shape
            after = self._title(img, x, y, DEPTH_TITLE)
            put_text(img, depth_subtitle(dw, dh), after + 12, y - TITLE_H + 5, 0.4, DIM_TEXT_RGB)
        bar_x = x + w + MARGIN
        img[y:y + h, bar_x:bar_x + COLOUR_BAR_W] = depth_colour_bar(h, COLOUR_BAR_W)
        for position, label in depth_ticks(d_max=d_max):
            ty = int(round(y + (h - 1) * (1 - position)))
            cv2.line(img, (bar_x + COLOUR_BAR_W, ty), (bar_x + COLOUR_BAR_W + 4, ty), TEXT_RGB, 1)
            put_text(img, label, bar_x + COLOUR_BAR_W + 7, min(max(ty - 7, y), y + h - 14), 0.4, TEXT_RGB)

    def _class_panel(self, img: np.ndarray, output: Classification | None) -> None:
        x, y, w, h = self.layout.output
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), PANEL_RGB, -1)
        if output is None:
            return
        self._title(img, x, y, CLASSES_TITLE)
        row = min(22, (h // 2 - 4) // max(len(output.probabilities), 1))
        bars = class_bars(output.probabilities, output.names, width=w, row=row)
        img[y:y + bars.shape[0], x:x + w] = bars
        self.history.append(np.asarray(output.probabilities, np.float32))
        del self.history[:-256]
        top = y + bars.shape[0] + 26
        put_text(img, "class history (newest right)", x + 4, top - 20, 0.42, DIM_TEXT_RGB)
        if top < y + h - 4:
            history = class_history_rgb(np.stack(self.history))
            img[top:y + h, x:x + w] = cv2.resize(history, (w, y + h - top), interpolation=cv2.INTER_NEAREST)

    def _plots(self, img: np.ndarray) -> None:
        x, y, w, h = self.layout.plots
        specs = [spec for spec in PLOTS if self.layout.has_model or not spec.model_only]
        each = (w - MARGIN * (len(specs) - 1)) // len(specs)
        for k, spec in enumerate(specs):
            left = x + k * (each + MARGIN)
            img[y:y + h, left:left + each] = line_chart(self.timeline, spec, each, h)
