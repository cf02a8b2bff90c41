"""TA-SNN (Yao et al., ICCV 2021): conv/FC layers with temporal-wise attention and the BICLab LIF cell.

A layer is ``synapse -> attention -> neuron`` on ``[T, B, ...]`` (models.md §2.1-§2.4): the
synapse is conv 3x3 (bias) -> BN -> AvgPool, or linear -> BN1d; TA rescales each frame of the
synaptic input by d_t = sigma(W2 ReLU(W1 mean_{C,H,W} X)); the BICLab cell (V_th 0.3, decay 0.3,
reset to V_th as in TA-SNN's code) integrates it. The net's output is the firing rate of the
last layer, the mean over T of its spikes ``[B, num_classes]`` (trained with MSE on one-hot).

Layer tables (§2.4):

- DVS128 Gesture, input 2x32x32: conv 2->64, 64->128 (pool 2), 128->128 (pool 2); FC 8192->256->11.
- CIFAR10-DVS, input 2x128x128: conv 2->32->64->128->256->512 with pools 2, 2, 2, 2, 4; FC 2048->256->10.

Inference-time frame discarding (§2.1): ``run(x, discard_threshold=d_th)`` zeroes the frames of
the first layer whose TA score is below d_th and reports which were kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from evstream.nets.registry import register
from evstream.snn import (BICLabLIF, SeqAvgPool2d, SeqBatchNorm1d, SeqBatchNorm2d, SeqConv2d,
                          SeqLinear, TemporalAttention, discard_frames)

__all__ = ["ClassifierRun", "SpikingClassifier", "SpikingLayer", "conv_synapse", "fc_synapse", "tasnn_cifar10dvs",
           "tasnn_gesture"]


class SpikingLayer(nn.Module):
    """``synapse -> attention (optional) -> neuron`` on ``[T, B, ...]``.

    Args:
        synapse: stateless multi-step module (conv/BN/pool or linear/BN) giving the synaptic input X.
        attention: module mapping X to the attended input (same shape), or None.
        neuron: multi-step neuron ``forward(x, state=None) -> (out, state)``.

    Shape: ``[T, B, ...]`` -> ``[T, B, ...]`` (the synapse's output shape).
    """

    def __init__(self, synapse: nn.Module, attention: nn.Module | None, neuron: nn.Module):
        super().__init__()
        self.synapse, self.attention, self.neuron = synapse, attention, neuron

    def forward(self, x: torch.Tensor, state=None, discard_threshold: float | None = None):
        """Returns ``(spikes, neuron state, keep [T, B] bool or None)``; ``discard_threshold`` needs TA."""
        x = self.synapse(x)
        keep = None
        if discard_threshold is not None:
            if not isinstance(self.attention, TemporalAttention):
                raise ValueError("frame discarding needs TA-SNN's TemporalAttention on the layer")
            scores = self.attention.scores(x)
            x, keep = discard_frames(x * scores.view(*scores.shape, *[1] * (x.ndim - 2)), scores,
                                     discard_threshold)
        elif self.attention is not None:
            x = self.attention(x)
        out, state = self.neuron(x, state)
        return out, state, keep


class ClassifierRun(NamedTuple):
    """What :meth:`SpikingClassifier.run` returns.

    Args:
        rates: output firing rates ``[B, num_classes]`` (mean over T of the last layer's spikes).
        state: per-layer neuron states, to continue on the next window.
        keep: first-layer frames kept by frame discarding ``[T, B]`` bool (None without it).
    """

    rates: torch.Tensor
    state: tuple
    keep: torch.Tensor | None


class SpikingClassifier(nn.Module):
    """Conv spiking layers, a flatten, FC spiking layers; output = mean over T of the last spikes.

    Args:
        features: conv :class:`SpikingLayer` s on ``[T, B, C, H, W]``.
        classifier: FC :class:`SpikingLayer` s on ``[T, B, F]``; the last has num_classes neurons.
        time_steps: T the attention modules were built for (checked on input).

    Shape: ``[T, B, C, H, W]`` -> ``[B, num_classes]``.
    """

    def __init__(self, features: Sequence[SpikingLayer], classifier: Sequence[SpikingLayer], time_steps: int):
        super().__init__()
        self.features, self.classifier = nn.ModuleList(features), nn.ModuleList(classifier)
        self.time_steps = int(time_steps)

    def run(self, x: torch.Tensor, state: tuple | None = None, *, discard_threshold: float | None = None
            ) -> ClassifierRun:
        """Forward pass keeping the neuron states (``state=None``: all neurons start at rest).

        Args:
            x: frames ``[T, B, C, H, W]``.
            state: the ``state`` of a previous :class:`ClassifierRun` (carried across windows).
            discard_threshold: TA-SNN's d_th on the first layer's frame scores (None: keep all).
        """
        if x.ndim != 5 or x.shape[0] != self.time_steps:
            raise ValueError(f"expected frames [T={self.time_steps}, B, C, H, W], got shape {tuple(x.shape)}")
        layers = [*self.features, *self.classifier]
        if state is not None and len(state) != len(layers):
            raise ValueError(f"state has {len(state)} entries, the net has {len(layers)} layers")
        states, keep = [], None
        for i, layer in enumerate(layers):
            if i == len(self.features):
                x = x.flatten(2)
            x, s, k = layer(x, None if state is None else state[i], discard_threshold if i == 0 else None)
            keep = k if i == 0 else keep
            states.append(s)
        return ClassifierRun(x.mean(0), tuple(states), keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x).rates

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}"


def conv_synapse(in_channels: int, out_channels: int, pool: int) -> nn.Sequential:
    """Conv 3x3 (padding 1, bias) -> BN -> AvgPool(pool) (no pool when ``pool == 1``), multi-step."""
    parts = [SeqConv2d(in_channels, out_channels, 3, padding=1), SeqBatchNorm2d(out_channels)]
    if pool > 1:
        parts.append(SeqAvgPool2d(pool))
    return nn.Sequential(*parts)


def fc_synapse(in_features: int, out_features: int) -> nn.Sequential:
    """Linear (bias) -> BN1d, multi-step."""
    return nn.Sequential(SeqLinear(in_features, out_features), SeqBatchNorm1d(out_features))


def _neuron(alpha: float) -> BICLabLIF:
    return BICLabLIF(decay=0.3, v_threshold=0.3, v_reset=0.3, alpha=alpha)


def _tasnn(channels: Sequence[int], pools: Sequence[int], fc: Sequence[int], *, input_size: int, time_steps: int,
           reduction: int, alpha: float, attention: bool) -> SpikingClassifier:
    side = input_size
    for p in pools:
        if side % p:
            raise ValueError(f"input_size {input_size} is not divisible by the pools {tuple(pools)}")
        side //= p

    def ta() -> TemporalAttention | None:
        return TemporalAttention(time_steps, reduction) if attention else None

    features = [SpikingLayer(conv_synapse(c_in, c_out, p), ta(), _neuron(alpha))
                for c_in, c_out, p in zip(channels[:-1], channels[1:], pools, strict=True)]
    widths = [channels[-1] * side * side, *fc]
    classifier = [SpikingLayer(fc_synapse(f_in, f_out), ta(), _neuron(alpha))
                  for f_in, f_out in zip(widths[:-1], widths[1:], strict=True)]
    return SpikingClassifier(features, classifier, time_steps)


@register("tasnn_gesture")
def tasnn_gesture(*, num_classes: int = 11, in_channels: int = 2, input_size: int = 32, time_steps: int = 60,
                  reduction: int = 16, alpha: float = 0.5, attention: bool = True) -> SpikingClassifier:
    """TA-SNN's DVS128 Gesture net (``TA_SNN_CNN_3``): 3 ConvTA-LIF + 2 FC-TA-LIF.

    Args:
        num_classes: 11.
        in_channels: 2 (polarities).
        input_size: side of the square input (32 = 128 / ds 4).
        time_steps: T (needs T >= reduction).
        reduction: TA's r (16).
        alpha: rectangular surrogate width a (0.5).
        attention: False gives the plain LIF-SNN baseline.

    Shape: ``[T, B, 2, 32, 32]`` -> ``[B, 11]`` firing rates.

    Example:
        >>> net = tasnn_gesture(time_steps=16)
        >>> net(torch.rand(16, 2, 2, 32, 32)).shape
        torch.Size([2, 11])
    """
    return _tasnn((in_channels, 64, 128, 128), (1, 2, 2), (256, num_classes), input_size=input_size,
                  time_steps=time_steps, reduction=reduction, alpha=alpha, attention=attention)


@register("tasnn_cifar10dvs")
def tasnn_cifar10dvs(*, num_classes: int = 10, in_channels: int = 2, input_size: int = 128, time_steps: int = 10,
                     reduction: int = 5, alpha: float = 1.0, attention: bool = True) -> SpikingClassifier:
    """TA-SNN's CIFAR10-DVS net: 5 ConvTA-LIF (32-64-128-256-512, pools 2, 2, 2, 2, 4) + FC 2048-256-10.

    Args: as :func:`tasnn_gesture` (defaults T 10, r 5, a 1, input 128).

    Shape: ``[T, B, 2, 128, 128]`` -> ``[B, 10]`` firing rates.
    """
    return _tasnn((in_channels, 32, 64, 128, 256, 512), (2, 2, 2, 2, 4), (256, num_classes), input_size=input_size,
                  time_steps=time_steps, reduction=reduction, alpha=alpha, attention=attention)
