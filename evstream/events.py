"""The one event record of evstream, its geometry and the errors every reader raises.

A batch of events is a numpy structured array of :data:`EVENT_DTYPE` (tonic's and
Metavision's field names): ``x, y`` uint16 pixel coordinates, ``t`` int64 microseconds,
``p`` int8 polarity in {0, 1} (OFF, ON). Geometry is tonic's ``sensor_size = (W, H, 2)``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])
"""Structured dtype of an event batch: x, y uint16; t int64 (microseconds); p int8 (0 OFF, 1 ON)."""


def empty_events(n: int = 0) -> np.ndarray:
    """An uninitialised event array of length ``n`` (``n = 0`` gives a valid empty batch)."""
    return np.empty(n, dtype=EVENT_DTYPE)


def concat_events(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate event arrays as raw bytes (numpy's field-by-field copy of the packed dtype is ~10x slower)."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return empty_events()
    return np.concatenate([np.ascontiguousarray(part).view(np.uint8) for part in parts]).view(EVENT_DTYPE)


def make_events(x, y, t, p) -> np.ndarray:
    """Build an event array from four equally long columns (copied into :data:`EVENT_DTYPE`)."""
    columns = [np.asarray(c) for c in (x, y, t, p)]
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError(f"make_events: columns have different lengths {[len(c) for c in columns]}")
    events = empty_events(n)
    events["x"], events["y"], events["t"], events["p"] = columns
    return events


def as_events(array: np.ndarray) -> np.ndarray:
    """Convert any structured array with fields x, y, t, p (tonic's, a peer's) to :data:`EVENT_DTYPE`.

    Returns the input unchanged when it already has the dtype. Boolean polarity becomes 0/1,
    signed polarity (-1/+1, as in MVSEC) becomes 0/1.
    """
    if array.dtype == EVENT_DTYPE:
        return array
    names = array.dtype.names or ()
    if not {"x", "y", "t", "p"} <= set(names):
        raise ValueError(f"as_events: need fields x, y, t, p, got {names}")
    p = np.asarray(array["p"])
    if p.dtype.kind in "if" and p.size and p.min() < 0:
        p = p > 0
    return make_events(array["x"], array["y"], array["t"], p.astype(np.int8))


def check_sensor_size(sensor_size) -> tuple[int, int, int]:
    """Validate and normalise a ``(W, H, P)`` tuple."""
    size = tuple(int(v) for v in sensor_size)
    if len(size) != 3 or min(size) <= 0:
        raise ValueError(f"sensor_size must be (W, H, P) with positive entries, got {sensor_size!r}")
    return size


class EventFileError(ValueError):
    """A file that cannot be decoded: names the file, the byte offset and the reason."""

    def __init__(self, path: os.PathLike | str, reason: str, offset: int | None = None):
        self.path = str(path)
        self.offset = offset
        self.reason = reason
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"{self.path}{where}: {reason}")


class TruncatedFileWarning(UserWarning):
    """A file ends inside a record or packet; every complete event before the cut was returned."""

    def __init__(self, path: os.PathLike | str, offset: int, reason: str = "file is cut short"):
        self.path = str(path)
        self.offset = offset
        super().__init__(f"{self.path} at byte offset {offset}: {reason}")


def report_truncation(path, offset: int, reason: str, strict: bool) -> None:
    """Raise :class:`EventFileError` when ``strict``, else warn with :class:`TruncatedFileWarning`."""
    if strict:
        raise EventFileError(path, reason, offset)
    warnings.warn(TruncatedFileWarning(path, offset, reason), stacklevel=3)
