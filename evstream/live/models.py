"""The bundled models for the live loop, by task, each rebuilt from its checkpoint's recipe.

A loader returns ``(model, window_us)``: ``model`` maps a window of events to a
:mod:`evstream.outputs` value, ``window_us`` is the span of events it was trained on.
A task whose checkpoint is missing (``FileNotFoundError`` naming it) runs with events only, and says why.
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def _gesture(models_dir: Path, device: str):
    from evstream.nets.live_classifier import LiveClassifier

    model = LiveClassifier.from_checkpoint(models_dir / "gesture_tasnn.pt", device=device)
    return model, model.recipe.window_us


def _detection(models_dir: Path, device: str):
    from evstream.nets.spike_yolo.live import SpikeYOLODetector

    model = SpikeYOLODetector.from_checkpoint(models_dir / "detector_spikeyolo.pt", device=device)
    return model, model.recipe.window_us


def _depth(models_dir: Path, device: str):
    from evstream.nets.depth.live import load_bundled

    return load_bundled(models_dir, device)


LIVE_MODELS = {"gesture": _gesture, "detection": _detection, "depth": _depth}


def load_live_model(task: str, *, models_dir: Path = MODELS_DIR, device: str = "cpu"):
    """``(model, window_us, message)``; ``model`` is None (with the reason in ``message``) when unavailable."""
    if task == "none":
        return None, None, "no model (events only)"
    if task not in LIVE_MODELS:
        raise ValueError(f"unknown live task {task!r}; one of: none, {', '.join(LIVE_MODELS)}")
    try:
        model, window_us = LIVE_MODELS[task](Path(models_dir), device)
    except FileNotFoundError as err:
        return None, None, f"no bundled {task} checkpoint ({err}); showing events only"
    return model, window_us, f"{task} model from {models_dir}"
