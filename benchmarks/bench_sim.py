"""Emulator throughput: frames/s and events/s at 640x480 and 1280x720 on one core.

The scene is a smooth random texture panning 2 px per frame (about 10 % of the pixels fire per
frame, like a webcam pointed at a moving scene); frames are rendered beforehand and are not timed.
Run: ``python benchmarks/bench_sim.py [--frames 200]``. Goal: >= 100 frames/s at 640x480.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evstream.sim import EventEmulator
from evstream.sim.textures import smooth_noise


def _frames(width: int, height: int, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    texture = 128 + 100 * smooth_noise((height, width + 2 * n), 4.0, rng)
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(texture[:, 2 * k:2 * k + width]) for k in range(n)]


def bench(width: int, height: int, preset: str, n_frames: int) -> tuple[float, float, float, float]:
    """Frames/s by CPU time and by wall time, events/s (CPU) and events per frame, frames 1 ms apart.

    CPU time (``process_time``) is what one core spends; wall time also counts waiting for a busy machine.
    """
    frames = _frames(width, height, n_frames)
    warm = EventEmulator((width, height, 2), preset, seed=0)  # compile / load the kernels' cache
    warm.step(frames[0], 0)
    warm.step(frames[1], 1000)
    emulator = EventEmulator((width, height, 2), preset, seed=1)
    n_events = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for k, frame in enumerate(frames):
        n_events += len(emulator.step(frame, k * 1000))
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - start
    return n_frames / cpu, n_frames / wall, n_events / cpu, n_events / (n_frames - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    print(f"{'size':>10} {'preset':>6} {'frames/s':>9} {'(wall)':>7} {'Mevents/s':>10} {'events/frame':>13}")
    for width, height in ((640, 480), (1280, 720)):
        for preset in ("clean", "noisy"):
            fps, fps_wall, eps, per_frame = bench(width, height, preset, args.frames)
            print(f"{width}x{height:<6} {preset:>6} {fps:9.1f} {fps_wall:7.1f} {eps / 1e6:10.2f} {per_frame:13.0f}")


if __name__ == "__main__":
    main()
