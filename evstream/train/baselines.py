"""Events-blind baselines: what the labels alone score, to read a model card's metrics against.

* Classification: :func:`majority_top1`, the share of the most frequent label among the test
  samples (the best constant answer on them; 1 / C on a balanced set).
* Detection: :func:`prior_boxes`, the most frequent box positions of each class in the training
  labels with constant scores, the same for every test sample whatever its events; score them
  with the task's own mAP code (``Gen1Task.score(test, [prior] * len(test))``). A position's frequency is the share
  of the class's training boxes that overlap it at IoU >= ``match_iou``; the positions are
  picked densest first, skipping any that overlaps one already picked by more than
  ``match_iou`` (greedy NMS on the frequencies), so they cover the places boxes usually are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from evstream.nets.spike_yolo.nms import NMSResult, box_iou, nms

__all__ = ["majority_top1", "prior_boxes"]

_ROWS = 2048
"""Rows of the IoU matrix held at once when counting overlaps (bounds memory to rows x boxes)."""


def majority_top1(labels: torch.Tensor) -> float:
    """Top-1 of always answering the most frequent of ``labels [N]`` (0.0 for N = 0)."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    return float(torch.bincount(labels).max()) / len(labels) if len(labels) else 0.0


def _frequencies(boxes: torch.Tensor, match_iou: float) -> torch.Tensor:
    """Per box, the share of ``boxes`` overlapping it at IoU >= ``match_iou`` (itself included)."""
    counts = torch.cat([(box_iou(boxes[i:i + _ROWS], boxes) >= match_iou).sum(1)
                        for i in range(0, len(boxes), _ROWS)])
    return counts.double() / len(boxes)


def prior_boxes(targets: Sequence[np.ndarray], num_classes: int, *, per_class: int = 150,
                match_iou: float = 0.5) -> NMSResult:
    """The ``per_class`` most frequent training box positions of each class, scored by their frequency.

    Args:
        targets: the training samples' boxes, each ``[N, 5]`` (class, x1, y1, x2, y2), e.g.
            :meth:`Gen1Detection.targets` (network-input pixels).
        num_classes: classes ``0 .. num_classes - 1``; a class without training boxes gets none.
        per_class: positions kept per class (150 = Ultralytics' 300 detections per image over 2 classes).
        match_iou: IoU at which a training box counts for a position (and at which picked positions
            may not overlap).

    Returns:
        One image's detections (xyxy, frequencies as scores, classes), by decreasing score.

    The overlap count is quadratic in a class's training boxes (thousands on the synthetic sets).
    """
    if per_class < 1 or not 0 < match_iou <= 1:
        raise ValueError(f"need per_class >= 1 and 0 < match_iou <= 1, got {per_class}, {match_iou}")
    rows = np.concatenate([np.asarray(t, np.float64).reshape(-1, 5) for t in targets]) if len(targets) else \
        np.zeros((0, 5))
    boxes, scores, classes = [], [], []
    for c in range(num_classes):
        own = torch.from_numpy(rows[rows[:, 0] == c, 1:])
        if not len(own):
            continue
        frequency = _frequencies(own, match_iou)
        keep = nms(own, frequency, match_iou, max_keep=per_class)
        boxes.append(own[keep])
        scores.append(frequency[keep])
        classes.append(torch.full((len(keep),), c, dtype=torch.long))
    if not boxes:
        return NMSResult(torch.zeros(0, 4, dtype=torch.float64), torch.zeros(0, dtype=torch.float64),
                         torch.zeros(0, dtype=torch.long))
    order = torch.sort(torch.cat(scores), descending=True, stable=True).indices
    return NMSResult(torch.cat(boxes)[order], torch.cat(scores)[order], torch.cat(classes)[order])

