"""Video file to events: decode with OpenCV, convert to grey, run the emulator, write any event format."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from evstream.events import EventFileError
from evstream.io import open_writer
from evstream.sim.emulator import EventEmulator, SensorParams
from evstream.sim.record import record_frames


def video_frames(path: os.PathLike | str) -> tuple[Iterator[tuple[int, np.ndarray]], tuple[int, int, int], int]:
    """Grey frames of a video with their times in µs, the ``(W, H, 2)`` size and the frame count (0 if unknown).

    Times come from the frame rate (``k * 1e6 / fps``) so they are strictly increasing.
    """
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise EventFileError(path, "OpenCV cannot open this video")
    fps = capture.get(cv2.CAP_PROP_FPS)
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    count = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    if not fps or fps <= 0 or width <= 0 or height <= 0:
        capture.release()
        raise EventFileError(path, f"video without a usable frame rate or size (fps={fps}, {width}x{height})")

    def frames():
        try:
            k = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                if frame.ndim == 3:
                    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                yield int(round(k * 1e6 / fps)), frame
                k += 1
        finally:
            capture.release()

    return frames(), (width, height, 2), count


def video_to_events(video: os.PathLike | str, out: os.PathLike | str, *, sensor: SensorParams | str = "clean",
                    seed: int = 0, format: str | None = None, progress: bool = True) -> int:
    """Convert a video file into an event file (format from ``out``'s suffix unless given); return the count."""
    frames, size, count = video_frames(video)
    emulator = EventEmulator(size, sensor, seed=seed)
    with open_writer(out, size, format=format) as writer:
        return record_frames(frames, emulator, writer, total=count or None, desc=Path(video).name,
                             progress=progress)
