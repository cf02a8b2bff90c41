"""Run rendered frames through the emulator into an event writer, in bounded batches with progress."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from evstream.io.writer import EventWriter
from evstream.sim.emulator import EventEmulator

FLUSH_EVENTS = 1 << 18
"""Events gathered before a write (keeps writes few and memory bounded)."""


def record_frames(frames: Iterable[tuple[int, np.ndarray]], emulator: EventEmulator, writer: EventWriter, *,
                  total: int | None = None, desc: str = "frames", progress: bool = True) -> int:
    """Feed ``(t_us, frame)`` pairs to ``emulator`` and write its events; return the number written."""
    pending: list[np.ndarray] = []
    held = 0
    written = 0
    for t_us, frame in tqdm(frames, total=total, desc=desc, unit="frame", disable=not progress, leave=False):
        events = emulator.step(frame, t_us)
        pending.append(events)
        held += len(events)
        if held >= FLUSH_EVENTS:
            writer.write(np.concatenate(pending))
            written += held
            pending, held = [], 0
    if held:
        writer.write(np.concatenate(pending))
        written += held
    return written


def frame_times_us(seconds: float, fps: float) -> np.ndarray:
    """Frame times ``0, 1/fps, ...`` up to and including ``seconds``, in integer microseconds."""
    if seconds <= 0 or fps <= 0:
        raise ValueError(f"seconds and fps must be positive, got seconds={seconds}, fps={fps}")
    return np.rint(np.arange(int(round(seconds * fps)) + 1) * (1e6 / fps)).astype(np.int64)
