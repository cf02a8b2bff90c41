"""Box mAP with Ultralytics' validator semantics: the per-sample number SpikeYOLO reports on Gen1.

SpikeYOLO evaluates with its bundled Ultralytics 8.0 ``DetectionValidator`` (models.md §1.4), which
differs from pycocotools (:mod:`evstream.train.coco_map`) in three ways that move the number:

* matching, per image and IoU threshold: every same-class (ground truth, detection) pair at or
  above the threshold, taken by descending IoU, one per detection, then per ground truth the
  first such detection in index order (``match_predictions``), instead of score-ordered greedy;
* AP: the precision envelope over recall with sentinels (0, 1) and (1, 0), sampled at 101 recall
  points by linear interpolation and integrated with the trapezoid rule (``compute_ap``);
* averaging over the classes present in the ground truth, with no detection cap per image.

Boxes are the :class:`~evstream.train.coco_map.Boxes` of many images (xywh pixels).
"""

from __future__ import annotations

import numpy as np

from evstream.train.coco_map import IOU_THRESHOLDS, Boxes, box_iou_xywh

__all__ = ["ultralytics_map"]

_RECALL_GRID = np.linspace(0.0, 1.0, 101)


def _match(iou: np.ndarray) -> np.ndarray:
    """``[n_det, n_thresholds]`` bool from a class-masked ``[n_gt, n_det]`` IoU matrix."""
    correct = np.zeros((iou.shape[1], len(IOU_THRESHOLDS)), dtype=bool)
    for k, threshold in enumerate(IOU_THRESHOLDS):
        gt, det = np.nonzero(iou >= threshold)
        if len(gt) > 1:
            order = np.argsort(iou[gt, det], kind="stable")[::-1]
            gt, det = gt[order], det[order]
            first = np.unique(det, return_index=True)[1]  # best IoU per detection, now in detection order
            gt, det = gt[first], det[first]
            first = np.unique(gt, return_index=True)[1]  # then the first detection per ground truth
            gt, det = gt[first], det[first]
        correct[det, k] = True
    return correct


def _average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """101-point interpolated area under the precision envelope (trapezoid rule)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    values = np.interp(_RECALL_GRID, mrec, mpre)
    return float(np.sum((values[1:] + values[:-1]) * np.diff(_RECALL_GRID)) / 2)


def ultralytics_map(gt: Boxes, det: Boxes) -> dict[str, float]:
    """``{"mAP50", "mAP", "per_class"}`` over the classes of ``gt`` (0 when there is no ground truth).

    Args:
        gt: ground-truth boxes (no scores).
        det: detections with scores (already NMS-filtered, as the validator receives them).
    """
    if det.score is None:
        raise ValueError("detections need scores")
    correct = np.zeros((len(det.image), len(IOU_THRESHOLDS)), dtype=bool)
    for image in np.unique(det.image):
        d, g = np.flatnonzero(det.image == image), np.flatnonzero(gt.image == image)
        if len(g):
            same_class = gt.category[g][:, None] == det.category[d][None]
            correct[d] = _match(box_iou_xywh(gt.xywh[g], det.xywh[d]) * same_class)
    classes, counts = np.unique(gt.category, return_counts=True)
    if not len(classes):
        return {"mAP50": 0.0, "mAP": 0.0, "per_class": {}}
    order = np.argsort(-np.asarray(det.score), kind="stable")
    correct, predicted = correct[order], det.category[order]
    ap = np.zeros((len(classes), len(IOU_THRESHOLDS)))
    for c, (category, count) in enumerate(zip(classes, counts, strict=True)):
        hits = correct[predicted == category].astype(np.float64)
        if not len(hits):
            continue
        tp, fp = hits.cumsum(0), (1 - hits).cumsum(0)
        recall, precision = tp / (count + 1e-16), tp / (tp + fp)
        ap[c] = [_average_precision(recall[:, k], precision[:, k]) for k in range(len(IOU_THRESHOLDS))]
    return {"mAP50": float(ap[:, 0].mean()), "mAP": float(ap.mean()),
            "per_class": {int(category): float(ap[c, 0]) for c, category in enumerate(classes)}}
