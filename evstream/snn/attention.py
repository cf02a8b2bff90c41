"""Attention on multi-step tensors: TA-SNN's TA, MA-SNN's TA/CA/SA parts and TCSA.

All modules act on the synaptic input ``X`` shaped ``[T, B, C, H, W]`` (``[T, B, F]`` where
noted) and return a tensor of the same shape. Placement (MA-SNN §3.2):

- on the synaptic input: conv -> BN -> attention -> neuron, i.e. call the module on X;
- on the membrane: pass the module as ``attention=`` to :class:`evstream.snn.BICLabLIF`,
  which applies it to U = H + X at every step (T = 1 inside, so no temporal part).

Formulas (s = per-sample pooled vectors, sigma = logistic sigmoid):

- TA (TA-SNN): d = sigma(W2 ReLU(W1 mean_{C,H,W}(X))), W1: T -> T/r, W2: T/r -> T;  Y = d_t X_t.
- TA part (MA-SNN): a_T = sigma(MLP(avg_{CHW} X) + MLP(max_{CHW} X)), bias-free MLP T -> T/r -> T.
- CA part: a_C = sigma(MLP(avg_{THW} X) + MLP(max_{THW} X)), MLP C -> C/r -> C.
- SA part: a_S = sigma(conv3x3([mean_{T,C} X; max_{T,C} X])), one H x W map.
- TCSA: Z1 = a_T(X) X, Z2 = a_C(Z1) Z1, Y = ReLU(a_S(Z2) Z2); parts can be switched off.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ChannelAttention", "SpatialAttention", "TCSA", "TemporalAttention", "TimeAttention", "discard_frames"]


def _mlp(n: int, ratio: int, bias: bool) -> nn.Sequential:
    hidden = n // ratio
    if hidden < 1:
        raise ValueError(f"reduction ratio {ratio} is larger than the dimension {n}")
    return nn.Sequential(nn.Linear(n, hidden, bias=bias), nn.ReLU(), nn.Linear(hidden, n, bias=bias))


def _check_time(x: torch.Tensor, t: int) -> None:
    if x.ndim < 3 or x.shape[0] != t:
        raise ValueError(f"expected [T={t}, B, ...], got shape {tuple(x.shape)}")


def _check_5d(x: torch.Tensor) -> None:
    if x.ndim != 5:
        raise ValueError(f"expected [T, B, C, H, W], got shape {tuple(x.shape)}")


class TemporalAttention(nn.Module):
    """TA-SNN's temporal-wise attention (squeeze-excitation over T).

    Args:
        time_steps: T.
        reduction: r (16 for DVS Gesture, 5 for CIFAR10-DVS and SHD); needs T >= r.
        bias: biases in the two linear maps (the official ``Tlayer`` uses ``nn.Linear``'s default, True).

    Shape: ``[T, B, ...]`` -> same; :meth:`scores` gives ``[T, B]``.

    Example:
        >>> ta = TemporalAttention(16, reduction=4)
        >>> y = ta(torch.rand(16, 2, 8, 4, 4))
    """

    def __init__(self, time_steps: int, reduction: int = 16, bias: bool = True):
        super().__init__()
        self.time_steps, self.reduction = time_steps, reduction
        self.excitation = _mlp(time_steps, reduction, bias)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Frame scores d in (0, 1), ``[T, B]`` (threshold them with :func:`discard_frames`)."""
        _check_time(x, self.time_steps)
        s = x.flatten(2).mean(2).t()
        return torch.sigmoid(self.excitation(s)).t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.scores(x)
        return x * d.view(*d.shape, *[1] * (x.ndim - 2))

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, reduction={self.reduction}"


def discard_frames(x: torch.Tensor, scores: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """TA-SNN's input attention pruning: zero the frames whose score is below ``threshold``.

    Args:
        x: frames ``[T, B, ...]``.
        scores: TA scores ``[T, B]`` (:meth:`TemporalAttention.scores`).
        threshold: d_th; frames with d_t < d_th are dropped.

    Returns:
        ``(x with dropped frames zeroed, keep mask [T, B] bool)``.
    """
    if scores.shape != x.shape[:2]:
        raise ValueError(f"scores shape {tuple(scores.shape)} does not match [T, B] = {tuple(x.shape[:2])}")
    keep = scores >= threshold
    return x * keep.view(*keep.shape, *[1] * (x.ndim - 2)).to(x.dtype), keep


class TimeAttention(nn.Module):
    """MA-SNN's temporal part: a_T = sigma(MLP(avg) + MLP(max)), pooled over all but (T, B).

    Shape: ``[T, B, ...]`` -> attention map ``[T, B, 1, ...]`` (broadcasts against the input).
    """

    def __init__(self, time_steps: int, reduction: int = 5):
        super().__init__()
        self.time_steps, self.reduction = time_steps, reduction
        self.mlp = _mlp(time_steps, reduction, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time(x, self.time_steps)
        flat = x.flatten(2)
        a = torch.sigmoid(self.mlp(flat.mean(2).t()) + self.mlp(flat.amax(2).t())).t()
        return a.view(*a.shape, *[1] * (x.ndim - 2))

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, reduction={self.reduction}"


class ChannelAttention(nn.Module):
    """MA-SNN's channel part: a_C = sigma(MLP(avg_{T,H,W}) + MLP(max_{T,H,W})).

    Shape: ``[T, B, C, H, W]`` -> attention map ``[1, B, C, 1, 1]``.
    """

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.channels, self.reduction = channels, reduction
        self.mlp = _mlp(channels, reduction, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_5d(x)
        avg = x.mean(dim=(0, 3, 4))
        mx = x.amax(dim=(0, 3, 4))
        a = torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        return a[None, :, :, None, None]

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"


class SpatialAttention(nn.Module):
    """MA-SNN's spatial part: a_S = sigma(conv([mean_{T,C}; max_{T,C}])), no bias.

    Args:
        kernel_size: 3 or 7.

    Shape: ``[T, B, C, H, W]`` -> attention map ``[1, B, 1, H, W]``.
    """

    def __init__(self, kernel_size: int = 3):
        super().__init__()
        if kernel_size not in (3, 7):
            raise ValueError(f"kernel_size must be 3 or 7, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_5d(x)
        pooled = torch.stack([x.mean(dim=(0, 2)), x.amax(dim=(0, 2))], dim=1)
        return torch.sigmoid(self.conv(pooled)).unsqueeze(0)


class TCSA(nn.Module):
    """MA-SNN's multi-dimensional attention Y = ReLU(a_S(Z2) Z2), Z2 = a_C(Z1) Z1, Z1 = a_T(X) X.

    Args:
        time_steps: T (unused when ``temporal=False``).
        channels: C.
        t_ratio: temporal reduction (5 for Gesture, 2 for Gait/CIFAR10-DVS).
        c_ratio: channel reduction (8).
        temporal, channel, spatial: which parts to apply (TCA, TSA, CSA, TA, CA, SA ablations).

    Shape: ``[T, B, C, H, W]`` -> same.

    Example:
        >>> y = TCSA(10, 32, t_ratio=5, c_ratio=8)(torch.rand(10, 2, 32, 8, 8))
    """

    def __init__(self, time_steps: int, channels: int, t_ratio: int = 5, c_ratio: int = 8, *, temporal: bool = True,
                 channel: bool = True, spatial: bool = True):
        super().__init__()
        if not (temporal or channel or spatial):
            raise ValueError("TCSA needs at least one of temporal, channel, spatial")
        self.ta = TimeAttention(time_steps, t_ratio) if temporal else None
        self.ca = ChannelAttention(channels, c_ratio) if channel else None
        self.sa = SpatialAttention() if spatial else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for part in (self.ta, self.ca, self.sa):
            if part is not None:
                x = part(x) * x
        return torch.relu(x)
