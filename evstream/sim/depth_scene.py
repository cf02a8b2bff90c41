"""Depth scene: a camera moving down a textured corridor (ground, walls, boxes) with its true depth.

A numba ray caster renders each frame's grey image and z-depth together (pinhole camera with
MVSEC-like intrinsics, 346x260). Output in the MVSEC layout: ``<seq>_data.hdf5`` with
``davis/left/events`` (through the MVSEC writer) and ``<seq>_gt.hdf5`` with
``davis/left/depth_image_rect`` (float32 metres, NaN for sky and beyond ``max_depth_m``) and
``davis/left/depth_image_rect_ts`` (float64 seconds, the events' time base) at 20 Hz.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import h5py
import numpy as np

from evstream._jit import kernel
from evstream.io import open_writer
from evstream.sim.emulator import EventEmulator, SensorParams
from evstream.sim.record import frame_times_us, record_frames
from evstream.sim.textures import tileable_noise

DEPTH_SIZE = (346, 260, 2)
"""MVSEC's DAVIS m346B geometry."""

INTRINSICS = (223.99, 223.62, 170.77, 128.19)
"""fx, fy, cx, cy in pixels (MVSEC-like, left camera)."""

GROUND_Y = 1.3   # camera height above the ground, metres (Y points down)
WALL_X = 2.5     # corridor half-width
WALL_TOP = -1.7  # wall tops (Y up to here; above is sky)
SKY_DN = 210.0
DEPTH_HZ = 20.0


TEXTURE_PX_PER_M = 48.0
"""Texture resolution: each surface repeats a 256x256 texel tile every 256 / 48 = 5.3 m."""


def make_textures(rng: np.random.Generator) -> np.ndarray:
    """Tileable grey textures in [0, 1] for ground, walls and boxes, ``[3, 256, 256]`` float32."""
    tiles = []
    for grain, contrast in ((6.0, 0.35), (10.0, 0.3), (3.0, 0.18)):
        tiles.append(0.5 + contrast * tileable_noise(256, grain, rng))
    return np.clip(np.stack(tiles), 0.0, 1.0).astype(np.float32)


@kernel
def _texel(textures, surface, a, b):
    """Bilinear sample of a surface's tileable texture at surface coordinates (a, b) in metres."""
    fa = a * TEXTURE_PX_PER_M
    fb = b * TEXTURE_PX_PER_M
    ia = math.floor(fa)
    ib = math.floor(fb)
    wa = fa - ia
    wb = fb - ib
    i0 = int(ia) & 255
    j0 = int(ib) & 255
    i1 = (i0 + 1) & 255
    j1 = (j0 + 1) & 255
    tex = textures[surface]
    return ((1 - wa) * ((1 - wb) * tex[i0, j0] + wb * tex[i0, j1])
            + wa * ((1 - wb) * tex[i1, j0] + wb * tex[i1, j1]))


@kernel
def _raycast(origin, rot, fx, fy, cx, cy, boxes, bounds, tones, textures, end_z, max_depth, out_gray, out_depth):
    """Render grey (DN) and z-depth (NaN for sky or beyond ``max_depth``) for every pixel.

    ``bounds[k] = (u0, u1, v0, v1)`` is box k's screen rectangle: pixels outside it skip the box.
    """
    height, width = out_depth.shape
    for v in range(height):
        for u in range(width):
            cxd = (u - cx) / fx
            cyd = (v - cy) / fy
            dx = rot[0, 0] * cxd + rot[0, 1] * cyd + rot[0, 2]
            dy = rot[1, 0] * cxd + rot[1, 1] * cyd + rot[1, 2]
            dz = rot[2, 0] * cxd + rot[2, 1] * cyd + rot[2, 2]
            best = np.inf
            surface = -1
            a = 0.0
            b = 0.0
            tone = 0.0
            light = 1.0
            if dy > 1e-9:
                t = (GROUND_Y - origin[1]) / dy
                best, surface = t, 0
                a, b = origin[0] + t * dx, origin[2] + t * dz
                light = 1.0
            if abs(dx) > 1e-9:
                wall = WALL_X if dx > 0 else -WALL_X
                t = (wall - origin[0]) / dx
                y = origin[1] + t * dy
                if 0 < t < best and WALL_TOP <= y <= GROUND_Y:
                    best, surface = t, 1
                    a, b = origin[2] + t * dz, y
                    light = 0.85 if dx > 0 else 0.7
            if dz > 1e-9:
                t = (end_z - origin[2]) / dz
                y = origin[1] + t * dy
                if 0 < t < best and WALL_TOP <= y <= GROUND_Y:
                    best, surface = t, 1
                    a, b = origin[0] + t * dx, y
                    light = 0.6
            ix = 1.0 / (dx if abs(dx) > 1e-12 else 1e-12)
            iy = 1.0 / (dy if abs(dy) > 1e-12 else 1e-12)
            iz = 1.0 / (dz if abs(dz) > 1e-12 else 1e-12)
            for k in range(boxes.shape[0]):
                if u < bounds[k, 0] or u > bounds[k, 1] or v < bounds[k, 2] or v > bounds[k, 3]:
                    continue
                tx0 = (boxes[k, 0] - origin[0]) * ix
                tx1 = (boxes[k, 1] - origin[0]) * ix
                ty0 = (boxes[k, 2] - origin[1]) * iy
                ty1 = (boxes[k, 3] - origin[1]) * iy
                tz0 = (boxes[k, 4] - origin[2]) * iz
                tz1 = (boxes[k, 5] - origin[2]) * iz
                tx_in, tx_out = min(tx0, tx1), max(tx0, tx1)
                ty_in, ty_out = min(ty0, ty1), max(ty0, ty1)
                tz_in, tz_out = min(tz0, tz1), max(tz0, tz1)
                t_in = max(tx_in, ty_in, tz_in)
                if 0 < t_in < min(tx_out, ty_out, tz_out) and t_in < best:
                    best, surface, tone = t_in, 2, tones[k]
                    px, py, pz = origin[0] + t_in * dx, origin[1] + t_in * dy, origin[2] + t_in * dz
                    if t_in == tx_in:
                        a, b, light = pz, py, 0.8
                    elif t_in == ty_in:
                        a, b, light = px, pz, 1.0
                    else:
                        a, b, light = px, py, 0.65
            if surface < 0:
                out_gray[v, u] = SKY_DN
                out_depth[v, u] = np.nan
            else:
                value = _texel(textures, surface, a, b)
                if surface == 2:
                    value = min(1.0, tone + value - 0.5)
                out_gray[v, u] = 25.0 + 215.0 * light * value
                out_depth[v, u] = best if best <= max_depth else np.nan


def _screen_bounds(boxes: np.ndarray, origin: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Each box's screen rectangle ``(u0, u1, v0, v1)`` from its 8 projected corners (whole screen if behind)."""
    fx, fy, cx, cy = INTRINSICS
    corners = np.stack(np.meshgrid([0, 1], [2, 3], [4, 5], indexing="ij"), -1).reshape(8, 3)
    world = boxes[:, corners.ravel()].reshape(-1, 8, 3)
    cam = (world - origin) @ rot  # rows times rot = rot.T @ each point: world to camera
    z = cam[..., 2]
    safe = np.where(z > 0.05, z, 1.0)
    u, v = fx * cam[..., 0] / safe + cx, fy * cam[..., 1] / safe + cy
    bounds = np.stack([u.min(1) - 1, u.max(1) + 1, v.min(1) - 1, v.max(1) + 1], 1)
    bounds[(z <= 0.05).any(1)] = (-np.inf, np.inf, -np.inf, np.inf)
    return bounds


class DepthScene:
    """A corridor with boxes, flown through by a swaying, yawing camera; ``render(t)`` gives grey + depth.

    Args:
        seconds: duration (the corridor is built long enough).
        seed: seeds the boxes.
        speed_m_s: forward speed.
        max_depth_m: depth beyond this is NaN (no ground truth), as for a range-limited lidar.
    """

    def __init__(self, seconds: float, seed: int = 0, *, speed_m_s: float = 1.5, max_depth_m: float = 40.0):
        if seconds <= 0 or speed_m_s <= 0 or max_depth_m <= 0:
            raise ValueError("DepthScene: seconds, speed_m_s and max_depth_m must be positive")
        self.sensor_size = DEPTH_SIZE
        self.speed = float(speed_m_s)
        self.max_depth = float(max_depth_m)
        self.end_z = self.speed * seconds + 60.0
        rng = np.random.default_rng(seed)
        n = int(self.end_z / 2.0)
        z = np.sort(rng.uniform(3.0, self.end_z - 5.0, n))
        side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        size = rng.uniform(0.3, 0.9, n)
        x = side * rng.uniform(0.9, WALL_X - 0.2, n)
        tall = rng.uniform(0.3, 1.6, n)
        self.boxes = np.stack([np.minimum(x - size / 2, WALL_X), np.minimum(x + size / 2, WALL_X),
                               GROUND_Y - tall, np.full(n, GROUND_Y), z, z + size * rng.uniform(0.7, 1.5, n)], 1)
        self.tones = rng.uniform(0.2, 0.8, n)
        self.textures = make_textures(rng)
        width, height = DEPTH_SIZE[:2]
        self._gray = np.empty((height, width), np.float32)
        self._depth = np.empty((height, width), np.float32)

    def pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Camera origin (X, Y, Z) and rotation (camera to world) at ``t`` seconds."""
        origin = np.array([0.3 * math.sin(0.7 * t), 0.03 * math.sin(6.0 * t), self.speed * t])
        yaw = 0.15 * math.sin(0.5 * t + 1.0)
        pitch = 0.03 * math.sin(1.3 * t)
        cy_, sy_ = math.cos(yaw), math.sin(yaw)
        cp, sp = math.cos(pitch), math.sin(pitch)
        rot_yaw = np.array([[cy_, 0.0, sy_], [0.0, 1.0, 0.0], [-sy_, 0.0, cy_]])
        rot_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
        return origin, rot_yaw @ rot_pitch

    def render(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Grey frame (float32 DN) and z-depth in metres (float32, NaN where none), both ``[H, W]``, at ``t`` s."""
        origin, rot = self.pose(t)
        near = (self.boxes[:, 5] > origin[2] - 1.0) & (self.boxes[:, 4] < origin[2] + self.max_depth + 20.0)
        boxes = np.ascontiguousarray(self.boxes[near])
        _raycast(origin, rot, *INTRINSICS, boxes, _screen_bounds(boxes, origin, rot), self.tones[near],
                 self.textures, self.end_z, self.max_depth, self._gray, self._depth)
        return self._gray.copy(), self._depth.copy()


def write_depth_sequence(out_dir: os.PathLike | str, *, name: str = "sim_corridor1", seconds: float = 3.0,
                         seed: int = 0, fps: float = 200.0, sensor: SensorParams | str = "clean",
                         progress: bool = True) -> tuple[Path, Path]:
    """Write ``<name>_data.hdf5`` (events) and ``<name>_gt.hdf5`` (depth at 20 Hz) in the MVSEC layout.

    Returns:
        The data and ground-truth paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = DepthScene(seconds, seed)
    times = frame_times_us(seconds, fps)
    depth_times = np.rint(np.arange(int(seconds * DEPTH_HZ) + 1) * (1e6 / DEPTH_HZ)).astype(np.int64)
    data_path, gt_path = out / f"{name}_data.hdf5", out / f"{name}_gt.hdf5"
    emulator = EventEmulator(DEPTH_SIZE, sensor, seed=seed)
    with open_writer(data_path, DEPTH_SIZE, format="mvsec") as writer:
        record_frames(((t, scene.render(t * 1e-6)[0]) for t in times), emulator, writer, total=len(times),
                      desc=name, progress=progress)
    depth_maps = np.stack([scene.render(t * 1e-6)[1] for t in depth_times])
    width, height = DEPTH_SIZE[:2]
    with h5py.File(gt_path, "w") as f:
        f.create_dataset("davis/left/depth_image_rect", data=depth_maps, compression="lzf",
                         chunks=(1, height, width))
        f.create_dataset("davis/left/depth_image_rect_ts", data=depth_times / 1e6)
    return data_path, gt_path
