"""Replay of a recorded event file paced to its own clock (real time x ``speed``), with seek and pause."""

from __future__ import annotations

import os
import threading
import time

from evstream.io import open_events
from evstream.live.source import EventSource

_SLEEP_SLICE_S = 0.02  # longest single sleep: controls react within 20 ms
_SCAN_LIMIT_BYTES = 256 << 20  # files up to this size are scanned once for their time range (seek bar)


def _time_range(reader) -> tuple[int, int] | None:
    """(first, last) event time of a file, from one streaming pass; None for an empty file."""
    first = last = None
    for block in reader:
        first = int(block["t"][0]) if first is None else first
        last = int(block["t"][-1])
    reader.rewind()
    return None if first is None else (first, last)


class FileReplaySource(EventSource):
    """Stream any readable event file in ``batch_us`` batches, each released when the wall clock
    reaches its end time (divided by ``speed``). Sleeping to the event clock was accurate to
    ~0.1 ms median here (LIVE.md).

    Args:
        path: an event file of any format :func:`evstream.open_events` reads.
        speed: replay speed factor (1 = real time; ``float("inf")`` = as fast as possible).
        loop: start again at the end.
        batch_us: event time per emitted batch.
    """

    finite = True

    def __init__(self, path: os.PathLike | str, *, speed: float = 1.0, loop: bool = False, batch_us: int = 1000,
                 queue_size: int = 256, **reader_options):
        super().__init__(queue_size)
        self.reader = open_events(path, **reader_options)
        self.sensor_size = self.reader.sensor_size
        self.name = f"replay:{os.path.basename(path)}"
        self.loop, self.batch_us = loop, int(batch_us)
        self._speed = float(speed)
        self.lossless = self._speed == float("inf")  # unpaced replay feeds offline work: never drop
        self._lock = threading.Lock()
        self._seek_to: int | None = None
        self._paused = False
        self._reanchor = False
        self.position_us: int | None = None
        self.time_range = _time_range(self.reader) if os.path.getsize(path) <= _SCAN_LIMIT_BYTES else None

    # --- controls (any thread) ------------------------------------------------------------
    def seek(self, t_us: int) -> None:
        with self._lock:
            self._seek_to = int(t_us)

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        with self._lock:
            self._speed, self._reanchor = float(speed), True

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._paused, self._reanchor = bool(paused), True

    @property
    def speed(self) -> float:
        return self._speed

    # --- acquisition thread ---------------------------------------------------------------
    def _run(self) -> None:
        start_at: int | None = None
        while not self.stopping:
            if start_at is None:
                self.reader.rewind()
            else:
                self.reader.seek(start_at)
            restart = self._play(start_at)
            if restart is not None:
                start_at = restart
            elif self.loop:
                start_at = None
            else:
                break
        self.reader.close()

    def _play(self, start_at: int | None) -> int | None:
        """Emit batches until the end (None) or a seek request (its target time)."""
        anchor_wall = anchor_t = t0 = None
        for k, window in enumerate(self.reader.time_windows(self.batch_us)):
            if t0 is None:
                t0 = int(window["t"][0]) if start_at is None else start_at
            t_end = t0 + (k + 1) * self.batch_us
            if anchor_wall is None:
                anchor_wall, anchor_t = time.monotonic(), t_end - self.batch_us
            while True:  # wait for the wall clock, reacting to stop / seek / pause / speed
                if self.stopping:
                    return None
                with self._lock:
                    seek, paused, reanchor, speed = self._seek_to, self._paused, self._reanchor, self._speed
                    self._seek_to, self._reanchor = None, False
                if seek is not None:
                    return seek
                if reanchor or paused:
                    anchor_wall, anchor_t = time.monotonic(), self.position_us if self.position_us else anchor_t
                if paused:
                    time.sleep(_SLEEP_SLICE_S)
                    continue
                wait = anchor_wall + (t_end - anchor_t) / speed / 1e6 - time.monotonic()
                if wait <= 0:
                    break
                time.sleep(min(wait, _SLEEP_SLICE_S))
            self.position_us = t_end
            self._emit(window, t_end)
        return None
