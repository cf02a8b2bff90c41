"""StereoSpike (Rançon et al., IEEE Access 2022; models.md §5.3), layer for layer the official network.

The official code (``urancon/StereoSpike``: ``network/SNN_models.py`` class ``StereoSpike``,
``network/blocks.py``), which :func:`stereospike` builds with its default arguments:

- Neurons: stateless IF (spikingjelly's ``IFNode`` reset before every sample, one step), so
  ``S = H(X - 1)``; arctan surrogate, except inside the SEW blocks, which keep ``SEWResBlock``'s
  default sigmoid surrogate. No batch norm; no bias except in the four prediction convs.
- ``bottom``: 5x5 conv, 4 -> 32 channels, then IF. ``conv1`` .. ``conv4``: 5x5 stride-2 convs
  (32 -> 64 -> 128 -> 256 -> 512), each followed by IF.
- ``bottleneck``: two SEW residual blocks with ADD connect, ``IF(conv3x3(IF(conv3x3(s)))) + s``.
- ``deconv4`` .. ``deconv1``: nearest upsampling to the skip's size plus ``k - 1``, then a 5x5 conv
  without padding (back to the skip's size) and IF; the skip's spikes are added.
- ``predict_depth4`` .. ``predict_depth1``: the same upsampling to the input size plus 2, then a 3x3
  conv with bias to one channel. A pool of output neurons that never fire (infinite threshold,
  started at 0) integrates them in turn, coarse to fine: after each, its potential is that scale's
  depth; the last is the prediction.

18,148,708 parameters at the official widths. Module names are the official ones; the official
state-dict keys map onto these by :func:`from_official_state_dict`. The official decoder sizes are
constants for 346x260 input; here they are the skip's and the input's, the same at 346x260. With
``T > 1`` input steps (stateless: each step alone), the potentials are averaged over the steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from evstream.nets.depth.blocks import DepthPrediction
from evstream.snn.lif import LIFParams, lif_step

__all__ = ["IF", "StereoSpike", "from_official_state_dict", "stereospike"]


class IF(nn.Module):
    """Stateless IF neuron: ``S = H(X - 1)`` elementwise (V_reset 0, threshold 1, detached reset).

    Args:
        surrogate: surrogate gradient name (:mod:`evstream.snn.surrogate`): ``"atan"`` as the official
            bottom, encoder and decoder neurons, ``"sigmoid"`` as those of the official SEW blocks.
    """

    def __init__(self, surrogate: str = "atan"):
        super().__init__()
        self.params = LIFParams(tau=1.0, decay_input=False, v_threshold=1.0, v_reset=0.0, detach_reset=True,
                                surrogate=surrogate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lif_step(x, None, self.params)[0]

    def extra_repr(self) -> str:
        return f"surrogate={self.params.surrogate}"


class ConvIF(nn.Module):
    """``IF(conv(x))``, "same" padding, no bias. Shape: ``[N, C_in, H, W]`` -> ``[N, C_out, ceil(H / s), ceil(W / s)]``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, surrogate: str = "atan"):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.spike = IF(surrogate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike(self.conv(x))


class UpConv(nn.Module):
    """The official ``NNConvUpsampling``: nearest upsampling to ``size + k - 1``, then a k x k conv without padding.

    Args:
        c_in, c_out, kernel_size: the conv's.
        bias: a conv bias (the prediction layers').
        spiking: IF after the conv (the decoder layers).

    Shape: ``[N, C_in, h, w]`` and ``size = (H, W)`` -> ``[N, C_out, H, W]``.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, *, bias: bool = False, spiking: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, bias=bias)
        self.spike = IF() if spiking else None

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        margin = self.conv.kernel_size[0] - 1
        y = self.conv(F.interpolate(x, size=(size[0] + margin, size[1] + margin), mode="nearest"))
        return y if self.spike is None else self.spike(y)


class SEWBlock(nn.Module):
    """SEW residual block with ADD connect: ``IF(conv(IF(conv(s)))) + s``, 3x3 convs, sigmoid surrogate.

    Shape: ``[N, C, H, W]`` -> same.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvIF(channels, channels, 3, surrogate="sigmoid")
        self.conv2 = ConvIF(channels, channels, 3, surrogate="sigmoid")

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(s)) + s


class StereoSpike(nn.Module):
    """StereoSpike depth network (module docstring).

    Args:
        in_channels: 4 (left + right histograms, binocular) or 2 (monocular).
        channels: widths of the bottom layer and the four encoder stages (official: 32, 64, 128, 256, 512).
        kernel_size: kernel of the bottom, encoder and decoder convs (official: 5); the SEW blocks and
            the prediction layers use 3.

    Shape:
        ``[T, B, C_in, H, W]`` (T = 1 for StereoSpike's histogram) -> :class:`DepthPrediction`: ``depth``
        ``[B, 1, H, W]`` and the four output potentials in ``scales``, coarse to fine.

    Example:
        >>> net = stereospike(in_channels=4, base_channels=8)
        >>> out = net(torch.rand(1, 2, 4, 260, 346) * 3)
        >>> len(out.scales), out.depth.shape
        (4, torch.Size([2, 1, 260, 346]))
    """

    def __init__(self, *, in_channels: int, channels: tuple[int, ...], kernel_size: int = 5):
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"StereoSpike has a bottom layer and four stages: 5 widths, got {channels}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.in_channels, self.channels, self.kernel_size = in_channels, tuple(channels), kernel_size
        c, k = channels, kernel_size
        self.bottom = ConvIF(in_channels, c[0], k)
        self.conv1 = ConvIF(c[0], c[1], k, stride=2)
        self.conv2 = ConvIF(c[1], c[2], k, stride=2)
        self.conv3 = ConvIF(c[2], c[3], k, stride=2)
        self.conv4 = ConvIF(c[3], c[4], k, stride=2)
        self.bottleneck = nn.Sequential(SEWBlock(c[4]), SEWBlock(c[4]))
        self.deconv4 = UpConv(c[4], c[3], k)
        self.deconv3 = UpConv(c[3], c[2], k)
        self.deconv2 = UpConv(c[2], c[1], k)
        self.deconv1 = UpConv(c[1], c[0], k)
        self.predict_depth4 = UpConv(c[3], 1, 3, bias=True, spiking=False)
        self.predict_depth3 = UpConv(c[2], 1, 3, bias=True, spiking=False)
        self.predict_depth2 = UpConv(c[1], 1, 3, bias=True, spiking=False)
        self.predict_depth1 = UpConv(c[0], 1, 3, bias=True, spiking=False)

    def forward(self, x: torch.Tensor) -> DepthPrediction:
        if x.ndim != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"expected [T, B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        steps = x.shape[:2]
        frame = x.flatten(0, 1)  # stateless neurons: the steps are independent samples
        size = tuple(frame.shape[-2:])
        out_bottom = self.bottom(frame)
        out_conv1 = self.conv1(out_bottom)
        out_conv2 = self.conv2(out_conv1)
        out_conv3 = self.conv3(out_conv2)
        s = self.bottleneck(self.conv4(out_conv3))
        potential, scales = 0.0, []
        for deconv, skip, predict in ((self.deconv4, out_conv3, self.predict_depth4),
                                      (self.deconv3, out_conv2, self.predict_depth3),
                                      (self.deconv2, out_conv1, self.predict_depth2),
                                      (self.deconv1, out_bottom, self.predict_depth1)):
            s = deconv(s, skip.shape[-2:]) + skip
            potential = potential + predict(s, size)  # the output neurons integrate, never fire
            scales.append(potential.unflatten(0, steps).mean(0))
        return DepthPrediction(scales[-1], tuple(scales))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, channels={self.channels}, kernel_size={self.kernel_size}"


_OFFICIAL_KEY = re.compile(r"^(.+)\.0(?:\.up\.1)?\.(weight|bias)$")


def from_official_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official ``StereoSpike.state_dict()`` (``train.py`` saves it as ``stereospike.pth``) under these names.

    Each official conv sits first in a ``Sequential`` (``bottom.0``, ``bottleneck.0.conv1.0``), inside
    ``NNConvUpsampling.up`` after its upsampling (``deconv4.0.up.1``); here it is that layer's ``conv``.

    Raises:
        ValueError: a key that is not an official StereoSpike weight.
    """
    converted = {}
    for key, value in state.items():
        match = _OFFICIAL_KEY.match(key)
        if match is None:
            raise ValueError(f"{key!r} is not a weight of the official StereoSpike")
        converted[f"{match[1]}.conv.{match[2]}"] = value
    return converted


def stereospike(*, in_channels: int = 4, base_channels: int = 32, kernel_size: int = 5,
                weights: str | None = None) -> StereoSpike:
    """StereoSpike with widths ``base_channels * (1, 2, 4, 8, 16)``; the defaults build the official network.

    Args:
        in_channels: 4 (binocular) or 2 (monocular).
        base_channels: width of the bottom layer (32 in the paper).
        kernel_size: kernel of the bottom, encoder and decoder convs (5 in the official code).
        weights: a checkpoint path whose ``"model"`` state dict is loaded.

    Returns:
        A :class:`StereoSpike`.
    """
    net = StereoSpike(in_channels=in_channels, channels=tuple(base_channels * 2 ** i for i in range(5)),
                      kernel_size=kernel_size)
    if weights is not None:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["model"])
    return net
