"""SSNN, "Shrinking Your TimeStep" (Ding et al., AAAI 2024): a VGG-style SNN whose stages run at
shrinking timesteps T_1 >= T_2 >= ... >= T_n (models.md §4).

The official code is not available; this follows the design proposal of §4 (unverified):

- stage i: [conv 3x3 (no bias) -> BN -> LIF] x len(channels_i), then AvgPool 2, on ``[T_i, B, ...]``;
- temporal transformer between stages: Y_j = sum_i W[j, i] X_i, W ``[T_{i+1}, T_i]`` learnable,
  initialised to the averages of contiguous groups of steps, then a LIF so the next stage gets spikes;
- early classifier after every stage but the last: global average pool -> linear, averaged over
  T_i; used for the training loss only and removed by :meth:`SSNN.remove_early_classifiers`;
- final classifier: global average pool -> linear, per step ``[T_n, B, C]`` and averaged over T_n.

The latency figure is :attr:`SSNN.average_timestep`, the mean over conv layers of the steps they run.
LIF: spikingjelly's LIFNode (tau 2, V_th 1, hard reset to 0, detached reset, sigmoid surrogate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from evstream.nets.registry import register
from evstream.snn import LIF, SeqAvgPool2d, SeqBatchNorm2d, SeqConv2d, SeqLinear, Spiking

__all__ = ["SSNN", "SSNNOutput", "TemporalTransformer", "ssnn_cifar10dvs", "ssnn_gesture"]


def _lif() -> Spiking:
    return Spiking(LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True))


class TemporalTransformer(nn.Module):
    """Map ``[T_in, B, ...]`` to ``[T_out, B, ...]`` by a learnable step mix followed by a LIF.

    Args:
        t_in: T_in; t_out: T_out (<= T_in).

    Shape: ``[T_in, B, ...]`` -> spikes ``[T_out, B, ...]``.
    """

    def __init__(self, t_in: int, t_out: int):
        super().__init__()
        if not 1 <= t_out <= t_in:
            raise ValueError(f"need 1 <= t_out <= t_in, got t_in={t_in}, t_out={t_out}")
        groups = torch.arange(t_in) * t_out // t_in
        weight = (groups[None, :] == torch.arange(t_out)[:, None]).float()
        self.weight = nn.Parameter(weight / weight.sum(1, keepdim=True))
        self.neuron = Spiking(LIF(tau=2.0, decay_input=False, v_threshold=0.5, v_reset=None, detach_reset=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.weight.shape[1]:
            raise ValueError(f"expected T_in = {self.weight.shape[1]} steps, got shape {tuple(x.shape)}")
        mixed = torch.tensordot(self.weight, x, dims=([1], [0]))
        return self.neuron(mixed)

    def extra_repr(self) -> str:
        return f"t_in={self.weight.shape[1]}, t_out={self.weight.shape[0]}"


class SSNNOutput(NamedTuple):
    """SSNN predictions.

    Args:
        logits: ``[B, C]``, the final classifier averaged over T_n.
        logits_t: ``[T_n, B, C]`` per step (for TET).
        early: the early classifiers' ``[B, C]`` logits, one per stage but the last (empty once removed).
        rates: ``[B, C_last]``, the last stage's spikes averaged over T_n and space, the penultimate
            firing rates the final classifier reads (``logits == model.classify(rates)``; TRT's star term).
    """

    logits: torch.Tensor
    logits_t: torch.Tensor
    early: tuple[torch.Tensor, ...]
    rates: torch.Tensor


class _Head(nn.Module):
    """Global average pool over (H, W) -> linear, per step: ``[T, B, C, H, W]`` -> ``[T, B, classes]``."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.linear = SeqLinear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.mean(dim=(3, 4)))


class SSNN(nn.Module):
    """VGG-style SNN with shrinking timesteps per stage.

    Args:
        stage_channels: conv widths per stage, e.g. ``((64, 128), (128, 128), (256, 256))``.
        stage_steps: T_i per stage, non-increasing; the input must have T_1 steps.
        num_classes: classes.
        in_channels: input channels (2 polarities).
        stem_pool: average-pool the input by this factor first (1 = none).

    Shape: ``[T_1, B, C, H, W]`` -> :class:`SSNNOutput` (``logits [B, num_classes]``).
    """

    def __init__(self, stage_channels: Sequence[Sequence[int]], stage_steps: Sequence[int], num_classes: int,
                 in_channels: int = 2, stem_pool: int = 1):
        super().__init__()
        steps = tuple(int(t) for t in stage_steps)
        if len(steps) != len(stage_channels) or len(steps) < 1:
            raise ValueError(f"need one timestep per stage, got {steps} for {len(stage_channels)} stages")
        if any(t < 1 for t in steps) or any(a < b for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError(f"stage timesteps must be >= 1 and non-increasing, got {steps}")
        self.stage_steps = steps
        self.stem = SeqAvgPool2d(stem_pool) if stem_pool > 1 else nn.Identity()
        stages, widths, c_in = [], [], in_channels
        for channels in stage_channels:
            layers = []
            for c_out in channels:
                layers += [SeqConv2d(c_in, c_out, 3, padding=1, bias=False), SeqBatchNorm2d(c_out), _lif()]
                c_in = c_out
            stages.append(nn.Sequential(*layers, SeqAvgPool2d(2)))
            widths.append(c_in)
        self.stages = nn.ModuleList(stages)
        self.transformers = nn.ModuleList(TemporalTransformer(a, b) for a, b in zip(steps, steps[1:], strict=False))
        self.early = nn.ModuleList(_Head(w, num_classes) for w in widths[:-1])
        self.head = _Head(widths[-1], num_classes)
        self._layers = [len(c) for c in stage_channels]

    @property
    def time_steps(self) -> int:
        """T_1, the number of input frames."""
        return self.stage_steps[0]

    @property
    def average_timestep(self) -> float:
        """Mean over conv layers of the timesteps they run (the paper's latency figure)."""
        return sum(t * n for t, n in zip(self.stage_steps, self._layers, strict=True)) / sum(self._layers)

    def remove_early_classifiers(self) -> None:
        """Drop the early classifiers (inference): their parameters and outputs disappear."""
        self.early = nn.ModuleList()

    def classify(self, rates: torch.Tensor) -> torch.Tensor:
        """The final classifier on penultimate firing rates ``[B, C_last]`` -> logits ``[B, classes]``."""
        return F.linear(rates, self.head.linear.weight, self.head.linear.bias)

    def forward(self, x: torch.Tensor) -> SSNNOutput:
        if x.ndim != 5 or x.shape[0] != self.stage_steps[0]:
            raise ValueError(f"expected frames [T={self.stage_steps[0]}, B, C, H, W], got shape {tuple(x.shape)}")
        x = self.stem(x)
        early = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.transformers):
                if i < len(self.early):
                    early.append(self.early[i](x).mean(0))
                x = self.transformers[i](x)
        logits_t = self.head(x)
        return SSNNOutput(logits_t.mean(0), logits_t, tuple(early), x.mean(dim=(0, 3, 4)))

    def extra_repr(self) -> str:
        return f"stage_steps={self.stage_steps}, average_timestep={self.average_timestep:g}"


def _steps(time_steps: int, stage_steps: Sequence[int] | None, n: int) -> tuple[int, ...]:
    steps = tuple(stage_steps) if stage_steps is not None else tuple(max(1, time_steps >> i) for i in range(n))
    if steps[0] != time_steps:
        raise ValueError(f"stage_steps {steps} must start with time_steps = {time_steps}")
    return steps


@register("ssnn_gesture")
def ssnn_gesture(*, num_classes: int = 11, in_channels: int = 2, input_size: int = 32, time_steps: int = 8,
                 stage_steps: Sequence[int] | None = None,
                 stage_channels: Sequence[Sequence[int]] = ((64, 128), (128, 128), (256, 256))) -> SSNN:
    """SSNN for DVS128 Gesture at 2x32x32: three VGG stages, steps (T, T/2, T/4) by default.

    Args:
        num_classes: 11; in_channels: 2; input_size: side (divisible by 8).
        time_steps: T_1 (input frames).
        stage_steps: T_i per stage (default ``(T, T // 2, T // 4)``, at least 1).
        stage_channels: conv widths per stage.

    Shape: ``[T, B, 2, 32, 32]`` -> :class:`SSNNOutput`.

    Example:
        >>> net = ssnn_gesture(time_steps=8)
        >>> net.average_timestep
        4.666666666666667
    """
    if input_size % (2 ** len(stage_channels)):
        raise ValueError(f"input_size {input_size} is not divisible by 2^{len(stage_channels)}")
    return SSNN(stage_channels, _steps(time_steps, stage_steps, len(stage_channels)), num_classes, in_channels)


@register("ssnn_cifar10dvs")
def ssnn_cifar10dvs(*, num_classes: int = 10, in_channels: int = 2, input_size: int = 128, time_steps: int = 10,
                    stage_steps: Sequence[int] | None = None,
                    stage_channels: Sequence[Sequence[int]] = ((64, 128), (256, 256), (512, 512))) -> SSNN:
    """SSNN for CIFAR10-DVS / N-Caltech101 at 2x128x128 (pooled to 64x64 first): VGG-style stages.

    Args: as :func:`ssnn_gesture`; default steps ``(T, T // 2, T // 4)``.

    Shape: ``[T, B, 2, 128, 128]`` -> :class:`SSNNOutput`.
    """
    if input_size % (2 ** (len(stage_channels) + 1)):
        raise ValueError(f"input_size {input_size} is not divisible by 2^{len(stage_channels) + 1}")
    return SSNN(stage_channels, _steps(time_steps, stage_steps, len(stage_channels)), num_classes, in_channels,
                stem_pool=2)
