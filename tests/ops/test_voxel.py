"""to_voxel_grid against tonic's to_voxel_grid_numpy (int polarity; bit-equal), and tonic's bool-polarity trap."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.functional

from evstream import EVENT_DTYPE, make_events
from evstream.ops import ToVoxelGrid, to_voxel_grid
from tests.conftest import RECORDINGS, load_reference, synthetic_events

def tonic_voxels(events, sensor_size, n_time_bins):
    return tonic.functional.to_voxel_grid_numpy(events.copy(), sensor_size, n_time_bins)


@pytest.mark.parametrize("n_time_bins", [1, 3, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_streams_equal_tonic(n_time_bins, seed):
    events = synthetic_events(30_000, seed=seed)
    result = to_voxel_grid(events, (346, 260, 2), n_time_bins)
    expected = tonic_voxels(events, (346, 260, 2), n_time_bins)
    assert result.shape == expected.shape == (n_time_bins, 1, 260, 346) and result.dtype == np.float64
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("name, sensor_size", [("aedat4/davis346_aestream.aedat4.ref.npy", (346, 260, 2)),
                                               ("evt3/evt3_sample_gen41.raw.ref.npy", (1280, 720, 2))])
def test_recordings_equal_tonic(shared, name, sensor_size):
    events = load_reference(RECORDINGS / name)
    np.testing.assert_array_equal(to_voxel_grid(events, sensor_size, 5), tonic_voxels(events, sensor_size, 5))


def test_input_is_not_mutated():
    events = synthetic_events(1_000, seed=2)
    before = events.copy()
    to_voxel_grid(events, (346, 260, 2), 4)
    np.testing.assert_array_equal(events, before)
    tonic.functional.to_voxel_grid_numpy(events, (346, 260, 2), 4)  # tonic writes -1 into the caller's p
    assert (events["p"] == -1).any()


def test_bool_polarity_trap():
    """tonic with its own bool polarity makes every OFF event +1; ours counts OFF as -1 whatever the dtype."""
    tonic_dtype = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "?")])
    bool_events = np.array([(0, 0, 0, False), (1, 0, 10, True), (2, 0, 20, False), (3, 0, 30, True)], tonic_dtype)
    int_events = make_events([0, 1, 2, 3], [0, 0, 0, 0], [0, 10, 20, 30], [0, 1, 0, 1])
    sensor_size = (4, 1, 2)
    tonic_int = tonic_voxels(int_events, sensor_size, 3)
    tonic_bool = tonic_voxels(bool_events, sensor_size, 3)
    assert tonic_int.min() < 0 and tonic_bool.min() >= 0  # the trap, measured
    np.testing.assert_array_equal(to_voxel_grid(bool_events, sensor_size, 3), tonic_int)
    np.testing.assert_array_equal(to_voxel_grid(int_events, sensor_size, 3), tonic_int)
    np.testing.assert_array_equal(to_voxel_grid(int_events, sensor_size, 3)[:, 0, 0],
                                  [[-1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0]])


def test_edge_cases():
    empty = np.empty(0, EVENT_DTYPE)
    assert not to_voxel_grid(empty, (8, 6, 2), 3).any() and to_voxel_grid(empty, (8, 6, 2), 3).shape == (3, 1, 6, 8)
    same_time = make_events([1, 2], [1, 1], [5, 5], [1, 0])
    grid = to_voxel_grid(same_time, (8, 6, 2), 3)
    assert grid[0, 0, 1, 1] == 1.0 and grid[0, 0, 1, 2] == -1.0 and grid[1:].sum() == 0
    with pytest.raises(ValueError, match="2 polarities"):
        to_voxel_grid(same_time, (8, 6, 1), 3)
    with pytest.raises(ValueError, match="sorted"):
        to_voxel_grid(synthetic_events(100)[::-1], (346, 260, 2), 3)
    out = np.ones((2, 1, 260, 346))
    events = synthetic_events(500, seed=3)
    assert to_voxel_grid(events, (346, 260, 2), 2, out=out) is out
    np.testing.assert_array_equal(out, tonic_voxels(events, (346, 260, 2), 2))
    np.testing.assert_array_equal(ToVoxelGrid((346, 260, 2), 2)(events), out)


def test_voxel_grid_on_a_large_sensor_equals_tonic():
    """1280x720 planes (beyond the cache the prefetching is for): tonic's bits, and bad input still raises."""
    events = synthetic_events(50_000, width=1280, height=720, seed=4)
    np.testing.assert_array_equal(to_voxel_grid(events, (1280, 720, 2), 7), tonic_voxels(events, (1280, 720, 2), 7))
    bad = events.copy()
    bad["x"][100] = 1280
    with pytest.raises(ValueError, match="outside"):
        to_voxel_grid(bad, (1280, 720, 2), 7)
    swapped = events.copy()
    swapped[[500, 501]] = swapped[[501, 500]]
    with pytest.raises(ValueError, match="sorted"):
        to_voxel_grid(swapped, (1280, 720, 2), 7)
