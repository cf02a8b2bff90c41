"""MA-SNN (Yao et al., TPAMI 2023): the TA-SNN backbone with multi-dimensional attention (models.md §3).

Attention variants: "TCSA" (temporal, channel, spatial in sequence), "TCA", "TSA", "CSA", "TA",
"CA", "SA". Conv layers get the selected parts; FC layers get the temporal part only, and no
attention when the variant has none (§3.1). Placements (§3.2):

- ``"input"`` (the released code's Conv-POST): on the synaptic input, u = h + ReLU(Att(X));
- ``"membrane"`` (the paper's recommendation): the channel and spatial parts act on the membrane
  U = H + X at every step inside the neuron, before firing; the temporal part needs the whole
  sequence, so it stays on the synaptic input.

LIF: the BICLab cell, decay 0.3, V_th 0.3, reset to V_th after a spike as the official MA-SNN
``IFCell`` / ``ConvIFCell`` do (``h = x Vthres + (1 - x) u``; their ``Vreset`` entry is never read),
the same cell as TA-SNN. Optional ASA (§6.4) replaces the attention of the conv layers with ASA on
the synaptic input, the FC layers get none, and every cell resets to 0, as in ASA-SNN's code
(``IFCell``: ``h = x Vreset + (1 - x) u`` with ``Vreset`` 0; ``Net.py``: ``AttLIF(attention="no")``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from evstream.nets.registry import register
from evstream.nets.tasnn import SpikingClassifier, SpikingLayer, conv_synapse, fc_synapse
from evstream.snn import ASA, TCSA, BICLabLIF, TimeAttention

__all__ = ["ATTENTIONS", "PLACEMENTS", "TemporalGate", "masnn_cifar10dvs", "masnn_gesture"]

ATTENTIONS = ("TCSA", "TCA", "TSA", "CSA", "TA", "CA", "SA")
PLACEMENTS = ("input", "membrane")


class TemporalGate(nn.Module):
    """MA-SNN's temporal part alone on ``[T, B, ...]``: Y = ReLU(a_T(X) X) (used on FC layers).

    Args:
        time_steps: T; reduction: t_ratio.
    """

    def __init__(self, time_steps: int, reduction: int):
        super().__init__()
        self.ta = TimeAttention(time_steps, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.ta(x) * x)


def _parts(attention: str) -> tuple[bool, bool, bool]:
    if attention not in ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}; choose one of {ATTENTIONS}")
    if attention == "TA":
        return True, False, False
    if attention == "CA":
        return False, True, False
    if attention == "SA":
        return False, False, True
    return "T" in attention, "C" in attention, "S" in attention


def _masnn(channels: Sequence[int], pools: Sequence[int], fc: Sequence[int], *, input_size: int, time_steps: int,
           attention: str, placement: str, t_ratio: int, c_ratio: int, alpha: float, asa: bool,
           asa_topk_scope: str) -> SpikingClassifier:
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; choose one of {PLACEMENTS}")
    temporal, channel, spatial = _parts(attention)
    side = input_size
    for p in pools:
        if side % p:
            raise ValueError(f"input_size {input_size} is not divisible by the pools {tuple(pools)}")
        side //= p

    def conv_layer(c_in: int, c_out: int, pool: int) -> SpikingLayer:
        if asa:
            return SpikingLayer(conv_synapse(c_in, c_out, pool), ASA(time_steps, c_out, topk_scope=asa_topk_scope),
                                _neuron(alpha, v_reset=0.0))
        if placement == "input":
            att = TCSA(time_steps, c_out, t_ratio, c_ratio, temporal=temporal, channel=channel, spatial=spatial)
            return SpikingLayer(conv_synapse(c_in, c_out, pool), att, _neuron(alpha))
        on_input = TemporalGate(time_steps, t_ratio) if temporal else None
        on_membrane = (TCSA(1, c_out, 1, c_ratio, temporal=False, channel=channel, spatial=spatial)
                       if channel or spatial else None)
        return SpikingLayer(conv_synapse(c_in, c_out, pool), on_input, _neuron(alpha, on_membrane))

    features = [conv_layer(c_in, c_out, p) for c_in, c_out, p in zip(channels[:-1], channels[1:], pools, strict=True)]
    widths = [channels[-1] * side * side, *fc]
    fc_gate = temporal and not asa  # ASA-SNN's FC layers have no attention
    classifier = [SpikingLayer(fc_synapse(f_in, f_out), TemporalGate(time_steps, t_ratio) if fc_gate else None,
                               _neuron(alpha, v_reset=0.0 if asa else V_THRESHOLD))
                  for f_in, f_out in zip(widths[:-1], widths[1:], strict=True)]
    return SpikingClassifier(features, classifier, time_steps)


V_THRESHOLD = 0.3
"""V_th of every MA-SNN cell (``Config.py``: ``Vthres = 0.3``), also its reset potential."""


def _neuron(alpha: float, attention: nn.Module | None = None, v_reset: float = V_THRESHOLD) -> BICLabLIF:
    return BICLabLIF(decay=0.3, v_threshold=V_THRESHOLD, v_reset=v_reset, alpha=alpha, attention=attention)


@register("masnn_gesture")
def masnn_gesture(*, num_classes: int = 11, in_channels: int = 2, input_size: int = 32, time_steps: int = 60,
                  attention: str = "TCSA", placement: str = "input", t_ratio: int = 5, c_ratio: int = 8,
                  alpha: float = 0.5, asa: bool = False, asa_topk_scope: str = "sample") -> SpikingClassifier:
    """MA-SNN on DVS128 Gesture: TA-SNN's 3-conv (64-128-128) + FC 8192-256-11 backbone with MA attention.

    Args:
        num_classes, in_channels, input_size, time_steps: as :func:`evstream.nets.tasnn_gesture`.
        attention: one of :data:`ATTENTIONS`.
        placement: "input" or "membrane" (module docstring).
        t_ratio: temporal reduction (5); c_ratio: channel reduction (8).
        alpha: surrogate width a.
        asa: use ASA on the conv layers instead of MA attention (ASA-SNN: every cell then resets to 0).
        asa_topk_scope: ASA's top-k sets per ``"sample"`` or over the ``"batch"`` (the official code;
            :class:`evstream.snn.ASA`).

    Shape: ``[T, B, 2, 32, 32]`` -> ``[B, 11]`` firing rates.

    Example:
        >>> net = masnn_gesture(time_steps=10, attention="CSA", placement="membrane")
    """
    return _masnn((in_channels, 64, 128, 128), (1, 2, 2), (256, num_classes), input_size=input_size,
                  time_steps=time_steps, attention=attention, placement=placement, t_ratio=t_ratio, c_ratio=c_ratio,
                  alpha=alpha, asa=asa, asa_topk_scope=asa_topk_scope)


@register("masnn_cifar10dvs")
def masnn_cifar10dvs(*, num_classes: int = 10, in_channels: int = 2, input_size: int = 128, time_steps: int = 20,
                     attention: str = "TCSA", placement: str = "input", t_ratio: int = 2, c_ratio: int = 8,
                     alpha: float = 1.0, asa: bool = False, asa_topk_scope: str = "sample") -> SpikingClassifier:
    """MA-SNN on CIFAR10-DVS: TA-SNN's 5-conv CIFAR10-DVS backbone with MA attention (T 20, t_ratio 2).

    Args: as :func:`masnn_gesture`.

    Shape: ``[T, B, 2, 128, 128]`` -> ``[B, 10]`` firing rates.
    """
    return _masnn((in_channels, 32, 64, 128, 256, 512), (2, 2, 2, 2, 4), (256, num_classes), input_size=input_size,
                  time_steps=time_steps, attention=attention, placement=placement, t_ratio=t_ratio, c_ratio=c_ratio,
                  alpha=alpha, asa=asa, asa_topk_scope=asa_topk_scope)
