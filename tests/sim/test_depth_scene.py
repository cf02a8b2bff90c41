"""Depth scene: MVSEC layout read back, depth maps that back-project onto the scene's surfaces, layouts
that differ from seed to seed (so no per-pixel prior can stand in for the events)."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from evstream import read_events
from evstream.sim.depth_scene import (INTRINSICS, LANE_CLEARANCE_M, PERSON_KIND, DepthScene, sample_layout,
                                      write_depth_dataset, write_depth_sequence)


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
    assert nan[:, :10].mean() > 0.9  # sky above the wall tops
    assert np.nanmin(maps) > 0.3 and np.nanmax(maps) <= 40.0


def test_dataset_names_and_seeds_its_sequences(tmp_path):
    paths = write_depth_dataset(tmp_path, sequences=2, name="s", seconds=0.1, seed=3, fps=50, progress=False)
    assert [(d.name, g.name) for d, g in paths] == [("s_000_data.hdf5", "s_000_gt.hdf5"),
                                                    ("s_001_data.hdf5", "s_001_gt.hdf5")]
    with h5py.File(paths[1][1]) as f:  # sequence k is the scene of seed * 1000 + k
        np.testing.assert_array_equal(f["davis/left/depth_image_rect"][1], DepthScene(0.1, 3001).render(0.05)[1])
    with pytest.raises(ValueError, match="sequences must be >= 1"):
        write_depth_dataset(tmp_path, sequences=0)


def test_depth_back_projects_onto_surfaces():
    scene = DepthScene(2.0, seed=4)
    lay = scene.layout
    assert (lay.kinds == PERSON_KIND).any() and np.abs(lay.velocity[:, 1]).max() > 0.1
    fx, fy, cx, cy = INTRINSICS
    v, u = np.mgrid[0:260, 0:346]
    for t in (0.0, 0.7, 1.9):
        _, depth = scene.render(t)
        origin, rot = scene.pose(t)
        ok = ~np.isnan(depth)
        ray = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u, float)], -1)[ok]
        points = origin + (depth[ok][:, None] * ray) @ rot.T
        on_ground = np.abs(points[:, 1] - lay.ground_y) < 1e-3
        at_wall = (np.abs(points[:, 0] - lay.wall_left) < 1e-3) | (np.abs(points[:, 0] - lay.wall_right) < 1e-3)
        on_wall = at_wall & (points[:, 1] >= lay.wall_top - 1e-3)
        on_end = np.abs(points[:, 2] - scene.end_z) < 1e-3
        b = scene.objects(t)  # people have walked since t = 0
        inside = ((points[:, None, 0] >= b[:, 0] - 1e-3) & (points[:, None, 0] <= b[:, 1] + 1e-3)
                  & (points[:, None, 1] >= b[:, 2] - 1e-3) & (points[:, None, 1] <= b[:, 3] + 1e-3)
                  & (points[:, None, 2] >= b[:, 4] - 1e-3) & (points[:, None, 2] <= b[:, 5] + 1e-3)).any(1)
        assert np.all(on_ground | on_wall | on_end | inside)
        assert on_ground.mean() > 0.2 and on_wall.mean() > 0.1 and inside.mean() > 0.01


def test_ground_depth_formula_with_level_camera():
    scene = DepthScene(1.0, seed=0)
    lay = scene.layout
    empty = np.zeros((0, 6))
    scene.layout = dataclasses.replace(lay, objects=empty, velocity=empty[:, :2], kinds=empty[:, 0].astype(np.int64),
                                       tones=empty[:, 0])
    scene.pose = lambda t: (np.array([lay.lane_x, 0.0, 0.0]), np.eye(3))
    _, depth = scene.render(0.0)
    fx, fy, cx, cy = INTRINSICS
    rows = np.arange(200, 260)
    np.testing.assert_allclose(depth[rows, 173], fy * lay.ground_y / (rows - cy), rtol=1e-5)


def _log_spread(maps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(pixels known in at least half the maps, each such pixel's std of log depth over the maps)."""
    logs = np.log(np.stack(maps))
    known = np.isfinite(logs).sum(0) >= len(maps) / 2
    return known, np.nanstd(np.where(np.isfinite(logs), logs, np.nan)[:, known], 0)


def test_layouts_vary_from_seed_to_seed():
    """The same pixel sees very different depths in different sequences (a factor e^0.45 ~ 1.6 typically),
    much more than along one sequence: a per-pixel prior is a weak guess."""
    known, across = _log_spread([DepthScene(1.0, seed).render(0.5)[1] for seed in range(8)])
    _, along = _log_spread([DepthScene(1.0, 0).render(t)[1] for t in (0.0, 0.25, 0.5, 0.75, 1.0)])
    assert known.mean() > 0.5 and np.median(across) > 0.3 and (across > 0.15).mean() > 0.9
    assert np.median(along) < 0.5 * np.median(across)


def test_objects_keep_clear_of_the_lane_and_inside_the_walls():
    for seed in range(20):
        lay = sample_layout(np.random.default_rng(seed), 80.0)
        assert lay.wall_left < lay.lane_x < lay.wall_right and lay.ground_y > 0 > lay.wall_top - lay.ground_y
        x0, x1 = lay.objects[:, 0], lay.objects[:, 1]
        assert np.all(x0 >= lay.wall_left - 1e-9) and np.all(x1 <= lay.wall_right + 1e-9)
        assert np.all((x1 <= lay.lane_x - LANE_CLEARANCE_M + 1e-9) | (x0 >= lay.lane_x + LANE_CLEARANCE_M - 1e-9))
        assert np.all(lay.objects[:, 3] == lay.ground_y) and np.all(lay.objects[:, 2] < lay.ground_y)


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive"):
        DepthScene(0.0)
