"""Headless output of the view: MP4 video (OpenCV, mp4v) and PNG stills."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np


def save_png(path: os.PathLike | str, rgb: np.ndarray, compression: int = 1) -> None:
    """Write an RGB uint8 image (``compression`` 0-9: OpenCV's fast 1 by default, 9 for the smallest file)."""
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, compression]):
        raise OSError(f"{path}: could not write the PNG")


class VideoSink:
    """Append RGB frames of one size to an MP4 file; ``close()`` finishes it. A context manager."""

    def __init__(self, path: os.PathLike | str, fps: float = 30.0):
        self.path, self.fps = Path(path), float(fps)
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        if self._writer is None:
            height, width = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot open an mp4v video writer")
        self._writer.write(np.ascontiguousarray(rgb[..., ::-1]))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
