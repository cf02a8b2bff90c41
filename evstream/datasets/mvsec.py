"""MVSEC depth (Zhu et al. 2018) in its HDF5 layout, and the synthetic depth set written in the same layout.

Each sequence is a pair ``<seq>_data.hdf5`` (``davis/<camera>/events``, N x 4 float64: x, y, t in
seconds, p +-1) and ``<seq>_gt.hdf5`` (``davis/<camera>/depth_image_rect`` [N, 260, 346] metres,
NaN or 0 where there is no depth, and ``depth_image_rect_ts`` in seconds). One sample per depth map
(20 Hz): the events of the ``window_us`` before its timestamp and the left camera's depth map.

Splits (models.md §5.2, §5.3, §7):

- ``"outdoor"``: train ``outdoor_day2``; test ``outdoor_day1``, ``outdoor_night1-3``; clip at 80 m.
- ``"indoor1"`` .. ``"indoor3"``: StereoSpike / DDES splits of ``indoor_flying1-3`` with StereoSpike's
  take-off/landing frame ranges (``datasets/MVSEC/indices.py``, as it slices them); clip at 10 m.
- ``"synthetic"``: every sequence under the root (``evstream simulate depth``); the last one (sorted by
  name) is the test split, the others train; a single sequence is cut in time, the first 80 % of its
  depth maps train. Split ``"all"`` takes every sequence whole (a folder of held-out test sequences).
  Clip at 40 m, the simulator's range.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

import h5py
import numpy as np
import torch

from evstream.datasets.cache import open_cache
from evstream.events import concat_events
from evstream.io import open_events
from evstream.io.convert import iter_range
from evstream.ops.depth_repr import to_cumulative_stack, to_stereospike_histogram

__all__ = ["CumulativeWindow", "DepthSample", "HistogramWindow", "MVSECDepth", "SCENARIOS", "Scenario",
           "clean_depth"]

MVSEC_SIZE = (346, 260, 2)


class Scenario(NamedTuple):
    """A split table: ``(sequence, (first, stop) depth-map range or None)`` per split, and the clip depth."""

    train: tuple[tuple[str, tuple[int, int] | None], ...]
    test: tuple[tuple[str, tuple[int, int] | None], ...]
    d_max: float


SCENARIOS: dict[str, Scenario] = {
    "outdoor": Scenario(train=(("outdoor_day2", None),),
                        test=(("outdoor_day1", None), ("outdoor_night1", None), ("outdoor_night2", None),
                              ("outdoor_night3", None)), d_max=80.0),
    "indoor1": Scenario(train=(("indoor_flying2", (159, 1581)), ("indoor_flying3", (124, 1816))),
                        test=(("indoor_flying1", (139, 1201)),), d_max=10.0),
    "indoor2": Scenario(train=(("indoor_flying1", (79, 1261)), ("indoor_flying3", (124, 1816))),
                        test=(("indoor_flying2", (119, 1421)),), d_max=10.0),
    "indoor3": Scenario(train=(("indoor_flying1", (79, 1261)), ("indoor_flying2", (119, 1581))),
                        test=(("indoor_flying3", (72, 1816)),), d_max=10.0),
}
"""MVSEC's standard depth splits; ranges index ``depth_image_rect`` as ``[first, stop)``."""

SYNTHETIC_D_MAX = 40.0
SYNTHETIC_TRAIN_FRACTION = 0.8


def clean_depth(depth: np.ndarray, d_max: float) -> np.ndarray:
    """Depth in metres with NaN where there is none (NaN, 0 or negative) and values clipped to ``d_max``.

    Shape: any -> same, float32.
    """
    depth = np.asarray(depth, dtype=np.float32)
    out = np.minimum(depth, np.float32(d_max))
    out[~(depth > 0)] = np.nan
    return out


@dataclass(frozen=True)
class CumulativeWindow:
    """The depth paper's cumulative stack (§5.1) of one camera over the sample's window.

    Returns ``[T, 2, H, W]`` float32 (``[T, 4, H, W]`` with the right camera's channels after the left's).
    """

    n_time_bins: int = 5
    sensor_size: tuple[int, int, int] = MVSEC_SIZE

    def __call__(self, cameras: list[np.ndarray], start_us: int, end_us: int) -> np.ndarray:
        stacks = [to_cumulative_stack(ev, self.sensor_size, self.n_time_bins, start_us, end_us) for ev in cameras]
        return np.concatenate(stacks, axis=1)


@dataclass(frozen=True)
class HistogramWindow:
    """StereoSpike's input (§5.3): per camera a 2-channel count histogram of the window, cameras concatenated.

    Returns ``[1, 2 * cameras, H, W]`` float32 (one time step).
    """

    sensor_size: tuple[int, int, int] = MVSEC_SIZE

    def __call__(self, cameras: list[np.ndarray], start_us: int, end_us: int) -> np.ndarray:
        hists = [to_stereospike_histogram(ev, self.sensor_size, end_us, end_us - start_us) for ev in cameras]
        return np.concatenate(hists, axis=0)[np.newaxis]


@dataclass(frozen=True)
class DepthSample:
    """One depth map of a sequence: files, its index in ``depth_image_rect`` and the event window."""

    data_path: Path
    gt_path: Path
    index: int
    start_us: int
    end_us: int


class MVSECDepth(torch.utils.data.Dataset):
    """``(representation, depth)`` pairs of MVSEC or the synthetic depth set.

    Args:
        root: folder holding ``<seq>_data.hdf5`` and ``<seq>_gt.hdf5`` (also searched one level down,
            e.g. ``<root>/indoor_flying/indoor_flying1_data.hdf5``).
        split: ``"train"``, ``"test"``, or ``"all"`` (synthetic only: every sequence of the folder).
        scenario: a key of :data:`SCENARIOS` or ``"synthetic"``.
        transform: ``(events per camera, start_us, end_us) -> array`` (:class:`CumulativeWindow`,
            :class:`HistogramWindow`); cached under ``cache_dir`` when given. None returns the events.
        cameras: ``("left",)`` or ``("left", "right")``; the depth is always the left camera's.
        window_us: events of ``[t_depth - window_us, t_depth)`` form a sample (50 ms, the 20 Hz period).
        cache_dir: folder of the representation cache.

    Returns (``__getitem__``):
        ``(x, depth)``: the representation (or the list of event arrays) and the depth ``[H, W]``
        float32 metres, clipped to ``d_max``, NaN where unknown.

    Example:
        >>> ds = MVSECDepth("recordings/mvsec_depth", "train", scenario="synthetic",
        ...                 transform=CumulativeWindow(5))
        >>> x, depth = ds[0]   # [5, 2, 260, 346], [260, 346]
    """

    sensor_size: ClassVar[tuple[int, int, int]] = MVSEC_SIZE

    def __init__(self, root: os.PathLike | str, split: str = "train", *, scenario: str = "outdoor",
                 transform: Callable | None = None, cameras: tuple[str, ...] = ("left",), window_us: int = 50_000,
                 cache_dir: os.PathLike | str | None = None):
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        if scenario != "synthetic" and scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; one of {sorted(SCENARIOS) + ['synthetic']}")
        if split == "all" and scenario != "synthetic":
            raise ValueError(f"split 'all' is for the synthetic scenario; MVSEC's {scenario!r} has train and test")
        if tuple(cameras) not in (("left",), ("left", "right")):
            raise ValueError(f"cameras must be ('left',) or ('left', 'right'), got {cameras!r}")
        if not int(window_us) > 0:
            raise ValueError(f"window_us must be > 0, got {window_us}")
        self.root, self.split, self.scenario = Path(root), split, scenario
        self.transform, self.cameras, self.window_us = transform, tuple(cameras), int(window_us)
        if not self.root.is_dir():
            raise FileNotFoundError(f"MVSECDepth: {self.root} is not a folder")
        self.d_max = SYNTHETIC_D_MAX if scenario == "synthetic" else SCENARIOS[scenario].d_max
        self.samples: list[DepthSample] = []
        for name, frames in self._sequences():
            self.samples += self._sequence_samples(name, frames)
        if not self.samples:
            raise FileNotFoundError(f"MVSECDepth: no {split} depth maps with events under {self.root}")
        self._cache = None
        if transform is not None:
            files = [p for s in self.samples for p in (s.data_path, s.gt_path)]
            samples = tuple((s.data_path.name, s.index, s.start_us, s.end_us) for s in self.samples)
            self._cache = open_cache(cache_dir, "MVSECDepth", transform, files=files,
                                     parts=(str(self.root.resolve()), split, scenario, self.cameras, self.window_us,
                                            samples))

    # --- discovery ---------------------------------------------------------------------------
    def _find(self, name: str) -> tuple[Path, Path]:
        for folder in (self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())):
            data, gt = folder / f"{name}_data.hdf5", folder / f"{name}_gt.hdf5"
            if data.exists() and gt.exists():
                return data, gt
        raise FileNotFoundError(f"MVSECDepth: {name}_data.hdf5 and {name}_gt.hdf5 not found under {self.root}")

    def _sequences(self) -> list[tuple[str, tuple[int, int] | None]]:
        if self.scenario != "synthetic":
            table = SCENARIOS[self.scenario]
            return list(table.train if self.split == "train" else table.test)
        names = sorted(p.name[:-len("_gt.hdf5")] for p in self.root.glob("*_gt.hdf5")
                       if p.with_name(p.name.replace("_gt.hdf5", "_data.hdf5")).exists())
        if not names:
            raise FileNotFoundError(f"MVSECDepth: no <seq>_data.hdf5 + <seq>_gt.hdf5 pairs in {self.root}")
        if self.split == "all":
            return [(n, None) for n in names]
        if len(names) > 1:
            chosen = names[:-1] if self.split == "train" else names[-1:]
            return [(n, None) for n in chosen]
        with h5py.File(self._find(names[0])[1], "r") as f:
            count = len(f["davis/left/depth_image_rect_ts"])
        cut = math.ceil(SYNTHETIC_TRAIN_FRACTION * count)
        return [(names[0], (0, cut) if self.split == "train" else (cut, count))]

    def _sequence_samples(self, name: str, frames: tuple[int, int] | None) -> list[DepthSample]:
        """Depth maps of a sequence (in ``frames``) whose window overlaps the left camera's events."""
        data_path, gt_path = self._find(name)
        with h5py.File(gt_path, "r") as f:
            times_s = np.asarray(f["davis/left/depth_image_rect_ts"], dtype=np.float64)
        with h5py.File(data_path, "r") as f:
            events = f["davis/left/events"]
            if len(events) == 0:
                return []
            first_us, last_us = (int(np.rint(events[i, 2] * 1e6)) for i in (0, len(events) - 1))
        first, stop = (0, len(times_s)) if frames is None else frames
        samples = []
        for index in range(first, min(stop, len(times_s))):
            end = int(np.rint(times_s[index] * 1e6))
            start = end - self.window_us
            if end > first_us and start <= last_us:
                samples.append(DepthSample(data_path, gt_path, index, start, end))
        return samples

    # --- access ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def events(self, index: int) -> list[np.ndarray]:
        """The window's events of each camera (EVENT_DTYPE, time-sorted)."""
        sample = self.samples[index]
        out = []
        for camera in self.cameras:
            with open_events(sample.data_path, format="mvsec", camera=camera) as reader:
                out.append(concat_events(list(iter_range(reader, sample.start_us, sample.end_us))))
        return out

    def depth(self, index: int) -> np.ndarray:
        """The left depth map ``[H, W]``, float32 metres clipped to ``d_max``, NaN where unknown."""
        sample = self.samples[index]
        with h5py.File(sample.gt_path, "r") as f:
            return clean_depth(f["davis/left/depth_image_rect"][sample.index], self.d_max)

    def __getitem__(self, index: int):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        x = self.events(index) if self.transform is None else self.representation(index)
        return x, self.depth(index)

    def representation(self, index: int) -> np.ndarray:
        """``transform`` of sample ``index``'s window, from the cache when it holds it (stored there if not)."""
        sample = self.samples[index]
        if self._cache is not None:
            return self._cache.get(index, lambda: self.transform(self.events(index), sample.start_us, sample.end_us))
        return self.transform(self.events(index), sample.start_us, sample.end_us)
