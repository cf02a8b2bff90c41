"""Gestures: DVS128 Gesture layout read back, labels, and classes that differ in where their events fall."""

from __future__ import annotations

import numpy as np
import pytest

from evstream import read_events
from evstream.sim import frames_to_events
from evstream.sim.gesture import GESTURE_CLASSES, Subject, render_gesture, write_gesture_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvsgesture")
    return root, write_gesture_dataset(root, users=2, test_users=1, seconds=0.3, seed=1, fps=100.0,
                                       progress=False)


def test_layout_is_read_back(dataset):
    root, paths = dataset
    assert [p.name for p in paths] == ["user01_natural.aedat", "user24_fluorescent.aedat"]
    assert (root / "trials_to_train.txt").read_text() == "user01_natural.aedat\n"
    assert (root / "trials_to_test.txt").read_text() == "user24_fluorescent.aedat\n"
    mapping = (root / "gesture_mapping.csv").read_text().splitlines()
    assert mapping[0] == "action,label" and mapping[1] == "hand_clapping,1" and mapping[11] == "other_gestures,11"
    for path in paths:
        events = read_events(path)
        assert events["x"].max() < 128 and events["y"].max() < 128
        assert np.all(np.diff(events["t"]) >= 0)
        lines = path.with_name(path.stem + "_labels.csv").read_text().splitlines()
        assert lines[0] == "class,startTime_usec,endTime_usec"
        labels = np.array([[int(v) for v in line.split(",")] for line in lines[1:]])
        np.testing.assert_array_equal(labels[:, 0], np.arange(1, 12))
        np.testing.assert_array_equal(labels[:, 1], 500_000 + 800_000 * np.arange(11))
        np.testing.assert_array_equal(labels[:, 2] - labels[:, 1], 300_000)
        inside = sum(np.count_nonzero((events["t"] >= s) & (events["t"] < e)) for _, s, e in labels)
        span = events["t"][-1] - events["t"][0]
        inside_rate = inside / (11 * 300_000)
        assert inside_rate > 3 * (len(events) - inside) / (span - 11 * 300_000)  # rests are calm
        counts = [np.count_nonzero((events["t"] >= s) & (events["t"] < e)) for _, s, e in labels]
        assert min(counts) > 300


def _class_events(gesture: int, subject: Subject) -> np.ndarray:
    background = np.full((128, 128), 140.0, np.float32)
    times = np.arange(121) * 10_000  # 1.2 s at 100 frames/s
    frames = [render_gesture(subject, gesture, t * 1e-6, background) for t in times]
    return frames_to_events(frames, times, "clean", seed=0)


def test_classes_differ_in_spatial_distribution():
    subject = Subject(scale=1.0, speed=1.0, cx=64.0, cy=66.0, body_dn=45.0, arm_dn=90.0,
                      other_freqs=(0.5, 0.7, 0.9, 0.6), other_phases=(0.0, 1.0, 2.0, 3.0))
    maps = []
    for gesture in range(len(GESTURE_CLASSES)):
        events = _class_events(gesture, subject)
        assert len(events) > 500, GESTURE_CLASSES[gesture]
        hist = np.histogram2d(events["y"], events["x"], bins=8, range=[[0, 128], [0, 128]])[0]
        maps.append(hist / hist.sum())
        left = np.mean(events["x"] < 64)
        if GESTURE_CLASSES[gesture] in ("right hand wave", "right arm clockwise", "right arm counter-clockwise"):
            assert left > 0.65  # the subject's right arm is on the image's left
        if GESTURE_CLASSES[gesture] in ("left hand wave", "left arm clockwise", "left arm counter-clockwise"):
            assert left < 0.35
        if GESTURE_CLASSES[gesture] in ("hand clap", "arm roll", "air drums"):
            assert 0.35 < left < 0.65  # both hands, symmetric
        if "wave" in GESTURE_CLASSES[gesture]:
            assert np.mean(events["y"] < 40) > 0.5  # hands above the shoulders
    distance = np.array([[np.abs(a - b).sum() for b in maps] for a in maps])
    off_diagonal = distance[~np.eye(len(maps), dtype=bool)]
    assert off_diagonal.min() > 0.1


def test_clockwise_and_counter_clockwise_differ_in_time():
    subject = Subject(1.0, 1.0, 64.0, 66.0, 45.0, 90.0, (0.5,) * 4, (0.0,) * 4)
    quadrant = []
    for gesture in (3, 4):  # right arm clockwise / counter-clockwise
        events = _class_events(gesture, subject)
        early = events[events["t"] < 200_000]  # the hand starts at the left and turns up (cw) or down (ccw)
        quadrant.append(np.mean(early["y"] < 46))
    assert quadrant[0] > 0.6 > 0.4 > quadrant[1]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="test_users"):
        write_gesture_dataset(tmp_path, users=1)
    with pytest.raises(ValueError, match="positive"):
        write_gesture_dataset(tmp_path, seconds=0)
