"""Non-maximum suppression in plain torch (no torchvision), YOLOv8's post-processing.

Boxes are xyxy. :func:`nms` is greedy single-class NMS; :func:`batched_nms` makes it class aware
by shifting each class's boxes to its own region; :func:`non_max_suppression` filters the decoded
head output by confidence and keeps at most ``max_det`` boxes per image (IoU 0.7, 300 detections).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["NMSResult", "batched_nms", "box_iou", "nms", "non_max_suppression"]


class NMSResult(NamedTuple):
    """Detections of one image: ``boxes [N, 4]`` xyxy, ``scores [N]``, ``classes [N]`` (long)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix ``[len(a), len(b)]`` of xyxy boxes (0 where the union is empty)."""
    wh = (torch.minimum(a[:, None, 2:], b[None, :, 2:]) - torch.maximum(a[:, None, :2], b[None, :, :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    union = area_a[:, None] + area_b[None] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, max_keep: int | None = None) -> torch.Tensor:
    """Greedy NMS: indices of the kept boxes, by decreasing score.

    A box is dropped when its IoU with a kept, higher-scored box is above ``iou_threshold``.
    Ties keep the lower index first. Stops after ``max_keep`` kept boxes.

    Shape: boxes ``[N, 4]`` xyxy, scores ``[N]`` -> ``[K]`` long.
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"nms: expected boxes [N, 4] and scores [N], got {tuple(boxes.shape)}, {tuple(scores.shape)}")
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    limit = len(order) if max_keep is None else max_keep
    while order.numel() and len(keep) < limit:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        order = rest[box_iou(boxes[best].unsqueeze(0), boxes[rest])[0] <= iou_threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long, device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float,
                max_keep: int | None = None) -> torch.Tensor:
    """Class-aware NMS: boxes of different classes never suppress each other. Returns kept indices."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    span = (boxes.max() - boxes.min()).clamp(min=0) + 1
    shifted = boxes + (classes.to(boxes.dtype) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_keep)


def non_max_suppression(boxes: torch.Tensor, scores: torch.Tensor, *, conf_threshold: float = 0.25,
                        iou_threshold: float = 0.7, max_det: int = 300, multi_label: bool = False,
                        max_candidates: int = 30_000) -> list[NMSResult]:
    """YOLOv8 post-processing of decoded predictions.

    Args:
        boxes: ``[B, A, 4]`` xyxy. scores: ``[B, A, nc]`` class probabilities.
        conf_threshold: minimum class probability (Ultralytics: 0.25 to predict, 0.001 to validate).
        iou_threshold: class-aware NMS threshold (0.7). max_det: detections per image (300).
        multi_label: one candidate per (anchor, class) above threshold (validation) instead of
            the best class of each anchor.
        max_candidates: highest-scored candidates entering NMS.

    Returns:
        one :class:`NMSResult` per image, sorted by decreasing score.
    """
    if boxes.ndim != 3 or scores.ndim != 3 or boxes.shape[:2] != scores.shape[:2]:
        raise ValueError(f"expected boxes [B, A, 4] and scores [B, A, nc], got {tuple(boxes.shape)}, "
                         f"{tuple(scores.shape)}")
    out = []
    for b, s in zip(boxes, scores, strict=True):
        if multi_label:
            anchor, cls = torch.nonzero(s > conf_threshold, as_tuple=True)
            conf = s[anchor, cls]
        else:
            conf, cls = s.max(1)
            anchor = torch.nonzero(conf > conf_threshold, as_tuple=True)[0]
            conf, cls = conf[anchor], cls[anchor]
        if len(conf) > max_candidates:
            top = conf.topk(max_candidates).indices
            anchor, cls, conf = anchor[top], cls[top], conf[top]
        keep = batched_nms(b[anchor], conf, cls, iou_threshold, max_det)
        out.append(NMSResult(b[anchor][keep], conf[keep], cls[keep]))
    return out
