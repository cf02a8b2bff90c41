"""The representation cache follows the trial list, the files and the transform; unstable transforms are not cached."""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from evstream.datasets import DVSGesture
from evstream.datasets.dvs_gesture import read_labels
from evstream.train.tasks.classification import FrameStack

BUNDLED = Path(__file__).resolve().parents[2] / "recordings" / "dvs_gesture"
TRIALS = ("user01_natural", "user24_fluorescent")
STACK = FrameStack((128, 128, 2), dt_us=50_000, ds=8)


@pytest.fixture
def two_trials(tmp_path):
    """A copy of the bundled gesture set with both trials listed for training."""
    root = tmp_path / "gesture"
    root.mkdir()
    for trial in TRIALS:
        for suffix in (".aedat", "_labels.csv"):
            shutil.copyfile(BUNDLED / f"{trial}{suffix}", root / f"{trial}{suffix}")
    (root / "trials_to_train.txt").write_text("".join(f"{t}.aedat\n" for t in TRIALS))
    (root / "trials_to_test.txt").write_text(f"{TRIALS[1]}.aedat\n")
    return root


def _keys(cache: Path) -> set[str]:
    return {p.name for p in cache.iterdir()}


def _assert_right(dataset: DVSGesture, trial: str) -> None:
    """Every cached sample holds its own window's frames and its trial's label."""
    labels = [cls for cls, _, _ in read_labels(dataset.root / f"{trial}_labels.csv")]
    assert dataset.labels == labels
    for index in range(len(dataset)):
        frames, label = dataset[index]
        np.testing.assert_array_equal(frames, STACK(dataset.events(index)))
        assert label == labels[index]


def test_removing_a_trial_changes_the_key_and_labels_stay_right(two_trials, tmp_path):
    cache = tmp_path / "cache"
    both = DVSGesture(two_trials, "train", transform=STACK, cache_dir=cache)
    assert len(both) == 22
    for index in range(len(both)):
        both[index]  # fills the cache: user01's 11 windows first, then user24's
    (two_trials / "trials_to_train.txt").write_text(f"{TRIALS[1]}.aedat\n")
    one = DVSGesture(two_trials, "train", transform=STACK, cache_dir=cache)
    _assert_right(one, TRIALS[1])  # index 0 is now user24's first window: the old key served user01's
    assert len(_keys(cache)) == 2


def test_touching_a_file_invalidates_the_cache(two_trials, tmp_path):
    cache = tmp_path / "cache"
    data = DVSGesture(two_trials, "test", transform=STACK, cache_dir=cache)
    first = data[0][0]
    trial = two_trials / f"{TRIALS[1]}.aedat"
    stat = trial.stat()
    os.utime(trial, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    again = DVSGesture(two_trials, "test", transform=STACK, cache_dir=cache)
    assert again._cache.folder != data._cache.folder and len(_keys(cache)) == 2
    assert not any(again._cache.folder.iterdir())  # nothing served from before the touch
    np.testing.assert_array_equal(again[0][0], first)


def test_same_files_same_key(two_trials, tmp_path):
    cache = tmp_path / "cache"
    DVSGesture(two_trials, "test", transform=STACK, cache_dir=cache)[0]
    DVSGesture(two_trials, "test", transform=FrameStack((128, 128, 2), dt_us=50_000, ds=8), cache_dir=cache)[0]
    assert len(_keys(cache)) == 1
    DVSGesture(two_trials, "test", transform=FrameStack((128, 128, 2), dt_us=25_000, ds=8), cache_dir=cache)[0]
    assert len(_keys(cache)) == 2  # another parameter, another key


@dataclass(frozen=True)
class Counts:
    """A transform with stable parameters (its repr names them)."""

    minlength: int = 2

    def __call__(self, events):
        return np.bincount(events["p"], minlength=self.minlength)


def _plain(events):
    return np.bincount(events["p"], minlength=2)


@pytest.mark.parametrize("transform", [lambda events: np.bincount(events["p"], minlength=2), _plain],
                         ids=["lambda", "function"])
def test_a_transform_without_stable_parameters_is_not_cached(two_trials, tmp_path, transform):
    cache = tmp_path / "cache"
    with pytest.warns(UserWarning, match="no stable parameters .* not cached"):
        data = DVSGesture(two_trials, "test", transform=transform, cache_dir=cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: reading samples warns no more
        counts = data[0][0]
        data[1]
    np.testing.assert_array_equal(counts, Counts()(data.events(0)))
    assert not cache.exists() or not any(cache.rglob("*.npy"))


def test_cached_arrays_are_read_memory_mapped(two_trials, tmp_path):
    data = DVSGesture(two_trials, "test", transform=Counts(), cache_dir=tmp_path / "cache")
    computed = data[0][0]
    cached = data[0][0]
    assert isinstance(cached, np.memmap) and not isinstance(computed, np.memmap)
    np.testing.assert_array_equal(cached, computed)
    assert cached.flags.writeable  # copy-on-write: torch.as_tensor takes it without a warning
