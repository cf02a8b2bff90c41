"""Line charts drawn with OpenCV for the headless video: the window's plots (title, legend,
labelled axes, ticks) as an RGB image."""

from __future__ import annotations

import math

import cv2
import numpy as np

from evstream.viz.render import DIM_TEXT_RGB, TEXT_RGB, canvas, put_text, text_size
from evstream.viz.timeline import PlotSpec, Timeline, si_prefix, y_top

GRID_RGB = (48, 48, 58)
FONT_SCALE = 0.38


def nice_ticks(lo: float, hi: float, count: int = 4) -> np.ndarray:
    """About ``count`` round values (1-2-5 steps) within [lo, hi]."""
    if not hi > lo:
        return np.array([lo])
    raw = (hi - lo) / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return np.arange(math.ceil(lo / step) * step, hi + step * 1e-9, step)


def _tick_text(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:.{decimals}f}"


def line_chart(timeline: Timeline, spec: PlotSpec, width: int, height: int) -> np.ndarray:
    """The plot ``spec`` of ``timeline``'s history, ``[height, width, 3]``: time (s) across the last
    :data:`~evstream.viz.timeline.SPAN_S` seconds, the y axis labelled with its unit."""
    img = canvas(height, width)
    values = [timeline[s.field] for s in spec.series]
    top = y_top(values, spec.min_top)
    factor, prefix = si_prefix(top) if spec.si else (1.0, "")
    unit = f"{prefix} {spec.unit}".strip()
    title = f"{spec.title} ({unit})"
    put_text(img, title, 6, 4, FONT_SCALE + 0.04, TEXT_RGB)
    top_px = 24
    if len(spec.series) > 1:  # the legend: after the title, or on a line of its own when it does not fit
        names = [f"- {s.name}" for s in spec.series]
        x = 6 + text_size(title, FONT_SCALE + 0.04)[0] + 12
        y = 5
        if x + sum(text_size(n, FONT_SCALE)[0] + 10 for n in names) > width:
            x, y, top_px = 6, 22, 40
        for name, series in zip(names, spec.series):
            put_text(img, name, x, y, FONT_SCALE, series.rgb)
            x += text_size(name, FONT_SCALE)[0] + 10
    left, right, bottom = 44, width - 8, height - 20
    t0, t1 = timeline.x_range()
    ticks = nice_ticks(0.0, top * factor)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for value in ticks:
        y = int(round(bottom - (bottom - top_px) * value / (top * factor)))
        cv2.line(img, (left, y), (right, y), GRID_RGB, 1)
        text = _tick_text(value, step)
        put_text(img, text, left - 4 - text_size(text, FONT_SCALE)[0], y - 6, FONT_SCALE, DIM_TEXT_RGB)
    axis_label = "time (s)"
    label_x = right - text_size(axis_label, FONT_SCALE)[0]
    put_text(img, axis_label, label_x, bottom + 5, FONT_SCALE, DIM_TEXT_RGB)
    x_ticks = nice_ticks(t0, t1, max((right - left) // 70, 2))
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    for value in x_ticks:
        x = int(round(left + (right - left) * (value - t0) / (t1 - t0)))
        cv2.line(img, (x, bottom), (x, bottom + 3), DIM_TEXT_RGB, 1)
        text = _tick_text(value, x_step)
        w = text_size(text, FONT_SCALE)[0]
        if x + w // 2 < label_x - 6:  # ticks never run into the axis label
            put_text(img, text, x - w // 2, bottom + 5, FONT_SCALE, DIM_TEXT_RGB)
    cv2.line(img, (left, bottom), (right, bottom), DIM_TEXT_RGB, 1)
    t = timeline["t_s"]
    for series, v in zip(spec.series, values):
        finite = np.isfinite(v)
        if finite.sum() < 1:
            continue
        px = left + (right - left) * (t[finite] - t0) / (t1 - t0)
        py = bottom - (bottom - top_px) * v[finite] / top
        points = np.stack([px, py], axis=1)
        points = np.rint(points[(px >= left - 1) & (px <= right + 1)]).astype(np.int32)
        if len(points) == 1:  # a single sample is a dot
            cv2.circle(img, tuple(int(c) for c in points[0]), 3, series.rgb, -1, cv2.LINE_AA)
        else:
            cv2.polylines(img, [points[:, None]], False, series.rgb, 2, cv2.LINE_AA)
    return img
