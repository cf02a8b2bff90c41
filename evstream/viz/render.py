"""Pictures of event streams and model outputs as RGB uint8 arrays ``[H, W, 3]``.

The Qt window shows these arrays and the headless renderer writes them to PNG/MP4, so both
draw the same view. Nothing here imports Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from evstream._jit import kernel

ON_RGB = np.array([255, 200, 40], dtype=np.float32)  # warm yellow
OFF_RGB = np.array([40, 140, 255], dtype=np.float32)  # cool blue
BACKGROUND_RGB = np.array([16, 16, 20], dtype=np.float32)
BOX_COLOURS = ((80, 255, 80), (255, 90, 200), (255, 170, 60), (90, 220, 255))


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

    def update(self, events: np.ndarray, dt_us: float) -> None:
        """Decay by ``dt_us`` of elapsed event time, then stamp the window's events."""
        decay = math.exp(-dt_us / self.tau_us) if self.tau_us > 0 else 0.0
        self.on *= decay
        self.off *= decay
        if len(events):
            _stamp(events["x"], events["y"], events["p"], self.on, self.off)

    def rgb(self) -> np.ndarray:
        """The image ``[H, W, 3]`` uint8: background blended towards the ON and OFF colours."""
        img = BACKGROUND_RGB + self.on[..., None] * (ON_RGB - BACKGROUND_RGB)
        img += self.off[..., None] * (OFF_RGB - BACKGROUND_RGB) * (1 - self.on[..., None])
        return np.clip(img, 0, 255).astype(np.uint8)


def depth_rgb(depth: np.ndarray, d_min: float = 1.0, d_max: float = 80.0) -> np.ndarray:
    """Metric depth ``[H, W]`` as an RGB image (near = warm, far = dark; NaN = black), log scale."""
    valid = np.isfinite(depth) & (depth > 0)
    scaled = np.zeros(depth.shape, np.float32)
    scaled[valid] = np.log(np.clip(depth[valid], d_min, d_max) / d_min) / math.log(d_max / d_min)
    img = cv2.applyColorMap(((1 - scaled) * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
    img[~valid] = 0
    return np.ascontiguousarray(img)


def draw_boxes(img: np.ndarray, boxes_xyxy: np.ndarray, classes: np.ndarray, scores: np.ndarray,
               names: tuple[str, ...] = ()) -> np.ndarray:
    """Draw labelled boxes (xyxy pixels) onto a copy of ``img``."""
    out = img.copy()
    for (x0, y0, x1, y1), cls, score in zip(np.asarray(boxes_xyxy).reshape(-1, 4), classes, scores):
        colour = BOX_COLOURS[int(cls) % len(BOX_COLOURS)]
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1)))
        cv2.rectangle(out, p0, p1, colour, 1)
        label = f"{names[int(cls)] if int(cls) < len(names) else int(cls)} {float(score):.2f}"
        cv2.putText(out, label, (p0[0], max(p0[1] - 3, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
    return out


def class_bars(probabilities: np.ndarray, names: tuple[str, ...], width: int = 320, row: int = 18) -> np.ndarray:
    """Horizontal bars of class probabilities with their names, as an RGB image."""
    img = np.full((row * len(names) + 4, width, 3), BACKGROUND_RGB.astype(np.uint8), np.uint8)
    best = int(np.argmax(probabilities)) if len(probabilities) else -1
    for k, (name, p) in enumerate(zip(names, probabilities)):
        y = 2 + k * row
        colour = (255, 200, 40) if k == best else (120, 120, 140)
        cv2.rectangle(img, (130, y + 3), (130 + int((width - 140) * float(p)), y + row - 3), colour, -1)
        cv2.putText(img, name[:20], (4, y + row - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (230, 230, 230), 1, cv2.LINE_AA)
    return img
