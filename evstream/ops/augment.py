"""Training augmentations that tonic lacks: random flip, shift, crop and time crop with an explicit rng.

tonic's own random transforms (``DropEvent``, ``DropEventByTime``, ``DropEventByArea``,
``RandomDropPixel``, ``RandomFlipPolarity``, ``RandomTimeReversal``, ``TimeJitter``, ``UniformNoise``,
``TimeSkew``, ``EventDrop``, ``SpatialJitter`` with ``clip_outliers=True``) give their results on
EVENT_DTYPE arrays unchanged (the README's table of tonic transforms); they draw from numpy's global
generator. The augmentations here take a ``np.random.Generator`` instead, as TA-SNN's
random-start clips and SpikeYOLO's flip/translate need reproducible draws per worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream.events import check_sensor_size
from evstream.ops._events import contiguous_events, copy_events
from evstream.ops.geometry import crop, flip_lr, flip_ud, translate
from evstream.ops.tasnn import tasnn_random_start


def random_flip_lr(events: np.ndarray, sensor_size, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror left-right with probability ``p`` (SpikeYOLO ``fliplr``). Returns a new array."""
    return flip_lr(events, sensor_size) if rng.random() < p else copy_events(contiguous_events(events))


def random_flip_ud(events: np.ndarray, sensor_size, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror up-down with probability ``p``. Returns a new array."""
    return flip_ud(events, sensor_size) if rng.random() < p else copy_events(contiguous_events(events))


def random_shift(events: np.ndarray, sensor_size, max_shift, rng: np.random.Generator) -> np.ndarray:
    """Translate by a uniform integer ``(dx, dy)`` in ``[-max_shift, max_shift]``; events leaving the sensor drop.

    Args:
        max_shift: pixels, int or ``(max_dx, max_dy)`` (SpikeYOLO ``translate=0.1`` is ``0.1 * W``, ``0.1 * H``).
    """
    mx, my = (max_shift, max_shift) if np.isscalar(max_shift) else max_shift
    dx, dy = rng.integers(-int(mx), int(mx), endpoint=True), rng.integers(-int(my), int(my), endpoint=True)
    return translate(events, sensor_size, dx, dy)


def random_crop(events: np.ndarray, sensor_size, target_size, rng: np.random.Generator) -> np.ndarray:
    """Crop a ``target_size = (w, h)`` window at a uniform position (every position possible).

    Returns the events inside, in window coordinates (sensor size ``(w, h, P)``).
    """
    width, height, _ = check_sensor_size(sensor_size)
    w, h = (int(v) for v in target_size)
    if not (0 < w <= width and 0 < h <= height):
        raise ValueError(f"target_size {target_size!r} must fit in sensor_size {sensor_size!r}")
    x0, y0 = rng.integers(0, width - w, endpoint=True), rng.integers(0, height - h, endpoint=True)
    return crop(events, (x0, y0, w, h))


def random_time_crop(events: np.ndarray, duration_us: int, rng: np.random.Generator) -> np.ndarray:
    """A ``duration_us`` clip at a random start (TA-SNN's training sample, :func:`tasnn_random_start`), as a view.

    The clip is ``[start, start + duration_us)``; a recording shorter than ``duration_us`` is returned whole.
    """
    events = contiguous_events(events)
    if len(events) == 0:
        return events
    t = events["t"]
    start = tasnn_random_start(t[0], t[-1], duration_us, rng)
    return events[np.searchsorted(t, start):np.searchsorted(t, start + int(duration_us))]


@dataclass(frozen=True)
class RandomFlipLR:
    """Transform form of :func:`random_flip_lr`: ``transform(events, rng)``."""

    sensor_size: tuple[int, int, int]
    p: float = 0.5

    def __call__(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_flip_lr(events, self.sensor_size, rng, self.p)


@dataclass(frozen=True)
class RandomFlipUD:
    """Transform form of :func:`random_flip_ud`: ``transform(events, rng)``."""

    sensor_size: tuple[int, int, int]
    p: float = 0.5

    def __call__(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_flip_ud(events, self.sensor_size, rng, self.p)


@dataclass(frozen=True)
class RandomShift:
    """Transform form of :func:`random_shift`: ``transform(events, rng)``."""

    sensor_size: tuple[int, int, int]
    max_shift: int | tuple[int, int]

    def __call__(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_shift(events, self.sensor_size, self.max_shift, rng)


@dataclass(frozen=True)
class RandomCrop:
    """Transform form of :func:`random_crop`: ``transform(events, rng)``."""

    sensor_size: tuple[int, int, int]
    target_size: tuple[int, int]

    def __call__(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_crop(events, self.sensor_size, self.target_size, rng)


@dataclass(frozen=True)
class RandomTimeCrop:
    """Transform form of :func:`random_time_crop`: ``transform(events, rng)``."""

    duration_us: int

    def __call__(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_time_crop(events, self.duration_us, rng)


@dataclass(frozen=True)
class Compose:
    """Apply ``transforms`` in order (tonic's and torchvision's ``Compose``, without either dependency)."""

    transforms: tuple

    def __init__(self, transforms):
        object.__setattr__(self, "transforms", tuple(transforms))

    def __call__(self, sample):
        for transform in self.transforms:
            sample = transform(sample)
        return sample
