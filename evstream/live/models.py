"""The bundled models for the live loop, by task, each rebuilt from its checkpoint's recipe.

A task's loader ``load_bundled(models_dir, device)`` returns ``(model, window_us)``: ``model``
maps a window of events to a :mod:`evstream.live.outputs` value. Loaders are imported lazily;
a task whose model or checkpoint is missing runs with events only, and says why.
"""

from __future__ import annotations

import importlib
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

LIVE_MODELS = {
    "gesture": "evstream.nets.live_classifier:load_bundled",
    "detection": "evstream.nets.spike_yolo.live:load_bundled",
    "depth": "evstream.nets.depth.live:load_bundled",
}


def load_live_model(task: str, *, models_dir: Path = MODELS_DIR, device: str = "cpu"):
    """``(model, window_us, message)``; ``model`` is None (with the reason in ``message``) when unavailable."""
    if task == "none":
        return None, None, "no model (events only)"
    if task not in LIVE_MODELS:
        raise ValueError(f"unknown live task {task!r}; one of: none, {', '.join(LIVE_MODELS)}")
    module, attr = LIVE_MODELS[task].split(":")
    try:
        loader = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        return None, None, f"{task} model not available in this build ({err}); showing events only"
    try:
        model, window_us = loader(models_dir, device)
    except FileNotFoundError as err:
        return None, None, f"{task} checkpoint missing ({err}); showing events only"
    return model, window_us, f"{task} model from {models_dir}"
