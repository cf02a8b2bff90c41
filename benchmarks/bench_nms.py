"""Benchmark: SpikeYOLO NMS at validation settings, the numba greedy pass against the pure-torch loop it replaced.

Predictions are YOLOv8-shaped: one box per anchor of the stride 8/16/32 grids (1,680 anchors for a
320x256 Gen1 window, 8,400 for 640x640), centred near its grid cell, sized log-normally, with
class probabilities ``sigmoid(N(-4, 2))`` (an untrained-to-average head: at ``conf 0.001`` with
``multi_label`` most (anchor, class) pairs pass, as in mAP validation). Both implementations get
the same inputs; the kept detections are checked equal before timing.

:func:`reference_nms` is the implementation evstream used before (one :func:`box_iou` call per kept
box over the remaining boxes); it is kept here, and only here, as the reference of the equality
tests (``tests/nets/test_nms.py``).

Reported: best and median CPU ms per image over ``--repeats`` calls after one warm-up, with
``torch.set_num_threads(--threads)`` (default 1), and the ratio of the medians.

Usage:
    python benchmarks/bench_nms.py                         # 1,680 and 8,400 anchors, 2 classes
    python benchmarks/bench_nms.py --anchors 8400 --classes 80 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from evstream.nets.spike_yolo.nms import NMSResult, box_iou, candidates, non_max_suppression


def reference_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                  max_keep: int | None = None) -> torch.Tensor:
    """The former pure-torch greedy NMS: indices kept, by decreasing score (stable ties)."""
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    limit = len(order) if max_keep is None else max_keep
    while order.numel() and len(keep) < limit:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        order = rest[box_iou(boxes[best].unsqueeze(0), boxes[rest])[0] <= iou_threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long, device=boxes.device)


def reference_batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float,
                          max_keep: int | None = None) -> torch.Tensor:
    """The former class-aware NMS: each class shifted to its own region, then :func:`reference_nms`."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    span = (boxes.max() - boxes.min()).clamp(min=0) + 1
    shifted = boxes + (classes.to(boxes.dtype) * span)[:, None]
    return reference_nms(shifted, scores, iou_threshold, max_keep)


def reference_non_max_suppression(boxes: torch.Tensor, scores: torch.Tensor, *, conf_threshold: float = 0.25,
                                  iou_threshold: float = 0.7, max_det: int = 300, multi_label: bool = False,
                                  max_candidates: int = 30_000) -> list[NMSResult]:
    """The former :func:`~evstream.nets.spike_yolo.nms.non_max_suppression` (same candidates, reference NMS)."""
    out = []
    for b, s in zip(boxes, scores, strict=True):
        anchor, cls, conf = candidates(s, conf_threshold, multi_label, max_candidates)
        keep = reference_batched_nms(b[anchor], conf, cls, iou_threshold, max_det)
        out.append(NMSResult(b[anchor][keep], conf[keep], cls[keep]))
    return out


def grid_shape(anchors: int) -> tuple[int, int]:
    """(width, height) in pixels whose stride 8/16/32 grids have ``anchors`` cells (1680: 320x256, 8400: 640x640)."""
    shapes = {1680: (320, 256), 8400: (640, 640)}
    if anchors not in shapes:
        raise SystemExit(f"--anchors: one of {sorted(shapes)}")
    return shapes[anchors]


def predictions(anchors: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOv8-shaped decoded predictions ``boxes [1, A, 4]`` xyxy and ``scores [1, A, nc]`` (module docstring)."""
    width, height = grid_shape(anchors)
    g = torch.Generator().manual_seed(seed)
    centres, sizes = [], []
    for stride in (8, 16, 32):
        ys, xs = torch.meshgrid(torch.arange(height // stride), torch.arange(width // stride), indexing="ij")
        cells = torch.stack([xs.flatten(), ys.flatten()], 1).float()
        centres.append((cells + 0.5 + torch.randn(len(cells), 2, generator=g) * 0.5) * stride)
        sizes.append(stride * 4 * torch.exp(torch.randn(len(cells), 2, generator=g) * 0.5))
    centre, size = torch.cat(centres), torch.cat(sizes)
    boxes = torch.cat([centre - size / 2, centre + size / 2], 1)
    scores = torch.sigmoid(torch.randn(len(boxes), classes, generator=g) * 2 - 4)
    return boxes[None], scores[None]


def time_ms(function, repeats: int) -> list[float]:
    """CPU milliseconds per call (``process_time``: the machine may be shared), after one warm-up call
    (numba compile)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        times.append((time.process_time() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anchors", type=int, nargs="+", default=[1680, 8400], help="anchors per image (1680 or 8400)")
    parser.add_argument("--classes", type=int, default=2, help="classes of the head (Gen1: 2)")
    parser.add_argument("--conf", type=float, default=0.001, help="confidence threshold (validation: 0.001)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per implementation")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = dict(conf_threshold=args.conf, iou_threshold=0.7, max_det=300, multi_label=True)
    for anchors in args.anchors:
        boxes, scores = predictions(anchors, args.classes)
        candidates = int((scores > args.conf).sum())
        new = non_max_suppression(boxes, scores, **settings)[0]
        old = reference_non_max_suppression(boxes, scores, **settings)[0]
        if not all(torch.equal(a, b) for a, b in zip(new, old, strict=True)):
            raise SystemExit(f"{anchors} anchors: the implementations keep different detections")
        times = {name: time_ms(lambda f=f: f(boxes, scores, **settings), args.repeats)
                 for name, f in (("torch loop (before)", reference_non_max_suppression),
                                 ("numba greedy (now)", non_max_suppression))}
        print(f"{anchors} anchors, {args.classes} classes: {candidates} candidates, {len(new.scores)} kept")
        for name, ms in times.items():
            print(f"  {name:20s} best {min(ms):8.2f} ms  median {statistics.median(ms):8.2f} ms")
        ratio = statistics.median(times["torch loop (before)"]) / statistics.median(times["numba greedy (now)"])
        print(f"  speed-up (median): {ratio:.1f}x")


if __name__ == "__main__":
    main()
