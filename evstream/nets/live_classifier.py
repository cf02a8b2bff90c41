"""Live classification: one window of events -> class probabilities, optionally carrying neuron state.

A :class:`WindowRecipe` turns the window into the frames the net was trained on: T count frames of
``dt_us`` ending at the window's last event (TA-SNN frames, models.md §2.3). A bundled checkpoint
(:func:`save_classifier`) stores the recipe, the builder name and options, the class names and the
measured metrics, so :meth:`LiveClassifier.from_checkpoint` rebuilds the exact preprocessing.
Each call returns an :class:`evstream.outputs.Classification`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from evstream.jsonout import plain
from evstream.nets.registry import build
from evstream.outputs import Classification
from evstream.ops.tasnn import to_tasnn_frames
from evstream.snn.profiler import SpikeRate
from evstream import checkpoint

__all__ = ["LiveClassifier", "WindowRecipe", "load_classifier", "save_classifier"]


@dataclass(frozen=True)
class WindowRecipe:
    """How a window of events becomes the net's input.

    Args:
        sensor_size: ``(W, H, 2)``.
        n_frames: T; dt_us: frame length; ds: spatial downsampling.
        pad_to: centre zero-padding of the frames to a square side, or None.

    Shape: events -> ``[T, 2, H', W']`` float32, frames ending at the last event.
    """

    sensor_size: tuple[int, int, int]
    n_frames: int
    dt_us: int
    ds: int = 1
    pad_to: int | None = None

    @property
    def window_us(self) -> int:
        """The span of events the frames cover, T * dt."""
        return self.n_frames * self.dt_us

    def __call__(self, events: np.ndarray) -> np.ndarray:
        start = int(events["t"][-1]) + 1 - self.window_us if len(events) else None
        frames = to_tasnn_frames(events, self.sensor_size, self.n_frames, self.dt_us, self.ds, start_time=start)
        if self.pad_to is not None:
            h, w = frames.shape[-2:]
            top, left = (self.pad_to - h) // 2, (self.pad_to - w) // 2
            frames = np.pad(frames, ((0, 0), (0, 0), (top, self.pad_to - h - top), (left, self.pad_to - w - left)))
        return frames


def _probabilities(output) -> torch.Tensor:
    """``[C]`` probabilities: softmax of logits (SSNN), or firing rates normalised to sum 1 (uniform if silent)."""
    if hasattr(output, "logits"):
        return torch.softmax(output.logits[0].float(), 0)
    rates = output[0].float().clamp_min(0)
    total = rates.sum()
    return rates / total if total > 0 else torch.full_like(rates, 1.0 / len(rates))


class LiveClassifier:
    """Callable ``events -> Classification(probabilities, names, firing_rate)`` for the live pipeline.

    Args:
        model: a classification net taking ``[T, 1, C, H, W]`` (rates, or an output with ``.logits``).
        recipe: the :class:`WindowRecipe` it was trained with.
        names: class names.
        carry_state: continue the neurons from the previous window (needs ``model.run(x, state)``);
            False starts every window at rest.
        device: where to run.

    Example:
        >>> clf = LiveClassifier.from_checkpoint("models/gesture_tasnn.pt")  # doctest: +SKIP
        >>> clf(window_events).probabilities  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, recipe: WindowRecipe, names: Sequence[str], *, carry_state: bool = False,
                 device: torch.device | str = "cpu"):
        if carry_state and not hasattr(model, "run"):
            raise ValueError(f"carry_state needs a net with run(x, state); {type(model).__name__} has none")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.recipe, self.names, self.carry_state = recipe, tuple(names), carry_state
        self.state = None
        self.spike_rate = SpikeRate(self.model)

    def reset(self) -> None:
        """Forget the carried neuron state (next window starts at rest)."""
        self.state = None

    def frames(self, events: np.ndarray) -> torch.Tensor:
        """The net's input for a window: ``[T, 1, 2, H', W']`` on the device."""
        return torch.from_numpy(self.recipe(events)).unsqueeze(1).to(self.device)

    def __call__(self, events: np.ndarray) -> Classification:
        x = self.frames(events)
        self.spike_rate.reset()
        with torch.no_grad():
            if self.carry_state:
                result = self.model.run(x, self.state)
                self.state, output = result.state, result.rates
            else:
                output = self.model(x)
        return Classification(_probabilities(output).cpu().numpy(), self.names, self.spike_rate.value)

    @classmethod
    def from_checkpoint(cls, path: os.PathLike | str, *, carry_state: bool = False,
                        device: torch.device | str = "cpu") -> LiveClassifier:
        """Rebuild net, recipe and names from a :func:`save_classifier` file."""
        model, info = load_classifier(path)
        return cls(model, WindowRecipe(**info["recipe"]), info["names"], carry_state=carry_state, device=device)


def save_classifier(path: os.PathLike | str, model: nn.Module, *, net: str, net_options: dict, recipe: WindowRecipe,
                    names: Sequence[str], metrics: dict | None = None, masks: dict | None = None) -> None:
    """Write a self-describing classifier checkpoint (weights in float32 plus its recipe, rule 10).

    Args:
        path: output ``.pt``.
        model: the trained net.
        net: its builder name in :mod:`evstream.nets.registry`; net_options: the builder's keyword arguments.
        recipe: the input representation; names: class names; metrics: measured numbers to keep with it.
        masks: a pruned net's keep-masks (``parameter name -> bool tensor``, :class:`evstream.prune.Masks`),
            stored as ``"masks"``; the weights already hold the zeros.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    extra = {"masks": {k: v.detach().cpu().bool() for k, v in masks.items()}} if masks else {}
    torch.save({"net": net, "net_options": dict(net_options), "recipe": asdict(recipe), "names": list(names),
                "metrics": plain(dict(metrics or {})), "model": state, **extra}, path)


def load_classifier(path: os.PathLike | str) -> tuple[nn.Module, dict]:
    """``(net in eval mode, info)`` from a :func:`save_classifier` file; info holds net, recipe, names, metrics."""
    info = checkpoint.load(path)
    model = build(info["net"], **info["net_options"])
    checkpoint.load_model_state(model, info, path)
    info["recipe"]["sensor_size"] = tuple(info["recipe"]["sensor_size"])
    return model.eval(), info
