"""Depth scene: MVSEC layout read back, depth maps that back-project onto the scene's surfaces."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from evstream import read_events
from evstream.sim.depth_scene import GROUND_Y, INTRINSICS, WALL_TOP, WALL_X, DepthScene, write_depth_sequence


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    return write_depth_sequence(tmp_path_factory.mktemp("mvsec"), name="corridor", seconds=0.3, seed=2,
                                progress=False)


def test_mvsec_layout_is_read_back(sequence):
    data, gt = sequence
    assert data.name == "corridor_data.hdf5" and gt.name == "corridor_gt.hdf5"
    events = read_events(data)
    assert len(events) > 10_000
    assert np.all(np.diff(events["t"]) >= 0)
    assert events["x"].max() < 346 and events["y"].max() < 260
    with h5py.File(data) as f:
        raw = f["davis/left/events"]
        assert raw.dtype == np.float64 and raw.shape == (len(events), 4)
        assert set(np.unique(raw[:, 3])) == {-1.0, 1.0}
    with h5py.File(gt) as f:
        depth = f["davis/left/depth_image_rect"]
        ts = f["davis/left/depth_image_rect_ts"][:]
        assert depth.dtype == np.float32 and depth.shape == (7, 260, 346)
        assert ts.dtype == np.float64
        np.testing.assert_allclose(ts, np.arange(7) * 0.05)
        assert ts[0] * 1e6 <= events["t"][0] and events["t"][-1] <= ts[-1] * 1e6
        maps = depth[:]
    nan = np.isnan(maps)
    assert 0.05 < nan.mean() < 0.6
    assert nan[:, :20, 150:200].all()  # sky between the wall tops
    assert np.nanmin(maps) > 0.5 and np.nanmax(maps) <= 40.0


def test_depth_back_projects_onto_surfaces():
    scene = DepthScene(2.0, seed=4)
    fx, fy, cx, cy = INTRINSICS
    v, u = np.mgrid[0:260, 0:346]
    for t in (0.0, 0.7, 1.9):
        _, depth = scene.render(t)
        origin, rot = scene.pose(t)
        ok = ~np.isnan(depth)
        ray = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u, float)], -1)[ok]
        points = origin + (depth[ok][:, None] * ray) @ rot.T
        on_ground = np.abs(points[:, 1] - GROUND_Y) < 1e-3
        on_wall = (np.abs(np.abs(points[:, 0]) - WALL_X) < 1e-3) & (points[:, 1] >= WALL_TOP - 1e-3)
        on_end = np.abs(points[:, 2] - scene.end_z) < 1e-3
        b = scene.boxes
        inside = ((points[:, None, 0] >= b[:, 0] - 1e-3) & (points[:, None, 0] <= b[:, 1] + 1e-3)
                  & (points[:, None, 1] >= b[:, 2] - 1e-3) & (points[:, None, 1] <= b[:, 3] + 1e-3)
                  & (points[:, None, 2] >= b[:, 4] - 1e-3) & (points[:, None, 2] <= b[:, 5] + 1e-3)).any(1)
        assert np.all(on_ground | on_wall | on_end | inside)
        assert on_ground.mean() > 0.2 and on_wall.mean() > 0.2 and inside.mean() > 0.01


def test_ground_depth_formula_with_level_camera():
    scene = DepthScene(1.0, seed=0)
    scene.boxes = scene.boxes[:0]
    scene.tones = scene.tones[:0]
    scene.pose = lambda t: (np.zeros(3), np.eye(3))
    _, depth = scene.render(0.0)
    fx, fy, cx, cy = INTRINSICS
    rows = np.arange(200, 260)
    np.testing.assert_allclose(depth[rows, 173], fy * GROUND_Y / (rows - cy), rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive"):
        DepthScene(0.0)
