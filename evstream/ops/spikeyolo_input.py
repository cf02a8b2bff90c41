"""SpikeYOLO's Gen1 input (models.md §1.4, BICLab/SpikeYOLO ``pre_gen1.py`` and its Ultralytics loader).

For a label at time ``t_b`` the 250 ms before it, ``[t_b - 250 ms, t_b)``, is cut into T bins of
``250 ms // T``. Each bin becomes a last-event-polarity image: background 127, a pixel is 255 if
its latest event in the bin is ON and 0 if OFF. The image is resized so its long side is
``imgsz`` (Ultralytics: ``ceil(side * imgsz / long_side)``), then letterboxed with value 114 to
a multiple of ``stride`` (Gen1 304x240 -> 320x253 -> 320x256), and repeated on 3 channels.

The resize is OpenCV's bilinear one (``resize="linear"``, ``cv2.INTER_LINEAR``), as the official
Gen1 ``load_image`` (``SpikeYOLO_for_Gen1/ultralytics/data/base.py``) does for training and
validation alike. ``resize="area"`` (``cv2.INTER_AREA``) is what evstream used before; it stays
for the checkpoints trained with it (their recipe says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from evstream._jit import inline_kernel, kernel
from evstream.events import check_sensor_size
from evstream.ops._events import contiguous_events
from evstream.ops.frames import for_each_binned_event, raise_for_status, search_times

BACKGROUND = 127
PAD_VALUE = 114
RESIZE_MODES = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}
"""Resize name -> OpenCV interpolation: ``linear`` is the official one; ``area`` the old evstream one."""


@inline_kernel
def _set_polarity(out, k, e):
    """Bin ``k``'s image at the event's pixel: 255 for ON, 0 for OFF."""
    out[k, e.y, e.x] = 255 * e.p


@kernel
def _last_polarity(events, bounds, out):
    """Set ``out[k, y, x] = 255 p`` for ``events[bounds[k]:bounds[k + 1]]`` in order (later events win)."""
    return for_each_binned_event(events, bounds, out.shape[2], out.shape[1], _set_polarity, out)


def last_polarity_frames(events: np.ndarray, sensor_size, start_time: int, n_time_bins: int, dt_us: int,
                         out: np.ndarray | None = None) -> np.ndarray:
    """Last-event-polarity images of T bins of ``dt_us`` from ``start_time``.

    Shape:
        ``[T, H, W]`` uint8: 127 without events, else 255 (last event ON) or 0 (last event OFF).
    """
    width, height, _ = check_sensor_size(sensor_size)
    if not int(n_time_bins) > 0 or not int(dt_us) > 0:
        raise ValueError(f"last_polarity_frames: n_time_bins and dt_us must be > 0, got {n_time_bins}, {dt_us}")
    shape = (int(n_time_bins), height, width)
    if out is None:
        out = np.empty(shape, np.uint8)
    elif out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"last_polarity_frames: out must be a C-contiguous uint8 array of shape {shape}")
    out.fill(BACKGROUND)
    events = contiguous_events(events, convert=True)
    bounds = search_times(events, int(start_time) + np.arange(int(n_time_bins) + 1, dtype=np.int64) * int(dt_us))
    raise_for_status(_last_polarity(events, bounds, out), "last_polarity_frames")
    return out


@dataclass(frozen=True)
class Letterbox:
    """Where the sensor image sits in the network input: ``image = sensor * scale + pad``.

    Attributes: ``scale_x, scale_y`` (resize factors), ``pad_left, pad_top`` (pixels of padding),
    ``height, width`` (network input size).
    """

    scale_x: float
    scale_y: float
    pad_left: int
    pad_top: int
    height: int
    width: int

    def boxes_to_image(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Map ``[N, 4]`` xyxy boxes from sensor pixels to network-input pixels."""
        return np.asarray(boxes_xyxy, dtype=np.float64) * self._scale + self._pad

    def boxes_to_sensor(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Map ``[N, 4]`` xyxy boxes from network-input pixels back to sensor pixels."""
        return (np.asarray(boxes_xyxy, dtype=np.float64) - self._pad) / self._scale

    @property
    def _scale(self) -> np.ndarray:
        return np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y])

    @property
    def _pad(self) -> np.ndarray:
        return np.array([self.pad_left, self.pad_top, self.pad_left, self.pad_top], dtype=np.float64)


def letterbox_geometry(sensor_size, imgsz: int = 320, stride: int = 32) -> Letterbox:
    """The resize and padding Ultralytics applies to a ``(W, H)`` image for ``imgsz`` and ``stride``."""
    width, height, _ = check_sensor_size(sensor_size)
    ratio = imgsz / max(height, width)
    new_w, new_h = (min(math.ceil(width * ratio), imgsz), min(math.ceil(height * ratio), imgsz)) if ratio != 1 \
        else (width, height)
    out_h, out_w = -(-new_h // stride) * stride, -(-new_w // stride) * stride
    top, left = round((out_h - new_h) / 2 - 0.1), round((out_w - new_w) / 2 - 0.1)
    return Letterbox(new_w / width, new_h / height, int(left), int(top), out_h, out_w)


def to_spikeyolo_input(events: np.ndarray, sensor_size, label_time: int, n_time_bins: int = 2,
                       window_us: int = 250_000, imgsz: int = 320, stride: int = 32,
                       resize: str = "linear") -> tuple[np.ndarray, Letterbox]:
    """SpikeYOLO's network input for one label time.

    Args:
        events: time-sorted events.
        sensor_size: ``(W, H, 2)`` (Gen1: ``(304, 240, 2)``).
        label_time: t_b in µs; the window is ``[t_b - window_us, t_b)``.
        n_time_bins: T (2 in the released Gen1 data, 4 in ``pre_gen1.py``).
        window_us: 250 ms; imgsz: long side after resizing; stride: the padded size's multiple.
        resize: ``"linear"`` (the official ``load_image``: ``cv2.INTER_LINEAR``) or ``"area"``
            (``cv2.INTER_AREA``, evstream's earlier choice, kept for the checkpoints trained with it).

    Shape:
        ``[T, 3, H_out, W_out]`` uint8, ``H_out, W_out`` multiples of ``stride``.

    Returns:
        ``(frames, letterbox)``; scale frames by 1/255 for the network, map boxes with ``letterbox``.
    """
    interpolation = resize_mode(resize)
    geometry = letterbox_geometry(sensor_size, imgsz, stride)
    images = last_polarity_frames(events, sensor_size, int(label_time) - int(window_us), n_time_bins,
                                  int(window_us) // int(n_time_bins))
    new_h, new_w = round(images.shape[1] * geometry.scale_y), round(images.shape[2] * geometry.scale_x)
    frames = np.full((images.shape[0], 3, geometry.height, geometry.width), PAD_VALUE, np.uint8)
    rows = slice(geometry.pad_top, geometry.pad_top + new_h)
    cols = slice(geometry.pad_left, geometry.pad_left + new_w)
    for image, frame in zip(images, frames, strict=True):
        if (new_h, new_w) != image.shape:
            image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
        frame[:, rows, cols] = image
    return frames, geometry


def resize_mode(name: str) -> int:
    """The OpenCV interpolation of a resize name of :data:`RESIZE_MODES`."""
    if name not in RESIZE_MODES:
        raise ValueError(f"unknown resize {name!r}; one of {', '.join(RESIZE_MODES)}")
    return RESIZE_MODES[name]


@dataclass(frozen=True)
class ToSpikeYOLOInput:
    """Transform calling :func:`to_spikeyolo_input` for a (events, label_time) pair."""

    sensor_size: tuple[int, int, int]
    n_time_bins: int = 2
    window_us: int = 250_000
    imgsz: int = 320
    stride: int = 32
    resize: str = "linear"

    def __call__(self, events: np.ndarray, label_time: int) -> tuple[np.ndarray, Letterbox]:
        return to_spikeyolo_input(events, self.sensor_size, label_time, self.n_time_bins, self.window_us,
                                  self.imgsz, self.stride, self.resize)
