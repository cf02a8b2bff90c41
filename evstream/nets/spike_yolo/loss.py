"""YOLOv8's detection loss (``v8DetectionLoss``), used unchanged by SpikeYOLO (models.md §1.3).

* Task-aligned assignment (:class:`TaskAlignedAssigner`, topk 10, alpha 0.5, beta 6): anchors whose
  centre lies inside a ground-truth box are ranked by ``score^alpha * CIoU^beta``; the top k per
  box are positives; an anchor claimed by several boxes keeps the one of highest CIoU. Class
  targets are one-hot times the normalised alignment metric.
* Classification: BCE with logits, summed and divided by the sum of the targets.
* Boxes: (1 - CIoU) and the distribution focal loss (DFL) over reg_max bins, weighted by the
  anchor's target score.
* Total = (7.5 box + 0.5 cls + 1.5 dfl) x batch size (Ultralytics' scaling).

Targets are ``[N, 6]`` rows ``(image index, class, x1, y1, x2, y2)`` in input pixels (xyxy).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from evstream.nets.spike_yolo.head import dfl_expectation, dist_to_xyxy, make_anchors

__all__ = ["DetectionLoss", "TaskAlignedAssigner", "bbox_ciou", "dfl_loss"]


def bbox_ciou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU of paired xyxy boxes: IoU - d^2 / c^2 - alpha v (Zheng et al. 2020).

    Shape: ``[..., 4]`` and ``[..., 4]`` -> ``[...]``.
    """
    w1, h1 = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1] + eps
    w2, h2 = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1] + eps
    inter = ((torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
             * (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0))
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.maximum(a[..., 2], b[..., 2]) - torch.minimum(a[..., 0], b[..., 0])
    ch = torch.maximum(a[..., 3], b[..., 3]) - torch.minimum(a[..., 1], b[..., 1])
    c2 = cw ** 2 + ch ** 2 + eps
    dx = b[..., 0] + b[..., 2] - a[..., 0] - a[..., 2]
    dy = b[..., 1] + b[..., 3] - a[..., 1] - a[..., 3]
    rho2 = (dx ** 2 + dy ** 2) / 4
    v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def dfl_loss(bins: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distribution focal loss: cross-entropy to the two bins around each continuous target.

    Shape: bins ``[N, 4, reg_max]`` logits, target ``[N, 4]`` in [0, reg_max - 1) -> ``[N]`` (mean over sides).
    """
    left = target.long()
    w_left = left + 1 - target
    ce_left = F.cross_entropy(bins.flatten(0, 1), left.flatten(), reduction="none").view(left.shape)
    ce_right = F.cross_entropy(bins.flatten(0, 1), (left + 1).flatten(), reduction="none").view(left.shape)
    return (ce_left * w_left + ce_right * (1 - w_left)).mean(-1)


class TaskAlignedAssigner:
    """TOOD's task-aligned assigner as in YOLOv8.

    Args:
        topk: candidates per ground-truth box (10). alpha, beta: exponents of score and CIoU.
    """

    def __init__(self, num_classes: int, *, topk: int = 10, alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9):
        self.num_classes, self.topk, self.alpha, self.beta, self.eps = num_classes, topk, alpha, beta, eps

    @torch.no_grad()
    def __call__(self, scores: torch.Tensor, boxes: torch.Tensor, points: torch.Tensor, gt_labels: torch.Tensor,
                 gt_boxes: torch.Tensor, gt_mask: torch.Tensor):
        """Assign targets.

        Args:
            scores: ``[B, A, nc]`` predicted probabilities. boxes: ``[B, A, 4]`` predicted xyxy (pixels).
            points: ``[A, 2]`` anchor centres (pixels). gt_labels: ``[B, M]`` long. gt_boxes: ``[B, M, 4]``
            xyxy. gt_mask: ``[B, M]`` bool, real (not padding) boxes.

        Returns:
            ``(target_boxes [B, A, 4], target_scores [B, A, nc], foreground [B, A] bool)``.
        """
        batch, n_max = gt_boxes.shape[:2]
        n_anchors = points.shape[0]
        if n_max == 0:
            return torch.zeros_like(boxes), torch.zeros_like(scores), torch.zeros_like(scores[..., 0], dtype=torch.bool)
        lt, rb = gt_boxes[:, :, None, :2], gt_boxes[:, :, None, 2:]
        inside = torch.cat((points - lt, rb - points), -1).amin(-1) > self.eps            # [B, M, A]
        valid = inside & gt_mask[:, :, None]
        overlaps = torch.zeros(batch, n_max, n_anchors, dtype=boxes.dtype, device=boxes.device)
        pair_boxes = boxes[:, None].expand(-1, n_max, -1, -1)[valid]
        pair_gt = gt_boxes[:, :, None].expand(-1, -1, n_anchors, -1)[valid]
        overlaps[valid] = bbox_ciou(pair_gt, pair_boxes).clamp(min=0).to(boxes.dtype)
        cls_scores = torch.gather(scores.transpose(1, 2), 1, gt_labels[:, :, None].expand(-1, -1, n_anchors))
        cls_scores = torch.where(valid, cls_scores, torch.zeros_like(cls_scores))
        metric = cls_scores.pow(self.alpha) * overlaps.pow(self.beta)                    # [B, M, A]

        top = metric.topk(min(self.topk, n_anchors), dim=-1).indices                     # [B, M, k]
        top = torch.where(gt_mask[:, :, None], top, torch.zeros_like(top))
        ones = torch.ones_like(top, dtype=torch.int32)
        counts = torch.zeros_like(metric, dtype=torch.int32).scatter_add_(-1, top, ones)
        positive = (counts == 1) & valid                                                 # [B, M, A]

        multiple = positive.sum(1, keepdim=True) > 1                                     # anchor claimed twice
        best = F.one_hot(overlaps.argmax(1), n_max).transpose(1, 2).bool()
        positive = torch.where(multiple, best, positive)
        foreground = positive.any(1)                                                     # [B, A]
        gt_index = positive.to(torch.uint8).argmax(1)                                    # [B, A]

        target_labels = torch.gather(gt_labels, 1, gt_index)
        target_boxes = torch.gather(gt_boxes, 1, gt_index[..., None].expand(-1, -1, 4))
        target_scores = F.one_hot(target_labels.clamp(min=0), self.num_classes).to(scores.dtype)
        target_scores = target_scores * foreground[..., None]

        metric = metric * positive
        norm = (metric * (overlaps * positive).amax(-1, keepdim=True)
                / (metric.amax(-1, keepdim=True) + self.eps)).amax(1)                    # [B, A]
        return target_boxes, target_scores * norm[..., None], foreground


class DetectionLoss:
    """YOLOv8 detection criterion on SpikeDetect's raw maps.

    Args:
        num_classes: nc. strides: level strides (8, 16, 32). reg_max: DFL bins (16).
        box_gain, cls_gain, dfl_gain: 7.5, 0.5, 1.5. topk, alpha, beta: assigner settings (10, 0.5, 6).

    Returns:
        ``__call__(maps, targets) -> (total, {"box", "cls", "dfl"})``; ``total`` is the weighted sum
        times the batch size, the parts are the weighted, detached terms. Computed in float32 under
        any autocast.
    """

    def __init__(self, num_classes: int, strides: tuple[int, ...] = (8, 16, 32), *, reg_max: int = 16,
                 box_gain: float = 7.5, cls_gain: float = 0.5, dfl_gain: float = 1.5, topk: int = 10,
                 alpha: float = 0.5, beta: float = 6.0):
        self.num_classes, self.strides, self.reg_max = num_classes, tuple(strides), reg_max
        self.gains = (box_gain, cls_gain, dfl_gain)
        self.assigner = TaskAlignedAssigner(num_classes, topk=topk, alpha=alpha, beta=beta)

    def __call__(self, maps: list[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss in float32 whatever autocast surrounds it: squared pixel distances (CIoU's enclosing
        diagonal, up to 2 x 320^2) overflow float16."""
        with torch.autocast(maps[0].device.type, enabled=False):
            return self._loss([m.float() for m in maps], targets)

    def _loss(self, maps: list[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        batch = maps[0].shape[0]
        flat = torch.cat([m.flatten(2) for m in maps], 2).transpose(1, 2)             # [B, A, no]
        pred_bins, pred_logits = flat.split((4 * self.reg_max, self.num_classes), -1)
        points, stride = make_anchors([m.shape[2:] for m in maps], self.strides, device=flat.device, dtype=flat.dtype)
        pred_boxes = dist_to_xyxy(dfl_expectation(pred_bins, self.reg_max), points)   # grid units

        gt_labels, gt_boxes, gt_mask = _pad_targets(targets, batch, flat.device, flat.dtype)
        target_boxes, target_scores, fg = self.assigner(pred_logits.detach().sigmoid(), pred_boxes.detach() * stride,
                                                        points * stride, gt_labels, gt_boxes, gt_mask)
        score_sum = target_scores.sum().clamp(min=1)
        loss_cls = F.binary_cross_entropy_with_logits(pred_logits, target_scores, reduction="sum") / score_sum
        loss_box = loss_dfl = flat.new_zeros(())
        if fg.any():
            weight = target_scores.sum(-1)[fg]
            target_boxes = target_boxes / stride
            loss_box = ((1 - bbox_ciou(pred_boxes[fg], target_boxes[fg])) * weight).sum() / score_sum
            lt, rb = target_boxes[..., :2], target_boxes[..., 2:]
            target_dist = torch.cat((points - lt, rb - points), -1).clamp(0, self.reg_max - 1 - 0.01)
            bins = pred_bins[fg].view(-1, 4, self.reg_max)
            loss_dfl = (dfl_loss(bins, target_dist[fg]) * weight).sum() / score_sum
        parts = torch.stack((loss_box * self.gains[0], loss_cls * self.gains[1], loss_dfl * self.gains[2]))
        named = dict(zip(("box", "cls", "dfl"), parts.detach().tolist(), strict=True))
        return parts.sum() * batch, named


def _pad_targets(targets: torch.Tensor, batch: int, device, dtype):
    """``[N, 6]`` (image, class, xyxy) -> labels ``[B, M]``, boxes ``[B, M, 4]``, mask ``[B, M]``."""
    if targets.ndim != 2 or targets.shape[-1] != 6:
        raise ValueError(f"targets must be [N, 6] rows (image, class, x1, y1, x2, y2), got {tuple(targets.shape)}")
    targets = targets.to(device=device, dtype=dtype)
    image = targets[:, 0].long()
    if len(image) and (image.min() < 0 or image.max() >= batch):
        raise ValueError(f"target image indices must be in [0, {batch})")
    counts = torch.bincount(image, minlength=batch)
    n_max = int(counts.max()) if len(image) else 0
    labels = torch.zeros(batch, n_max, dtype=torch.long, device=device)
    boxes = torch.zeros(batch, n_max, 4, dtype=dtype, device=device)
    mask = torch.zeros(batch, n_max, dtype=torch.bool, device=device)
    order = torch.argsort(image, stable=True)
    image = image[order]
    slot = torch.arange(len(image), device=device) - torch.cumsum(counts, 0)[image] + counts[image]
    labels[image, slot] = targets[order, 1].long()
    boxes[image, slot] = targets[order, 2:]
    mask[image, slot] = True
    return labels, boxes, mask
