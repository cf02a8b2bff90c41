"""COCO box mAP in numpy, with pycocotools' exact semantics (``COCOeval`` for iouType "bbox").

Images and categories are integers; boxes are ``xywh`` in pixels (COCO's format). The whole
area range is evaluated with at most 100 detections per image and category, at the ten IoU
thresholds 0.50:0.05:0.95 and 101 recall points, as ``COCOeval.summarize()``'s first rows.
Tested against pycocotools on hand-made detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100


@dataclass(frozen=True)
class Boxes:
    """Boxes of many images: ``image`` ids, ``category`` ids, ``xywh`` [N, 4], ``score`` (detections only)."""

    image: np.ndarray
    category: np.ndarray
    xywh: np.ndarray
    score: np.ndarray | None = None

    @classmethod
    def empty(cls, with_score: bool = False) -> "Boxes":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, np.zeros((0, 4)), np.zeros(0) if with_score else None)


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of xywh boxes (no +1 pixel convention, as pycocotools)."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _match(ious: np.ndarray) -> np.ndarray:
    """[n_thresholds, n_dets] bool: detection (in score order) matched at each IoU threshold.

    Greedy as pycocotools: each detection takes the unmatched ground truth of highest IoU
    (the last one among equals) at or above the threshold."""
    n_det, n_gt = ious.shape
    matched = np.zeros((len(IOU_THRESHOLDS), n_det), dtype=bool)
    for k, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(n_gt, dtype=bool)
        for d in range(n_det):
            best, m = min(threshold, 1 - 1e-10), -1
            for g in range(n_gt):
                if taken[g] or ious[d, g] < best:
                    continue
                best, m = ious[d, g], g
            if m >= 0:
                taken[m] = True
                matched[k, d] = True
    return matched


def _precision_at_recall_points(tp: np.ndarray, fp: np.ndarray, n_gt: int) -> np.ndarray:
    tp_sum, fp_sum = np.cumsum(tp, dtype=float), np.cumsum(fp, dtype=float)
    recall = tp_sum / n_gt
    precision = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    out = np.zeros(len(RECALL_POINTS))
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    valid = idx < len(precision)
    out[valid] = precision[idx[valid]]
    return out


def coco_map(ground_truth: Boxes, detections: Boxes) -> dict[str, float]:
    """``{"mAP": AP@[.5:.95], "mAP50": AP@.5, "mAP75": AP@.75}`` as pycocotools computes them.

    Categories without ground truth are left out of the mean (pycocotools' -1); returns -1 when
    no category has ground truth.
    """
    precisions = []  # per category: [n_thresholds, n_recall_points]
    for category in np.unique(ground_truth.category):
        g_cat = ground_truth.category == category
        d_cat = detections.category == category
        matched, scores = [], []
        for image in np.unique(np.concatenate([ground_truth.image[g_cat], detections.image[d_cat]])):
            gts = ground_truth.xywh[g_cat & (ground_truth.image == image)]
            d_sel = np.flatnonzero(d_cat & (detections.image == image))
            d_sel = d_sel[np.argsort(-detections.score[d_sel], kind="mergesort")][:MAX_DETS]
            matched.append(_match(box_iou_xywh(detections.xywh[d_sel], gts)))
            scores.append(detections.score[d_sel])
        n_gt = int(g_cat.sum())
        matched_all = np.concatenate(matched, axis=1)
        order = np.argsort(-np.concatenate(scores), kind="mergesort")
        matched_all = matched_all[:, order]
        precisions.append(np.stack([_precision_at_recall_points(m, ~m, n_gt) for m in matched_all]))
    if not precisions:
        return {"mAP": -1.0, "mAP50": -1.0, "mAP75": -1.0}
    p = np.stack(precisions)  # [categories, thresholds, recall points]
    return {"mAP": float(p.mean()), "mAP50": float(p[:, 0].mean()), "mAP75": float(p[:, 5].mean())}


def pycocotools_map(ground_truth: Boxes, detections: Boxes, width: int, height: int) -> dict[str, float]:
    """The same numbers computed by pycocotools itself (the reference; slower, prints nothing)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = np.unique(np.concatenate([ground_truth.image, detections.image]))
    categories = np.unique(np.concatenate([ground_truth.category, detections.category]))
    gt = COCO()
    gt.dataset = {
        "images": [{"id": int(i), "width": width, "height": height} for i in images],
        "categories": [{"id": int(c), "name": str(c)} for c in categories],
        "annotations": [{"id": k + 1, "image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b],
                         "area": float(b[2] * b[3]), "iscrowd": 0}
                        for k, (i, c, b) in enumerate(zip(ground_truth.image, ground_truth.category,
                                                          ground_truth.xywh))],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        if len(detections.image) == 0:
            return {"mAP": 0.0, "mAP50": 0.0, "mAP75": 0.0}
        dt = gt.loadRes([{"image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b],
                          "score": float(s)}
                         for i, c, b, s in zip(detections.image, detections.category, detections.xywh,
                                               detections.score)])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"mAP": float(ev.stats[0]), "mAP50": float(ev.stats[1]), "mAP75": float(ev.stats[2])}
