"""ASA, advance spatial attention (Yao, Hu et al., ICCV 2023 "Inherent Redundancy in SNNs").

On X ``[T, B, C, H, W]`` (the post-conv/BN input, or U inside the neuron):

1. M[b, t, c] = (avg_{HW} X + max_{HW} X) / 2 + a avg_{HW} X + b max_{HW} X  (a = b = 0.5 learnable),
   then a bias-free map over T: T -> T (reduction 1) or T -> T/r -> ReLU -> T.
2. Top sets of M: the ``floor(lam C)`` largest channels per step and the ``floor(lam T)`` largest
   steps per channel. The official code marks (t, c) important when it is in exactly one of
   the two sets (``(I_c + I_t) / 2 == 0.5``); ``intersection=True`` uses "in both" instead.
   ``topk_scope`` says whose top sets: ``"sample"`` (default) takes each sample's own, so a
   sample's output never depends on the other samples of its batch; ``"batch"`` is the official
   ``get_im_subim_channels``: its ``important[:, t, topk[:, t]] = 1`` indexes every sample with
   the top channels of all of them, so a channel is in the top set of step t for every sample
   when it is in any sample's (and likewise the steps per channel). Training and testing with
   ``"batch"`` reproduce the official code, whose outputs depend on the batch: at test time its
   batch is 4 samples x 10 clips; here it is the evaluation's clip chunk (``eval_clips``).
3. Two CBAM-style spatial maps on the split features, over the flattened (T, C) axis:
   map_im = sigma(conv1([mean(I X) / lam; max(I X)])), map_sub = sigma(conv2([mean((1-I) X) / (1-lam); max((1-I) X)])),
   Y = map_im (I X) + map_sub ((1 - I) X).

The top-k selection has no gradient, so as in the official code the T-map and a, b get none.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ASA", "TOPK_SCOPES"]

TOPK_SCOPES = ("sample", "batch")
"""Whose top-k sets mark a sample's important (step, channel) pairs: its own, or its batch's union."""


class ASA(nn.Module):
    """Advance spatial attention.

    Args:
        time_steps: T.
        channels: C (only checked against the input).
        reduction: T-map reduction r (1 = a single T x T map; 4 in ``final.sh``).
        lam: fraction lambda of important channels / steps (0.5).
        intersection: mark (t, c) important only when in both top sets (paper text) instead of
            exactly one (official code).
        topk_scope: ``"sample"`` (each sample's top sets) or ``"batch"`` (their union over the
            batch, the official code); see the module docstring.

    Shape: ``[T, B, C, H, W]`` -> same.

    Example:
        >>> y = ASA(8, 16, reduction=4)(torch.rand(8, 2, 16, 6, 6))
    """

    def __init__(self, time_steps: int, channels: int, reduction: int = 1, lam: float = 0.5, *,
                 intersection: bool = False, topk_scope: str = "sample"):
        super().__init__()
        if not 0.0 < lam < 1.0:
            raise ValueError(f"lam must be in (0, 1), got {lam}")
        if topk_scope not in TOPK_SCOPES:
            raise ValueError(f"topk_scope must be one of {TOPK_SCOPES}, got {topk_scope!r}")
        self.topk_scope = topk_scope
        if reduction < 1 or time_steps // reduction < 1:
            raise ValueError(f"reduction {reduction} does not fit T = {time_steps}")
        self.time_steps, self.channels, self.lam, self.intersection = time_steps, channels, lam, intersection
        self.a = nn.Parameter(torch.tensor(0.5))
        self.b = nn.Parameter(torch.tensor(0.5))
        if reduction == 1:
            self.fc = nn.Linear(time_steps, time_steps, bias=False)
        else:
            hidden = time_steps // reduction
            self.fc = nn.Sequential(nn.Linear(time_steps, hidden, bias=False), nn.ReLU(),
                                    nn.Linear(hidden, time_steps, bias=False))
        self.conv_im = nn.Conv2d(2, 1, 3, padding=1, bias=False)
        self.conv_sub = nn.Conv2d(2, 1, 3, padding=1, bias=False)

    def importance(self, x: torch.Tensor) -> torch.Tensor:
        """The importance mask I, ``[T, B, C, 1, 1]`` of 0/1 (dtype of x)."""
        if x.ndim != 5 or x.shape[0] != self.time_steps or x.shape[2] != self.channels:
            raise ValueError(f"expected [T={self.time_steps}, B, C={self.channels}, H, W], got {tuple(x.shape)}")
        t, _, c = x.shape[:3]
        avg, mx = x.mean(dim=(3, 4)), x.amax(dim=(3, 4))
        m = 0.5 * (avg + mx) + self.a * avg + self.b * mx
        m = self.fc(m.permute(1, 2, 0)).permute(2, 0, 1)
        top_c = torch.zeros_like(m).scatter_(2, m.topk(int(c * self.lam), dim=2).indices, 1.0)
        top_t = torch.zeros_like(m).scatter_(0, m.topk(int(t * self.lam), dim=0).indices, 1.0)
        if self.topk_scope == "batch":  # [T, B, C]: a set of any sample is every sample's
            top_c, top_t = (top.amax(dim=1, keepdim=True).expand_as(top) for top in (top_c, top_t))
        mask = top_c * top_t if self.intersection else (top_c + top_t == 1).to(x.dtype)
        return mask.detach()[..., None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.importance(x)
        im, sub = mask * x, (1.0 - mask) * x
        map_im = torch.sigmoid(self.conv_im(torch.stack([im.mean(dim=(0, 2)) / self.lam, im.amax(dim=(0, 2))], 1)))
        map_sub = torch.sigmoid(self.conv_sub(torch.stack([sub.mean(dim=(0, 2)) / (1.0 - self.lam),
                                                           sub.amax(dim=(0, 2))], 1)))
        return map_im.unsqueeze(0) * im + map_sub.unsqueeze(0) * sub

    def extra_repr(self) -> str:
        return (f"time_steps={self.time_steps}, channels={self.channels}, lam={self.lam}, "
                f"intersection={self.intersection}, topk_scope={self.topk_scope!r}")
