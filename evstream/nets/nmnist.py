"""A compact conv SNN for N-MNIST: ConvPLIF layers and a voting output layer (Fang et al. 2021's net, scaled down).

Fang et al.'s N-MNIST net (PLIF, ICCV 2021) stacks 128-channel conv-BN-PLIF blocks with max pooling,
then FC 2048 and FC 100 PLIF layers, the last read as ten voting neurons per class. For two CPU cores
and a thousand recordings this one is narrower: conv 2->32->64->128 (3x3, BN, average pool 2, PLIF;
34 -> 17 -> 8 -> 4), then FC 2048->100 (BN, PLIF) read as ten voting neurons per class. A class's
score is the mean spike of its voters over T (:class:`VotingClassifier`, trained with the rate MSE
against the one-hot label); ten voters resolve the rates in steps of 1 / (10 T) instead of 1 / T,
so few samples tie.
PLIF: spikingjelly's ``ParametricLIFNode`` defaults (1/tau = sigmoid(w) learnt per layer, initial
tau 2, V_th 1, hard reset to 0, reset detached, arctan surrogate).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from evstream.nets.registry import register
from evstream.nets.tasnn import ClassifierRun, SpikingClassifier, SpikingLayer, conv_synapse, fc_synapse
from evstream.snn import PLIF

__all__ = ["ReLUUnit", "VotingClassifier", "ann_nmnist", "cnn_nmnist"]


class VotingClassifier(SpikingClassifier):
    """A :class:`SpikingClassifier` whose last layer has ``votes`` neurons per class, class ``c`` owning
    neurons ``[c * votes, (c + 1) * votes)``; a class's rate is the mean rate of its voters.

    Shape: ``[T, B, C, H, W]`` -> ``[B, num_classes]``.
    """

    def __init__(self, features: Sequence[SpikingLayer], classifier: Sequence[SpikingLayer], time_steps: int,
                 votes: int):
        super().__init__(features, classifier, time_steps)
        self.votes = int(votes)

    def run(self, x: torch.Tensor, state: tuple | None = None, *, discard_threshold: float | None = None
            ) -> ClassifierRun:
        result = super().run(x, state, discard_threshold=discard_threshold)
        return result._replace(rates=result.rates.unflatten(1, (-1, self.votes)).mean(2))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, votes={self.votes}"


class ReLUUnit(torch.nn.Module):
    """The ANN counterpart of a multi-step neuron: ``forward(x, state=None) -> (relu(x), None)``, stateless."""

    def forward(self, x: torch.Tensor, state=None) -> tuple[torch.Tensor, None]:
        return torch.relu(x), None


def _plif(init_tau: float) -> PLIF:
    return PLIF(init_tau=init_tau, detach_reset=True, surrogate="atan")


@register("cnn_nmnist")
def cnn_nmnist(*, num_classes: int = 10, in_channels: int = 2, input_size: int = 34, time_steps: int = 3,
               channels: Sequence[int] = (32, 64, 128), hidden: int = 0, votes: int = 10,
               init_tau: float = 2.0, neuron: str = "plif") -> VotingClassifier:
    """ConvPLIF layers (3x3 conv, BN, average pool 2), FC PLIF layers, a voting output; rates over T.

    Args:
        num_classes: 10 digits.
        in_channels: 2 polarities.
        input_size: side of the square input frames (34).
        time_steps: T.
        channels: output channels of the conv layers (each halves the side, rounding down).
        hidden: width of a hidden FC layer before the voters (0: none).
        votes: output neurons per class.
        init_tau: PLIF's initial membrane time constant (time steps).
        neuron: ``"plif"``, or ``"relu"`` for the ANN of the same layout (:func:`ann_nmnist`).

    Shape: ``[T, B, 2, 34, 34]`` -> ``[B, num_classes]`` firing rates.

    Example:
        >>> net = cnn_nmnist(time_steps=3)
        >>> net(torch.rand(3, 2, 2, 34, 34)).shape
        torch.Size([2, 10])
    """
    if neuron not in ("plif", "relu"):
        raise ValueError(f"neuron must be 'plif' or 'relu', got {neuron!r}")

    def unit():
        return _plif(init_tau) if neuron == "plif" else ReLUUnit()

    side = input_size
    widths = [in_channels, *channels]
    features = []
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        features.append(SpikingLayer(conv_synapse(c_in, c_out, 2), None, unit()))
        side //= 2
    if side < 1:
        raise ValueError(f"input_size {input_size} is too small for {len(channels)} pooled conv layers")
    fc = [channels[-1] * side * side, *([hidden] if hidden else []), num_classes * votes]
    classifier = [SpikingLayer(fc_synapse(f_in, f_out), None, unit()) for f_in, f_out in zip(fc[:-1], fc[1:])]
    return VotingClassifier(features, classifier, time_steps, votes)


@register("ann_nmnist")
def ann_nmnist(**options) -> VotingClassifier:
    """:func:`cnn_nmnist`'s layout with ReLU units instead of PLIF neurons: the same weights, each frame
    classified without membrane state, the output averaged over T and the voters (an ANN baseline).

    Shape: ``[T, B, 2, 34, 34]`` -> ``[B, num_classes]``.

    Example:
        >>> ann_nmnist(time_steps=3)(torch.rand(3, 2, 2, 34, 34)).shape
        torch.Size([2, 10])
    """
    return cnn_nmnist(**options, neuron="relu")
