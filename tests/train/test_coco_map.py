"""Our COCO mAP equals pycocotools on hand-made ground truth and detections."""

from __future__ import annotations

import numpy as np
import pytest

from evstream.train.coco_map import Boxes, box_iou_xywh, coco_map, pycocotools_map


def _random_case(seed: int, n_images: int = 6, n_categories: int = 2):
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for image in range(n_images):
        for _ in range(rng.integers(0, 5)):
            category = int(rng.integers(0, n_categories))
            box = np.array([rng.uniform(0, 250), rng.uniform(0, 190), rng.uniform(8, 60), rng.uniform(8, 60)])
            gts.append((image, category, box))
            for _ in range(rng.integers(0, 3)):  # detections near the box, some of another class
                jitter = box + rng.normal(0, 6, 4) * np.array([1, 1, 0.5, 0.5])
                jitter[2:] = np.maximum(jitter[2:], 2)
                dets.append((image, category if rng.random() < 0.85 else 1 - category, jitter, rng.random()))
        for _ in range(rng.integers(0, 3)):  # false positives
            dets.append((image, int(rng.integers(0, n_categories)),
                         np.array([rng.uniform(0, 250), rng.uniform(0, 190), 20.0, 20.0]), rng.random()))
    gt = Boxes(np.array([g[0] for g in gts]), np.array([g[1] for g in gts]), np.array([g[2] for g in gts]))
    dt = Boxes(np.array([d[0] for d in dets]), np.array([d[1] for d in dets]), np.array([d[2] for d in dets]),
               np.round(np.array([d[3] for d in dets]), 2))  # rounded: ties in score happen
    return gt, dt


@pytest.mark.parametrize("seed", range(8))
def test_equals_pycocotools_on_random_cases(seed):
    gt, dt = _random_case(seed)
    ours = coco_map(gt, dt)
    ref = pycocotools_map(gt, dt, 304, 240)
    for key in ours:
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


def test_perfect_detections_score_one_and_hand_case():
    gt = Boxes(np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([[10, 10, 40, 30], [100, 50, 20, 60], [5, 5, 50, 50.]]))
    perfect = Boxes(gt.image, gt.category, gt.xywh, np.array([0.9, 0.8, 0.7]))
    assert coco_map(gt, perfect) == pytest.approx({"mAP": 1.0, "mAP50": 1.0, "mAP75": 1.0})
    dets = Boxes(np.array([0, 1, 1]), np.array([0, 0, 0]), np.array([[10, 10, 40, 30], [200, 200, 10, 10], [5, 5, 50, 50.]]),
                 np.array([0.5, 0.9, 0.4]))
    # ranked: FP (0.9), TP (0.5), TP (0.4): precision [0, 1/2, 2/3] -> monotone [2/3, 2/3, 2/3]; recall [0, .5, 1]
    result = coco_map(Boxes(gt.image[[0, 2]], gt.category[[0, 2]], gt.xywh[[0, 2]]), dets)
    assert result["mAP50"] == pytest.approx(2 / 3)


def test_iou_hand_values():
    a = np.array([[0, 0, 10, 10.]])
    b = np.array([[5, 0, 10, 10.], [20, 20, 5, 5], [0, 0, 10, 10]])
    np.testing.assert_allclose(box_iou_xywh(a, b), [[50 / 150, 0, 1]])
