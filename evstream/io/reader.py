"""Base class of every format reader: bounded-memory streaming by count or time, and seek.

A format module subclasses :class:`EventReader` and implements only :meth:`_blocks`
(decoded events in file order, a bounded block at a time) and, when the format has an
index, :meth:`_blocks_from`. Everything a user calls (``chunks``, ``time_windows``,
``seek``, ``read``) is written once here, and every block passes the same checks:
coordinates inside the sensor, time never going backwards.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from evstream._jit import kernel
from evstream._parallel import decode_threads
from evstream.events import EVENT_DTYPE, EventFileError, concat_events

BLOCK_EVENTS = 1 << 20
"""Upper bound of events a reader decodes at once (16 MiB of events): memory is bounded by it."""
MAX_SENSOR_SIDE = 0xFFFF
"""Largest sensor width or height a file may state (event coordinates are uint16)."""


def sensor_side(value, field: str) -> int:
    """A width or height read from a file, as an int in 1..MAX_SENSOR_SIDE.

    Raises ValueError naming ``field`` for anything else (negative, zero, huge, not a whole
    number), so that no number from a file reaches a numba kernel it cannot type.
    """
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= MAX_SENSOR_SIDE:
        return int(text)
    shown = text if len(text) <= 24 else text[:21] + "..."
    raise ValueError(f"{field} {shown!r} is not a sensor size (a whole number in 1..{MAX_SENSOR_SIDE})")


class EventReader(ABC):
    """A file of events opened for streaming. Use as a context manager.

    Attributes:
        path: the file.
        format: short format name (``"evt3"``, ``"aedat4"``, ...).
        sensor_size: ``(W, H, 2)``.
        notes: what the reader inferred because the file does not say it (e.g. an AEDAT 2.0
            chip), one sentence each, for ``info`` and ``replay`` to show.
    """

    format: ClassVar[str] = ""

    def __init__(self, path: os.PathLike | str, *, strict: bool = False, threads: int | None = None):
        self.path = Path(path)
        self.strict = strict
        self._threads = decode_threads(threads)
        self.sensor_size: tuple[int, int, int] = (0, 0, 2)
        self.notes: list[str] = []
        self._seek_us: int | None = None

    # --- what a format implements -------------------------------------------------------
    @abstractmethod
    def _blocks(self) -> Iterator[tuple[np.ndarray, int]]:
        """Yield ``(events, byte_offset)`` in file order, each block at most ~BLOCK_EVENTS long."""

    def _blocks_from(self, t_us: int) -> Iterator[tuple[np.ndarray, int]]:
        """Like :meth:`_blocks`, but may skip blocks that end before ``t_us`` (formats with an index)."""
        return self._blocks()

    def close(self) -> None:
        """Release the file (formats holding a handle override this)."""

    # --- public API ------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, format={self.format!r}, sensor_size={self.sensor_size})"

    def seek(self, t_us: int) -> None:
        """Make the next read start at the first event whose time is at or after ``t_us``."""
        self._seek_us = int(t_us)

    def rewind(self) -> None:
        """Make the next read start at the first event of the file."""
        self._seek_us = None

    def __iter__(self) -> Iterator[np.ndarray]:
        """Checked, non-empty event blocks from the current position (block sizes are the format's)."""
        last_t = np.iinfo(np.int64).min
        start = self._seek_us
        blocks = self._blocks() if start is None else self._blocks_from(start)
        for events, offset in blocks:
            if start is not None:
                if len(events) == 0 or events["t"][-1] < start:
                    continue
                events = events[np.searchsorted(events["t"], start, side="left"):]
                start = None
            if len(events) == 0:
                continue
            self._check(events, offset, last_t)
            last_t = int(events["t"][-1])
            yield events

    def read(self) -> np.ndarray:
        """All events from the current position to the end of the file."""
        return concat_events(list(self))

    def chunks(self, n: int) -> Iterator[np.ndarray]:
        """Consecutive arrays of exactly ``n`` events (the last one may be shorter)."""
        if n <= 0:
            raise ValueError(f"chunks: n must be positive, got {n}")
        pending: list[np.ndarray] = []
        have = 0
        for block in self:
            while have + len(block) >= n:
                take = n - have
                pending.append(block[:take])
                yield concat_events(pending)
                block = block[take:]
                pending, have = [], 0
            if len(block):
                pending.append(block)
                have += len(block)
        if have:
            yield concat_events(pending)

    def time_windows(self, window_us: int) -> Iterator[np.ndarray]:
        """Consecutive windows ``[t0 + k*window_us, t0 + (k+1)*window_us)``, empty ones included.

        ``t0`` is the seek position when one is set, else the first event's time. The last
        window is the one holding the last event.
        """
        window_us = int(window_us)
        if window_us <= 0:
            raise ValueError(f"time_windows: window_us must be positive, got {window_us}")
        pending: list[np.ndarray] = []
        edge = None  # end of the window being filled
        for block in self:
            t = block["t"]
            if edge is None:
                edge = (int(t[0]) if self._seek_us is None else self._seek_us) + window_us
            n_edges = (int(t[-1]) - edge) // window_us + 1 if t[-1] >= edge else 0
            cuts = np.searchsorted(t, edge + window_us * np.arange(n_edges, dtype=np.int64), side="left")
            begin = 0
            for cut in cuts:
                pending.append(block[begin:cut])
                yield concat_events(pending)
                pending, begin = [], cut
            pending.append(block[begin:])
            edge += window_us * n_edges
        if pending:
            yield concat_events(pending)

    # --- checks ----------------------------------------------------------------------------
    def _check(self, events: np.ndarray, offset: int, last_t: int) -> None:
        """Reject out-of-sensor coordinates and backwards time, naming the block's byte offset."""
        if events.dtype != EVENT_DTYPE:
            raise TypeError(f"{type(self).__name__} produced dtype {events.dtype}, expected EVENT_DTYPE")
        reason = bad_event(events, self.sensor_size, last_t, "the block read from here")
        if reason is not None:
            raise EventFileError(self.path, reason, offset)


def bad_event(events: np.ndarray, sensor_size, last_t: int, where: str) -> str | None:
    """What is wrong with the first event outside the sensor or earlier than its predecessor
    (``last_t`` precedes the first), naming its index in ``where``; None when every event is fine."""
    width, height = sensor_size[:2]
    bad, kind = _first_bad_event(events, width, height, last_t)
    if kind == 1:
        e = events[bad]
        return (f"event ({e['x']}, {e['y']}) at t={e['t']} us is outside the {width}x{height} sensor "
                f"(event {bad} of {where})")
    if kind == 2:
        before = last_t if bad == 0 else int(events["t"][bad - 1])
        return f"time goes backwards: event {bad} of {where} has t={events['t'][bad]} us after t={before} us"
    return None


@kernel
def _first_bad_event(events, width, height, last_t):
    """(index, kind) of the first event outside the sensor (kind 1) or earlier than its
    predecessor (kind 2); (-1, 0) when every event is fine. One pass, for every block read."""
    prev = last_t
    for i in range(events.shape[0]):
        if events[i]["x"] >= width or events[i]["y"] >= height:
            return i, 1
        t = events[i]["t"]
        if t < prev:
            return i, 2
        prev = t
    return -1, 0
