"""Non-maximum suppression without torchvision, YOLOv8's post-processing.

Boxes are xyxy. :func:`nms` is greedy single-class NMS; :func:`batched_nms` makes it class aware
by shifting each class's boxes to its own region; :func:`non_max_suppression` filters the decoded
head output by confidence and keeps at most ``max_det`` boxes per image (IoU 0.7, 300 detections).

The greedy pass is one numba kernel over the boxes in score order (a stable sort: ties keep the
lower index first). Each kept box visits only the later boxes of its own class, which it can
suppress (boxes of other classes lie in other shifted regions, IoU 0); its IoU with each is the
float arithmetic of :func:`box_iou`, operation for operation, so the kept set is exactly that of a
loop of :func:`box_iou` calls. The boxes go to the CPU for the pass and the indices come back to
their device (a few hundred kilobytes at validation sizes).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from evstream._jit import kernel

__all__ = ["NMSResult", "batched_nms", "box_iou", "candidates", "nms", "non_max_suppression"]


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


@kernel
def _greedy_nms(boxes, classes, threshold, limit):
    """Positions (into the score-ordered ``boxes``) kept by greedy NMS, at most ``limit``.

    ``boxes [N, 4]`` and ``threshold`` share one float dtype, in which every step is rounded as
    :func:`box_iou` rounds it; ``classes [N]``: a box is only compared with later boxes of its class,
    which a stable sort by class lays out after it in one run (a plain loop, no linked list).
    """
    n = boxes.shape[0]
    grouped = np.argsort(classes, kind="mergesort")  # stable: score order within each class
    x0 = np.empty(n, boxes.dtype)  # the grouped boxes, a column each
    y0 = np.empty(n, boxes.dtype)
    x1 = np.empty(n, boxes.dtype)
    y1 = np.empty(n, boxes.dtype)
    at = np.empty(n, np.int64)  # score position -> position in the class runs
    end = np.empty(n, np.int64)  # score position -> end of its class run
    stop = n
    for g in range(n - 1, -1, -1):
        box = boxes[grouped[g]]
        x0[g], y0[g], x1[g], y1[g] = box[0], box[1], box[2], box[3]
        at[grouped[g]] = g
        if g < n - 1 and classes[grouped[g]] != classes[grouped[g + 1]]:
            stop = g + 1
        end[grouped[g]] = stop
    zero = boxes.dtype.type(0)
    tiny = np.finfo(boxes.dtype).tiny
    disjoint_kept = zero <= threshold  # IoU 0 never suppresses unless the threshold is negative
    removed = np.zeros(n, np.bool_)
    inter = np.empty(n, boxes.dtype)
    keep = np.empty(min(n, limit), np.int64)
    kept = 0
    for k in range(n):
        if kept == limit:
            break
        g = at[k]
        if removed[g]:
            continue
        keep[kept] = k
        kept += 1
        ax0, ay0, ax1, ay1 = x0[g], y0[g], x1[g], y1[g]
        area = max(ax1 - ax0, zero) * max(ay1 - ay0, zero)
        for j in range(g + 1, end[k]):  # branch-free, so that it vectorises
            inter[j] = max(min(ax1, x1[j]) - max(ax0, x0[j]), zero) * max(min(ay1, y1[j]) - max(ay0, y0[j]), zero)
        for j in range(g + 1, end[k]):
            if (inter[j] <= zero and disjoint_kept) or removed[j]:
                continue
            union = area + max(x1[j] - x0[j], zero) * max(y1[j] - y0[j], zero) - inter[j]
            iou = inter[j] / max(union, tiny) if union > zero else zero
            if not iou <= threshold:
                removed[j] = True
    return keep[:kept]


def _nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor | None, iou_threshold: float,
         max_keep: int | None) -> torch.Tensor:
    """Greedy NMS of ``boxes`` by decreasing score, within each of ``classes`` (None: one class)."""
    order = torch.sort(scores, descending=True, stable=True).indices
    dtype = boxes.dtype if boxes.dtype == torch.float64 else torch.float32
    ordered = boxes[order].detach().to("cpu", dtype).contiguous().numpy()
    if classes is None or iou_threshold < 0:  # a negative threshold suppresses across classes too (IoU 0)
        groups = np.zeros(len(ordered), np.int64)
    else:
        groups = classes[order].detach().to("cpu", torch.int64).numpy()
    limit = len(ordered) if max_keep is None else max(int(max_keep), 0)
    kept = _greedy_nms(ordered, groups, ordered.dtype.type(iou_threshold), limit)
    return order[torch.from_numpy(kept).to(order.device)]


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, max_keep: int | None = None) -> torch.Tensor:
    """Greedy NMS: indices of the kept boxes, by decreasing score.

    A box is dropped when its IoU with a kept, higher-scored box is above ``iou_threshold``.
    Ties keep the lower index first. Stops after ``max_keep`` kept boxes. Half-precision boxes
    are compared in float32.

    Shape: boxes ``[N, 4]`` xyxy, scores ``[N]`` -> ``[K]`` long.
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"nms: expected boxes [N, 4] and scores [N], got {tuple(boxes.shape)}, {tuple(scores.shape)}")
    return _nms(boxes, scores, None, iou_threshold, max_keep)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float,
                max_keep: int | None = None) -> torch.Tensor:
    """Class-aware NMS: boxes of different classes never suppress each other. Returns kept indices."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1] or classes.shape != scores.shape:
        raise ValueError(f"batched_nms: expected boxes [N, 4], scores [N] and classes [N], got {tuple(boxes.shape)}, "
                         f"{tuple(scores.shape)}, {tuple(classes.shape)}")
    span = (boxes.max() - boxes.min()).clamp(min=0) + 1
    shifted = boxes + (classes.to(boxes.dtype) * span)[:, None]
    return _nms(shifted, scores, classes, iou_threshold, max_keep)


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
        anchor, cls, conf = candidates(s, conf_threshold, multi_label, max_candidates)
        keep = batched_nms(b[anchor], conf, cls, iou_threshold, max_det)
        out.append(NMSResult(b[anchor][keep], conf[keep], cls[keep]))
    return out


def candidates(scores: torch.Tensor, conf_threshold: float, multi_label: bool,
               max_candidates: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(anchor, class, score)`` of one image's ``[A, nc]`` scores entering NMS: above the threshold
    (every class, or each anchor's best), at most the ``max_candidates`` highest."""
    if multi_label:
        anchor, cls = torch.nonzero(scores > conf_threshold, as_tuple=True)
        conf = scores[anchor, cls]
    else:
        conf, cls = scores.max(1)
        anchor = torch.nonzero(conf > conf_threshold, as_tuple=True)[0]
        conf, cls = conf[anchor], cls[anchor]
    if len(conf) > max_candidates:
        top = conf.topk(max_candidates).indices
        anchor, cls, conf = anchor[top], cls[top], conf[top]
    return anchor, cls, conf
