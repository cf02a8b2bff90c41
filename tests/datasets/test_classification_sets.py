"""Loaders on fixture trees built in the datasets' exact layouts from the shared real files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from evstream.datasets import CIFAR10DVS, DVSGesture, NCaltech101
from tests.conftest import RECORDINGS, VECTORS, load_reference

WINDOW_COUNTS = [56_151, 72_640, 84_376, 47_861, 56_103, 52_204]  # vectors/aedat31/README.md


@pytest.fixture
def gesture_root(tmp_path, shared):
    for trial in ("user01_lab", "user24_led"):
        (tmp_path / f"{trial}.aedat").symlink_to(VECTORS / "aedat31/dvs128_movingbox.aedat")
        (tmp_path / f"{trial}_labels.csv").symlink_to(VECTORS / "aedat31/dvs128_movingbox_labels.csv")
    (tmp_path / "trials_to_train.txt").write_text("user01_lab.aedat\n")
    (tmp_path / "trials_to_test.txt").write_text("user24_led.aedat\n")
    return tmp_path


def test_dvs_gesture_samples_labels_and_windows(gesture_root):
    train, test = DVSGesture(gesture_root, "train"), DVSGesture(gesture_root, "test")
    assert len(train) == len(test) == 6
    assert train.labels == [2, 6, 0, 7, 7, 10]
    expected = load_reference(VECTORS / "aedat31/expected.npy")
    for index, count in enumerate(WINDOW_COUNTS):
        events, label = train[index]
        sample = train.samples[index]
        assert len(events) == count and label == train.labels[index]
        first = np.searchsorted(expected["t"], sample.start_us)
        np.testing.assert_array_equal(events, expected[first:first + count])


@dataclass(frozen=True)
class PolarityCounts:
    """Events per polarity: a transform whose repr names its parameters, so it is cached."""

    minlength: int = 2

    def __call__(self, events):
        return np.bincount(events["p"], minlength=self.minlength)


def test_dvs_gesture_cache_and_transform(gesture_root, tmp_path):
    data = DVSGesture(gesture_root, "test", transform=PolarityCounts(), cache_dir=tmp_path / "cache")
    first = data[1][0]
    assert first.sum() == WINDOW_COUNTS[1]
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    np.testing.assert_array_equal(data[1][0], first)


def test_wrong_layout_explains_the_expected_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="trials_to_train.txt"):
        DVSGesture(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="<class>"):
        CIFAR10DVS(tmp_path, "train")


def test_cifar10_dvs_split_and_axes(tmp_path, shared):
    for name in ("airplane", "truck"):
        (tmp_path / name).mkdir()
        for k in range(10):
            (tmp_path / name / f"cifar10_{name}_{k}.aedat").symlink_to(
                RECORDINGS / "aedat2/MovingDarkBox_dvs128.aedat")
    train, test = CIFAR10DVS(tmp_path, "train"), CIFAR10DVS(tmp_path, "test")
    assert len(train) == 18 and len(test) == 2
    assert test.labels == [0, 9] and [s.path.name for s in test.samples] == ["cifar10_airplane_9.aedat",
                                                                           "cifar10_truck_9.aedat"]
    ref = load_reference(RECORDINGS / "aedat2/MovingDarkBox_dvs128.aedat.ref.npy")
    events, _ = test[0]
    np.testing.assert_array_equal(events["x"], 127 - ref["y"])
    np.testing.assert_array_equal(events["y"], ref["x"])
    np.testing.assert_array_equal(events["t"], ref["t"])


def test_ncaltech101_classes_and_split(tmp_path, shared):
    source = RECORDINGS / "atis_bin/ncaltech101_Faces_easy_image_0001.bin"
    for name, count in (("Faces_easy", 10), ("BACKGROUND_Google", 3)):
        folder = tmp_path / "Caltech101" / name
        folder.mkdir(parents=True)
        for k in range(count):
            (folder / f"image_{k + 1:04d}.bin").symlink_to(source)
    train, test = NCaltech101(tmp_path, "train"), NCaltech101(tmp_path, "test")
    assert train.classes == ("BACKGROUND_Google", "Faces_easy")
    assert len(train) == 3 + 9 and len(test) == 1 and test.labels == [1]
    np.testing.assert_array_equal(test[0][0], load_reference(source.with_name(source.name + ".ref.npy")))


def test_the_synthetic_gesture_recording_reads_unchanged():
    root = Path(__file__).resolve().parents[2] / "recordings/dvs_gesture"
    train, test = DVSGesture(root, "train"), DVSGesture(root, "test")
    assert sorted(train.labels) == list(range(11)) and sorted(test.labels) == list(range(11))
    events, label = test[3]
    assert len(events) > 1000 and label == test.labels[3]
