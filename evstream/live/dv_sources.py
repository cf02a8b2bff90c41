"""iniVation sources through dv-processing: a camera (``dv.io.camera``) and a DV network stream.

dv-processing is imported lazily (an optional dependency). Its calls hold the GIL for their
whole duration (LIVE.md), so batches are pulled small and often from the source thread.
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


def dv_events(store) -> np.ndarray:
    """A dv ``EventStore`` (or None) as EVENT_DTYPE (``.numpy()`` is the fast path out of dv)."""
    if store is None:
        return empty_events()
    raw = store.numpy()
    events = np.empty(len(raw), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = raw["x"], raw["y"], raw["timestamp"], raw["polarity"]
    return events


class _DvPollingSource(EventSource):
    """Shared loop: poll ``getNextEventBatch()`` and emit; the event clock is the last event time."""

    def _poll(self, reader) -> None:
        last_t = None
        while not self.stopping:
            if not reader.isRunning():
                raise SourceError(f"{self.name}: the stream ended (device or connection lost)")
            events = dv_events(reader.getNextEventBatch())
            if len(events) == 0:
                time.sleep(_POLL_S)
                continue
            last_t = int(events["t"][-1]) if last_t is None else max(last_t, int(events["t"][-1]))
            self._emit(events, last_t + 1)


class DvCameraSource(_DvPollingSource):
    """A live iniVation camera (DVS128, DAVIS, DVXplorer): the first one found, or ``serial``."""

    def __init__(self, serial: str | None = None, queue_size: int = 256):
        super().__init__(queue_size)
        dv = _dv()
        try:
            self.camera = dv.io.camera.open(serial) if serial else dv.io.camera.open()
        except (RuntimeError, IndexError) as err:
            found = [str(d) for d in dv.io.camera.discover()]
            raise SourceError(f"no iniVation camera {serial or ''} could be opened (found: {found or 'none'}): "
                              f"{err}") from None
        width, height = self.camera.getEventResolution()
        self.sensor_size = (int(width), int(height), 2)
        self.name = f"dv:{self.camera.getCameraName()}"

    def _run(self) -> None:
        self._poll(self.camera)


class DvNetworkSource(_DvPollingSource):
    """Events from a DV network stream (``dv.io.NetworkWriter`` / DV software ``net_tcp_server``)."""

    def __init__(self, host: str, port: int, queue_size: int = 1024):
        super().__init__(queue_size)
        dv = _dv()
        try:
            self.reader = dv.io.NetworkReader(host, int(port))
        except RuntimeError as err:
            raise SourceError(f"cannot connect to the DV stream at {host}:{port}: {str(err).split('[')[0].strip()}") \
                from None
        resolution = self.reader.getEventResolution()
        if resolution is None:
            raise SourceError(f"the DV stream at {host}:{port} carries no events")
        self.sensor_size = (int(resolution[0]), int(resolution[1]), 2)
        self.name = f"dvnet:{host}:{port}"

    def _run(self) -> None:
        self._poll(self.reader)
