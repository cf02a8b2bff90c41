"""N-MNIST in its official layout: the shared real recordings, and fixture trees written with evstream's ATIS writer."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
import tonic.io
from tonic.datasets.nmnist import stabilize as tonic_stabilize

from evstream.datasets import NMNIST
from evstream.events import make_events
from evstream.io import read_events, write_events
from tests.conftest import SHARED

NMNIST_SMALL = SHARED / "datasets/nmnist_small"
TONIC_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
DIGIT_COUNTS = {0: 97, 1: 116, 2: 99, 3: 93, 4: 105, 5: 92, 6: 94, 7: 117, 8: 87, 9: 100}  # PROVENANCE.md


def tonic_events(path, first_saccade_only=False, stabilize=False) -> np.ndarray:
    """tonic's N-MNIST sample: ``read_mnist_file``, then ``NMNIST.__getitem__``'s rules (t < 1e5, ``stabilize``)."""
    events = tonic.io.read_mnist_file(str(path), dtype=TONIC_DTYPE)
    if first_saccade_only:
        events = events[events["t"] < 1e5]
    return tonic_stabilize(events) if stabilize else events


def assert_same_events(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert len(ours) == len(theirs)
    for name in "xytp":
        np.testing.assert_array_equal(ours[name].astype(np.int64), theirs[name])


@pytest.fixture(scope="module")
def real(shared):
    return NMNIST(NMNIST_SMALL, "train")


@pytest.fixture
def tree(tmp_path, real):
    """``Train/{3,7}`` and ``Test/{0,5}``: real recordings re-written with the ATIS writer, plus a crafted
    ``Test/5`` file with events at the first-saccade and stabilisation boundaries."""
    sources = {digit: [s.path for s in real.samples if s.label == digit][:2] for digit in (0, 3, 5, 7)}
    for split, digits in (("Train", (3, 7)), ("Test", (0, 5))):
        for digit in digits:
            folder = tmp_path / split / str(digit)
            folder.mkdir(parents=True)
            for source in sources[digit]:
                write_events(folder / source.name, read_events(source, sensor_size=(34, 34, 2)), (34, 34, 2))
    edges = make_events([0, 33, 1, 30, 4, 2, 33], [0, 33, 5, 6, 7, 30, 0],
                        [0, 99_999, 100_000, 105_000, 105_001, 210_001, 320_000], [1, 0, 1, 1, 0, 0, 1])
    write_events(tmp_path / "Test/5/99999.bin", edges, (34, 34, 2))
    return tmp_path, sources


def test_the_shared_recordings_decode_as_tonic_reads_them(real):
    assert len(real) == 1000 and Counter(real.labels) == DIGIT_COUNTS
    assert real.sensor_size == (34, 34, 2) and len(real.classes) == 10
    paths = [s.path for s in real.samples]
    assert paths == sorted(paths) and all(s.path.parent.name == str(s.label) for s in real.samples)
    for index in range(0, 1000, 50):
        events, label = real[index]
        assert label == int(real.samples[index].path.parent.name)
        assert_same_events(events, tonic_events(real.samples[index].path))


def test_fixture_tree_splits_labels_and_decodes(tree):
    root, sources = tree
    train, test = NMNIST(root, "train"), NMNIST(root, "test")
    assert train.labels == [3, 3, 7, 7] and test.labels == [0, 0, 5, 5, 5]
    assert [s.path.name for s in test.samples][-1] == "99999.bin"
    for data in (train, test):
        for index, sample in enumerate(data.samples):
            assert_same_events(data.events(index), tonic_events(sample.path))
    np.testing.assert_array_equal(train[2][0], read_events(sources[7][0], sensor_size=(34, 34, 2)))


@pytest.mark.parametrize("first_saccade_only, stabilize", [(True, False), (False, True), (True, True)])
def test_tonic_options_follow_tonic(tree, real, first_saccade_only, stabilize):
    root, _ = tree
    test = NMNIST(root, "test", first_saccade_only=first_saccade_only, stabilize=stabilize)
    for index, sample in enumerate(test.samples):
        assert_same_events(test.events(index), tonic_events(sample.path, first_saccade_only, stabilize))
    options = NMNIST(NMNIST_SMALL, "train", first_saccade_only=first_saccade_only, stabilize=stabilize)
    for index in (0, 500, 999):
        assert_same_events(options.events(index), tonic_events(real.samples[index].path, first_saccade_only,
                                                                  stabilize))


def test_first_saccade_boundary_by_hand(tree):
    root, _ = tree
    test = NMNIST(root, "test", first_saccade_only=True)
    np.testing.assert_array_equal(test.events(4)["t"], [0, 99_999])  # t < 100 ms: 100_000 is the second saccade
    stabilized = NMNIST(root, "test", stabilize=True).events(4)
    # x + 4 - 3.5 t / 105 ms, y + 2 - 7 t / 105 ms (then the 2nd and 3rd saccades), half to even, outside dropped:
    # (0, 0, 0) -> (4, 2); (33, 33, 99999) -> x 33.67 dropped; (1, 5, 1e5) -> (1.67, 0.33) -> (2, 0);
    # (30, 6, 105000) -> (30.5, 1) -> (30, 1); (4, 7, 105001) -> (4.5, 2) -> (4, 2);
    # (2, 30, 210001) -> (-1, ...) dropped;
    # (33, 0, 320000) -> (33 + 4 - 7 + 7.33, 2) -> 37.33 dropped
    assert stabilized[["x", "y", "t"]].tolist() == [(4, 2, 0), (2, 0, 100_000), (30, 1, 105_000), (4, 2, 105_001)]


@dataclass(frozen=True)
class Count:
    """A transform with stable parameters (none), so its results are cached."""

    def __call__(self, events):
        return np.array([len(events)])


def test_options_are_part_of_the_cache_key(tree, tmp_path):
    root, _ = tree
    count = Count()
    whole = NMNIST(root, "test", transform=count, cache_dir=tmp_path / "cache")
    first = NMNIST(root, "test", transform=count, cache_dir=tmp_path / "cache", first_saccade_only=True)
    assert int(whole[4][0][0]) == 7 and int(first[4][0][0]) == 2
    assert int(NMNIST(root, "test", transform=count, cache_dir=tmp_path / "cache")[4][0][0]) == 7  # from the cache
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_missing_split_names_the_folder_and_the_layout(tree):
    root, _ = tree
    for name in ("Train", "Test"):
        (root / name).rename(root / f"{name}.moved")
    with pytest.raises(FileNotFoundError, match=r"test folder .*/Test is missing; expected <root>/Train/<digit>"):
        NMNIST(root, "test")
    with pytest.raises(FileNotFoundError, match=r"train folder .*/Train is missing"):
        NMNIST(root, "train")
    with pytest.raises(ValueError, match="split must be"):
        NMNIST(root, "val")


def test_wrong_layout_is_named(tmp_path, real):
    events = read_events(real.samples[0].path, sensor_size=(34, 34, 2))
    (tmp_path / "Train/zero").mkdir(parents=True)
    write_events(tmp_path / "Train/zero/00002.bin", events, (34, 34, 2))
    with pytest.raises(FileNotFoundError, match=r"Train/zero is not a digit folder 0-9; expected <root>/Train"):
        NMNIST(tmp_path, "train")
    (tmp_path / "Train/zero").rename(tmp_path / "Test")
    with pytest.raises(FileNotFoundError, match="no train samples"):
        NMNIST(tmp_path, "train")  # an empty Train/
    write_events(tmp_path / "Train/00002.bin", events, (34, 34, 2))
    with pytest.raises(FileNotFoundError, match=r"Train/00002.bin is outside the digit folders"):
        NMNIST(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="Test/00002.bin is outside the digit folders"):
        NMNIST(tmp_path, "test")
