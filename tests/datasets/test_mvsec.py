"""MVSEC depth loader: the shared MVSEC-layout vector, fixture trees in the MVSEC layout, splits, depth cleaning."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from evstream.datasets.mvsec import SCENARIOS, CumulativeWindow, HistogramWindow, MVSECDepth, clean_depth
from evstream.io import write_events
from tests.conftest import load_reference

H, W = 260, 346


def _link_vector(shared, folder, name="mvsec_like"):
    for kind in ("data", "gt"):
        (folder / f"{name}_{kind}.hdf5").symlink_to(shared / "vectors" / "mvsec" / f"mvsec_like_{kind}.hdf5")


def _write_sequence(folder, name, depth_times_s, event_times_us, depth_value=5.0, cameras=("left",), marked=None):
    """A small MVSEC-layout pair: one ON event per time at pixel (i % W, 7) per camera; depth maps equal to
    ``depth_value`` (an HDF5 fill value), with rows 0-2 = NaN, 0, 500 m in the ``marked`` maps (default all)."""
    events = np.zeros(len(event_times_us), dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])
    events["t"] = event_times_us
    events["x"] = np.arange(len(events)) % W
    events["y"] = 7
    events["p"] = 1
    for i, camera in enumerate(cameras):
        write_events(folder / f"{name}_data.hdf5", events, (W, H, 2), format="mvsec", camera=camera,
                     mode="a" if i else "w")
    n = len(depth_times_s)
    special = np.full((H, W), depth_value, np.float32)
    special[0], special[1], special[2] = np.nan, 0.0, 500.0
    with h5py.File(folder / f"{name}_gt.hdf5", "w") as f:
        maps = f.create_dataset("davis/left/depth_image_rect", (n, H, W), np.float32, chunks=(1, H, W),
                                fillvalue=depth_value)
        for k in range(n) if marked is None else marked:
            maps[k] = special
        f.create_dataset("davis/left/depth_image_rect_ts", data=np.asarray(depth_times_s, np.float64))


def test_vector_windows_events_and_depth(shared, tmp_path):
    _link_vector(shared, tmp_path)
    expected = load_reference(shared / "vectors" / "mvsec" / "expected_events.npy")
    # a single sequence is cut in time: 5 depth maps, the first ceil(0.8 * 5) = 4 train
    train = MVSECDepth(tmp_path, "train", scenario="synthetic")
    test = MVSECDepth(tmp_path, "test", scenario="synthetic")
    base = 1_500_000_000_000_000
    # depth at .10 s has no event in its window (events start at .123456 s): dropped
    assert [(s.index, s.start_us - base, s.end_us - base) for s in train.samples] == [
        (1, 100_000, 150_000), (2, 150_000, 200_000), (3, 200_000, 250_000)]
    assert [(s.index, s.end_us - base) for s in test.samples] == [(4, 300_000)]
    events, depth = train[1]
    window = expected[(expected["t"] >= base + 150_000) & (expected["t"] < base + 200_000)]
    assert len(events) == 1 and len(events[0]) == len(window) > 10_000
    np.testing.assert_array_equal(events[0], window)
    with h5py.File(shared / "vectors" / "mvsec" / "mvsec_like_gt.hdf5", "r") as f:
        raw = f["davis/left/depth_image_rect"][2]
    np.testing.assert_array_equal(np.isnan(depth), np.isnan(raw))
    np.testing.assert_allclose(depth[~np.isnan(depth)], np.minimum(raw[~np.isnan(raw)], 40.0))
    assert depth.dtype == np.float32 and depth.shape == (H, W)


def test_vector_representations_count_the_window(shared, tmp_path):
    _link_vector(shared, tmp_path)
    stack = MVSECDepth(tmp_path, "train", scenario="synthetic", transform=CumulativeWindow(5))
    hist = MVSECDepth(tmp_path, "train", scenario="synthetic", transform=HistogramWindow())
    events = stack.events(2)[0]
    x, _ = stack[2]
    h, _ = hist[2]
    assert x.shape == (5, 2, H, W) and h.shape == (1, 2, H, W)
    assert x[-1].sum() == h.sum() == len(events)
    assert h[0, 1].sum() == (events["p"] == 1).sum()
    assert np.all(np.diff(x, axis=0) >= 0)


def test_cache_returns_the_same_arrays(shared, tmp_path):
    root = tmp_path / "seq"
    root.mkdir()
    _link_vector(shared, root)
    ds = MVSECDepth(root, "train", scenario="synthetic", transform=CumulativeWindow(3), cache_dir=tmp_path / "c")
    first = ds[0][0]
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 1
    np.testing.assert_array_equal(ds[0][0], first)


def test_indoor_split_ranges_and_clipping(tmp_path):
    folder = tmp_path / "indoor_flying"
    folder.mkdir()
    times = np.arange(1300) * 0.05 + 10.0  # 20 Hz from t = 10 s
    ev = np.arange(int(9.9e6), int(75e6), 200_000, dtype=np.int64)
    for seq in ("indoor_flying1", "indoor_flying2", "indoor_flying3"):
        _write_sequence(folder, seq, times, ev, depth_value=12.0, marked=[139])
    test = MVSECDepth(tmp_path, "test", scenario="indoor1")
    assert test.d_max == 10.0
    # StereoSpike slices indoor_flying1 as [139, 1201)
    assert [s.index for s in test.samples] == list(range(139, 1201))
    train = MVSECDepth(tmp_path, "train", scenario="indoor1")
    assert len(train) == (1300 - 159) + (1300 - 124)  # both ranges cut at the 1300 maps written
    _, depth = test[0]
    assert np.isnan(depth[0]).all() and np.isnan(depth[1]).all()  # NaN and 0 -> no depth
    assert (depth[2] == 10.0).all() and (depth[3:] == 10.0).all()  # 500 m and 12 m clip to 10 m


def test_outdoor_split_and_stereo(tmp_path):
    times = [1.0, 1.05, 1.10]
    ev = np.arange(900_000, 1_100_000, 1000, dtype=np.int64)
    for seq in ("outdoor_day1", "outdoor_day2", "outdoor_night1", "outdoor_night2", "outdoor_night3"):
        _write_sequence(tmp_path, seq, times, ev, cameras=("left", "right"))
    train = MVSECDepth(tmp_path, "train", scenario="outdoor", cameras=("left", "right"),
                       transform=CumulativeWindow(2))
    test = MVSECDepth(tmp_path, "test", scenario="outdoor")
    assert {s.data_path.name for s in train.samples} == {"outdoor_day2_data.hdf5"}
    assert len(test) == 4 * 3
    assert [s.data_path.name[:-10] for s in test.samples[::3]] == [n for n, _ in SCENARIOS["outdoor"].test]
    x, depth = train[1]
    assert x.shape == (2, 4, H, W)
    np.testing.assert_array_equal(x[:, :2], x[:, 2:])  # same events written to both cameras
    assert x[-1, 1].sum() == 50  # 50 events in [1.0, 1.05) s
    assert np.nanmax(depth) == 80.0


def test_synthetic_recording_splits_by_sequence(tmp_path):
    ev = np.arange(0, 300_000, 1000, dtype=np.int64)
    for name in ("sim_b", "sim_a", "sim_z"):
        _write_sequence(tmp_path, name, [0.05, 0.1, 0.15], ev)
    assert {s.data_path.name for s in MVSECDepth(tmp_path, "test", scenario="synthetic").samples} == {
        "sim_z_data.hdf5"}
    assert len(MVSECDepth(tmp_path, "train", scenario="synthetic")) == 6
    # "all": a folder of held-out sequences, every one whole, in name order
    every = MVSECDepth(tmp_path, "all", scenario="synthetic")
    assert [(s.data_path.name[:-10], s.index) for s in every.samples] == [
        (name, i) for name in ("sim_a", "sim_b", "sim_z") for i in range(3)]


def test_clean_depth_and_errors(tmp_path):
    np.testing.assert_array_equal(clean_depth(np.array([np.nan, 0.0, -1.0, 3.0, 90.0]), 80.0),
                                  np.array([np.nan, np.nan, np.nan, 3.0, 80.0], np.float32))
    with pytest.raises(ValueError, match="split"):
        MVSECDepth(tmp_path, "val")
    with pytest.raises(ValueError, match="'all' is for the synthetic scenario"):
        MVSECDepth(tmp_path, "all", scenario="indoor1")
    with pytest.raises(ValueError, match="scenario"):
        MVSECDepth(tmp_path, scenario="indoor9")
    with pytest.raises(ValueError, match="cameras"):
        MVSECDepth(tmp_path, cameras=("right",))
    with pytest.raises(FileNotFoundError, match="outdoor_day2"):
        MVSECDepth(tmp_path, "train", scenario="outdoor")
    with pytest.raises(FileNotFoundError, match="pairs"):
        MVSECDepth(tmp_path, "train", scenario="synthetic")
