"""Base class of every format writer: append event batches, close, use as a context manager."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from evstream.events import EVENT_DTYPE, as_events, check_sensor_size


class EventWriter(ABC):
    """A file being written batch after batch. Batches must be time-sorted, in EVENT_DTYPE.

    A format module implements :meth:`_write` (one validated batch) and :meth:`_finish`.
    """

    format: ClassVar[str] = ""

    def __init__(self, path: os.PathLike | str, sensor_size):
        self.path = Path(path)
        self.sensor_size = check_sensor_size(sensor_size)
        self._last_t = np.iinfo(np.int64).min
        self._closed = False

    def write(self, events: np.ndarray) -> None:
        """Append a batch of events (x < W, y < H, time not going backwards)."""
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        events = as_events(np.asarray(events))
        if len(events) == 0:
            return
        width, height = self.sensor_size[:2]
        if events["x"].max() >= width or events["y"].max() >= height:
            raise ValueError(f"{self.path}: events outside the {width}x{height} sensor")
        t = events["t"]
        if t[0] < self._last_t or np.any(t[1:] < t[:-1]):
            raise ValueError(f"{self.path}: events must be written in time order")
        self._last_t = int(t[-1])
        self._write(np.ascontiguousarray(events, dtype=EVENT_DTYPE))

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self._closed:
            self._closed = True
            self._finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abstractmethod
    def _write(self, events: np.ndarray) -> None:
        """Append one validated, contiguous, time-sorted batch to the file."""

    @abstractmethod
    def _finish(self) -> None:
        """Flush and close the file."""
