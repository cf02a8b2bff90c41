"""Monocular / stereo depth on MVSEC (or the synthetic depth set) for the shared trainer (models.md §5).

``evstream train mvsec --data DIR --net spiking_depth_unet|stereospike [--set task.scenario=indoor1]``.
The U-Net learns normalised log depth ``1 + ln(D / d_max) / alpha``; StereoSpike learns metric depth, as
its official ``train.py`` (``learned_metric = 'LIN'``), or log depth with ``--set task.target=log``.
Evaluation maps predictions to metres and applies the E2Depth protocol
(:func:`evstream.train.depth_metrics.evaluate_depth`). StereoSpike's official recipe (``train.py``) is
:data:`STEREOSPIKE_RECIPE`.
"""

from __future__ import annotations

import itertools
import os
from operator import itemgetter

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from evstream.datasets.mvsec import CumulativeWindow, HistogramWindow, MVSECDepth
from evstream.errors import check_positive
from evstream.nets.depth import DEPTH_NETS
from evstream.nets.depth.live import save_depth
from evstream.train.depth_losses import E2DEPTH_GRAD_WEIGHT, STEREOSPIKE_GRAD_WEIGHT, e2depth_loss, stereospike_loss
from evstream.train.depth_metrics import ALPHA, evaluate_depth, log_to_depth

__all__ = ["MvsecTask", "STEREOSPIKE_RECIPE", "TARGETS", "log_depth_target"]

INDOOR_ALPHA = 6.0
"""StereoSpike's log-depth regularisation indoors (with d_max = 10 m)."""

TARGETS = ("metric", "log")
"""What a depth net learns: metres, or normalised log depth."""

STEREOSPIKE_RECIPE = {"optimizer": "adam", "lr": 2e-4, "weight_decay": 0.0, "batch_size": 1, "epochs": 70,
                      "schedule": "multistep", "milestones": (8, 42, 60), "gamma": 0.5}
"""The official StereoSpike ``train.py`` as ``train`` settings: Adam lr 2e-4, no weight decay, batch 1,
70 epochs, MultiStepLR halving the lr after epochs 8, 42 and 60. (The paper's text says lr / 10 at 10,
25 and 40 over 30 epochs; the code is followed.)"""


def log_depth_target(depth: torch.Tensor, d_max: float, alpha: float) -> torch.Tensor:
    """Metric depth (NaN = none) to normalised log depth, NaN kept. Shape: any -> same."""
    return 1.0 + torch.log(depth / d_max) / alpha


class MvsecTask:
    """The depth task: dataset, network by name, loss and E2Depth evaluation.

    Args:
        data_dir: folder of ``<seq>_data.hdf5`` / ``<seq>_gt.hdf5`` pairs.
        net: ``"spiking_depth_unet"`` (cumulative stack, E2Depth loss) or ``"stereospike"`` (histogram,
            StereoSpike loss).
        scenario: ``"outdoor"``, ``"indoor1"`` .. ``"indoor3"`` or ``"synthetic"``.
        time_steps: T of the cumulative stack (U-Net).
        cameras: ``["left"]`` or ``["left", "right"]``.
        window_us: event window before each depth map.
        base_channels, stages: network widths (``stages`` is the U-Net's).
        target: what the net learns, ``"metric"`` (metres) or ``"log"`` (normalised log depth); None: metric
            for StereoSpike (its official ``learned_metric = 'LIN'``), log for the U-Net (its sigmoid
            output can only be log depth).
        si_lambda: weight of the scale term of the scale-invariant loss (1 in §5.2 / §5.3).
        grad_weight: weight of the gradient loss (None: 0.25 for the U-Net, 0.5 for StereoSpike).
        train_crop: ``[h, w]`` random crop of training samples (CPU budgets), None for full frames.
        cache_dir: representation cache folder.
    """

    metric = "mean_depth_error@10"
    metric_mode = "min"
    eval_split = "test"  # MVSEC's splits are train / test: the trainer selects nothing on the test metrics
    train_defaults = {"optimizer": "adam", "lr": 2e-4, "batch_size": 1, "epochs": 30}
    """Both nets' defaults: Adam, lr 2e-4, batch 1, 30 epochs, no weight decay, the trainer's cosine decay
    (StereoSpike's official schedule: :data:`STEREOSPIKE_RECIPE`)."""

    def __init__(self, data_dir: os.PathLike | str, *, net: str = "spiking_depth_unet", scenario: str = "outdoor",
                 time_steps: int = 5, cameras=("left",), window_us: int = 50_000, base_channels: int = 32,
                 stages: int = 4, target: str | None = None, si_lambda: float = 1.0,
                 grad_weight: float | None = None, train_crop=None, cache_dir: os.PathLike | str | None = None):
        if net not in DEPTH_NETS:
            raise ValueError(f"unknown depth network {net!r}; one of {sorted(DEPTH_NETS)}")
        target = target or ("metric" if net == "stereospike" else "log")
        if target not in TARGETS or (target == "metric" and net == "spiking_depth_unet"):
            raise ValueError(f"task.target: {target!r} is not a target of {net} "
                             f"(one of {', '.join(TARGETS) if net == 'stereospike' else 'log'})")
        check_positive("task", time_steps=time_steps, window_us=window_us, base_channels=base_channels,
                       stages=stages)
        self.data_dir, self.net, self.scenario = data_dir, net, scenario
        self.time_steps, self.cameras, self.window_us = int(time_steps), tuple(cameras), int(window_us)
        self.base_channels, self.stages, self.si_lambda = int(base_channels), int(stages), float(si_lambda)
        self.target = target
        default_weight = E2DEPTH_GRAD_WEIGHT if net == "spiking_depth_unet" else STEREOSPIKE_GRAD_WEIGHT
        self.grad_weight = default_weight if grad_weight is None else float(grad_weight)
        self.train_crop = None if train_crop is None else tuple(int(v) for v in train_crop)
        self.cache_dir = cache_dir
        self.d_max = 10.0 if scenario.startswith("indoor") else 40.0 if scenario == "synthetic" else 80.0
        self.alpha = INDOOR_ALPHA if scenario.startswith("indoor") else ALPHA

    @property
    def net_name(self) -> str:
        """The network's name in :data:`~evstream.nets.depth.DEPTH_NETS`."""
        return self.net

    @property
    def representation(self) -> CumulativeWindow | HistogramWindow:
        """The net's input: the cumulative stack (U-Net) or StereoSpike's histogram."""
        if self.net == "spiking_depth_unet":
            return CumulativeWindow(self.time_steps)
        return HistogramWindow()

    def net_options(self) -> dict:
        """Keyword arguments of the network builder ``DEPTH_NETS[net]``."""
        options = {"in_channels": 2 * len(self.cameras), "base_channels": self.base_channels}
        if self.net == "spiking_depth_unet":
            options.update(time_steps=self.time_steps, stages=self.stages)
        return options

    def build_model(self) -> nn.Module:
        return DEPTH_NETS[self.net](**self.net_options())

    def export(self, model: nn.Module, path: os.PathLike | str, metrics: dict | None = None) -> None:
        """Write ``model`` as the live app's depth checkpoint (:func:`save_depth`) with this task's recipe."""
        representation = {"kind": "cumulative" if self.net == "spiking_depth_unet" else "histogram",
                          "window_us": self.window_us, "sensor_size": list(MVSECDepth.sensor_size)}
        if self.net == "spiking_depth_unet":
            representation["n_time_bins"] = self.time_steps
        save_depth(path, model, builder=self.net, kwargs=self.net_options(), representation=representation,
                   d_max=self.d_max, alpha=self.alpha, metrics=metrics or {}, target=self.target)

    def datasets(self) -> tuple[MVSECDepth, MVSECDepth]:
        return tuple(MVSECDepth(self.data_dir, split, scenario=self.scenario, transform=self.representation,
                                cameras=self.cameras, window_us=self.window_us, cache_dir=self.cache_dir)
                     for split in ("train", "test"))

    def _inputs(self, batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``([T, B, C, H, W] float input, [B, 1, H, W] target)`` of a collated batch, in the learnt unit."""
        x, depth = batch
        x = torch.as_tensor(x, dtype=torch.float32).to(device).transpose(0, 1)
        depth = torch.as_tensor(depth, dtype=torch.float32).to(device).unsqueeze(1)
        return x, depth if self.target == "metric" else log_depth_target(depth, self.d_max, self.alpha)

    def criterion(self, predictions, target: torch.Tensor) -> torch.Tensor:
        """The net's loss on its :class:`~evstream.nets.depth.DepthPrediction` (see ``depth_losses``)."""
        if self.net == "spiking_depth_unet":
            return e2depth_loss(predictions.depth, target, grad_weight=self.grad_weight, lam=self.si_lambda)
        return stereospike_loss(predictions.scales, target, grad_weight=self.grad_weight, lam=self.si_lambda)

    def loss(self, model: nn.Module, batch, device: torch.device) -> torch.Tensor:
        x, target = self._inputs(batch, device)
        if self.train_crop is not None:
            h, w = self.train_crop
            top = int(torch.randint(0, x.shape[-2] - h + 1, ()))
            left = int(torch.randint(0, x.shape[-1] - w + 1, ()))
            x, target = x[..., top:top + h, left:left + w], target[..., top:top + h, left:left + w]
        return self.criterion(model(x), target)

    def evaluate(self, model: nn.Module, loader, device: torch.device, *, progress: bool = True) -> dict[str, float]:
        """The E2Depth metrics on a loader (cutoffs 10 / 20 / 30 m) plus the mean loss.

        Frames are scored as their batch comes out of the net (the two halves of one stream of
        pairs), so memory does not grow with the number of depth maps; a tqdm bar unless ``progress=False``.
        """
        losses = []

        def pairs():
            for batch in tqdm(loader, desc="eval", leave=False, disable=not progress):
                x, target = self._inputs(batch, device)
                out = model(x)
                losses.append(float(self.criterion(out, target)))
                depth = out.depth[:, 0].detach().cpu().double().numpy()
                if self.target == "log":
                    depth = log_to_depth(depth, self.d_max, self.alpha)
                yield from zip(np.asarray(batch[1], dtype=np.float64), depth)

        targets, predictions = itertools.tee(pairs())
        result = evaluate_depth(map(itemgetter(0), targets), map(itemgetter(1), predictions),
                                clip_distance=self.d_max)
        result["val_loss"] = float(np.mean(losses)) if losses else float("nan")
        return result
