"""Monocular / stereo depth on MVSEC (or the synthetic depth set) for the shared trainer (models.md §5).

``evstream train mvsec --data DIR --net spiking_depth_unet|stereospike [--set task.scenario=indoor1]``.
The U-Net learns normalised log depth ``1 + ln(D / d_max) / alpha``; StereoSpike learns metric depth, as
its official ``train.py`` (``learned_metric = 'LIN'``), or log depth with ``--set task.target=log``.
Evaluation maps predictions to metres and applies the E2Depth protocol
(:func:`evstream.train.depth_metrics.evaluate_depth`). StereoSpike's official recipe (``train.py``) is
:data:`STEREOSPIKE_RECIPE`.

``--set task.prior_baseline=true`` also scores the events-blind baseline, the per-pixel mean log
depth of the training maps (:func:`per_pixel_prior`), on the same maps: keys ``prior_<metric>``.
``--set task.test_data=DIR`` evaluates a folder of held-out sequences (all of them) instead of the
data folder's test split; on the synthetic set the data folder's last sequence is then only a
validation sequence for the per-epoch log.
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
from evstream.train.recipes import PAPER

__all__ = ["MvsecTask", "STEREOSPIKE_RECIPE", "TARGETS", "log_depth_target", "per_pixel_prior"]

INDOOR_ALPHA = 6.0
"""StereoSpike's log-depth regularisation indoors (with d_max = 10 m)."""

TARGETS = ("metric", "log")
"""What a depth net learns: metres, or normalised log depth."""

STEREOSPIKE_RECIPE = PAPER["mvsec"]["stereospike"]["train"]
"""The official StereoSpike ``train.py`` as ``train`` settings: Adam lr 2e-4, no weight decay, batch 1,
70 epochs, MultiStepLR halving the lr after epochs 8, 42 and 60. (The paper's text says lr / 10 at 10,
25 and 40 over 30 epochs; the code is followed.)"""


def log_depth_target(depth: torch.Tensor, d_max: float, alpha: float) -> torch.Tensor:
    """Metric depth (NaN = none) to normalised log depth, NaN kept. Shape: any -> same."""
    return 1.0 + torch.log(depth / d_max) / alpha


def per_pixel_prior(depth_maps) -> np.ndarray:
    """The events-blind baseline: each pixel's geometric mean depth over ``depth_maps`` (its mean log depth).

    Args:
        depth_maps: an iterable of ``[H, W]`` depth maps in metres, NaN where unknown.

    Returns:
        ``[H, W]`` float64 metres; a pixel no map knows gets the geometric mean of every known value.
    """
    total = count = None
    for depth in depth_maps:
        logs = np.log(np.asarray(depth, dtype=np.float64))
        known = np.isfinite(logs)
        if total is None:
            total, count = np.zeros(logs.shape), np.zeros(logs.shape)
        total += np.where(known, logs, 0.0)
        count += known
    if total is None or not count.any():
        raise ValueError("per_pixel_prior: no known depth in the maps")
    overall = total.sum() / count.sum()
    return np.exp(np.where(count > 0, total / np.maximum(count, 1), overall))


class MvsecTask:
    """The depth task: dataset, network by name, loss and E2Depth evaluation.

    Args:
        data_dir: folder of ``<seq>_data.hdf5`` / ``<seq>_gt.hdf5`` pairs.
        net: ``"spiking_depth_unet"`` (cumulative stack, E2Depth loss) or ``"stereospike"`` (histogram,
            StereoSpike loss).
        scenario: ``"outdoor"``, ``"indoor1"`` .. ``"indoor3"`` or ``"synthetic"``.
        time_steps: T of the cumulative stack (U-Net; 3, the bundled model's).
        cameras: ``["left"]`` or ``["left", "right"]``.
        window_us: event window before each depth map.
        base_channels: the first width; None: StereoSpike's official 32, the U-Net's 8 (the bundled
            model's: at T 5 and width 32, one full-frame training step needs 5.3 GB; at T 3 and width 16,
            2.1 GB).
        stages: the U-Net's encoder stages.
        input_stride: the U-Net's stem stride (2: whole frames at a quarter of the cost; the depth map is
            resized back to full resolution, where it is scored).
        target: what the net learns, ``"metric"`` (metres) or ``"log"`` (normalised log depth); None: metric
            for StereoSpike (its official ``learned_metric = 'LIN'``), log for the U-Net (its sigmoid
            output can only be log depth).
        si_lambda: weight of the scale term of the scale-invariant loss (1 in §5.2 / §5.3).
        grad_weight: weight of the gradient loss (None: 0.25 for the U-Net, 0.5 for StereoSpike).
        train_crop: ``[h, w]`` random crop of training samples (CPU budgets), None for full frames.
        train_flip: mirror each training sample left-right with probability 1/2 (a mirrored scene is a scene).
        cache_dir: representation cache folder.
        test_data: a folder of held-out sequences to evaluate instead of ``data_dir``'s test split
            (synthetic: every sequence in it; MVSEC: its test split).
        prior_baseline: also score :func:`per_pixel_prior` of the training maps (``prior_<metric>`` keys).
    """

    metric = "mean_depth_error@10"
    metric_mode = "min"
    train_defaults = {"optimizer": "adam", "lr": 2e-4, "batch_size": 1, "epochs": 30}
    """Both nets' defaults: Adam, lr 2e-4, batch 1, 30 epochs, no weight decay, the trainer's cosine decay
    (StereoSpike's official schedule: :data:`STEREOSPIKE_RECIPE`)."""

    def __init__(self, data_dir: os.PathLike | str, *, net: str = "spiking_depth_unet", scenario: str = "outdoor",
                 time_steps: int = 3, cameras=("left",), window_us: int = 50_000, base_channels: int | None = None,
                 stages: int = 4, input_stride: int = 1, target: str | None = None, si_lambda: float = 1.0,
                 grad_weight: float | None = None, train_crop=None, train_flip: bool = False,
                 cache_dir: os.PathLike | str | None = None, test_data: os.PathLike | str | None = None,
                 prior_baseline: bool = False):
        if net not in DEPTH_NETS:
            raise ValueError(f"unknown depth network {net!r}; one of {sorted(DEPTH_NETS)}")
        target = target or ("metric" if net == "stereospike" else "log")
        if target not in TARGETS or (target == "metric" and net == "spiking_depth_unet"):
            raise ValueError(f"task.target: {target!r} is not a target of {net} "
                             f"(one of {', '.join(TARGETS) if net == 'stereospike' else 'log'})")
        check_positive("task", time_steps=time_steps, window_us=window_us, base_channels=base_channels,
                       stages=stages, input_stride=input_stride)
        if net == "stereospike" and input_stride != 1:
            raise ValueError("task.input_stride is a setting of the spiking U-Net; StereoSpike runs at full resolution")
        base_channels = base_channels or (32 if net == "stereospike" else 8)
        self.data_dir, self.net, self.scenario = data_dir, net, scenario
        self.time_steps, self.cameras, self.window_us = int(time_steps), tuple(cameras), int(window_us)
        self.base_channels, self.stages, self.si_lambda = int(base_channels), int(stages), float(si_lambda)
        self.input_stride = int(input_stride)
        self.target = target
        default_weight = E2DEPTH_GRAD_WEIGHT if net == "spiking_depth_unet" else STEREOSPIKE_GRAD_WEIGHT
        self.grad_weight = default_weight if grad_weight is None else float(grad_weight)
        self.train_crop = None if train_crop is None else tuple(int(v) for v in train_crop)
        self.train_flip = bool(train_flip)
        self.cache_dir, self.test_data, self.prior_baseline = cache_dir, test_data, bool(prior_baseline)
        self._prior: np.ndarray | None = None
        self.d_max = 10.0 if scenario.startswith("indoor") else 40.0 if scenario == "synthetic" else 80.0
        self.alpha = INDOOR_ALPHA if scenario.startswith("indoor") else ALPHA

    @property
    def eval_split(self) -> str:
        """``"val"`` on the synthetic set without ``test_data``: the data folder's last sequence is then a
        validation sequence (its test sets are other folders); ``"test"`` for MVSEC (train / test only) and
        for a ``test_data`` folder: the trainer selects nothing on those."""
        return "val" if self.scenario == "synthetic" and self.test_data is None else "test"

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
            options.update(time_steps=self.time_steps, stages=self.stages, input_stride=self.input_stride)
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

    def _dataset(self, root, split: str, transform) -> MVSECDepth:
        return MVSECDepth(root, split, scenario=self.scenario, transform=transform, cameras=self.cameras,
                          window_us=self.window_us, cache_dir=self.cache_dir)

    def datasets(self) -> tuple[MVSECDepth, MVSECDepth]:
        """``(train, held-out)``: the held-out split is ``test_data``'s sequences when given."""
        held_out = (self.data_dir, "test") if self.test_data is None else (
            self.test_data, "all" if self.scenario == "synthetic" else "test")
        return (self._dataset(self.data_dir, "train", self.representation),
                self._dataset(*held_out, self.representation))

    def prior(self) -> np.ndarray:
        """:func:`per_pixel_prior` of the training split's depth maps (computed once), ``[H, W]`` metres."""
        if self._prior is None:
            train = self._dataset(self.data_dir, "train", None)
            self._prior = per_pixel_prior(train.depth(i) for i in range(len(train)))
        return self._prior

    def _inputs(self, batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``([T, B, C, H, W] float input, [B, 1, H, W] target)`` of a collated batch, in the learnt unit."""
        x, depth = batch
        x = torch.as_tensor(x, dtype=torch.float32).to(device, non_blocking=True).transpose(0, 1)
        depth = torch.as_tensor(depth, dtype=torch.float32).to(device, non_blocking=True).unsqueeze(1)
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
        if self.train_flip:
            flip = torch.rand(target.shape[0]) < 0.5
            x = torch.where(flip.to(x.device)[None, :, None, None, None], x.flip(-1), x)
            target = torch.where(flip.to(target.device)[:, None, None, None], target.flip(-1), target)
        return self.criterion(model(x), target)

    def evaluate(self, model: nn.Module, loader, device: torch.device, *, progress: bool = True) -> dict[str, float]:
        """The E2Depth metrics on a loader (cutoffs 10 / 20 / 30 m) plus the mean loss (and the prior's).

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
        if self.prior_baseline:
            dataset, prior = loader.dataset, self.prior()
            baseline = evaluate_depth((dataset.depth(i) for i in range(len(dataset))), itertools.repeat(prior),
                                      clip_distance=self.d_max)
            result.update({f"prior_{name}": value for name, value in baseline.items()})
        return result
