"""Base of the event classification datasets: samples, decoding, cached representations."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from evstream.datasets.cache import open_cache
from evstream.events import concat_events
from evstream.io import open_events
from evstream.io.convert import iter_range


@dataclass(frozen=True)
class Sample:
    """One labelled sample: a file, its class, and the time range of its events (None = whole file)."""

    path: Path
    label: int
    start_us: int | None = None
    end_us: int | None = None


class EventClassificationDataset(torch.utils.data.Dataset, ABC):
    """A torch ``Dataset`` of ``(representation, label)`` from event files in a dataset's layout.

    Args:
        root: the dataset folder, in the layout the subclass documents.
        split: ``"train"`` or ``"test"``.
        transform: events -> array (e.g. a TA-SNN frame stack); its result is cached when
            ``cache_dir`` is set, so it must be deterministic, and its ``repr`` must name its
            parameters (a frozen dataclass; a plain function is not cached).
        sample_transform: applied after the cache on every access (random crops, augmentation).
        cache_dir: folder for the representation cache.
    """

    sensor_size: ClassVar[tuple[int, int, int]]
    classes: ClassVar[tuple[str, ...]]
    layout: ClassVar[str]  # shown in the error when the root does not hold the expected files

    def __init__(self, root: os.PathLike | str, split: str = "train", *, transform: Callable | None = None,
                 sample_transform: Callable | None = None, cache_dir: os.PathLike | str | None = None):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.root, self.split = Path(root), split
        self.transform, self.sample_transform = transform, sample_transform
        if not self.root.is_dir():
            raise FileNotFoundError(f"{type(self).__name__}: {self.root} is not a folder; expected:\n{self.layout}")
        self.samples: list[Sample] = self._find_samples()
        if not self.samples:
            raise FileNotFoundError(f"{type(self).__name__}: no {split} samples under {self.root}; "
                                    f"expected:\n{self.layout}")
        self._cache = None
        if transform is not None:
            samples = tuple((os.fspath(s.path), s.label, s.start_us, s.end_us) for s in self.samples)
            self._cache = open_cache(cache_dir, type(self).__name__, transform, files=self._source_files(),
                                     parts=(str(self.root.resolve()), split, samples, *self._cache_parts()))

    @abstractmethod
    def _find_samples(self) -> list[Sample]:
        """The samples of ``self.split`` under ``self.root``, in a deterministic order."""

    def _source_files(self) -> list[Path]:
        """Every file the split's samples come from (part of the cache key); the sample files by default."""
        return [s.path for s in self.samples]

    def _reader_options(self) -> dict:
        return {}

    def _cache_parts(self) -> tuple:
        """The dataset's options that change its events (part of the cache key; none unless a dataset has some)."""
        return ()

    def _convert(self, events: np.ndarray) -> np.ndarray:
        """Map the file's events to the dataset's convention (identity unless a dataset says otherwise)."""
        return events

    def events(self, index: int) -> np.ndarray:
        """The decoded events of sample ``index`` (EVENT_DTYPE, the dataset's axis convention)."""
        sample = self.samples[index]
        with open_events(sample.path, **self._reader_options()) as reader:
            return self._convert(concat_events(list(iter_range(reader, sample.start_us, sample.end_us))))

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def representation(self, index: int) -> np.ndarray:
        """``transform`` of sample ``index``'s events, from the cache when it holds them (stored there if not)."""
        if self._cache is not None:
            return self._cache.get(index, lambda: self.transform(self.events(index)))
        return self.transform(self.events(index))

    def __getitem__(self, index: int):
        data = self.events(index) if self.transform is None else self.representation(index)
        if self.sample_transform is not None:
            data = self.sample_transform(data)
        return data, self.samples[index].label
