"""Pictures of event streams and model outputs as RGB uint8 arrays ``[H, W, 3]``, and the colours they use.

The Qt window and the headless video both draw from these definitions (event colours, the class
palette, the depth colour map and its ticks, label placement), so the two always agree. Nothing
here imports Qt.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from evstream._jit import kernel

ON_RGB = np.array([255, 200, 40], dtype=np.float32)  # warm yellow
OFF_RGB = np.array([40, 140, 255], dtype=np.float32)  # cool blue
BACKGROUND_RGB = np.array([16, 16, 20], dtype=np.float32)
PANEL_RGB = (24, 24, 30)  # behind panels, plots and text
TEXT_RGB = (228, 228, 235)
DIM_TEXT_RGB = (150, 150, 165)
CLASS_RGB = ((80, 230, 120), (255, 90, 200), (90, 220, 230), (255, 150, 60), (170, 130, 255), (255, 95, 95),
             (200, 235, 80), (120, 170, 255), (240, 200, 150), (255, 175, 215), (150, 225, 185), (190, 190, 200))
"""One colour per class index (wrapping), for boxes, bars and histories alike; none is close to
the ON yellow or the OFF blue the boxes are drawn over."""
DEPTH_MIN_M = 1.0
"""Nearest depth of the colour scale (metres); the farthest is the model's ``d_max``."""
DEPTH_LUT = np.ascontiguousarray(cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None],
                                                   cv2.COLORMAP_INFERNO)[:, 0, ::-1])
"""The depth colour map, ``[256, 3]`` RGB (inferno): index 255 (bright yellow) is the nearest depth."""
FONT = cv2.FONT_HERSHEY_SIMPLEX
_ASCII = str.maketrans({"·": "|", "—": "-", "–": "-", "×": "x", "τ": "tau ", "µ": "u", "→": "->", "…": "..."})


def class_rgb(k: int) -> tuple[int, int, int]:
    """The colour of class ``k``."""
    return CLASS_RGB[int(k) % len(CLASS_RGB)]


def class_name(names: tuple[str, ...], k: int) -> str:
    """The name of class ``k`` (its number when the model gave no name for it)."""
    return names[int(k)] if 0 <= int(k) < len(names) else str(int(k))


@kernel
def _stamp(xs, ys, ps, on, off):
    """Set the decayed activity of every event's pixel to 1 in its polarity's surface (events off the
    image are skipped: the renderer never trusts its input)."""
    height, width = on.shape
    for i in range(xs.shape[0]):
        x, y = xs[i], ys[i]
        if x >= width or y >= height:
            continue
        if ps[i]:
            on[y, x] = 1.0
        else:
            off[y, x] = 1.0


@kernel
def _blend(on, off, background, to_on, to_off, out):
    """``out = background + on * to_on + off * (1 - on) * to_off``, rounded down, per pixel and channel."""
    height, width = on.shape
    for y in range(height):
        for x in range(width):
            a, b = on[y, x], off[y, x] * (1.0 - on[y, x])
            for c in range(3):
                value = background[c] + a * to_on[c] + b * to_off[c]
                out[y, x, c] = min(max(value, 0.0), 255.0)


@dataclass
class EventImage:
    """Polarity image with exponential decay: ``update(events, dt_us)`` then ``rgb()``.

    Each pixel shows the most recent polarity activity, fading with time constant ``tau_us``
    (``tau_us = 0`` shows only the last window).
    """

    width: int
    height: int
    tau_us: float = 30_000.0
    on: np.ndarray = field(init=False)
    off: np.ndarray = field(init=False)

    def __post_init__(self):
        self.on = np.zeros((self.height, self.width), np.float32)
        self.off = np.zeros((self.height, self.width), np.float32)

    def reset(self) -> None:
        """Forget all activity (a new window sequence: a loop's turn, a seek back)."""
        self.on.fill(0.0)
        self.off.fill(0.0)

    def update(self, events: np.ndarray, dt_us: float) -> None:
        """Decay by ``dt_us`` of elapsed event time, then stamp the window's events."""
        decay = math.exp(-dt_us / self.tau_us) if self.tau_us > 0 else 0.0
        self.on *= decay
        self.off *= decay
        if len(events):
            _stamp(events["x"], events["y"], events["p"], self.on, self.off)

    def rgb(self) -> np.ndarray:
        """The image ``[H, W, 3]`` uint8: background blended towards the ON colour by the ON activity,
        then towards the OFF colour by the OFF activity where ON leaves room."""
        out = np.empty((self.height, self.width, 3), np.uint8)
        _blend(self.on, self.off, BACKGROUND_RGB, ON_RGB - BACKGROUND_RGB, OFF_RGB - BACKGROUND_RGB, out)
        return out


# --- depth -------------------------------------------------------------------------------------
def depth_position(depth: np.ndarray | float, d_min: float = DEPTH_MIN_M, d_max: float = 80.0) -> np.ndarray:
    """Where a metric depth sits on the colour scale: 0 at ``d_min`` (and nearer), 1 at ``d_max``, log-spaced."""
    depth = np.clip(np.asarray(depth, np.float64), d_min, d_max)
    return np.log(depth / d_min) / math.log(d_max / d_min)


@kernel
def _depth_lut(depth, d_min, d_max, lut, out):
    """``out[y, x] = lut[round(255 * (1 - depth_position))]``, black where the depth is NaN or <= 0."""
    scale = 1.0 / math.log(d_max / d_min)
    height, width = depth.shape
    for y in range(height):
        for x in range(width):
            d = depth[y, x]
            if not d > 0 or not math.isfinite(d):
                for c in range(3):
                    out[y, x, c] = 0
                continue
            position = math.log(min(max(d, d_min), d_max) / d_min) * scale
            k = int(round((1.0 - position) * 255))
            for c in range(3):
                out[y, x, c] = lut[k, c]


def depth_rgb(depth: np.ndarray, d_min: float = DEPTH_MIN_M, d_max: float = 80.0) -> np.ndarray:
    """Metric depth ``[H, W]`` as RGB through :data:`DEPTH_LUT` at ``1 - depth_position`` (near =
    bright, far = dark, log scale; NaN or non-positive = black)."""
    depth = np.ascontiguousarray(depth, np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth_rgb: expected a depth map [H, W], got shape {depth.shape}")
    out = np.empty((*depth.shape, 3), np.uint8)
    _depth_lut(depth, float(d_min), float(d_max), DEPTH_LUT, out)
    return out


def depth_ticks(d_min: float = DEPTH_MIN_M, d_max: float = 80.0) -> list[tuple[float, str]]:
    """Colour-bar ticks ``(position in [0, 1], "5 m")``: both ends of the scale, and the 1-2-5 steps
    between them that are not crowding an end."""
    ticks = [(0.0, f"{d_min:g} m")]
    for decade in range(math.floor(math.log10(d_min)), math.ceil(math.log10(d_max)) + 1):
        for mantissa in (1, 2, 5):
            position = float(depth_position(mantissa * 10.0 ** decade, d_min, d_max))
            if 0.07 < position < 0.93:
                ticks.append((position, f"{mantissa * 10.0 ** decade:g} m"))
    return [*ticks, (1.0, f"{d_max:g} m")]


def depth_colour_bar(height: int, width: int) -> np.ndarray:
    """The colour bar of :func:`depth_rgb`, ``[height, width, 3]``: near (position 0) at the bottom."""
    rows = np.rint(np.linspace(0, 255, height)).astype(np.intp)  # top row: far (dark)
    return np.ascontiguousarray(np.broadcast_to(DEPTH_LUT[rows][:, None], (height, width, 3)))


@functools.lru_cache(maxsize=32)
def _template(height: int, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    template = np.empty((height, width, 3), np.uint8)
    template[...] = rgb
    template.flags.writeable = False
    return template


def canvas(height: int, width: int, rgb=PANEL_RGB) -> np.ndarray:
    """A new ``[height, width, 3]`` image of one colour (copied from a cached template: filling by
    broadcasting a colour costs milliseconds per frame)."""
    return _template(int(height), int(width), tuple(int(c) for c in rgb)).copy()


# --- text and labels ---------------------------------------------------------------------------
def ascii_text(text: str) -> str:
    """``text`` in the ASCII that OpenCV's Hershey fonts can draw."""
    return text.translate(_ASCII).encode("ascii", "replace").decode()


@functools.lru_cache(maxsize=64)
def _ascent(scale: float, thickness: int) -> int:
    """Height above the baseline of the Hershey font at this scale (the same for every text)."""
    return cv2.getTextSize("A", FONT, scale, thickness)[0][1]


def text_size(text: str, scale: float, thickness: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of ``text`` drawn by :func:`put_text` (height includes descenders)."""
    (w, h), baseline = cv2.getTextSize(ascii_text(text), FONT, scale, thickness)
    return w, h + baseline


def put_text(img: np.ndarray, text: str, x: int, y: int, scale: float = 0.5, colour=TEXT_RGB,
             thickness: int = 1) -> None:
    """Draw ``text`` with its top-left corner at (x, y), in place."""
    cv2.putText(img, ascii_text(text), (int(x), int(y) + _ascent(scale, thickness)), FONT, scale, colour,
                thickness, cv2.LINE_AA)


def place_labels(boxes_xyxy: np.ndarray, sizes_wh: np.ndarray, frame_wh: tuple[float, float],
                 scores: np.ndarray | None = None) -> list[tuple[float, float] | None]:
    """Top-left corners of box labels that stay inside the frame and never overlap each other.

    Each label touches its box: above its top-left corner if there is room, else inside it, else
    below it, else at its right edge. Higher-scored boxes choose first; a label with no free place
    gets None (its box is still drawn). Works in any unit (sensor pixels, screen pixels).
    """
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes_wh, np.float64).reshape(-1, 2)
    width, height = frame_wh
    order = np.argsort(-np.asarray(scores), kind="stable") if scores is not None else range(len(boxes))
    taken: list[tuple[float, float, float, float]] = []
    spots: list[tuple[float, float] | None] = [None] * len(boxes)
    for i in order:
        x0, y0, x1, y1 = boxes[i]
        w, h = sizes[i]
        if w > width or h > height:
            continue
        for x, y in ((x0, y0 - h), (x0, y0), (x0, y1), (x0, y1 - h), (x1 - w, y0 - h), (x1 - w, y1),
                     (x0, y0 - 2 * h), (x0, y1 + h)):
            x, y = min(max(x, 0.0), width - w), min(max(y, 0.0), height - h)
            if all(x >= a + c or a >= x + w or y >= b + d or b >= y + h for a, b, c, d in taken):
                spots[i] = (x, y)
                taken.append((x, y, w, h))
                break
    return spots


def box_label(names: tuple[str, ...], cls: int, score: float) -> str:
    """The text on a detection box: its class name and score."""
    return f"{class_name(names, cls)} {float(score):.2f}"


def draw_boxes(img: np.ndarray, boxes_xyxy: np.ndarray, classes: np.ndarray, scores: np.ndarray,
               names: tuple[str, ...] = (), scale: float = 1.0, font_scale: float = 0.4) -> np.ndarray:
    """A copy of ``img`` with boxes (xyxy sensor pixels, times ``scale``) in their class colours and
    labels placed by :func:`place_labels` (filled with the class colour, dark text)."""
    out = img.copy()
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4) * scale
    texts = [box_label(names, c, s) for c, s in zip(classes, scores)]
    pad = 2
    sizes = [(w + 2 * pad, h + pad) for w, h in (text_size(t, font_scale) for t in texts)]
    spots = place_labels(boxes, sizes, (out.shape[1], out.shape[0]), scores)
    right, bottom = out.shape[1] - 1, out.shape[0] - 1
    for (x0, y0, x1, y1), cls in zip(np.clip(boxes, 0, [right, bottom, right, bottom]), classes):  # edges on the frame stay visible
        cv2.rectangle(out, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))), class_rgb(cls), 2)
    for text, cls, spot, (w, h) in zip(texts, classes, spots, sizes):
        if spot is not None:
            x, y = int(round(spot[0])), int(round(spot[1]))
            cv2.rectangle(out, (x, y), (x + int(w) - 1, y + int(h) - 1), class_rgb(cls), -1)
            put_text(out, text, x + pad, y + 1, font_scale, (16, 16, 20))
    return out


# --- classes -----------------------------------------------------------------------------------
def bar_rgb(k: int, best: bool) -> tuple[int, int, int]:
    """A class bar's colour: the class colour for the most probable class, dimmed towards the panel for the others."""
    if best:
        return class_rgb(k)
    return tuple(int(0.45 * c + 0.55 * b) for c, b in zip(class_rgb(k), PANEL_RGB))


def class_bars(probabilities: np.ndarray, names: tuple[str, ...], width: int = 320, row: int = 18,
               font_scale: float = 0.42) -> np.ndarray:
    """Horizontal bars of class probabilities, one row per class: name, a bar in the class colour
    (the most probable class full colour, the others dimmed) and the percentage."""
    p = np.asarray(probabilities, np.float64)
    labels = [class_name(names, k) for k in range(len(p))]
    img = canvas(row * len(p) + 4, width)
    name_w = max((text_size(n, font_scale)[0] for n in labels), default=0) + 10
    bar_w = max(width - name_w - 48, 1)
    best = int(np.argmax(p)) if len(p) else -1
    for k, (name, value) in enumerate(zip(labels, p)):
        y = 2 + k * row
        put_text(img, name, 4, y + 2, font_scale, TEXT_RGB if k == best else DIM_TEXT_RGB)
        end = name_w + int(round(bar_w * float(np.clip(value, 0, 1))))
        if end > name_w:
            cv2.rectangle(img, (name_w, y + 3), (end, y + row - 3), bar_rgb(k, k == best), -1)
        put_text(img, f"{100 * value:.0f}%", name_w + bar_w + 6, y + 2, font_scale, DIM_TEXT_RGB)
    return img


def class_history_rgb(history: np.ndarray) -> np.ndarray:
    """Class probabilities over time ``[N, C]`` as an image ``[C, N, 3]``: row k fades from the
    background (p = 0) to class k's colour (p = 1)."""
    p = np.clip(np.asarray(history, np.float32), 0, 1).T[..., None]
    colours = np.array([class_rgb(k) for k in range(p.shape[0])], np.float32)[:, None, :]
    return (BACKGROUND_RGB + p * (colours - BACKGROUND_RGB)).astype(np.uint8)
