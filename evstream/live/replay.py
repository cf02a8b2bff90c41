"""Replay of recorded event files paced to their own clock (real time x ``speed``), with seek and pause.

A folder replays as a playlist: every event file under it in sorted order, each a pass of its own
whose batches carry the file's folder name as the ground-truth label (N-MNIST's ``Test/<digit>/``,
the classification data sets' class folders).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from evstream.errors import UserError
from evstream.io import open_events
from evstream.live.source import EventSource

_SLEEP_SLICE_S = 0.02  # longest single sleep: controls react within 20 ms
_SCAN_LIMIT_BYTES = 256 << 20  # files up to this size are scanned once for their time range (seek bar)


EVENT_SUFFIXES = (".aedat", ".aedat4", ".dat", ".raw", ".bin", ".h5", ".hdf5", ".npz")
"""Suffixes a playlist folder's event files have."""
_SENSOR_PROBE_FILES = 64  # a playlist's sensor: the largest of its first files' sizes


def playlist(path: os.PathLike | str) -> list[Path]:
    """The event files of a folder (recursively, sorted), or ``[path]`` for a file."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in EVENT_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"{path}: a folder with no event files ({', '.join(EVENT_SUFFIXES)})")
    return files


def _time_range(reader) -> tuple[int, int] | None:
    """(first, last) event time of a file, from one streaming pass; None for an empty file."""
    first = last = None
    for block in reader:
        first = int(block["t"][0]) if first is None else first
        last = int(block["t"][-1])
    reader.rewind()
    return None if first is None else (first, last)


class FileReplaySource(EventSource):
    """Stream any readable event file (or a folder of them) in ``batch_us`` batches, each released
    when the wall clock reaches its end time (divided by ``speed``). Sleeping to the event clock was
    accurate to ~0.1 ms median here (LIVE.md).

    Args:
        path: an event file of any format :func:`evstream.open_events` reads, or a folder played as
            a playlist (module docstring); its sensor is the largest of its first files' unless
            ``sensor_size`` is given.
        speed: replay speed factor (1 = real time; ``float("inf")`` = as fast as possible).
        loop: start again at the end.
        hold_at_end: without ``loop``, stay at the end (:attr:`ended`) until a :meth:`seek` plays on,
            as a viewer does; otherwise the source ends with the recording.
        batch_us: event time per emitted batch.
        reader_options: passed to :func:`evstream.open_events` (``chip``, ``sensor_size``, ...).

    Every pass over a file ends with a batch marked ``pass_end``, so the pipeline processes the
    recording's last partial window before the next file or a loop starts. ``time_range``,
    ``label`` and ``path`` describe the file playing.
    """

    finite = True

    def __init__(self, path: os.PathLike | str, *, speed: float = 1.0, loop: bool = False, hold_at_end: bool = False,
                 batch_us: int = 1000, queue_size: int = 256, **reader_options):
        super().__init__(queue_size)
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.files = playlist(path)
        self.is_playlist = Path(path).is_dir()
        self.reader_options = reader_options
        self.reader = open_events(self.files[0], **reader_options)
        self.sensor_size = self.reader.sensor_size
        if self.is_playlist and "sensor_size" not in reader_options:
            sizes = [self.sensor_size] + [open_events(f, **reader_options).sensor_size
                                          for f in self.files[1:_SENSOR_PROBE_FILES]]
            self.sensor_size = (max(s[0] for s in sizes), max(s[1] for s in sizes), 2)
        self.path = os.fspath(self.files[0])
        self.label: str | None = self.files[0].parent.name if self.is_playlist else None
        self.name = f"replay:{os.path.basename(os.path.normpath(path))}"
        self.loop, self.hold_at_end, self.batch_us = loop, hold_at_end, int(batch_us)
        self.loops = 0  # passes completed
        self.ended = False  # holding at the end of the recording
        self._speed = float(speed)
        self.lossless = self._speed == float("inf")  # unpaced replay feeds offline work: never drop
        self._lock = threading.Lock()
        self._seek_to: int | None = None
        self._paused = False
        self._reanchor = False
        self.position_us: int | None = None
        self.time_range = self._scan()

    def _scan(self) -> tuple[int, int] | None:
        return _time_range(self.reader) if os.path.getsize(self.path) <= _SCAN_LIMIT_BYTES else None

    def _open(self, index: int) -> None:
        """Make file ``index`` of the playlist the one playing."""
        previous, self.reader = self.reader, open_events(self.files[index], **self.reader_options)
        previous.close()
        self.path, self.position_us = os.fspath(self.files[index]), None
        self.label = self.files[index].parent.name if self.is_playlist else None
        self.time_range = self._scan()

    def info(self) -> dict:
        """Source, format, sensor and the recording's time span (when known); a playlist's length."""
        info = {**super().info(), "path": self.path, "format": self.reader.format}
        if self.is_playlist:
            info["playlist_files"] = len(self.files)
        if self.time_range is not None:
            info["t_start_us"], info["t_end_us"] = self.time_range
            info["duration_s"] = (self.time_range[1] - self.time_range[0]) / 1e6
        return info

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
        try:
            while not self.stopping:
                played = False
                for index in range(len(self.files)):
                    if self.stopping:
                        return
                    if self.is_playlist and (index or self.loops):
                        self._open(index)
                    played |= self._play_file()
                if not played:  # no events at all: nothing to play, nothing to loop
                    break
                self.loops += 1
                if not self.loop:
                    break
        finally:
            self.reader.close()

    def _play_file(self) -> bool:
        """Play the current file to its end, following seeks (and holding at the end of a single
        recording when ``hold_at_end``); whether it held any event."""
        start_at: int | None = None
        played = False
        while not self.stopping:
            if start_at is None:
                self.reader.rewind()
            else:
                self.reader.seek(start_at)
            restart = self._play(start_at)
            played |= self.position_us is not None
            if restart is not None:
                start_at = restart
            elif self.hold_at_end and not self.loop and not self.is_playlist and played:
                start_at = self._hold()
                if start_at is None:
                    break
            else:
                break
        return played

    def _hold(self) -> int | None:
        """Wait at the end of the recording for a seek (its target) or a stop (None)."""
        self.ended = True
        try:
            while not self.stopping:
                with self._lock:
                    seek, self._seek_to = self._seek_to, None
                if seek is not None:
                    return seek
                time.sleep(_SLEEP_SLICE_S)
            return None
        finally:
            self.ended = False

    def _play(self, start_at: int | None) -> int | None:
        """Emit batches until the end (None, after a ``pass_end`` batch) or a seek request (its target time)."""
        anchor_wall = anchor_t = t0 = None
        t_end = emitted = None  # emitted: end of the last batch of this pass (not of before a seek)
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
                if reanchor or paused:  # the clock restarts from where this pass stands
                    anchor_wall, anchor_t = time.monotonic(), emitted if emitted is not None else t_end - self.batch_us
                if paused:
                    time.sleep(_SLEEP_SLICE_S)
                    continue
                wait = anchor_wall + (t_end - anchor_t) / speed / 1e6 - time.monotonic()
                if wait <= 0:
                    break
                time.sleep(min(wait, _SLEEP_SLICE_S))
            self.position_us = emitted = t_end
            self._emit(window, t_end, label=self.label)
        if t_end is not None and not self.stopping:
            self._emit(window[:0], t_end, pass_end=True, label=self.label)
        return None
