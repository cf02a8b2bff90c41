"""Fit events from one sensor onto the input of a model trained on another, keeping the aspect.

A model is trained on one sensor's geometry (DVS128 Gesture 128x128, Gen1 304x240, N-MNIST
34x34); a camera or a recording may have another. :class:`SensorFit` maps each event's pixel by
one uniform scale and a centring offset, with a stated policy:

- ``crop``: scale so the source *covers* the model's input (``s = max(tw/sw, th/sh)``) and drop
  the centred excess: no border, the edges of the wider axis are lost (the default);
- ``resize``: scale so the whole source *fits* (``s = min(...)``), letterboxed: nothing is lost,
  the narrower axis gets empty borders;
- ``pad``: no scaling, the source centred in the input (cropped where it is larger).

Downscaling merges source pixels (a model pixel sees up to ``1/s^2`` times the events);
upscaling spreads them (every event still lands on one pixel). The map is the same rational
integer lookup as the geometry ops (``x' = (a x + b) // f``), one numba pass per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from evstream.events import check_sensor_size
from evstream.ops.geometry import _axis_table, _remap

POLICIES = ("crop", "resize", "pad")


def _axis(source: int, target: int, scale: Fraction) -> tuple[tuple[int, int], tuple[int, int, int]]:
    """The kept source window ``[lo, hi)`` and the map ``(a, b, f)`` of one axis, centred:
    ``x' = floor(s x + (target - s source) / 2)`` exactly, in integers (``s = a / f`` over ``2f``)."""
    a, f = 2 * scale.numerator, 2 * scale.denominator
    b = target * scale.denominator - source * scale.numerator
    lo = max(-(b // a), 0)  # smallest x with a x + b >= 0
    hi = min(-((b - target * f) // a), source)  # smallest x with a x + b >= target * f
    return (lo, max(hi, lo)), (a, b, f)


@dataclass(frozen=True)
class SensorFit:
    """Transform: events of ``source_size`` -> events of ``target_size`` by ``policy`` (``crop``, ``resize``, ``pad``).

    Args:
        source_size: ``(W, H, P)`` of the incoming events.
        target_size: ``(W, H, P)`` the model expects.
        policy: how the aspect is kept (module docstring).

    Example:
        >>> fit = SensorFit((346, 260, 2), (128, 128, 2))
        >>> fit.describe()
        'input 128x128 from 346x260 by crop (scale 0.492)'
    """

    source_size: tuple[int, int, int]
    target_size: tuple[int, int, int]
    policy: str = "crop"

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"unknown fit policy {self.policy!r}; one of: {', '.join(POLICIES)}")
        object.__setattr__(self, "source_size", check_sensor_size(self.source_size))
        object.__setattr__(self, "target_size", check_sensor_size(self.target_size))

    @property
    def scale(self) -> Fraction:
        """The uniform scale from source to target pixels."""
        (sw, sh, _), (tw, th, _) = self.source_size, self.target_size
        if self.policy == "pad":
            return Fraction(1)
        ratios = Fraction(tw, sw), Fraction(th, sh)
        return max(ratios) if self.policy == "crop" else min(ratios)

    @property
    def identity(self) -> bool:
        """Whether the fit changes nothing (same sensor)."""
        return self.source_size[:2] == self.target_size[:2]

    def _axes(self):
        scale = self.scale
        return (_axis(self.source_size[0], self.target_size[0], scale),
                _axis(self.source_size[1], self.target_size[1], scale))

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if self.identity:
            return events
        (x_window, x_map), (y_window, y_map) = self._axes()
        return _remap(events, _axis_table(x_window, *x_map), _axis_table(y_window, *y_map))

    def boxes_to_source(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Boxes ``[N, 4]`` in target pixels -> source pixels (the inverse of the map)."""
        boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
        if self.identity:
            return boxes
        ((_, (a, bx, f)), (_, (_, by, _))) = self._axes()
        offset = np.array([bx, by, bx, by], np.float64) / f
        return (boxes - offset) * (f / a)

    def describe(self) -> str:
        """One line for the window and the run summary."""
        (sw, sh, _), (tw, th, _) = self.source_size, self.target_size
        if self.identity:
            return f"input {tw}x{th} (the sensor's own)"
        return f"input {tw}x{th} from {sw}x{sh} by {self.policy} (scale {float(self.scale):.3g})"
