"""Live detection: one window of events -> boxes in sensor pixels, with a self-describing checkpoint.

The window's last 250 ms (``window_us``) ending at its last event become SpikeYOLO's input
(:func:`evstream.ops.to_spikeyolo_input`, T bins, letterbox), the net predicts, class-aware NMS
keeps at most ``max_det`` boxes, and the boxes are mapped back to sensor pixels (xyxy).
Each call returns an :class:`evstream.outputs.Detections`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from evstream.jsonout import plain
from evstream.nets.spike_yolo.model import LEGACY_BN_EPS, spike_yolo
from evstream.nets.spike_yolo.nms import non_max_suppression
from evstream.outputs import Detections
from evstream.ops.spikeyolo_input import letterbox_geometry, to_spikeyolo_input
from evstream.snn.profiler import SpikeRate
from evstream import checkpoint

__all__ = ["DetectionRecipe", "SpikeYOLODetector", "load_detector", "save_detector"]


@dataclass(frozen=True)
class DetectionRecipe:
    """How a window of events becomes the net's input (rule 10: stored with the weights).

    Args:
        sensor_size: ``(W, H, 2)``. n_time_bins: T. window_us: span before the window's end (250 ms).
        imgsz: long side of the letterboxed input (320 -> 320x256 for Gen1).
        resize: ``"linear"`` (the official resize) or ``"area"``; a checkpoint saved before the recipe
            had this field was trained with ``"area"``, and :func:`load_detector` reads it so.
    """

    sensor_size: tuple[int, int, int]
    n_time_bins: int = 2
    window_us: int = 250_000
    imgsz: int = 320
    resize: str = "linear"

    def __call__(self, events: np.ndarray, end_us: int | None = None) -> np.ndarray:
        """``[T, 3, H, W]`` float32 in [0, 1] for the window ending at ``end_us`` (default: last event + 1)."""
        if end_us is None:
            end_us = int(events["t"][-1]) + 1 if len(events) else self.window_us
        frames, _ = to_spikeyolo_input(events, self.sensor_size, end_us, self.n_time_bins, self.window_us, self.imgsz,
                                       resize=self.resize)
        return frames.astype(np.float32) / 255.0


class SpikeYOLODetector:
    """Callable ``events -> Detections(boxes_xyxy, classes, scores, names, firing_rate)``.

    Args:
        model: a :class:`~evstream.nets.spike_yolo.SpikeYOLO` (fused or not).
        recipe: the :class:`DetectionRecipe` it was trained with. names: class names.
        conf_threshold, iou_threshold, max_det: NMS settings (0.25, 0.7, 300).
        device: where to run.

    Example:
        >>> det = SpikeYOLODetector.from_checkpoint("models/detector_spikeyolo.pt")  # doctest: +SKIP
        >>> det(window_events).boxes_xyxy  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, recipe: DetectionRecipe, names: Sequence[str], *,
                 conf_threshold: float = 0.25, iou_threshold: float = 0.7, max_det: int = 300,
                 device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.recipe, self.names = recipe, tuple(names)
        self.conf_threshold, self.iou_threshold, self.max_det = conf_threshold, iou_threshold, max_det
        self.letterbox = letterbox_geometry(recipe.sensor_size, recipe.imgsz)
        self.spike_rate = SpikeRate(self.model)

    def __call__(self, events: np.ndarray, end_us: int | None = None) -> Detections:
        x = torch.from_numpy(self.recipe(events, end_us)).unsqueeze(1).to(self.device)
        self.spike_rate.reset()
        with torch.no_grad():
            boxes, scores = self.model.predict(x)
            result = non_max_suppression(boxes, scores, conf_threshold=self.conf_threshold,
                                         iou_threshold=self.iou_threshold, max_det=self.max_det)[0]
        width, height = self.recipe.sensor_size[:2]
        xyxy = self.letterbox.boxes_to_sensor(result.boxes.cpu().double().numpy().reshape(-1, 4))
        xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
        return Detections(xyxy, result.classes.cpu().numpy(), result.scores.cpu().numpy(), self.names,
                          self.spike_rate.value)

    @classmethod
    def from_checkpoint(cls, path: os.PathLike | str, *, device: torch.device | str = "cpu",
                        **nms) -> SpikeYOLODetector:
        """Rebuild net (fused for inference), recipe and names from a :func:`save_detector` file."""
        model, info = load_detector(path)
        return cls(model.fuse(), DetectionRecipe(**info["recipe"]), info["names"], device=device, **nms)


def save_detector(path: os.PathLike | str, model: nn.Module, *, net_options: dict, recipe: DetectionRecipe,
                  names: Sequence[str], metrics: dict | None = None) -> None:
    """Write a self-describing SpikeYOLO checkpoint: float32 weights, builder options (with the model's
    BatchNorm eps), recipe, names, metrics."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    eps = next(m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    torch.save({"net": "spike_yolo", "net_options": {"bn_eps": eps, **net_options}, "recipe": asdict(recipe),
                "names": list(names),
                "metrics": plain(dict(metrics or {})), "model": state}, path)


LEGACY_RESIZE = "area"
"""The resize of checkpoints whose recipe predates its ``resize`` field (the bundled detector's)."""


def load_detector(path: os.PathLike | str) -> tuple[nn.Module, dict]:
    """``(SpikeYOLO in eval mode, info)`` from a :func:`save_detector` file (one written before the
    recipe's ``resize`` and the net's ``bn_eps`` existed gets what it was trained with:
    :data:`LEGACY_RESIZE` and :data:`~evstream.nets.spike_yolo.model.LEGACY_BN_EPS`)."""
    info = checkpoint.load(path)
    info["net_options"].setdefault("bn_eps", LEGACY_BN_EPS)
    model = spike_yolo(**info["net_options"])
    checkpoint.load_model_state(model, info, path)
    info["recipe"]["sensor_size"] = tuple(info["recipe"]["sensor_size"])
    info["recipe"].setdefault("resize", LEGACY_RESIZE)
    return model.eval(), info
