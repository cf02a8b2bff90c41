"""Pieces shared by the depth networks: the prediction type, resizing to a skip's size, neurons."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F

from evstream.snn.layers import seq_apply
from evstream.snn.lif import LIF

__all__ = ["DepthPrediction", "depth_lif", "resize_to"]


class DepthPrediction(NamedTuple):
    """What a depth network returns.

    Attributes:
        depth: ``[B, 1, H, W]`` in what the net learnt: normalised log depth (1 at d_max; see
            ``evstream.train.depth_metrics``) or metres (StereoSpike's default, as its official code).
        scales: the multi-scale predictions ``[B, 1, H, W]`` each, coarse to fine; the last is ``depth``.
    """

    depth: torch.Tensor
    scales: tuple[torch.Tensor, ...]


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of ``[T, B, C, H, W]`` to spatial ``size`` (odd sizes as 346x260 need it)."""
    if x.shape[-2:] == tuple(size):
        return x
    return seq_apply(lambda y: F.interpolate(y, size=tuple(size), mode="nearest"), x)


def depth_lif() -> LIF:
    """The multi-step LIF of the spiking U-Net: tau 2, hard reset to 0, detached reset, arctan surrogate."""
    return LIF(tau=2.0, v_reset=0.0, detach_reset=True, surrogate="atan")
