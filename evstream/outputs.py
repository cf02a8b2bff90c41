"""What a live model returns for a window: typed outputs the viewer knows how to draw.

They sit at the bottom of the package so the nets' live wrappers (``nets/``) return them and the
viewer (``viz/``) draws them without either importing the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Classification:
    """Class probabilities ``[C]`` with the class names."""

    probabilities: np.ndarray
    names: tuple[str, ...]
    firing_rate: float | None = None


@dataclass(frozen=True)
class Detections:
    """Boxes ``[N, 4]`` (xyxy, sensor pixels), class indices and scores."""

    boxes_xyxy: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    names: tuple[str, ...]
    firing_rate: float | None = None


@dataclass(frozen=True)
class DepthMap:
    """Metric depth ``[H, W]`` in metres (NaN where unknown) and the range to colour it with."""

    depth_m: np.ndarray
    d_max: float = 80.0
    firing_rate: float | None = None
