"""Road scene: Gen1 layout read back by the project's readers, visible boxes, events concentrated on actors."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from evstream import read_events
from evstream.sim.road import BBOX_DTYPE, ROAD_SIZE, RoadScene, write_road_dataset, write_road_sequence


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen1") / "train" / "sim_road_0000_td.dat"
    path.parent.mkdir()
    n = write_road_sequence(path, 2.0, seed=3, progress=False)
    return path, n


def test_gen1_layout_is_read_back(clip):
    path, n = clip
    events = read_events(path)
    assert len(events) == n > 10_000
    assert np.all(np.diff(events["t"]) >= 0)
    assert events["x"].max() < 304 and events["y"].max() < 240
    assert 0.3 < events["p"].mean() < 0.7
    boxes = np.load(path.with_name("sim_road_0000_bbox.npy"))
    assert boxes.dtype == BBOX_DTYPE and BBOX_DTYPE.itemsize == 33
    assert set(np.unique(boxes["ts"])) == {250_000 * k for k in range(1, 9)}  # 4 Hz over 2 s
    assert set(boxes["class_id"]) <= {0, 1}
    assert np.all(boxes["x"] >= 0) and np.all(boxes["y"] >= 0)
    assert np.all(boxes["x"] + boxes["w"] <= 304) and np.all(boxes["y"] + boxes["h"] <= 240)
    assert np.all(boxes["confidence"] == 1.0)


def test_events_concentrate_in_moving_object_boxes(clip):
    path, _ = clip
    events = read_events(path)
    boxes = np.load(path.with_name("sim_road_0000_bbox.npy"))
    inside_events = outside_events = inside_px = outside_px = 0
    for ts in np.unique(boxes["ts"]):
        window = events[(events["t"] > int(ts) - 20_000) & (events["t"] <= int(ts) + 20_000)]
        mask = np.zeros((240, 304), bool)
        for b in boxes[boxes["ts"] == ts]:
            mask[int(b["y"]):int(b["y"] + b["h"]), int(b["x"]):int(b["x"] + b["w"])] = True
        hit = mask[window["y"], window["x"]]
        inside_events += hit.sum()
        outside_events += (~hit).sum()
        inside_px += mask.sum()
        outside_px += (~mask).sum()
    assert inside_events / inside_px > 5 * outside_events / outside_px


def test_boxes_cover_visible_parts_only():
    scene = RoadScene(6.0, seed=5)
    for t in np.arange(0.25, 6.0, 0.25):
        boxes = scene.boxes(t)
        assert np.all(boxes["w"] >= 4) and np.all(boxes["h"] >= 4)
        for b in boxes:
            actor = next(a for a in scene.actors if a.track_id == b["track_id"])
            assert b["class_id"] == actor.class_id
            assert b["w"] <= actor.width + 2 and b["h"] <= actor.height + 2
            left = actor.left(t)
            assert left - 2 <= b["x"] and b["x"] + b["w"] <= left + actor.width + 2
            if left < 0:  # entering or leaving at the left edge: clipped to the frame
                assert b["x"] + b["w"] <= actor.width + left + 2
    classes = np.concatenate([scene.boxes(t)["class_id"] for t in np.arange(0.25, 6.0, 0.25)])
    assert {0, 1} <= set(classes)


def test_occlusion_shrinks_or_drops_boxes():
    scene = RoadScene(6.0, seed=5)
    shrunk = dropped = 0
    for t in np.arange(0.1, 6.0, 0.2):
        boxes = {int(b["track_id"]): b for b in scene.boxes(t)}
        for actor, _ in scene.on_screen(t):
            alone = copy.copy(scene)
            alone.actors = [actor]
            single = alone.boxes(t)
            if actor.track_id not in boxes:
                dropped += len(single)
                continue
            b, a = boxes[actor.track_id], single[0]
            assert a["x"] <= b["x"] and a["y"] <= b["y"]  # the box with others never exceeds the box alone
            assert b["x"] + b["w"] <= a["x"] + a["w"] and b["y"] + b["h"] <= a["y"] + a["h"]
            shrunk += b["w"] * b["h"] < a["w"] * a["h"]
    assert shrunk > 0 and dropped > 0


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a_td.dat", tmp_path / "b_td.dat"
    write_road_sequence(a, 0.5, seed=8, progress=False)
    write_road_sequence(b, 0.5, seed=8, progress=False)
    assert a.read_bytes() == b.read_bytes()
    assert np.array_equal(np.load(tmp_path / "a_bbox.npy"), np.load(tmp_path / "b_bbox.npy"))


def test_dataset_folders_and_arguments(tmp_path):
    paths = write_road_dataset(tmp_path, seconds=0.5, seed=1, sequences=(1, 0, 1), progress=False)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["train/sim_road_0000_td.dat",
                                                                  "test/sim_road_0001_td.dat"]
    assert (tmp_path / "val").is_dir()
    assert ROAD_SIZE == (304, 240, 2)
    with pytest.raises(ValueError, match="1-4 Hz"):
        write_road_sequence(tmp_path / "x_td.dat", 1.0, 0, box_hz=10)
    with pytest.raises(ValueError, match="_td.dat"):
        write_road_sequence(tmp_path / "x.dat", 1.0, 0)
    with pytest.raises(ValueError, match="three counts"):
        write_road_dataset(tmp_path, sequences=(1, 1))
