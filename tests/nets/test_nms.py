"""The numba NMS keeps exactly what the former pure-torch loop kept (benchmarks/bench_nms.py holds it)."""

from __future__ import annotations

import pytest
import torch

from benchmarks.bench_nms import (predictions, reference_batched_nms, reference_nms,
                                  reference_non_max_suppression)
from evstream.nets.spike_yolo.nms import batched_nms, nms, non_max_suppression


def random_boxes(n: int, seed: int, *, grid: float | None = None, dtype=torch.float32):
    """``n`` xyxy boxes in a 100x80 image; with ``grid``, corners snapped to it (many equal boxes and IoUs)."""
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=g) * torch.tensor([100.0, 80.0])
    size = torch.rand(n, 2, generator=g) * 30 + 1
    boxes = torch.cat([corner, corner + size], 1)
    if grid is not None:
        boxes = (boxes / grid).round() * grid
    return boxes.to(dtype)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 1.0, -0.1])
def test_nms_equals_the_torch_loop_on_random_boxes(seed, threshold):
    boxes = random_boxes(300, seed)
    scores = torch.rand(300, generator=torch.Generator().manual_seed(100 + seed))
    assert torch.equal(nms(boxes, scores, threshold), reference_nms(boxes, scores, threshold))
    classes = torch.randint(0, 3, (300,), generator=torch.Generator().manual_seed(200 + seed))
    for max_keep in (None, 0, 25):
        assert torch.equal(batched_nms(boxes, scores, classes, threshold, max_keep),
                           reference_batched_nms(boxes, scores, classes, threshold, max_keep))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nms_equals_the_torch_loop_on_ties(seed, dtype):
    """Scores from 4 values, boxes on a 10 px grid (duplicates, IoUs exactly at 0.5 and 0.7): ties in
    score keep the lower index first, and IoUs equal to the threshold keep the box, in both."""
    boxes = random_boxes(200, seed, grid=10.0, dtype=dtype)
    boxes = torch.cat([boxes, boxes[:40]])  # exact duplicates
    g = torch.Generator().manual_seed(300 + seed)
    scores = (torch.randint(0, 4, (len(boxes),), generator=g) / 4).to(dtype)
    classes = torch.randint(0, 2, (len(boxes),), generator=g)
    for threshold in (0.5, 0.7, 1 / 3):
        new = batched_nms(boxes, scores, classes, threshold)
        assert torch.equal(new, reference_batched_nms(boxes, scores, classes, threshold))
        assert torch.equal(nms(boxes, scores, threshold), reference_nms(boxes, scores, threshold))
    kept_scores = scores[new]
    assert torch.all(kept_scores[:-1] >= kept_scores[1:])
    same = kept_scores[:-1] == kept_scores[1:]
    assert torch.all(new[:-1][same] < new[1:][same])  # stable ties


def test_non_max_suppression_equals_the_torch_loop_at_validation_settings():
    boxes, scores = predictions(1680, 2, seed=3)
    settings = dict(conf_threshold=0.001, iou_threshold=0.7, max_det=300, multi_label=True)
    new = non_max_suppression(boxes, scores, **settings)[0]
    old = reference_non_max_suppression(boxes, scores, **settings)[0]
    assert len(new.scores) == 300
    for a, b in zip(new, old, strict=True):
        assert torch.equal(a, b)


def test_batched_nms_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="batched_nms: expected"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, dtype=torch.long), 0.5)
