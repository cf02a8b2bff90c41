"""Multi-step layers on ``[T, B, ...]`` tensors.

Stateless layers (conv, BN, pooling, linear) run once on the flattened ``T * B`` batch:
they subclass the torch layer, so weights, state-dict keys and ``isinstance`` checks are
torch's. :class:`SeqUpsample` resizes ``[T, B, C, H, W]``. Neurons return
``(out, state)``; :class:`Spiking` adapts one for ``nn.Sequential`` (fresh state on every
call). :class:`MembraneShortcut` adds a residual on the membrane (pre-spike) tensor.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MembraneShortcut", "SeqAvgPool2d", "SeqBatchNorm1d", "SeqBatchNorm2d", "SeqConv2d", "SeqFlatten",
           "SeqLinear", "SeqMaxPool2d", "SeqUpsample", "Spiking", "seq_apply"]


def seq_apply(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply a per-sample function to ``[T, B, ...]`` on the flattened ``[T * B, ...]`` batch."""
    if x.ndim < 3:
        raise ValueError(f"expected [T, B, ...] input, got shape {tuple(x.shape)}")
    y = fn(x.flatten(0, 1))
    return y.unflatten(0, x.shape[:2])


class _Seq:
    """Mixin: run the torch layer's forward on the flattened T * B batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return seq_apply(super().forward, x)


class SeqConv2d(_Seq, nn.Conv2d):
    """``nn.Conv2d`` on ``[T, B, C, H, W]`` (same arguments). Shape: -> ``[T, B, C_out, H_out, W_out]``."""


class SeqBatchNorm2d(_Seq, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over the T * B batch on ``[T, B, C, H, W]``."""


class SeqBatchNorm1d(_Seq, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over the T * B batch on ``[T, B, F]``."""


class SeqMaxPool2d(_Seq, nn.MaxPool2d):
    """``nn.MaxPool2d`` on ``[T, B, C, H, W]``."""


class SeqAvgPool2d(_Seq, nn.AvgPool2d):
    """``nn.AvgPool2d`` on ``[T, B, C, H, W]``."""


class SeqLinear(_Seq, nn.Linear):
    """``nn.Linear`` on ``[T, B, F]``. Shape: -> ``[T, B, F_out]``."""


class SeqFlatten(nn.Module):
    """Flatten every dimension after ``[T, B]``: ``[T, B, C, H, W]`` -> ``[T, B, C*H*W]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)


class SeqUpsample(nn.Module):
    """Spatial upsampling of ``[T, B, C, H, W]`` (T untouched), like SpikeYOLO's scale (1, 2, 2).

    Args:
        scale_factor: spatial factor.
        mode: interpolation mode of ``F.interpolate`` ("nearest").

    Shape: ``[T, B, C, H, W]`` -> ``[T, B, C, H*s, W*s]``.
    """

    def __init__(self, scale_factor: float = 2.0, mode: str = "nearest"):
        super().__init__()
        self.scale_factor, self.mode = scale_factor, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"expected [T, B, C, H, W], got shape {tuple(x.shape)}")
        return seq_apply(lambda y: F.interpolate(y, scale_factor=self.scale_factor, mode=self.mode), x)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"


class Spiking(nn.Module):
    """Wrap a multi-step neuron for ``nn.Sequential``: ``y = neuron(x)[0]``, from rest on every call.

    Args:
        neuron: any module with ``forward(x, state=None) -> (out, state)``.
    """

    def __init__(self, neuron: nn.Module):
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x)[0]


class MembraneShortcut(nn.Module):
    """Membrane-shortcut residual: ``y = x + body(x)`` on membrane (pre-spike) tensors.

    ``body`` starts with a neuron (spike first, e.g. LIF -> conv -> BN), so the addition
    is made on real-valued membrane inputs, never on spikes (MS-ResNet, SpikeYOLO, SDSA).

    Shape: ``[T, B, ...]`` -> same.
    """

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
