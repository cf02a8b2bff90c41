"""The Prophesee Gen1 detection protocol (Perot et al. 2020; RVT and others use the same).

Ground truth and detections are structured arrays with fields ``t`` (µs; ``ts`` accepted),
``x, y, w, h`` (top-left and size, pixels), ``class_id`` and, for detections,
``class_confidence`` (``confidence`` accepted). Both are filtered (t > 0.5 s, diagonal >= 30 px,
sides >= 10 px); each ground-truth timestamp is one COCO image, and the detections within
±50 ms of it are matched to it; COCO mAP@50:95 and mAP@50 are computed with pycocotools'
semantics (:mod:`evstream.train.coco_map`).

This is not the number SpikeYOLO reports: it uses Ultralytics' mAP on its own per-timestamp
samples without filtering (see :func:`evstream.train.coco_map.coco_map` on those samples).
"""

from __future__ import annotations

import numpy as np

from evstream.datasets.gen1 import GEN1_CLASSES, GEN1_SENSOR_SIZE
from evstream.train.coco_map import Boxes, coco_map, pycocotools_map

GEN1_SIZE = GEN1_SENSOR_SIZE[:2]


def _field(boxes: np.ndarray, *names: str) -> np.ndarray:
    for name in names:
        if name in boxes.dtype.names:
            return boxes[name]
    raise ValueError(f"boxes need one of the fields {names}; they have {boxes.dtype.names}")


def filter_boxes(boxes: np.ndarray, skip_us: int = 500_000, min_diag: float = 30.0,
                 min_side: float = 10.0) -> np.ndarray:
    """The Gen1 filter (``box_filtering.filter_boxes``): drop the first ``skip_us`` and small boxes."""
    t = _field(boxes, "t", "ts").astype(np.int64)
    w, h = boxes["w"].astype(np.float64), boxes["h"].astype(np.float64)
    keep = (t > skip_us) & (w ** 2 + h ** 2 >= min_diag ** 2) & (w >= min_side) & (h >= min_side)
    return boxes[keep]


def match_times(gt: np.ndarray, det: np.ndarray, time_tol_us: int = 50_000):
    """Yield ``(gt boxes, detections)`` per ground-truth timestamp, detections within ±time_tol_us."""
    gt_t = _field(gt, "t", "ts").astype(np.int64)
    det_t = _field(det, "t", "ts").astype(np.int64)
    if np.any(np.diff(gt_t) < 0) or np.any(np.diff(det_t) < 0):
        raise ValueError("ground truth and detections must be sorted by time")
    for ts in np.unique(gt_t):
        g0, g1 = np.searchsorted(gt_t, ts, "left"), np.searchsorted(gt_t, ts, "right")
        d0, d1 = np.searchsorted(det_t, ts - time_tol_us, "left"), np.searchsorted(det_t, ts + time_tol_us, "right")
        yield gt[g0:g1], det[d0:d1]


def evaluate_gen1(gt_per_recording, det_per_recording, *, filter: bool = True, time_tol_us: int = 50_000,
                  backend: str = "evstream") -> dict[str, float]:
    """mAP@50:95 (``"mAP"``), mAP@50 and mAP@75 over recordings, by the Gen1 protocol.

    Args:
        gt_per_recording, det_per_recording: one boxes array per recording, in the same order.
        backend: ``"evstream"`` (numpy, same numbers) or ``"pycocotools"`` (the reference).
    """
    g_img, g_cat, g_box, d_img, d_cat, d_box, d_score = [], [], [], [], [], [], []
    image = 0
    for gt, det in zip(gt_per_recording, det_per_recording, strict=True):
        if filter:
            gt, det = filter_boxes(gt), filter_boxes(det)
        for g, d in match_times(gt, det, time_tol_us):
            g_img.append(np.full(len(g), image))
            g_cat.append(g["class_id"].astype(np.int64))
            g_box.append(np.stack([g["x"], g["y"], g["w"], g["h"]], axis=1).astype(np.float64))
            d_img.append(np.full(len(d), image))
            d_cat.append(d["class_id"].astype(np.int64))
            d_box.append(np.stack([d["x"], d["y"], d["w"], d["h"]], axis=1).astype(np.float64).reshape(-1, 4))
            d_score.append(_field(d, "class_confidence", "confidence").astype(np.float64))
            image += 1
    if image == 0:
        raise ValueError("no ground-truth box is left to evaluate (after filtering)")
    ground_truth = Boxes(np.concatenate(g_img), np.concatenate(g_cat), np.concatenate(g_box))
    detections = Boxes(np.concatenate(d_img), np.concatenate(d_cat), np.concatenate(d_box), np.concatenate(d_score))
    if backend == "pycocotools":
        return pycocotools_map(ground_truth, detections, *GEN1_SIZE)
    if backend != "evstream":
        raise ValueError(f"backend must be 'evstream' or 'pycocotools', got {backend!r}")
    return coco_map(ground_truth, detections)
