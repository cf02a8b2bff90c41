"""Depth scene: a camera moving down a textured corridor (ground, walls, objects) with its true depth.

Every seed draws its own layout (:func:`sample_layout`): corridor widths and wall heights, the
camera's height, lane, pitch, yaw, sway and speed, and crates, pillars and walking people at
random places and depths. So the depth at a pixel cannot be guessed from its position in the
image: it has to be read from the events (texture scale, motion, object outlines).

A numba ray caster renders each frame's grey image and z-depth together (pinhole camera with
MVSEC-like intrinsics, 346x260). Output in the MVSEC layout: ``<seq>_data.hdf5`` with
``davis/left/events`` (through the MVSEC writer) and ``<seq>_gt.hdf5`` with
``davis/left/depth_image_rect`` (float32 metres, NaN for sky and beyond ``max_depth_m``) and
``davis/left/depth_image_rect_ts`` (float64 seconds, the events' time base) at 20 Hz.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
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

SKY_DN = 210.0
DEPTH_HZ = 20.0

TEXTURE_PX_PER_M = 48.0
"""Texture resolution: each surface repeats a 256x256 texel tile every 256 / 48 = 5.3 m. The scale is
the same in every sequence, so the size of the texture's grain in the image tells the depth."""

GROUND, WALL, CRATE, CLOTH = range(4)
"""Texture (surface) indices: ground, walls, crates and pillars, people."""

CRATE_KIND, PILLAR_KIND, PERSON_KIND = range(3)
"""Object kinds of :class:`CorridorLayout`'s ``objects``."""

LANE_CLEARANCE_M = 0.7
"""Objects keep this far (plus half their width) from the camera's lane."""


@dataclass(frozen=True)
class CorridorLayout:
    """One sequence's corridor, camera path and objects (world axes: X right, Y down, Z forward; the
    camera path runs at Y = 0 along Z from Z = 0).

    Attributes:
        ground_y: Y of the ground plane: the camera's height in metres.
        wall_left, wall_right: X of the two walls (``wall_left < lane_x < wall_right``).
        wall_top: Y of the wall tops (above them is sky).
        lane_x: X of the camera's path.
        speed: forward speed, m/s.
        pitch, yaw: mean camera pitch (positive looks up) and yaw (positive looks right), radians.
        sway_m, yaw_amp, sway_hz: lateral sway amplitude, yaw oscillation amplitude and their frequency.
        objects: ``[N, 6]`` boxes ``(x0, x1, y0, y1, z0, z1)`` at t = 0.
        velocity: ``[N, 2]`` (vx, vz) of each box in m/s (people walk, the rest stand).
        kinds: ``[N]`` int64 :data:`CRATE_KIND`, :data:`PILLAR_KIND` or :data:`PERSON_KIND`.
        tones: ``[N]`` grey level of each object's texture.
        lights: ``[4]`` shading of ground, left wall, right wall, end wall.
    """

    ground_y: float
    wall_left: float
    wall_right: float
    wall_top: float
    lane_x: float
    speed: float
    pitch: float
    yaw: float
    sway_m: float
    yaw_amp: float
    sway_hz: float
    objects: np.ndarray
    velocity: np.ndarray
    kinds: np.ndarray
    tones: np.ndarray
    lights: np.ndarray


def _free_x(rng: np.random.Generator, half_width: np.ndarray, layout_x: tuple[float, float, float]) -> np.ndarray:
    """Object centres X on the floor, clear of the walls and the camera lane; NaN where no room.

    ``layout_x = (wall_left, lane_x, wall_right)``; ``half_width`` per object.
    """
    left, lane, right = layout_x
    gap = LANE_CLEARANCE_M + half_width
    room_left = np.maximum(lane - gap - (left + half_width), 0.0)   # centres in [left + hw, lane - gap]
    room_right = np.maximum(right - half_width - (lane + gap), 0.0)  # centres in [lane + gap, right - hw]
    pick = rng.random(len(half_width)) * (room_left + room_right)
    x = np.where(pick < room_left, left + half_width + pick, lane + gap + pick - room_left)
    return np.where(room_left + room_right > 0, x, np.nan)


def sample_layout(rng: np.random.Generator, length_m: float) -> CorridorLayout:
    """Draw a corridor of ``length_m`` metres with its camera path and objects.

    Ranges: camera height 0.5-2.0 m, walls 1.2-4.0 m either side of the centre and 1.2-5.0 m
    high, lane within the corridor, speed 0.8-3.0 m/s, pitch -0.15..0.10 rad, yaw -0.2..0.2
    rad; 0.3-1.0 objects per metre: crates (0.3-1.2 m wide and deep, 0.3-1.6 m high), pillars
    (0.25-0.6 m square, up to the wall tops) and people (0.4-0.55 x 0.25-0.35 x 1.5-1.9 m,
    walking along the corridor at -1.5..1.5 m/s).
    """
    ground_y = rng.uniform(0.5, 2.0)
    wall_left, wall_right = -rng.uniform(1.2, 4.0), rng.uniform(1.2, 4.0)
    wall_top = ground_y - rng.uniform(1.2, 5.0)
    lane_x = rng.uniform(wall_left + 0.9, wall_right - 0.9)
    n = int(length_m * rng.uniform(0.3, 1.0))
    kinds = rng.choice(3, size=n, p=(0.5, 0.2, 0.3)).astype(np.int64)
    width = np.select([kinds == CRATE_KIND, kinds == PILLAR_KIND],
                      [rng.uniform(0.3, 1.2, n), rng.uniform(0.25, 0.6, n)], rng.uniform(0.4, 0.55, n))
    depth = np.select([kinds == CRATE_KIND, kinds == PILLAR_KIND],
                      [rng.uniform(0.3, 1.2, n), width], rng.uniform(0.25, 0.35, n))
    height = np.select([kinds == CRATE_KIND, kinds == PILLAR_KIND],
                       [rng.uniform(0.3, 1.6, n), np.full(n, ground_y - wall_top)], rng.uniform(1.5, 1.9, n))
    x = _free_x(rng, width / 2, (wall_left, lane_x, wall_right))
    z = rng.uniform(2.0, length_m - 5.0, n)
    vz = np.where(kinds == PERSON_KIND, rng.uniform(-1.5, 1.5, n), 0.0)
    keep = ~np.isnan(x)
    objects = np.stack([x - width / 2, x + width / 2, ground_y - height, np.full(n, ground_y), z, z + depth], 1)
    return CorridorLayout(
        ground_y=ground_y, wall_left=wall_left, wall_right=wall_right, wall_top=wall_top, lane_x=lane_x,
        speed=rng.uniform(0.8, 3.0), pitch=rng.uniform(-0.15, 0.10), yaw=rng.uniform(-0.2, 0.2),
        sway_m=rng.uniform(0.0, 0.4), yaw_amp=rng.uniform(0.0, 0.15), sway_hz=rng.uniform(0.05, 0.2),
        objects=objects[keep], velocity=np.stack([np.zeros(n), vz], 1)[keep], kinds=kinds[keep],
        tones=rng.uniform(0.2, 0.8, n)[keep], lights=np.array([1.0, *rng.uniform(0.6, 0.9, 2), 0.6]))


def make_textures(rng: np.random.Generator) -> np.ndarray:
    """Tileable grey textures in [0, 1] for ground, walls, crates and people, ``[4, 256, 256]`` float32."""
    tiles = []
    for grain, contrast in ((6.0, 0.35), (10.0, 0.3), (3.0, 0.25), (2.0, 0.3)):
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
def _raycast(origin, rot, fx, fy, cx, cy, walls, lights, boxes, bounds, surfaces, tones, textures, max_depth,
             out_gray, out_depth):
    """Render grey (DN) and z-depth (NaN for sky or beyond ``max_depth``) for every pixel.

    ``walls = (ground_y, wall_left, wall_right, wall_top, end_z)``; ``lights`` shade ground, left,
    right and end walls. ``bounds[k] = (u0, u1, v0, v1)`` is box k's screen rectangle: pixels
    outside it skip the box; ``surfaces[k]`` is its texture.
    """
    ground_y, wall_left, wall_right, wall_top, end_z = walls[0], walls[1], walls[2], walls[3], walls[4]
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
                t = (ground_y - origin[1]) / dy
                best, surface = t, GROUND
                a, b = origin[0] + t * dx, origin[2] + t * dz
                light = lights[0]
            if abs(dx) > 1e-9:
                wall = wall_right if dx > 0 else wall_left
                t = (wall - origin[0]) / dx
                y = origin[1] + t * dy
                if 0 < t < best and wall_top <= y <= ground_y:
                    best, surface = t, WALL
                    a, b = origin[2] + t * dz, y
                    light = lights[2] if dx > 0 else lights[1]
            if dz > 1e-9:
                t = (end_z - origin[2]) / dz
                y = origin[1] + t * dy
                if 0 < t < best and wall_top <= y <= ground_y:
                    best, surface = t, WALL
                    a, b = origin[0] + t * dx, y
                    light = lights[3]
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
                    best, surface, tone = t_in, surfaces[k], tones[k]
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
                if surface >= CRATE:
                    value = min(1.0, max(0.0, tone + value - 0.5))
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
    """A corridor with objects, flown through by a swaying, yawing camera; ``render(t)`` gives grey + depth.

    Args:
        seconds: duration (the corridor is built long enough).
        seed: seeds the layout (:func:`sample_layout`) and the textures.
        max_depth_m: depth beyond this is NaN (no ground truth), as for a range-limited lidar.
        layout: a given layout instead of a drawn one (the seed then only draws the textures).
    """

    def __init__(self, seconds: float, seed: int = 0, *, max_depth_m: float = 40.0,
                 layout: CorridorLayout | None = None):
        if seconds <= 0 or max_depth_m <= 0:
            raise ValueError(f"DepthScene: seconds and max_depth_m must be positive, got {seconds}, {max_depth_m}")
        self.sensor_size = DEPTH_SIZE
        self.max_depth = float(max_depth_m)
        rng = np.random.default_rng(seed)
        self.end_z = 3.0 * seconds + 60.0  # beyond the fastest camera's reach plus the depth range
        self.layout = sample_layout(rng, self.end_z) if layout is None else layout
        self.textures = make_textures(rng)
        lay = self.layout
        self._walls = np.array([lay.ground_y, lay.wall_left, lay.wall_right, lay.wall_top, self.end_z])
        self._surfaces = np.where(lay.kinds == PERSON_KIND, CLOTH, CRATE).astype(np.int64)
        width, height = DEPTH_SIZE[:2]
        self._gray = np.empty((height, width), np.float32)
        self._depth = np.empty((height, width), np.float32)

    def pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Camera origin (X, Y, Z) and rotation (camera to world) at ``t`` seconds."""
        lay = self.layout
        phase = 2 * math.pi * lay.sway_hz * t
        origin = np.array([lay.lane_x + lay.sway_m * math.sin(phase), 0.03 * math.sin(6.0 * t), lay.speed * t])
        yaw = lay.yaw + lay.yaw_amp * math.sin(phase + 1.0)
        pitch = lay.pitch + 0.03 * math.sin(1.3 * t)
        cy_, sy_ = math.cos(yaw), math.sin(yaw)
        cp, sp = math.cos(pitch), math.sin(pitch)
        rot_yaw = np.array([[cy_, 0.0, sy_], [0.0, 1.0, 0.0], [-sy_, 0.0, cy_]])
        rot_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
        return origin, rot_yaw @ rot_pitch

    def objects(self, t: float) -> np.ndarray:
        """The object boxes ``[N, 6]`` at ``t`` seconds (people moved by their velocity)."""
        shift = self.layout.velocity * t
        return self.layout.objects + shift[:, [0, 0, 1, 1, 1, 1]] * np.array([1.0, 1.0, 0.0, 0.0, 1.0, 1.0])

    def render(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Grey frame (float32 DN) and z-depth in metres (float32, NaN where none), both ``[H, W]``, at ``t`` s."""
        origin, rot = self.pose(t)
        boxes = self.objects(t)
        near = (boxes[:, 5] > origin[2] - 1.0) & (boxes[:, 4] < origin[2] + self.max_depth + 20.0)
        boxes = np.ascontiguousarray(boxes[near])
        _raycast(origin, rot, *INTRINSICS, self._walls, self.layout.lights, boxes, _screen_bounds(boxes, origin, rot),
                 self._surfaces[near], self.layout.tones[near], self.textures, self.max_depth, self._gray,
                 self._depth)
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


def write_depth_dataset(out_dir: os.PathLike | str, *, sequences: int, name: str = "sim_corridor",
                        seconds: float = 3.0, seed: int = 0, fps: float = 200.0, sensor: SensorParams | str = "clean",
                        progress: bool = True) -> list[tuple[Path, Path]]:
    """Write ``sequences`` sequences ``<name>_000``, ``<name>_001``, ...; sequence ``k`` uses seed ``seed * 1000 + k``.

    Returns:
        The (data, ground-truth) paths of each sequence.
    """
    if sequences < 1:
        raise ValueError(f"sequences must be >= 1, got {sequences}")
    return [write_depth_sequence(out_dir, name=f"{name}_{k:03d}", seconds=seconds, seed=seed * 1000 + k, fps=fps,
                                 sensor=sensor, progress=progress) for k in range(sequences)]
