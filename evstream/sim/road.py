"""Road scene for detection: cars and pedestrians on a panning street, Gen1 layout with visible boxes.

Actors (cars class 0, pedestrians class 1) enter and leave at the frame edges at ground rows that
set their size and depth order; nearer actors are drawn last and occlude farther ones. Boxes are
the bounding boxes of each actor's *visible* pixels (clipped to the frame, minus occlusion) and are
kept when at least ``MIN_VISIBLE`` of the actor shows. Output: Prophesee Gen1 folders
``train/ val/ test/`` holding ``<name>_td.dat`` and ``<name>_bbox.npy`` (packed Gen1 box dtype), 304x240.
"""

from __future__ import annotations

import datetime

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evstream.events import check_sensor_size
from evstream.io import open_writer
from evstream.sim.emulator import EventEmulator, SensorParams
from evstream.sim.record import frame_times_us, record_frames
from evstream.sim.textures import smooth_noise

ROAD_SIZE = (304, 240, 2)
"""Gen1 (ATIS) geometry."""

BBOX_DTYPE = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                       ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")])
"""Packed Gen1 ``*_bbox.npy`` record (33 bytes): ts µs, x, y top-left, w, h px, class, confidence, track."""

CLASSES = ("car", "pedestrian")
SIMULATED_DATE = datetime.datetime(1970, 1, 1)
"""The ``% Date`` of simulated DAT files: fixed, so a seed gives the same bytes."""
MIN_VISIBLE = 0.25
"""Smallest visible fraction of an actor that still gets a box."""

_HORIZON = 95
_SHIFT = 4  # cv2 fractional bits: sub-pixel drawing, smooth motion
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Actor:
    """One car or pedestrian crossing the frame: ``x(t) = x0 + vx * (t - t_enter)``, feet at row ``ground``."""

    track_id: int
    class_id: int
    t_enter: float
    x0: float
    vx: float
    ground: float
    width: float
    height: float
    shade: float
    detail: float

    def left(self, t: float) -> float:
        return self.x0 + self.vx * (t - self.t_enter)


def _pts(points) -> np.ndarray:
    return np.rint(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32)


def _draw_car(img, a: Actor, x: float, value_body, value_detail, aa) -> None:
    w, h, g = a.width, a.height, a.ground
    body = [(x, g - 0.2 * h), (x, g - 0.55 * h), (x + w, g - 0.6 * h), (x + w, g - 0.2 * h)]
    cabin = [(x + 0.2 * w, g - 0.55 * h), (x + 0.32 * w, g - h), (x + 0.72 * w, g - h), (x + 0.84 * w, g - 0.58 * h)]
    cv2.fillPoly(img, [_pts(body), _pts(cabin)], value_body, aa, _SHIFT)
    if value_detail is not None:
        window = [(x + 0.3 * w, g - 0.6 * h), (x + 0.37 * w, g - 0.9 * h), (x + 0.68 * w, g - 0.9 * h),
                  (x + 0.75 * w, g - 0.62 * h)]
        cv2.fillPoly(img, [_pts(window)], value_detail, aa, _SHIFT)
    radius = int(0.2 * h * _ONE)
    for cx in (x + 0.2 * w, x + 0.8 * w):
        cv2.circle(img, tuple(_pts((cx, g - 0.2 * h))), radius, value_detail if value_detail is not None
                   else value_body, -1, aa, _SHIFT)


def _draw_pedestrian(img, a: Actor, x: float, t: float, value_body, value_detail, aa) -> None:
    w, h, g = a.width, a.height, a.ground
    cx = x + 0.5 * w
    swing = 0.3 * math.sin(2 * math.pi * 1.8 * t + a.track_id)
    thick = max(2, int(round(0.12 * h)))
    hip = (cx, g - 0.45 * h)
    for s in (swing, -swing):  # legs
        foot = (cx + 0.5 * h * math.sin(s), g - thick / 2)  # the round line cap ends at the ground
        cv2.line(img, tuple(_pts(hip)), tuple(_pts(foot)), value_body, thick, aa, _SHIFT)
    cv2.ellipse(img, tuple(_pts((cx, g - 0.63 * h))), (int(0.22 * w * _ONE * 2), int(0.2 * h * _ONE)), 0, 0, 360,
                value_detail if value_detail is not None else value_body, -1, aa, _SHIFT)
    shoulder = (cx, g - 0.78 * h)
    for s in (swing, -swing):  # arms
        cv2.line(img, tuple(_pts(shoulder)), tuple(_pts((cx + 0.35 * h * math.sin(s), g - 0.45 * h))), value_body,
                 max(1, thick // 2), aa, _SHIFT)
    cv2.circle(img, tuple(_pts((cx, g - 0.9 * h))), int(0.1 * h * _ONE), value_body, -1, aa, _SHIFT)


class RoadScene:
    """A street seen from a moving car, rendered at any time ``t`` (seconds).

    Args:
        seconds: duration; actors are planned to cover it.
        seed: seeds the background and the actors.
        sensor_size: ``(W, H, P)``, Gen1's 304x240 by default.
        ego_speed_px_s: horizontal pan of the background (the ego-motion).
        actors_per_s: mean number of cars plus pedestrians entering per second.
    """

    def __init__(self, seconds: float, seed: int = 0, *, sensor_size=ROAD_SIZE, ego_speed_px_s: float = 25.0,
                 actors_per_s: float = 1.5):
        if seconds <= 0 or actors_per_s <= 0:
            raise ValueError(f"RoadScene: seconds and actors_per_s must be positive, got {seconds}, {actors_per_s}")
        self.sensor_size = check_sensor_size(sensor_size)
        self.seconds = float(seconds)
        self.ego_speed = float(ego_speed_px_s)
        rng = np.random.default_rng(seed)
        width, height = self.sensor_size[:2]
        pan = int(abs(self.ego_speed) * seconds) + 16
        self._background = self._street(height, width + pan, rng)
        self._pan0 = 8.0 if self.ego_speed >= 0 else pan - 8.0
        self.actors = self._plan(rng, actors_per_s)

    @staticmethod
    def _street(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        rows = np.arange(height, dtype=np.float32)[:, None]
        sky = 175 + 20 * smooth_noise((height, width), 6, rng)
        road = 105 + 18 * smooth_noise((height, width), 3, rng) + 0.1 * (rows - _HORIZON)
        img = np.where(rows < _HORIZON, sky, road).astype(np.float32)
        x = 0.0
        while x < width:  # buildings along the horizon
            w = rng.uniform(20, 60)
            top = _HORIZON - rng.uniform(15, 70)
            cv2.rectangle(img, (int(x), int(top)), (int(x + w), _HORIZON), float(rng.uniform(130, 160)), -1)
            x += w + rng.uniform(0, 25)
        lane = int(_HORIZON + 0.6 * (height - _HORIZON))
        for x0 in range(0, width, 40):  # lane marks
            cv2.rectangle(img, (x0, lane), (x0 + 18, lane + 2), 135.0, -1)
        return cv2.GaussianBlur(img, (0, 0), 0.8)

    def _plan(self, rng: np.random.Generator, actors_per_s: float) -> list[Actor]:
        width, height = self.sensor_size[:2]
        span = self.seconds + 8.0  # actors entering up to 8 s before the start are mid-frame at t = 0
        n = max(2, int(rng.poisson(actors_per_s * span)))
        actors = []
        for track_id in range(1, n + 1):
            class_id = int(rng.random() < 0.45)
            ground = rng.uniform(_HORIZON + 30, height - 2)
            scale = 0.35 + 0.9 * (ground - _HORIZON) / (height - _HORIZON)
            if class_id == 0:
                w = scale * rng.uniform(60, 95)
                h = w * rng.uniform(0.42, 0.6)
                speed = scale * rng.uniform(45, 110)
            else:
                h = scale * rng.uniform(45, 65)
                w = 0.48 * h
                speed = scale * rng.uniform(12, 30)
            from_left = rng.random() < 0.5
            dark = rng.random() < 0.5
            shade = rng.uniform(25, 70) if dark else rng.uniform(180, 235)
            actors.append(Actor(track_id, class_id, float(rng.uniform(-8.0, self.seconds)),
                                -w if from_left else float(width), speed if from_left else -speed,
                                float(ground), float(w), float(h), float(shade),
                                float(shade + (60 if dark else -70))))
        return sorted(actors, key=lambda a: a.ground)  # far (high on screen) first: painter's order

    def on_screen(self, t: float) -> list[tuple[Actor, float]]:
        """The actors inside the frame at ``t`` seconds with their left edges, far ones first."""
        width = self.sensor_size[0]
        out = []
        for a in self.actors:
            x = a.left(t)
            if t >= a.t_enter and -a.width < x < width:
                out.append((a, x))
        return out

    def _draw(self, img, actor: Actor, x: float, t: float, body, detail, aa) -> None:
        if actor.class_id == 0:
            _draw_car(img, actor, x, body, detail, aa)
        else:
            _draw_pedestrian(img, actor, x, t, body, detail, aa)

    def frame(self, t: float) -> np.ndarray:
        """The grey frame at ``t`` seconds, ``[H, W]`` uint8."""
        width, height = self.sensor_size[:2]
        center = (self._pan0 + self.ego_speed * t + (width - 1) / 2, (height - 1) / 2 + 0.6 * math.sin(5.0 * t))
        img = cv2.getRectSubPix(self._background, (width, height), center)
        for actor, x in self.on_screen(t):
            self._draw(img, actor, x, t, actor.shade, actor.detail, cv2.LINE_AA)
        return np.clip(img, 0, 255).astype(np.uint8)

    def boxes(self, t: float) -> np.ndarray:
        """Boxes of the visible actors at ``t`` seconds, in :data:`BBOX_DTYPE` (``ts`` = t in µs)."""
        width, height = self.sensor_size[:2]
        labels = np.zeros((height, width), np.int32)
        full_area = {}
        for k, (actor, x) in enumerate(self.on_screen(t), start=1):
            alone = np.zeros((height, int(actor.width) + 8), np.uint8)  # unclipped and unoccluded
            self._draw(alone, actor, 4.0, t, 1, None, cv2.LINE_8)
            full_area[k] = (actor, np.count_nonzero(alone))
            self._draw(labels, actor, x, t, k, None, cv2.LINE_8)
        ids, counts = np.unique(labels[labels > 0], return_counts=True)
        rows = []
        for k, count in zip(ids, counts, strict=True):
            actor, area = full_area[int(k)]
            if count < MIN_VISIBLE * area:
                continue
            ys, xs = np.nonzero(labels == k)
            x0, y0 = xs.min(), ys.min()
            w, h = xs.max() - x0 + 1, ys.max() - y0 + 1
            if w >= 4 and h >= 4:
                rows.append((round(t * 1e6), x0, y0, w, h, actor.class_id, 1.0, actor.track_id))
        return np.array(rows, dtype=BBOX_DTYPE)


def write_road_sequence(td_path: os.PathLike | str, seconds: float, seed: int, *, fps: float = 200.0,
                        box_hz: float = 4.0, sensor: SensorParams | str = "clean", progress: bool = True) -> int:
    """Render one road clip into ``<name>_td.dat`` and its ``<name>_bbox.npy``; return the event count."""
    if not 1.0 <= box_hz <= 4.0:
        raise ValueError(f"box_hz must be within 1-4 Hz (Gen1 labels), got {box_hz}")
    td_path = Path(td_path)
    if not td_path.name.endswith("_td.dat"):
        raise ValueError(f"{td_path}: a Gen1 event file is named <name>_td.dat")
    scene = RoadScene(seconds, seed)
    times = frame_times_us(seconds, fps)
    emulator = EventEmulator(ROAD_SIZE, sensor, seed=seed)
    with open_writer(td_path, ROAD_SIZE, format="dat", date=SIMULATED_DATE) as writer:
        n = record_frames(((t, scene.frame(t * 1e-6)) for t in times), emulator, writer, total=len(times),
                          desc=td_path.stem, progress=progress)
    box_times = np.arange(1, int(seconds * box_hz) + 1) / box_hz
    boxes = [scene.boxes(t) for t in box_times]
    np.save(td_path.with_name(td_path.name[:-len("_td.dat")] + "_bbox.npy"),
            np.concatenate(boxes) if boxes else np.empty(0, BBOX_DTYPE))
    return n


def write_road_dataset(out_dir: os.PathLike | str, *, seconds: float = 4.0, seed: int = 0,
                       sequences: tuple[int, int, int] = (1, 1, 1), fps: float = 200.0, box_hz: float = 4.0,
                       sensor: SensorParams | str = "clean", progress: bool = True) -> list[Path]:
    """Write a Gen1-layout dataset: ``train/ val/ test/`` with ``sim_road_<k>_td.dat`` + ``_bbox.npy``.

    Args:
        out_dir: dataset root (created).
        seconds: length of each clip.
        seed: seeds everything; clip ``k`` uses ``seed * 1000 + k``.
        sequences: clips in train, val and test.
        fps: rendering rate (crossings are interpolated between frames).
        box_hz: label rate (Gen1 uses 1-4 Hz).
        sensor: emulator preset or parameters.

    Returns:
        The ``_td.dat`` paths written.
    """
    if len(sequences) != 3 or min(sequences) < 0:
        raise ValueError(f"sequences must be three counts (train, val, test), got {sequences}")
    root = Path(out_dir)
    paths = []
    k = 0
    for split, count in zip(("train", "val", "test"), sequences, strict=True):
        (root / split).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            path = root / split / f"sim_road_{k:04d}_td.dat"
            write_road_sequence(path, seconds, seed * 1000 + k, fps=fps, box_hz=box_hz, sensor=sensor,
                                progress=progress)
            paths.append(path)
            k += 1
    return paths
