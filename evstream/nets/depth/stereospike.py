"""StereoSpike (Rançon et al., IEEE Access 2022; models.md §5.3): a stateless spiking U-Net for depth.

- Neurons: stateless IF (the membrane restarts from V_reset every step, so one pass per sample and no
  BPTT), arctan surrogate. No bias and no batch norm anywhere.
- Encoder: a stride-1 bottom conv (32 channels) and four stride-2 convs doubling the channels
  (64 -> 128 -> 256 -> 512 for ``base_channels=32``), each followed by IF.
- Bottleneck: two SEW residual blocks with ADD connect: ``IF(conv(IF(conv(s)))) + s``.
- Decoder: nearest upsample to the skip's size -> conv -> IF, plus the encoder's spikes.
- Four prediction layers (nearest upsample to full resolution -> conv to one channel) feed a pool of
  non-leaky output neurons with infinite threshold: their potential starts at a learnable shared
  V_reset and integrates each scale's prediction in turn, coarse to fine; the final potential is the
  normalised log depth. With T > 1 steps (stateless) the per-step potentials are averaged.
"""

from __future__ import annotations

import torch
from torch import nn

from evstream.nets.depth.blocks import IF_PARAMS, DepthPrediction, resize_to
from evstream.snn.layers import SeqConv2d
from evstream.snn.lif import lif_multi_step

__all__ = ["StereoSpike", "stereospike"]


class IF(nn.Module):
    """Stateless IF on ``[T, B, ...]``: ``S = H(X - 1)`` with the arctan surrogate (:data:`IF_PARAMS`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lif_multi_step(x.flatten(0, 1)[None], None, IF_PARAMS)[0][0].unflatten(0, x.shape[:2])


def _conv_if(c_in: int, c_out: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(SeqConv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
                         IF())


class SEWBlock(nn.Module):
    """SEW residual block with ADD connect: ``IF(conv(IF(conv(s)))) + s``. Shape: ``[T, B, C, H, W]`` -> same."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.body = nn.Sequential(_conv_if(channels, channels, kernel_size), _conv_if(channels, channels, kernel_size))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.body(s) + s


class StereoSpike(nn.Module):
    """StereoSpike depth network.

    Args:
        in_channels: 4 (left + right histograms, binocular) or 2 (monocular).
        channels: widths of the bottom layer and the four encoder stages (32, 64, 128, 256, 512).
        kernel_size: conv kernel size of every layer.

    Shape:
        ``[T, B, C_in, H, W]`` (T = 1 for StereoSpike's histogram) -> :class:`DepthPrediction`: ``depth``
        ``[B, 1, H, W]`` and the four cumulative output potentials in ``scales``.

    Example:
        >>> net = stereospike(in_channels=4, base_channels=8)
        >>> out = net(torch.rand(1, 2, 4, 260, 346) * 3)
        >>> len(out.scales), out.depth.shape
        (4, torch.Size([2, 1, 260, 346]))
    """

    def __init__(self, *, in_channels: int, channels: tuple[int, ...], kernel_size: int):
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"StereoSpike has a bottom layer and four stages: 5 widths, got {channels}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.in_channels, self.channels = in_channels, tuple(channels)
        self.bottom = _conv_if(in_channels, channels[0], kernel_size)
        self.encoder = nn.ModuleList(_conv_if(c_in, c_out, kernel_size, stride=2)
                                     for c_in, c_out in zip(channels[:-1], channels[1:]))
        self.bottleneck = nn.Sequential(SEWBlock(channels[-1], kernel_size), SEWBlock(channels[-1], kernel_size))
        self.decoder = nn.ModuleList(_conv_if(c_in, c_out, kernel_size)
                                     for c_in, c_out in zip(channels[:0:-1], channels[-2::-1]))
        self.predict = nn.ModuleList(SeqConv2d(c, 1, kernel_size, padding=kernel_size // 2, bias=False)
                                     for c in channels[-2::-1])
        self.v_reset = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> DepthPrediction:
        if x.ndim != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"expected [T, B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        size = x.shape[-2:]
        skips = [self.bottom(x)]
        for stage in self.encoder:
            skips.append(stage(skips[-1]))
        s = self.bottleneck(skips.pop())
        v = self.v_reset
        scales = []
        for up, predict in zip(self.decoder, self.predict):
            skip = skips.pop()
            s = up(resize_to(s, skip.shape[-2:])) + skip
            v = v + predict(resize_to(s, size))
            scales.append(v.mean(0))
        return DepthPrediction(scales[-1], tuple(scales))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, channels={self.channels}"


def stereospike(*, in_channels: int = 4, base_channels: int = 32, kernel_size: int = 3,
                weights: str | None = None) -> StereoSpike:
    """StereoSpike with widths ``base_channels * (1, 2, 4, 8, 16)``.

    Args:
        in_channels: 4 (binocular) or 2 (monocular).
        base_channels: width of the bottom layer (32 in the paper).
        kernel_size: conv kernel size.
        weights: a checkpoint path whose ``"model"`` state dict is loaded.

    Returns:
        A :class:`StereoSpike`.
    """
    net = StereoSpike(in_channels=in_channels, channels=tuple(base_channels * 2 ** i for i in range(5)),
                      kernel_size=kernel_size)
    if weights is not None:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["model"])
    return net
