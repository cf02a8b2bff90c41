"""Pieces shared by the depth networks: the prediction type, resizing to a skip's size, neurons."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F

from evstream.snn.layers import seq_apply
from evstream.snn.lif import LIF, LIFParams

__all__ = ["DepthPrediction", "IF_PARAMS", "depth_lif", "resize_to"]

IF_PARAMS = LIFParams(tau=1.0, decay_input=False, v_threshold=1.0, v_reset=0.0, detach_reset=True,
                      surrogate="atan")
"""StereoSpike's stateless IF: with tau = 1 the membrane restarts from V_reset at every step, so
H[t] = X[t] and S[t] = H(X[t] - 1) (arctan surrogate)."""


class DepthPrediction(NamedTuple):
    """What a depth network returns.

    Attributes:
        depth: normalised log depth ``[B, 1, H, W]`` (1 at d_max; see ``evstream.train.depth_metrics``).
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
