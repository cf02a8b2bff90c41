"""Prophesee Gen1 Automotive detection in its own layout, sampled as SpikeYOLO does (models.md §1.4, §7).

Layout::

    <root>/{train,val,test}/<name>_td.dat     (DAT events, 304x240)
    <root>/{train,val,test}/<name>_bbox.npy   (boxes: ts or t, x, y, w, h, class_id,
                                               confidence or class_confidence, track_id)

One sample per distinct label timestamp t_b of a recording: the events of ``[t_b - 250 ms, t_b)`` in
T bins of last-event-polarity images, letterboxed to 320x256 (:func:`evstream.ops.to_spikeyolo_input`).
Its boxes follow ``pre_gen1.py``: the last box of each ``track_id``, clamped to the sensor, zero-size
boxes dropped; timestamps left without a box give no sample. (``pre_gen1.py`` clamps x, y, w and h
separately, which leaves boxes crossing the right or bottom edge unclipped; here the corners are
clipped, the evident intent.) The frames are cached per sample when ``cache_dir`` is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evstream.datasets.cache import open_cache
from evstream.events import concat_events
from evstream.io import open_events
from evstream.io.convert import iter_range
from evstream.ops.spikeyolo_input import Letterbox, letterbox_geometry, resize_mode, to_spikeyolo_input
from evstream.sim.road import CLASSES, ROAD_SIZE

__all__ = ["GEN1_CLASSES", "GEN1_SENSOR_SIZE", "Gen1Detection", "Gen1Sample", "collate_gen1", "convert_boxes",
           "load_boxes"]

GEN1_SENSOR_SIZE = ROAD_SIZE
GEN1_CLASSES = CLASSES
LAYOUT = ("  <root>/{train,val,test}/<name>_td.dat    (DAT events)\n"
          "  <root>/{train,val,test}/<name>_bbox.npy  (ts|t, x, y, w, h, class_id, confidence|class_confidence, "
          "track_id)")


def load_boxes(path: os.PathLike | str) -> np.ndarray:
    """A Gen1 ``*_bbox.npy`` with the toolbox's field names (``ts`` -> ``t``, ``confidence`` ->
    ``class_confidence``), sorted by time (stable)."""
    boxes = np.load(path)
    names = list(boxes.dtype.names or ())
    missing = {"x", "y", "w", "h", "class_id"} - set(names)
    if missing or not {"t", "ts"} & set(names):
        raise ValueError(f"{path}: not a Gen1 box file (fields {names})")
    renamed = {"ts": "t", "confidence": "class_confidence"}
    boxes = boxes.copy()
    boxes.dtype.names = [renamed.get(n, n) for n in names]
    return boxes[np.argsort(boxes["t"], kind="stable")]


def convert_boxes(boxes: np.ndarray, sensor_size=GEN1_SENSOR_SIZE) -> np.ndarray:
    """Boxes of one timestamp -> ``[N, 5]`` float32 rows (class, x1, y1, x2, y2) in sensor pixels (xyxy).

    The last box of each track is kept (in file order), clipped to the sensor; zero-size boxes are dropped.
    """
    if "track_id" in boxes.dtype.names:
        track = boxes["track_id"][::-1]
        _, first_reversed = np.unique(track, return_index=True)
        boxes = boxes[np.sort(len(boxes) - 1 - first_reversed)]
    width, height = sensor_size[:2]
    x1 = np.clip(boxes["x"].astype(np.float64), 0, width)
    y1 = np.clip(boxes["y"].astype(np.float64), 0, height)
    x2 = np.clip(boxes["x"].astype(np.float64) + boxes["w"], 0, width)
    y2 = np.clip(boxes["y"].astype(np.float64) + boxes["h"], 0, height)
    rows = np.stack([boxes["class_id"].astype(np.float64), x1, y1, x2, y2], 1).astype(np.float32)
    return rows[(x2 > x1) & (y2 > y1)].reshape(-1, 5)


@dataclass(frozen=True)
class Gen1Sample:
    """One sample: the recording, its label time t_b (µs) and its boxes ``[N, 5]`` (class, xyxy sensor px)."""

    td_path: Path
    label_time: int
    boxes: np.ndarray


class Gen1Detection(torch.utils.data.Dataset):
    """Gen1 detection samples ``(frames, targets)``.

    Args:
        root: dataset folder (layout above). split: ``"train"``, ``"val"`` or ``"test"``.
        n_time_bins: T (2 as the released SpikeYOLO data). window_us: 250 ms before each label.
        imgsz: long side of the network input (320 -> 320x256). cache_dir: frame cache folder.
        resize: ``"linear"`` (the official ``load_image``) or ``"area"`` (:func:`evstream.ops.to_spikeyolo_input`).

    Shape:
        frames ``[T, 3, H, W]`` uint8 (scale by 1/255); targets ``[N, 5]`` float32 (class, x1, y1,
        x2, y2) in network-input pixels (xyxy).
    """

    sensor_size = GEN1_SENSOR_SIZE
    classes = GEN1_CLASSES

    def __init__(self, root: os.PathLike | str, split: str = "train", *, n_time_bins: int = 2,
                 window_us: int = 250_000, imgsz: int = 320, cache_dir: os.PathLike | str | None = None,
                 resize: str = "linear"):
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if n_time_bins < 1 or window_us < n_time_bins:
            raise ValueError(f"need n_time_bins >= 1 and window_us >= n_time_bins, got {n_time_bins}, {window_us}")
        self.root, self.split = Path(root), split
        self.n_time_bins, self.window_us, self.imgsz = int(n_time_bins), int(window_us), int(imgsz)
        resize_mode(resize)
        self.resize = resize
        self.letterbox: Letterbox = letterbox_geometry(self.sensor_size, self.imgsz)
        folder = self.root / split
        if not folder.is_dir():
            raise FileNotFoundError(f"Gen1Detection: {folder} is not a folder; expected:\n{LAYOUT}")
        self.recordings = sorted(folder.glob("*_td.dat"))
        self.samples: list[Gen1Sample] = []
        for td in self.recordings:
            bbox = td.with_name(td.name[:-len("_td.dat")] + "_bbox.npy")
            if not bbox.exists():
                raise FileNotFoundError(f"Gen1Detection: {bbox.name} is missing for {td.name}; expected:\n{LAYOUT}")
            boxes = load_boxes(bbox)
            for t in np.unique(boxes["t"]):
                rows = convert_boxes(boxes[boxes["t"] == t], self.sensor_size)
                if len(rows):
                    self.samples.append(Gen1Sample(td, int(t), rows))
        if not self.samples:
            raise FileNotFoundError(f"Gen1Detection: no {split} samples under {self.root}; expected:\n{LAYOUT}")
        files = [p for td in self.recordings for p in (td, td.with_name(td.name[:-len("_td.dat")] + "_bbox.npy"))]
        samples = tuple((s.td_path.name, s.label_time) for s in self.samples)
        self._cache = open_cache(cache_dir, type(self).__name__, None, files=files,
                                 parts=(str(self.root.resolve()), split, self.n_time_bins, self.window_us, self.imgsz,
                                        samples, self.resize))

    def ground_truth(self, td_path: Path) -> np.ndarray:
        """All boxes of a recording (toolbox field names), for the Prophesee protocol."""
        return load_boxes(td_path.with_name(td_path.name[:-len("_td.dat")] + "_bbox.npy"))

    def events(self, index: int) -> np.ndarray:
        """The events of ``[t_b - window_us, t_b)`` of sample ``index``."""
        sample = self.samples[index]
        start = max(sample.label_time - self.window_us, 0)
        with open_events(sample.td_path) as reader:
            return concat_events(list(iter_range(reader, start, sample.label_time)))

    def representation(self, index: int) -> np.ndarray:
        """The network input of sample ``index``: ``[T, 3, H, W]`` uint8 (cached when ``cache_dir`` is set)."""
        def compute():
            return to_spikeyolo_input(self.events(index), self.sensor_size, self.samples[index].label_time,
                                      self.n_time_bins, self.window_us, self.imgsz, resize=self.resize)[0]
        return self._cache.get(index, compute) if self._cache is not None else compute()

    def targets(self, index: int) -> np.ndarray:
        """Boxes of sample ``index`` in network-input pixels: ``[N, 5]`` (class, x1, y1, x2, y2)."""
        rows = self.samples[index].boxes.copy()
        rows[:, 1:] = self.letterbox.boxes_to_image(rows[:, 1:])
        return rows

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.representation(index), self.targets(index)


def collate_gen1(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack samples: frames ``[T, B, 3, H, W]`` float in [0, 1], targets ``[N, 6]`` (image, class, xyxy)."""
    frames = torch.from_numpy(np.stack([f for f, _ in batch], 1)).float() / 255.0
    rows = [np.concatenate([np.full((len(t), 1), i, np.float32), t], 1) for i, (_, t) in enumerate(batch)]
    return frames, torch.from_numpy(np.concatenate(rows).reshape(-1, 6))
