"""Depth models for the live loop (the bundled one is ``models/depth_spiking_unet.pt``), rebuilt from their recipe.

The checkpoint is a dict with ``builder`` (a :data:`~evstream.nets.depth.DEPTH_NETS` name), ``kwargs``
(its keyword arguments), ``model`` (the state dict), ``representation`` (``kind`` "cumulative" or
"histogram", ``n_time_bins``, ``window_us``, ``sensor_size``), ``d_max``, ``alpha``, ``metrics`` and
``target`` (what the net outputs: ``"log"``, normalised log depth, the default of older files, or
``"metric"``, metres).
Each call returns an :class:`evstream.outputs.DepthMap`.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from evstream.jsonout import plain
from evstream.nets.depth import DEPTH_NETS
from evstream.nets.depth.stereospike import IF
from evstream.ops.depth_repr import to_cumulative_stack, to_stereospike_histogram
from evstream.outputs import DepthMap
from evstream.snn.profiler import NEURON_TYPES, SpikeRate
from evstream import checkpoint

__all__ = ["CHECKPOINT", "LiveDepth", "load_depth", "save_depth"]

CHECKPOINT = "depth_spiking_unet.pt"


class LiveDepth:
    """Events of one window -> ``DepthMap(depth_m, d_max, firing_rate)`` with a depth network and its recipe.

    Args:
        model: a depth network (returns a ``DepthPrediction``).
        representation: the checkpoint's ``representation`` dict.
        d_max, alpha: the log-depth normalisation the network was trained with.
        target: ``"log"`` (the net outputs normalised log depth) or ``"metric"`` (metres).
        device: where the network runs.

    Returns (``__call__``):
        The depth ``[H, W]`` (metres) of the window ``[t_last + 1 - window_us, t_last + 1)``, and the
        fraction of neurons that fired.

    Example:
        >>> depth, window_us = load_depth("models/depth_spiking_unet.pt")  # doctest: +SKIP
        >>> depth(events).depth_m.shape
        (260, 346)
    """

    def __init__(self, model: nn.Module, representation: dict, d_max: float, alpha: float, device="cpu",
                 target: str = "log"):
        kind = representation.get("kind")
        if kind not in ("cumulative", "histogram"):
            raise ValueError(f"unknown representation kind {kind!r} (cumulative, histogram)")
        if target not in ("log", "metric"):
            raise ValueError(f"unknown depth target {target!r} (log, metric)")
        self.target = target
        self.model, self.kind, self.device = model.eval(), kind, torch.device(device)
        self.window_us = int(representation["window_us"])
        self.n_time_bins = int(representation.get("n_time_bins", 1))
        self.sensor_size = tuple(representation["sensor_size"])
        self.d_max, self.alpha = float(d_max), float(alpha)
        self.spike_rate = SpikeRate(self.model, (*NEURON_TYPES, IF))

    def representation(self, events: np.ndarray) -> np.ndarray:
        """The network input ``[T, C, H, W]`` of a window of events (empty windows give zeros)."""
        end = int(events["t"][-1]) + 1 if len(events) else self.window_us
        if self.kind == "cumulative":
            return to_cumulative_stack(events, self.sensor_size, self.n_time_bins, end - self.window_us, end)
        return to_stereospike_histogram(events, self.sensor_size, end, self.window_us)[np.newaxis]

    @torch.no_grad()
    def __call__(self, events: np.ndarray) -> DepthMap:
        x = torch.from_numpy(self.representation(events)).to(self.device).unsqueeze(1)
        self.spike_rate.reset()
        depth = self.model(x).depth[0, 0].double().cpu().numpy()
        if self.target == "log":
            depth = self.d_max * np.exp(self.alpha * (depth - 1.0))
        return DepthMap(depth.astype(np.float32), self.d_max, self.spike_rate.value)


def load_depth(path: os.PathLike | str, device="cpu") -> tuple[LiveDepth, int]:
    """``(LiveDepth, window_us)`` from a :func:`save_depth` file (the bundled one is
    ``models/depth_spiking_unet.pt``); :class:`~evstream.checkpoint.CheckpointError` naming a bad file."""
    state = checkpoint.load(path)
    model = DEPTH_NETS[state["builder"]](**state["kwargs"])
    checkpoint.load_model_state(model, state, path)
    live = LiveDepth(model.to(device), state["representation"], state["d_max"], state["alpha"], device,
                     state.get("target", "log"))
    return live, live.window_us


def save_depth(path: os.PathLike | str, model: nn.Module, *, builder: str, kwargs: dict, representation: dict,
               d_max: float, alpha: float, metrics: dict, target: str = "log") -> None:
    """Write a self-describing depth checkpoint (the format :func:`load_depth` reads); ``target`` says
    whether the net outputs normalised log depth (``"log"``) or metres (``"metric"``)."""
    if builder not in DEPTH_NETS:
        raise ValueError(f"unknown depth network {builder!r}; one of {sorted(DEPTH_NETS)}")
    torch.save({"builder": builder, "kwargs": dict(kwargs), "model": model.state_dict(),
                "representation": dict(representation), "d_max": float(d_max), "alpha": float(alpha),
                "metrics": plain(dict(metrics)), "target": target}, path)
