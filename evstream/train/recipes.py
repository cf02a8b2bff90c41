"""Named training recipes: ``evstream train TASK --recipe cpu|paper``.

``cpu`` (the default) is the task's own defaults, sized for a laptop: one epoch on the bundled or
simulated sets stays under 2 GB of RSS for every task (``benchmarks/train_memory.py``; gen1 at its
CPU scale rt), and the bundled models' cards start from them. ``paper`` sets what the official code of the task's network trains with,
read from its sources (``source`` below); a task or net without official code has no paper recipe.
A recipe only sets defaults: ``--config``, ``--set`` and the flags still override it.

Known deviations of the paper recipes: TA-SNN's configs crop training samples at t = 0
(``is_train_Enhanced = False``), evstream always at a random start; the official test batch is the
training batch, evstream's evaluation runs ``eval_clips`` clips per forward pass (equal metrics).
"""

from __future__ import annotations

import textwrap

from evstream.errors import UserError

__all__ = ["PAPER", "RECIPES", "describe", "recipe_settings"]

RECIPES = ("cpu", "paper")

_PLATEAU = {"schedule": "plateau", "plateau_factor": 0.1, "plateau_patience": 5}
"""ReduceLROnPlateau(mode='min', factor=0.1, patience=5) stepped on the epoch's training loss (``process.py``)."""

PAPER: dict[str, dict[str, dict]] = {
    "gesture": {
        "tasnn": {
            "source": "BICLab/TA-SNN DVSGestures/CNN/Config.py, Networks/TA_SNN_CNN_3.py",
            "task": {"time_steps": 30, "dt_ms": 1, "ds": 4, "n_clips": 1},
            "train": {"optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0, "batch_size": 16, "epochs": 100,
                      **_PLATEAU},
        },
        "masnn": {
            "source": "BICLab/Attention-SNN MA_SNN/DVSGestures/CNN/Config.py, dt 15 ms as its issue #8 says (the config: 25)",
            "task": {"time_steps": 60, "dt_ms": 15, "ds": 4, "n_clips": 10},
            "train": {"optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0, "batch_size": 128, "epochs": 300,
                      **_PLATEAU},
        },
    },
    "cifar10dvs": {
        "tasnn": {
            "source": "BICLab/TA-SNN CIFAR10DVS/CNN/Config.py, Networks/TA_SNN.py",
            "task": {"time_steps": 10, "dt_ms": 1, "ds": 1, "n_clips": 1},
            "train": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "epochs": 300,
                      **_PLATEAU},
        },
        "masnn": {
            "source": "BICLab/Attention-SNN MA_SNN/CIFAR10DVS/CNN/Config.py",
            "task": {"time_steps": 20, "dt_ms": 10, "ds": 1, "n_clips": 10},
            "train": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 128, "epochs": 300,
                      **_PLATEAU},
        },
    },
    "gen1": {
        "spike_yolo": {
            "source": "BICLab/SpikeYOLO Gen1 train.py and default.yaml, Ultralytics' trainer",
            "task": {"scale": "s", "T": 2},
            "train": {"optimizer": "sgd", "lr": 0.02, "momentum": 0.937, "weight_decay": 5e-4, "schedule": "linear",
                      "lrf": 0.004, "warmup_epochs": 10, "warmup_style": "yolo", "warmup_momentum": 0.8,
                      "warmup_bias_lr": 0.1, "nominal_batch": 64, "decay_norm_and_bias": False, "grad_clip": 10.0,
                      "epochs": 100, "batch_size": 80},
        },
    },
    "mvsec": {
        "stereospike": {
            "source": "urancon/StereoSpike train.py (the code, not the paper's text: lr / 10 at 10, 25, 40 over 30 epochs)",
            "task": {"target": "metric"},
            "train": {"optimizer": "adam", "lr": 2e-4, "weight_decay": 0.0, "batch_size": 1, "epochs": 70,
                      "schedule": "multistep", "milestones": (8, 42, 60), "gamma": 0.5},
        },
    },
}
"""Task -> net -> ``{"source", "task", "train"}``: the official hyperparameters as evstream settings."""

def recipe_settings(task: str, name: str, net: str | None = None) -> tuple[dict, dict]:
    """``(train settings, task settings)`` of recipe ``name`` for ``task`` with ``net`` (the task's net
    setting or its default; None for a task with one net, as gen1).

    Raises:
        UserError: an unknown recipe, or ``paper`` for a task or net without official code.
    """
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r} (one of {', '.join(RECIPES)})")
    if name == "cpu":
        return {}, {}
    nets = PAPER.get(task, {})
    entry = next(iter(nets.values())) if net is None and len(nets) == 1 else nets.get(net)
    if entry is None:
        known = ", ".join(f"{t}/{n}" for t, entries in PAPER.items() for n in entries)
        raise UserError(f"no paper recipe for {task}" + (f" with net {net!r}" if net else "")
                        + f" (no official code to follow); paper recipes: {known}")
    return dict(entry["train"]), dict(entry["task"])


def describe(width: int = 100) -> str:
    """The paper recipes as the settings they make (``task.x=...``, ``train.y=...``), each with its source,
    for ``evstream train --help``."""
    lines = []
    for task, nets in PAPER.items():
        for net, entry in nets.items():
            settings = " ".join(f"{group}.{key}={_text(value)}" for group in ("task", "train")
                                for key, value in entry[group].items())
            lines.append(textwrap.fill(f"{task} {net}: {settings}; from {entry['source']}", width,
                                       initial_indent="  ", subsequent_indent="      "))
    return "\n".join(lines)


def _text(value) -> str:
    """A setting's value as written on the command line (lists in brackets)."""
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)
