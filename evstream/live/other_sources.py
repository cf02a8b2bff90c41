"""Sources without an iniVation camera: Prophesee through Metavision, a webcam or video through
the event emulator, and a synthetic scene."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np

from evstream.events import EVENT_DTYPE
from evstream.live.source import EventSource, SourceError
from evstream.sim.emulator import EventEmulator


class MetavisionSource(EventSource):
    """A Prophesee camera (``path=None`` or a serial) or RAW file through Metavision (OpenEB), if installed."""

    def __init__(self, path: str = "", *, delta_t_us: int = 1000, queue_size: int = 256):
        super().__init__(queue_size)
        try:
            from metavision_core.event_io import EventsIterator
        except ImportError:
            raise SourceError("Metavision (OpenEB) is not installed: it is not on PyPI; install OpenEB and its "
                              "Python bindings, or read Prophesee files with 'evstream replay FILE'") from None
        try:
            self.iterator = EventsIterator(input_path=path, delta_t=delta_t_us)
        except Exception as err:  # Metavision raises its own types
            raise SourceError(f"Metavision cannot open {path or 'a camera'}: {err}") from None
        height, width = self.iterator.get_size()
        self.sensor_size = (int(width), int(height), 2)
        self.name = f"metavision:{path or 'camera'}"
        self.delta_t_us = delta_t_us

    def _run(self) -> None:
        clock = 0
        for raw in self.iterator:
            if self.stopping:
                return
            events = np.empty(len(raw), dtype=EVENT_DTYPE)
            events["x"], events["y"], events["t"], events["p"] = raw["x"], raw["y"], raw["t"], raw["p"]
            clock += self.delta_t_us
            self._emit(events, int(events["t"][-1]) + 1 if len(events) else clock)


class EmulatedVideoSource(EventSource):
    """A webcam (``device`` index) or a video file turned into events by the emulator.

    A camera is timed by the wall clock; a file by its frame rate, and replayed in real time.
    """

    def __init__(self, device: int | str = 0, *, sensor: str = "noisy", seed: int = 0, queue_size: int = 256):
        super().__init__(queue_size)
        self.capture = cv2.VideoCapture(device)
        if not self.capture.isOpened():
            kind = "camera" if isinstance(device, int) else "video file"
            raise SourceError(f"cannot open {kind} {device!r} with OpenCV")
        width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.sensor_size = (width, height, 2)
        self.is_file = not isinstance(device, int)
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 30.0
        self.emulator = EventEmulator(self.sensor_size, sensor, seed=seed)
        self.name = f"video:{os.path.basename(device)}" if self.is_file else f"webcam:{device}"

    def _run(self) -> None:
        start, k = time.monotonic(), 0
        while not self.stopping:
            ok, frame = self.capture.read()
            if not ok:
                if self.is_file:
                    break
                raise SourceError(f"{self.name}: the camera stopped delivering frames")
            if self.is_file:
                t_us = int(k * 1e6 / self.fps)
                delay = start + t_us / 1e6 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            else:
                t_us = int((time.monotonic() - start) * 1e6)
            k += 1
            events = self.emulator.step(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), t_us)
            self._emit(events, t_us)
        self.capture.release()


class SyntheticSource(EventSource):
    """The simulator's road scene rendered and emulated in real time (no camera, no file)."""

    def __init__(self, *, seconds: float = 3600.0, fps: float = 200.0, seed: int = 0, queue_size: int = 256):
        super().__init__(queue_size)
        from evstream.sim.road import RoadScene

        self.scene = RoadScene(seconds, seed)
        self.sensor_size = self.scene.sensor_size
        self.emulator = EventEmulator(self.sensor_size, "clean", seed=seed)
        self.fps, self.seconds = fps, seconds
        self.name = "synthetic:road"

    def _run(self) -> None:
        start = time.monotonic()
        for k in range(int(self.seconds * self.fps)):
            if self.stopping:
                return
            t = k / self.fps
            delay = start + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            events = self.emulator.step(self.scene.frame(t), int(t * 1e6))
            self._emit(events, int(t * 1e6))
