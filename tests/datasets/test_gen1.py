"""Gen1 detection loader: the shared vector, fixture trees in the Gen1 layout, both box dtypes, the cache."""

from __future__ import annotations

import numpy as np
import pytest

from evstream import EVENT_DTYPE
from evstream.datasets.gen1 import Gen1Detection, collate_gen1, convert_boxes, load_boxes
from evstream.io import write_events
from tests.conftest import VECTORS

OLD_DTYPE = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"), ("class_id", "u1"),
                      ("confidence", "<f4"), ("track_id", "<u4")])
NEW_DTYPE = np.dtype({"names": ["t", "x", "y", "w", "h", "class_id", "track_id", "class_confidence"],
                      "formats": ["<i8", "<f4", "<f4", "<f4", "<f4", "<u4", "<u4", "<f4"],
                      "offsets": [0, 8, 12, 16, 20, 24, 28, 32], "itemsize": 40})


def _events(rows) -> np.ndarray:
    events = np.zeros(len(rows), EVENT_DTYPE)
    for name, values in zip(("x", "y", "t", "p"), np.array(rows, dtype=np.int64).T, strict=True):
        events[name] = values
    return events


def _fixture_tree(root, dtype=NEW_DTYPE):
    """train/ with one recording: events in the two 125 ms bins before t_b = 1 s, and four label times."""
    train = root / "train"
    train.mkdir(parents=True)
    write_events(train / "rec_td.dat", _events([(10, 20, 780_000, 1), (10, 20, 850_000, 0),    # bin 0: last OFF
                                                 (30, 40, 950_000, 1), (300, 230, 999_999, 1),  # bin 1: ON
                                                 (5, 5, 1_000_000, 1)]),                         # at t_b: outside
                 (304, 240, 2), format="dat")
    t = "t" if "t" in dtype.names else "ts"
    conf = "class_confidence" if "class_confidence" in dtype.names else "confidence"
    boxes = np.zeros(6, dtype)
    rows = [(1_000_000, 100, 50, 40, 30, 0, 7), (1_000_000, 110, 60, 40, 30, 0, 7),  # track 7 twice: last kept
            (1_000_000, 290, 200, 40, 60, 1, 8),                                       # clipped to 304x240
            (1_500_000, 10, 10, 0, 20, 0, 9),                                          # zero-size only: no sample
            (2_000_000, -5, -5, 20, 20, 1, 3), (2_000_000, 320, 10, 20, 20, 0, 4)]     # partly / fully outside
    for box, (ts, x, y, w, h, c, track) in zip(boxes, rows, strict=True):
        box[t], box["x"], box["y"], box["w"], box["h"], box["class_id"], box["track_id"], box[conf] = \
            ts, x, y, w, h, c, track, 1.0
    np.save(train / "rec_bbox.npy", boxes)
    return root


@pytest.mark.parametrize("dtype", [OLD_DTYPE, NEW_DTYPE], ids=["ts-confidence", "t-class_confidence"])
def test_fixture_tree_samples_and_boxes(tmp_path, dtype):
    ds = Gen1Detection(_fixture_tree(tmp_path, dtype), "train")
    assert [s.label_time for s in ds.samples] == [1_000_000, 2_000_000]
    np.testing.assert_array_equal(ds.samples[0].boxes, [[0, 110, 60, 150, 90], [1, 290, 200, 304, 240]])
    np.testing.assert_array_equal(ds.samples[1].boxes, [[1, 0, 0, 15, 15]])
    assert load_boxes(tmp_path / "train/rec_bbox.npy").dtype.names[0] == "t"


def test_fixture_tree_frames_and_targets(tmp_path):
    ds = Gen1Detection(_fixture_tree(tmp_path), "train", n_time_bins=2, imgsz=304)  # 304 wide: no resize
    frames, targets = ds[0]
    assert frames.shape == (2, 3, 256, 320) and frames.dtype == np.uint8
    top, left = ds.letterbox.pad_top, ds.letterbox.pad_left
    assert (top, left) == (8, 8) and (frames[:, :, :top] == 114).all() and (frames[:, :, :, left + 304:] == 114).all()
    image = frames[:, 0, top:top + 240, left:left + 304]
    assert image[0, 20, 10] == 0 and image[1, 40, 30] == 255 and image[1, 230, 300] == 255
    assert image[0, 40, 30] == 127 and image[1, 5, 5] == 127 and image[1, 20, 10] == 127
    assert (frames[:, 0] == frames[:, 2]).all()
    np.testing.assert_allclose(targets, [[0, 118, 68, 158, 98], [1, 298, 208, 312, 248]])


def test_targets_follow_the_letterbox(tmp_path):
    ds = Gen1Detection(_fixture_tree(tmp_path), "train")
    assert (ds.letterbox.height, ds.letterbox.width) == (256, 320)
    frames, targets = ds[1]
    assert frames.shape == (2, 3, 256, 320)
    sx, sy = ds.letterbox.scale_x, ds.letterbox.scale_y
    np.testing.assert_allclose(targets, [[1, 0, ds.letterbox.pad_top, 15 * sx, 15 * sy + ds.letterbox.pad_top]],
                               rtol=1e-6)


def test_cache_serves_identical_frames(tmp_path):
    root = _fixture_tree(tmp_path / "data")
    cached = Gen1Detection(root, "train", cache_dir=tmp_path / "cache")
    first = cached[0][0]
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    np.testing.assert_array_equal(cached[0][0], first)
    np.testing.assert_array_equal(Gen1Detection(root, "train")[0][0], first)
    other = Gen1Detection(root, "train", n_time_bins=4, cache_dir=tmp_path / "cache")
    assert other[0][0].shape[0] == 4  # another recipe, another cache key


def test_collate(tmp_path):
    ds = Gen1Detection(_fixture_tree(tmp_path), "train")
    frames, targets = collate_gen1([ds[0], ds[1]])
    assert frames.shape == (2, 2, 3, 256, 320) and frames.dtype.is_floating_point and float(frames.max()) <= 1.0
    assert targets.shape == (3, 6) and targets[:, 0].tolist() == [0, 0, 1] and targets[:, 1].tolist() == [0, 1, 1]


def test_convert_boxes_keeps_the_last_box_of_each_track():
    boxes = np.zeros(3, OLD_DTYPE)
    boxes["track_id"] = [2, 1, 2]
    boxes["x"], boxes["w"], boxes["h"] = [0, 10, 20], 5, 5
    boxes["class_id"] = [1, 0, 0]
    rows = convert_boxes(boxes)
    np.testing.assert_array_equal(rows, [[0, 10, 0, 15, 5], [0, 20, 0, 25, 5]])


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="split"):
        Gen1Detection(tmp_path, "dev")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        Gen1Detection(tmp_path, "val")
    (tmp_path / "val").mkdir()
    write_events(tmp_path / "val/a_td.dat", _events([(1, 1, 10, 1)]), (304, 240, 2), format="dat")
    with pytest.raises(FileNotFoundError, match="a_bbox.npy"):
        Gen1Detection(tmp_path, "val")
    np.save(tmp_path / "val/a_bbox.npy", np.zeros(0, OLD_DTYPE))
    with pytest.raises(FileNotFoundError, match="no val samples"):
        Gen1Detection(tmp_path, "val")
    np.save(tmp_path / "val/a_bbox.npy", np.zeros(2, [("a", "f4")]))
    with pytest.raises(ValueError, match="not a Gen1 box file"):
        Gen1Detection(tmp_path, "val")


def test_reads_the_shared_vector(shared):
    ds = Gen1Detection(VECTORS / "gen1/gen1_like", "train", cache_dir=None)
    raw = np.load(VECTORS / "gen1/gen1_like/train/sample_bbox.npy")
    assert [s.label_time for s in ds.samples] == [2_500_000, 2_750_000, 3_250_000, 3_500_000, 4_250_000, 5_500_000,
                                                  6_500_000]
    first = raw[0]
    np.testing.assert_allclose(ds.samples[0].boxes[0], [0, first["x"], first["y"], first["x"] + first["w"],
                                                        first["y"] + first["h"]])
    frames, targets = ds[0]
    assert frames.shape == (2, 3, 256, 320) and targets.shape == (1, 5)
    events = ds.events(0)
    assert events["t"].min() >= 2_250_000 and events["t"].max() < 2_500_000 and len(events) > 1000
    pad = ds.letterbox.pad_top
    assert (frames[:, :, :pad] == 114).all() and (frames[:, :, pad:pad + 253] != 127).any()
