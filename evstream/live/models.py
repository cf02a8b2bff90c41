"""Models for the live loop: a bundled checkpoint by task, or any checkpoint ``evstream eval --export`` writes.

Each checkpoint carries its recipe, so the model is rebuilt with the exact preprocessing it was
trained with, including the sensor it expects. When the source's sensor differs, the events are
mapped onto the model's input by a stated :class:`~evstream.ops.sensor_fit.SensorFit` policy
(boxes are mapped back to the source's pixels), and the policy is part of the model's description.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from evstream.ops.sensor_fit import SensorFit
from evstream.outputs import Detections
from evstream import checkpoint
from evstream.checkpoint import CheckpointError

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
BUNDLED = {"gesture": "gesture_tasnn.pt", "detection": "detector_spikeyolo.pt", "depth": "depth_spiking_unet.pt",
           "nmnist": "nmnist_*.pt"}
"""Task -> the bundled checkpoint's file name (a pattern where the card names the net)."""
TASKS = ("none", *BUNDLED)


def checkpoint_kind(info: dict) -> str | None:
    """``classifier``, ``detector`` or ``depth`` from an exported checkpoint's keys (None: not a live one)."""
    if "builder" in info and "representation" in info:
        return "depth"
    if "recipe" in info and "net" in info:
        return "detector" if info["net"] == "spike_yolo" else "classifier"
    return None


def _load(path: Path, device: str):
    """``(model, input sensor size, window_us)`` rebuilt from an exported checkpoint."""
    kind = checkpoint_kind(checkpoint.load(path))
    if kind is None:
        raise CheckpointError(path, "a training checkpoint, not a live one: export it with 'evstream eval TASK "
                                    "--checkpoint PATH --export MODEL.pt'")
    if kind == "depth":
        from evstream.nets.depth.live import load_depth

        model, window_us = load_depth(path, device)
        return model, model.sensor_size, window_us
    if kind == "detector":
        from evstream.nets.spike_yolo.live import SpikeYOLODetector

        model = SpikeYOLODetector.from_checkpoint(path, device=device)
    else:
        from evstream.nets.live_classifier import LiveClassifier

        model = LiveClassifier.from_checkpoint(path, device=device)
    return model, model.recipe.sensor_size, model.recipe.window_us


@dataclass
class LiveModel:
    """A loaded model for the pipeline: ``model(events) -> output`` on the source's events.

    ``fit`` maps the source's events onto the model's input (None when the sensors agree);
    ``describe`` is the line the window and the run summary show.
    """

    model: Callable[[np.ndarray], Any]
    window_us: int
    path: Path
    input_size: tuple[int, int, int]
    fit: SensorFit | None = None

    def __call__(self, events: np.ndarray):
        if self.fit is None:
            return self.model(events)
        output = self.model(self.fit(events))
        if isinstance(output, Detections):
            boxes = self.fit.boxes_to_source(output.boxes_xyxy)
            width, height = self.fit.source_size[:2]
            boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
            output = Detections(boxes, output.classes, output.scores, output.names, output.firing_rate)
        return output

    def describe(self) -> str:
        width, height = self.input_size[:2]
        geometry = self.fit.describe() if self.fit is not None else f"input {width}x{height} (the sensor's own)"
        return f"{type(self.model).__name__} from {self.path.name}, {geometry}"


def bundled_checkpoint(task: str, models_dir: os.PathLike | str = MODELS_DIR) -> Path:
    """The bundled checkpoint of a task (FileNotFoundError naming it when absent)."""
    if task not in BUNDLED:
        raise ValueError(f"unknown live task {task!r}; one of: {', '.join(TASKS)}")
    matches = sorted(Path(models_dir).glob(BUNDLED[task]))
    if not matches:
        raise FileNotFoundError(f"no bundled {task} checkpoint {Path(models_dir) / BUNDLED[task]}")
    return matches[0]


def load_live_model(task: str | None = None, *, checkpoint_path: os.PathLike | str | None = None,
                    source_size: tuple[int, int, int] | None = None, fit: str = "crop",
                    models_dir: os.PathLike | str = MODELS_DIR, device: str = "cpu") -> tuple[LiveModel | None, str]:
    """``(model, message)``: the model in ``checkpoint_path`` if given, else the bundled model of ``task``.

    A bundled checkpoint that is missing gives ``(None, why)`` (the loop shows events only); a given
    checkpoint that is missing or unreadable raises :class:`CheckpointError` naming it. With
    ``source_size``, a model of another sensor gets its events through ``SensorFit(policy=fit)``.
    """
    if checkpoint_path is None:
        if task in (None, "none"):
            return None, "no model (events only)"
        try:
            path = bundled_checkpoint(task, models_dir)
        except FileNotFoundError as err:
            return None, f"{err}; showing events only"
    else:
        path = Path(checkpoint_path)
    model, input_size, window_us = _load(path, device)
    live = LiveModel(model, int(window_us), path, tuple(input_size))
    if source_size is not None and tuple(source_size[:2]) != tuple(input_size[:2]):
        live.fit = SensorFit(tuple(source_size), tuple(input_size), fit)
    return live, live.describe()
