"""Gestures: a two-armed figure performing the 11 DVS128 Gesture classes, in the DVS128 Gesture layout.

Each trial (one subject under one lighting) is one ``userXX_<lighting>.aedat`` (AEDAT 3.1, 128x128)
holding the 11 gestures one after another with rests between, plus ``userXX_<lighting>_labels.csv``
(``class,startTime_usec,endTime_usec``, classes 1-based), the split lists ``trials_to_train.txt`` /
``trials_to_test.txt`` and ``gesture_mapping.csv``. Subjects differ in size, speed, position, clothing
contrast, lighting (brightness) and sensor noise. "Right" is the subject's right arm, seen on the image's left;
clockwise is as seen in the image.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from evstream.io import open_writer
from evstream.sim.emulator import EventEmulator, sensor_params
from evstream.sim.record import frame_times_us, record_frames
from evstream.sim.textures import smooth_noise

GESTURE_SIZE = (128, 128, 2)
GESTURE_CLASSES = ("hand clap", "right hand wave", "left hand wave", "right arm clockwise",
                   "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise",
                   "arm roll", "air drums", "air guitar", "other")
"""The 11 classes in label order (file label = index + 1)."""

MAPPING_NAMES = ("hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
                 "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise", "arm_roll",
                 "air_drums", "air_guitar", "other_gestures")
"""Action names of the archive's ``gesture_mapping.csv``."""

LIGHTINGS = {  # name: (background DN, noise scale of the sensor)
    "natural": (150.0, 1.0),
    "fluorescent": (130.0, 1.5),
    "fluorescent_led": (120.0, 2.0),
    "led": (105.0, 2.5),
    "lab": (80.0, 3.0),
}
"""DVS128 Gesture's lighting names, with the brightness and noise level used for them."""

REST_S = 0.5
"""Rest between gestures (and before the first)."""

_EASE_S = 0.15  # hands move from and back to rest over this long at each end of a gesture
_SHIFT = 4
_ONE = 1 << _SHIFT
_UPPER, _FORE = 15.0, 14.0  # arm segment lengths at scale 1, pixels


@dataclass(frozen=True)
class Subject:
    """A performer: scale, speed factor, body position, shades and the 'other' gesture's own motion."""

    scale: float
    speed: float
    cx: float
    cy: float
    body_dn: float
    arm_dn: float
    other_freqs: tuple[float, ...]
    other_phases: tuple[float, ...]

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Subject":
        return cls(scale=float(rng.uniform(0.8, 1.15)), speed=float(rng.uniform(0.75, 1.35)),
                   cx=float(64 + rng.uniform(-10, 10)), cy=float(66 + rng.uniform(-6, 6)),
                   body_dn=float(rng.uniform(30, 60)), arm_dn=float(rng.uniform(75, 105)),
                   other_freqs=tuple(rng.uniform(0.3, 1.1, 4)), other_phases=tuple(rng.uniform(0, 2 * math.pi, 4)))

    def shoulders(self) -> tuple[np.ndarray, np.ndarray]:
        """Right (image left) and left (image right) shoulder positions."""
        s = self.scale
        return (np.array([self.cx - 11 * s, self.cy - 20 * s]), np.array([self.cx + 11 * s, self.cy - 20 * s]))

    def hands(self, gesture: int | None, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Target positions of the right and left hands for ``gesture`` (0-based, None = rest) at ``t`` s."""
        s, cx, cy = self.scale, self.cx, self.cy
        right_sh, left_sh = self.shoulders()
        reach = (_UPPER + _FORE - 1.0) * s
        rest_r = right_sh + np.array([-4 * s, 27 * s])
        rest_l = left_sh + np.array([4 * s, 27 * s])
        phase = 2 * math.pi * self.speed * t
        if gesture is None:
            return rest_r, rest_l
        if gesture == 0:  # hand clap
            gap = 2.5 * s + 9 * s * (1 + math.cos(2.0 * phase)) / 2
            return np.array([cx - gap, cy - 6 * s]), np.array([cx + gap, cy - 6 * s])
        if gesture in (1, 2):  # hand wave: hand above the shoulder, swinging sideways
            sway = 7 * s * math.sin(2.0 * phase)
            if gesture == 1:
                return right_sh + np.array([-6 * s + sway, -22 * s]), rest_l
            return rest_r, left_sh + np.array([6 * s + sway, -22 * s])
        if 3 <= gesture <= 6:  # whole-arm circles
            turn = phase if gesture in (3, 5) else -phase  # image y points down: growing angle is clockwise
            if gesture in (3, 4):
                return right_sh + reach * np.array([math.cos(turn + math.pi), math.sin(turn + math.pi)]), rest_l
            return rest_r, left_sh + reach * np.array([math.cos(turn), math.sin(turn)])
        if gesture == 7:  # arm roll: hands circling each other in front of the chest
            a = 1.6 * phase
            center = np.array([cx, cy - 2 * s])
            return (center + 5 * s * np.array([math.cos(a) - 0.6, math.sin(a)]),
                    center + 5 * s * np.array([math.cos(a + math.pi) + 0.6, math.sin(a + math.pi)]))
        if gesture == 8:  # air drums: alternate strikes at waist height
            return (np.array([cx - 12 * s, cy + 3 * s + 6 * s * math.sin(2.0 * phase)]),
                    np.array([cx + 12 * s, cy + 3 * s - 6 * s * math.sin(2.0 * phase)]))
        if gesture == 9:  # air guitar: left arm out on the neck, right hand strumming at the hip
            return (np.array([cx - 3 * s, cy + 6 * s + 5 * s * math.sin(2.5 * phase)]),
                    np.array([cx + 25 * s + 2 * s * math.sin(0.5 * phase), cy - 10 * s]))
        f, p = self.other_freqs, self.other_phases  # other: the subject's own smooth random movement
        return (rest_r + 9 * s * np.array([math.sin(phase * f[0] + p[0]), math.sin(phase * f[1] + p[1]) - 1]),
                rest_l + 9 * s * np.array([math.sin(phase * f[2] + p[2]), math.sin(phase * f[3] + p[3]) - 1]))


def _elbow(shoulder: np.ndarray, hand: np.ndarray, upper: float, fore: float, outward: float) -> tuple:
    """Two-link inverse kinematics: the elbow bending to the ``outward`` side (-1 image left, +1 right)."""
    delta = hand - shoulder
    dist = float(np.hypot(*delta))
    dist = min(max(dist, abs(upper - fore) + 1e-3), upper + fore - 1e-3)
    hand = shoulder + delta / max(float(np.hypot(*delta)), 1e-9) * dist
    base = math.atan2(delta[1], delta[0])
    bend = math.acos(max(-1.0, min(1.0, (upper ** 2 + dist ** 2 - fore ** 2) / (2 * upper * dist))))
    options = [shoulder + upper * np.array([math.cos(base + sgn * bend), math.sin(base + sgn * bend)])
               for sgn in (1, -1)]
    elbow = max(options, key=lambda e: outward * e[0] + 0.3 * e[1])
    return elbow, hand


def _p(point) -> tuple[int, int]:
    return int(round(point[0] * _ONE)), int(round(point[1] * _ONE))


def render_gesture(subject: Subject, gesture: int | None, t: float, background: np.ndarray,
                   blend: float = 1.0) -> np.ndarray:
    """The grey frame (float32 DN, ``[128, 128]``) of ``subject`` doing ``gesture`` at ``t`` s.

    ``blend`` in [0, 1] moves the hands from the rest pose (0) to the gesture (1): gestures start
    and end smoothly instead of jumping.
    """
    img = background.copy()
    s = subject.scale
    bob = 0.4 * s * math.sin(2 * math.pi * 0.7 * t)
    cx, cy = subject.cx, subject.cy + bob
    aa = cv2.LINE_AA
    cv2.ellipse(img, _p((cx, cy)), (int(12 * s * _ONE), int(22 * s * _ONE)), 0, 0, 360, subject.body_dn, -1, aa,
                _SHIFT)
    cv2.circle(img, _p((cx, cy - 31 * s)), int(7 * s * _ONE), subject.body_dn + 25, -1, aa, _SHIFT)
    for dx in (-5 * s, 5 * s):
        cv2.line(img, _p((cx + dx, cy + 18 * s)), _p((cx + 1.3 * dx, cy + 45 * s)), subject.body_dn,
                 max(2, int(5 * s)), aa, _SHIFT)
    rest = subject.hands(None, t)
    hands = [r + blend * (h - r) for r, h in zip(rest, subject.hands(gesture, t), strict=True)]
    for shoulder, hand, outward in zip(subject.shoulders(), hands, (-1.0, 1.0), strict=True):
        shoulder = shoulder + np.array([0.0, bob])
        elbow, hand = _elbow(shoulder, hand + np.array([0.0, bob]), _UPPER * s, _FORE * s, outward)
        thick = max(2, int(round(4 * s)))
        cv2.line(img, _p(shoulder), _p(elbow), subject.arm_dn, thick, aa, _SHIFT)
        cv2.line(img, _p(elbow), _p(hand), subject.arm_dn, thick, aa, _SHIFT)
        cv2.circle(img, _p(hand), int(2.8 * s * _ONE), subject.arm_dn + 40, -1, aa, _SHIFT)
    return img


def write_gesture_trial(aedat_path: os.PathLike | str, subject: Subject, lighting: str, *, seconds: float,
                        seed: int, fps: float = 250.0, progress: bool = True) -> np.ndarray:
    """Write one trial (the 11 gestures, ``seconds`` each) and its labels CSV; return the label rows."""
    if lighting not in LIGHTINGS:
        raise ValueError(f"unknown lighting {lighting!r}; known: {', '.join(LIGHTINGS)}")
    aedat_path = Path(aedat_path)
    rng = np.random.default_rng(seed)
    background_dn, noise = LIGHTINGS[lighting]
    background = (background_dn * (1 + 0.15 * smooth_noise((128, 128), 5, rng))).astype(np.float32)
    sensor = sensor_params("noisy", shot_noise_rate_hz=0.1 * noise, leak_rate_hz=0.05 * noise,
                           threshold_sigma=0.02 + 0.01 * noise)
    slot = seconds + REST_S
    starts = REST_S + slot * np.arange(len(GESTURE_CLASSES))
    labels = np.stack([np.arange(1, len(GESTURE_CLASSES) + 1), np.rint(starts * 1e6),
                       np.rint((starts + seconds) * 1e6)], 1).astype(np.int64)
    times = frame_times_us(REST_S + slot * len(GESTURE_CLASSES), fps)

    def frames():
        for t_us in times:
            t = t_us * 1e-6
            k = int((t - REST_S) // slot)
            into = t - REST_S - k * slot
            active = 0 <= k < len(GESTURE_CLASSES) and into < seconds
            blend = min(1.0, into / _EASE_S, (seconds - into) / _EASE_S) if active else 0.0
            yield t_us, render_gesture(subject, k if active else None, t, background, blend)

    emulator = EventEmulator(GESTURE_SIZE, sensor, seed=seed)
    with open_writer(aedat_path, GESTURE_SIZE, format="aedat31") as writer:
        record_frames(frames(), emulator, writer, total=len(times), desc=aedat_path.stem, progress=progress)
    np.savetxt(aedat_path.with_name(aedat_path.stem + "_labels.csv"), labels, fmt="%d", delimiter=",",
               header="class,startTime_usec,endTime_usec", comments="")
    return labels


def write_gesture_dataset(out_dir: os.PathLike | str, *, users: int = 4, test_users: int = 1,
                          seconds: float = 2.0, seed: int = 0, fps: float = 250.0,
                          progress: bool = True) -> list[Path]:
    """Write a DVS128 Gesture-layout set: one trial per user, lightings in turn, split lists.

    Args:
        out_dir: dataset root (created).
        users: number of subjects; the last ``test_users`` are numbered from 24 (the real test users).
        seconds: length of each gesture.
        seed: seeds everything; user ``k`` uses ``seed * 1000 + k``.
        fps: rendering rate.

    Returns:
        The ``.aedat`` paths written.
    """
    if users < 2 or not 1 <= test_users < users:
        raise ValueError(f"need users >= 2 and 1 <= test_users < users, got users={users}, test_users={test_users}")
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    n_train = users - test_users
    numbers = list(range(1, n_train + 1)) + list(range(24, 24 + test_users))
    names = list(LIGHTINGS)
    paths = []
    for k, number in enumerate(tqdm(numbers, desc="subjects", unit="trial", disable=not progress)):
        user_seed = seed * 1000 + k
        subject = Subject.random(np.random.default_rng(user_seed))
        path = root / f"user{number:02d}_{names[k % len(names)]}.aedat"
        write_gesture_trial(path, subject, names[k % len(names)], seconds=seconds, seed=user_seed, fps=fps,
                            progress=progress)
        paths.append(path)
    (root / "gesture_mapping.csv").write_text("action,label\n" + "".join(
        f"{name},{k}\n" for k, name in enumerate(MAPPING_NAMES, start=1)))
    (root / "trials_to_train.txt").write_text("".join(f"{p.name}\n" for p in paths[:n_train]))
    (root / "trials_to_test.txt").write_text("".join(f"{p.name}\n" for p in paths[n_train:]))
    return paths
