"""N-MNIST (Orchard et al. 2015) in its official layout: ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``.

The MNIST digits shown on a screen and recorded by an ATIS sensor making three saccades of about
100 ms each (34x34 pixels, two polarities, ~300 ms per sample). tonic's two options are here with
tonic's rules: ``first_saccade_only`` keeps the events with ``t < 100_000`` µs, ``stabilize``
removes the saccades' ego-motion (Orchard's correction, tonic's offsets and rounding).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from evstream.datasets.base import EventClassificationDataset, Sample

FIRST_SACCADE_US = 100_000
"""tonic's first-saccade rule: events with ``t`` below this (µs) belong to the first saccade."""

SACCADE_US = 105_000
"""Length of one saccade in the stabilisation (Orchard's ``Read_Ndataset``/tonic's ``stabilize``)."""

_STABILIZE_OFFSET = (4, 2)  # tonic's manual (x, y) offset correcting the original code's drift
_SPLIT_FOLDERS = {"train": "Train", "test": "Test"}
_DIGITS = tuple("0123456789")


def stabilize(events: np.ndarray, sensor_size=(34, 34, 2)) -> np.ndarray:
    """Undo the three saccades' motion (tonic's ``stabilize``): a new array without the events that leave the sensor.

    Saccade 1 (``t <= 105 ms``) moves by (+3.5, +7) px, saccade 2 (``<= 210 ms``) by (+3.5, -7), saccade 3 by
    (-7, 0); each event is moved back by the motion so far, plus tonic's offset (4, 2), and rounded half to even.
    """
    t = events["t"].astype(np.float64)
    x, y = events["x"].astype(np.float64), events["y"].astype(np.float64)
    first, second = t <= SACCADE_US, (t > SACCADE_US) & (t <= 2 * SACCADE_US)
    third = t > 2 * SACCADE_US
    x_off, y_off = _STABILIZE_OFFSET
    # tonic's expressions term by term, so the float rounding (and so the pixel) is the same
    x[first] = x_off + x[first] - 3.5 * t[first] / SACCADE_US
    y[first] = y_off + y[first] - 7 * t[first] / SACCADE_US
    x[second] = x_off + x[second] - 3.5 - 3.5 * (t[second] - SACCADE_US) / SACCADE_US
    y[second] = y_off + y[second] - 7 + 7 * (t[second] - SACCADE_US) / SACCADE_US
    x[third] = x_off + x[third] - 7 + 7 * (t[third] - 2 * SACCADE_US) / SACCADE_US
    y[third] = y_off + y[third]
    width, height = sensor_size[:2]
    inside = (x >= 0) & (y >= 0) & (x <= width - 1) & (y <= height - 1)
    out = events[inside]
    out["x"], out["y"] = np.round(x[inside]), np.round(y[inside])
    return out


class NMNIST(EventClassificationDataset):
    """N-MNIST: one sample per ``.bin`` file, labelled by its digit folder (tonic's order: folders, then names).

    Args:
        root: the folder holding ``Train/`` and ``Test/`` (either may be absent until it is asked for).
        split: ``"train"`` (``Train/``) or ``"test"`` (``Test/``).
        first_saccade_only: keep the events of the first saccade (``t < 100 ms``, tonic's rule).
        stabilize: remove the saccades' motion (:func:`stabilize`).
        transform, sample_transform, cache_dir: as :class:`EventClassificationDataset`.

    Example:
        >>> train = NMNIST("data/nmnist", "train", first_saccade_only=True)  # doctest: +SKIP
        >>> events, digit = train[0]  # doctest: +SKIP
    """

    sensor_size = (34, 34, 2)
    classes = ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine")  # tonic's names
    layout = "<root>/Train/<digit>/<index>.bin and <root>/Test/<digit>/<index>.bin (digit 0-9, ATIS 40-bit records)"

    def __init__(self, root: os.PathLike | str, split: str = "train", *, first_saccade_only: bool = False,
                 stabilize: bool = False, transform: Callable | None = None, sample_transform: Callable | None = None,
                 cache_dir: os.PathLike | str | None = None):
        self.first_saccade_only, self.stabilize = bool(first_saccade_only), bool(stabilize)
        super().__init__(root, split, transform=transform, sample_transform=sample_transform, cache_dir=cache_dir)

    def _find_samples(self) -> list[Sample]:
        folder = self.root / _SPLIT_FOLDERS[self.split]
        if not folder.is_dir():
            raise FileNotFoundError(f"NMNIST: the {self.split} folder {folder} is missing; expected {self.layout}")
        samples = []
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and entry.name in _DIGITS:
                samples += [Sample(path, int(entry.name)) for path in sorted(entry.glob("*.bin"))]
            elif entry.is_dir():
                raise FileNotFoundError(f"NMNIST: {entry} is not a digit folder 0-9; expected {self.layout}")
            elif entry.suffix == ".bin":
                raise FileNotFoundError(f"NMNIST: {entry} is outside the digit folders; expected {self.layout}")
        return samples

    def _reader_options(self) -> dict:
        return {"sensor_size": self.sensor_size}

    def _cache_parts(self) -> tuple:
        return self.first_saccade_only, self.stabilize

    def _convert(self, events: np.ndarray) -> np.ndarray:
        if self.first_saccade_only:
            events = events[events["t"] < FIRST_SACCADE_US]
        return stabilize(events, self.sensor_size) if self.stabilize else events
