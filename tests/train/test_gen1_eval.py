"""The Gen1 protocol: filtering, time matching, and equality with pycocotools; the real bbox file."""

from __future__ import annotations

import numpy as np
import pytest

from evstream.train.gen1_eval import evaluate_gen1, filter_boxes, match_times
from tests.conftest import VECTORS

GEN1_DTYPE = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"), ("class_id", "u1"),
                       ("confidence", "<f4"), ("track_id", "<u4")])


def _boxes(rows):
    return np.array([tuple(r) for r in rows], dtype=GEN1_DTYPE)


def test_filter_drops_early_and_small_boxes():
    boxes = _boxes([(400_000, 10, 10, 40, 40, 0, 1, 1), (600_000, 10, 10, 40, 40, 0, 1, 1),
                    (600_000, 10, 10, 9, 40, 0, 1, 2), (600_000, 10, 10, 20, 20, 0, 1, 3),
                    (600_000, 10, 10, 22, 22, 1, 1, 4)])
    kept = filter_boxes(boxes)
    assert kept["track_id"].tolist() == [1, 4]  # 20x20 has diagonal 28.3 < 30; 22x22 has 31.1


def test_time_matching_window():
    gt = _boxes([(1_000_000, 0, 0, 50, 50, 0, 1, 1), (2_000_000, 0, 0, 50, 50, 0, 1, 1)])
    det = _boxes([(949_999, 0, 0, 50, 50, 0, .9, 0), (950_000, 0, 0, 50, 50, 0, .9, 0),
                  (1_050_000, 0, 0, 50, 50, 0, .9, 0), (1_050_001, 0, 0, 50, 50, 0, .9, 0)])
    pairs = list(match_times(gt, det))
    assert [len(d) for _, d in pairs] == [2, 0]


def test_equals_pycocotools_on_the_real_layout_boxes(shared):
    gt = np.load(VECTORS / "gen1/gen1_like/train/sample_bbox.npy")
    rng = np.random.default_rng(3)
    det = gt.copy()
    det["x"] += rng.normal(0, 4, len(det)).astype(np.float32)
    det["w"] *= rng.uniform(0.8, 1.2, len(det)).astype(np.float32)
    det["confidence"] = rng.uniform(0.2, 1, len(det)).astype(np.float32)
    extra = det[:3].copy()
    extra["x"] += 60
    det = np.sort(np.concatenate([det, extra]), order="ts", kind="stable")
    ours = evaluate_gen1([gt], [det])
    ref = evaluate_gen1([gt], [det], backend="pycocotools")
    assert ours == pytest.approx(ref, abs=1e-12)
    assert evaluate_gen1([gt], [gt])["mAP50"] == pytest.approx(1.0)
