"""Ultralytics' validator mAP (SpikeYOLO's per-sample number) on hand cases, beside pycocotools' semantics."""

import numpy as np
import pytest

from evstream.train.coco_map import Boxes, coco_map
from evstream.train.yolo_map import ultralytics_map


def boxes(image, category, xywh, score=None):
    return Boxes(np.asarray(image), np.asarray(category), np.asarray(xywh, dtype=np.float64).reshape(-1, 4),
                 None if score is None else np.asarray(score, dtype=np.float64))


def test_perfect_detections_score_0995_the_trapezoid_drop_at_recall_one():
    gt = boxes([0, 0, 1], [0, 1, 0], [[0, 0, 10, 10], [20, 20, 10, 30], [5, 5, 40, 40]])
    det = boxes(gt.image, gt.category, gt.xywh, [0.9, 0.8, 0.7])
    m = ultralytics_map(gt, det)
    assert m["mAP50"] == pytest.approx(0.995) and m["mAP"] == pytest.approx(0.995)
    assert coco_map(gt, det)["mAP50"] == pytest.approx(1.0)


def test_ground_truth_goes_to_the_first_detection_by_index_not_by_score():
    gt = boxes([0], [0], [[0, 0, 10, 10]])
    # detection 0: IoU 0.81, score 0.8; detection 1: IoU 0.6, score 0.9
    det = boxes([0, 0], [0, 0], [[0, 0, 9, 9], [0, 0, 10, 6]], [0.8, 0.9])
    # Ultralytics at IoU 0.5: detection 0 matches, the higher-scored detection 1 is a false positive:
    # precision [0, 1/2] at recall [0, 1] -> envelope 0.5 on (0, 1), 0 at recall 1 -> 0.5 - 0.0025
    assert ultralytics_map(gt, det)["mAP50"] == pytest.approx(0.4975)
    assert coco_map(gt, det)["mAP50"] == pytest.approx(1.0)  # pycocotools: score order, detection 1 matches


def test_classes_without_detections_count_zero_and_stray_detections_are_false_positives():
    gt = boxes([0, 0], [0, 1], [[0, 0, 10, 10], [50, 50, 10, 10]])
    det = boxes([0, 1], [0, 0], [[0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.9])  # image 1 has no ground truth
    m = ultralytics_map(gt, det)
    assert m["per_class"] == pytest.approx({0: 0.4975, 1: 0.0})
    assert m["mAP50"] == pytest.approx(0.4975 / 2)


def test_iou_thresholds_spread_map_over_localisation():
    gt = boxes([0], [0], [[0, 0, 100, 100]])
    det = boxes([0], [0], [[0, 0, 100, 72]], [0.9])  # IoU 0.72: correct at 0.50 ... 0.70 (5 of 10 thresholds)
    m = ultralytics_map(gt, det)
    assert m["mAP50"] == pytest.approx(0.995) and m["mAP"] == pytest.approx(0.995 * 5 / 10)


def test_no_ground_truth_and_missing_scores():
    assert ultralytics_map(Boxes.empty(), boxes([0], [0], [[0, 0, 1, 1]], [0.5]))["mAP50"] == 0.0
    with pytest.raises(ValueError, match="scores"):
        ultralytics_map(Boxes.empty(), Boxes.empty())
