"""A live iniVation camera through dv-processing (``dv.io.camera``), an optional dependency.

dv-processing calls hold the GIL for their whole duration (LIVE.md), so batches are pulled small
and often from the source thread. DV network streams need no dv-processing: see
:mod:`evstream.live.dv_client`.
"""

from __future__ import annotations

import time

import numpy as np

from evstream.events import EVENT_DTYPE, empty_events
from evstream.live.source import EventSource, SourceError

_POLL_S = 0.001


def _dv():
    try:
        import dv_processing as dv
    except ImportError:
        raise SourceError("dv-processing is not installed: pip install dv-processing") from None
    return dv


def _dv_message(err: BaseException) -> str:
    """The one line that matters of a dv-processing exception (its text adds a C++ location and a stack trace)."""
    lines = str(err).splitlines() or [type(err).__name__]
    for line in lines:
        if line.startswith("RuntimeError: "):
            return line.removeprefix("RuntimeError: ")
    return lines[0]


def dv_events(store) -> np.ndarray:
    """A dv ``EventStore`` (or None) as EVENT_DTYPE (``.numpy()`` is the fast path out of dv)."""
    if store is None:
        return empty_events()
    raw = store.numpy()
    events = np.empty(len(raw), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = raw["x"], raw["y"], raw["timestamp"], raw["polarity"]
    return events


class DvCameraSource(EventSource):
    """A live iniVation camera (DVS128, DAVIS, DVXplorer): the first one found, or ``serial``.

    Polls ``getNextEventBatch()``; the event clock is the last event time.
    """

    def __init__(self, serial: str | None = None, queue_size: int = 256):
        super().__init__(queue_size)
        dv = _dv()
        self.name = f"dv:{serial or 'camera'}"
        found = [str(d) for d in dv.io.camera.discover()]
        if not found:
            raise SourceError(f"{self.name}: no iniVation camera found (dv-processing discovers none)")
        try:
            self.camera = dv.io.camera.open(serial) if serial else dv.io.camera.open()
            width, height = self.camera.getEventResolution()
            self.name = f"dv:{self.camera.getCameraName()}"
        except Exception as err:  # dv-processing raises RuntimeError, IndexError and its own types
            raise SourceError(f"{self.name}: cannot open the iniVation camera: {_dv_message(err)} "
                              f"(found: {', '.join(found)})") from None
        self.sensor_size = (int(width), int(height), 2)

    def _run(self) -> None:
        last_t = None
        try:
            while not self.stopping:
                if not self.camera.isRunning():
                    raise SourceError("the camera stopped (unplugged or failed)")
                events = dv_events(self.camera.getNextEventBatch())
                if len(events) == 0:
                    time.sleep(_POLL_S)
                    continue
                last_t = int(events["t"][-1]) if last_t is None else max(last_t, int(events["t"][-1]))
                self._emit(events, last_t + 1)
        except SourceError:
            raise
        except RuntimeError as err:
            raise SourceError(f"the camera failed: {_dv_message(err)}") from None
