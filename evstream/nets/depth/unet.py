"""The depth paper's multi-step spiking U-Net (MSS-DepthNet / TCDS 2024, models.md §5.1).

The paper gives the ingredients, not the widths: a deep spiking U-Net with residual blocks and
refined (membrane) shortcuts, multi-dimension attention, and the cumulative event stack as a
T-step input. Here, on membrane tensors ``[T, B, C, H, W]`` (MS-ResNet style: every block starts
with a LIF, so additions are made on real-valued membrane inputs, never on spikes):

- stem: conv3x3 -> BN (the cumulative counts enter as currents), with stride ``input_stride`` (1: the
  paper's full resolution; 2 sees the whole frame at a quarter of the cost, the CPU recipe's choice);
- encoder stage i: LIF -> conv3x3 stride 2 -> BN, then ``blocks`` residual blocks;
- bottleneck: ``bottleneck_blocks`` residual blocks;
- decoder stage i: LIF -> nearest upsample to the skip's size -> conv3x3 -> BN, plus the encoder's
  membrane (refined shortcut), then a residual block;
- residual block: ``x + TCSA(BN(conv(LIF(BN(conv(LIF(x)))))))`` (MA-SNN's temporal-channel-spatial
  attention on the synaptic input, §3.1 of models.md);
- head: LIF -> conv3x3 to one channel, averaged over T (a non-leaky read-out), then a sigmoid, so the
  output is a normalised log depth in (0, 1); with ``input_stride`` > 1 it is resized (bilinear) back
  to the input's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evstream.nets.depth.blocks import DepthPrediction, depth_lif, resize_to
from evstream.snn.attention import TCSA
from evstream.snn.layers import SeqBatchNorm2d, SeqConv2d, Spiking

__all__ = ["SpikingDepthUNet", "spiking_depth_unet"]


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [SeqConv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), SeqBatchNorm2d(c_out)]


class ResidualBlock(nn.Module):
    """Membrane-shortcut residual block with optional TCSA on the second synaptic input.

    Shape: ``[T, B, C, H, W]`` -> same.
    """

    def __init__(self, channels: int, time_steps: int, attention: bool):
        super().__init__()
        layers = [Spiking(depth_lif()), *_conv_bn(channels, channels), Spiking(depth_lif()),
                  *_conv_bn(channels, channels)]
        if attention:
            temporal = time_steps >= 2
            layers.append(TCSA(time_steps, channels, t_ratio=min(time_steps, 5) if temporal else 1,
                               c_ratio=min(channels, 8), temporal=temporal))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SpikingDepthUNet(nn.Module):
    """Multi-step spiking U-Net for monocular depth from a cumulative event stack.

    Args:
        in_channels: input channels per step (2 polarities, 4 with the right camera).
        time_steps: T of the cumulative stack (the attention's temporal part needs it).
        channels: widths of the stem and each encoder stage, e.g. ``(32, 64, 128, 256)``.
        blocks: residual blocks per encoder stage.
        bottleneck_blocks: residual blocks at the lowest resolution.
        attention: TCSA inside the residual blocks.
        input_stride: stride of the stem conv; the depth map is resized back to the input's size.

    Shape:
        ``[T, B, C_in, H, W]`` (any H, W) -> :class:`DepthPrediction` with ``depth`` ``[B, 1, H, W]``.

    Example:
        >>> net = spiking_depth_unet(time_steps=5, base_channels=8, stages=3)
        >>> net(torch.rand(5, 1, 2, 260, 346)).depth.shape
        torch.Size([1, 1, 260, 346])
    """

    def __init__(self, *, in_channels: int, time_steps: int, channels: tuple[int, ...], blocks: int,
                 bottleneck_blocks: int, attention: bool, input_stride: int = 1):
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"channels needs the stem and at least one stage, got {channels}")
        if time_steps < 1 or in_channels < 1 or input_stride < 1 or blocks < 0 or bottleneck_blocks < 0:
            raise ValueError("time_steps, in_channels and input_stride must be >= 1, blocks and bottleneck_blocks >= 0")
        self.time_steps, self.in_channels, self.channels = time_steps, in_channels, tuple(channels)
        self.input_stride = input_stride
        self.stem = nn.Sequential(*_conv_bn(in_channels, channels[0], stride=input_stride))
        self.down = nn.ModuleList()
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            self.down.append(nn.Sequential(Spiking(depth_lif()), *_conv_bn(c_in, c_out, stride=2),
                                           *[ResidualBlock(c_out, time_steps, attention) for _ in range(blocks)]))
        self.bottleneck = nn.Sequential(*[ResidualBlock(channels[-1], time_steps, attention)
                                          for _ in range(bottleneck_blocks)])
        self.up_spike = nn.ModuleList(Spiking(depth_lif()) for _ in channels[1:])
        self.up_conv = nn.ModuleList(nn.Sequential(*_conv_bn(c_in, c_out))
                                     for c_in, c_out in zip(channels[:0:-1], channels[-2::-1]))
        self.up_block = nn.ModuleList(ResidualBlock(c, time_steps, attention) for c in channels[-2::-1])
        self.head_spike = Spiking(depth_lif())
        self.head = SeqConv2d(channels[0], 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> DepthPrediction:
        if x.ndim != 5 or x.shape[0] != self.time_steps or x.shape[2] != self.in_channels:
            raise ValueError(f"expected [T={self.time_steps}, B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        skips = [self.stem(x)]
        for stage in self.down:
            skips.append(stage(skips[-1]))
        y = self.bottleneck(skips.pop())
        for spike, conv, block in zip(self.up_spike, self.up_conv, self.up_block):
            skip = skips.pop()
            y = block(conv(resize_to(spike(y), skip.shape[-2:])) + skip)
        depth = torch.sigmoid(self.head(self.head_spike(y)).mean(0))
        if depth.shape[-2:] != x.shape[-2:]:
            depth = F.interpolate(depth, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return DepthPrediction(depth, (depth,))

    def extra_repr(self) -> str:
        stride = f", input_stride={self.input_stride}" if self.input_stride != 1 else ""
        return f"in_channels={self.in_channels}, time_steps={self.time_steps}, channels={self.channels}{stride}"


def spiking_depth_unet(*, in_channels: int = 2, time_steps: int = 5, base_channels: int = 32, stages: int = 4,
                       blocks: int = 1, bottleneck_blocks: int = 2, attention: bool = True, input_stride: int = 1,
                       weights: str | None = None) -> SpikingDepthUNet:
    """The depth paper's spiking U-Net; widths ``base_channels * 2^i`` for the stem and ``stages`` stages.

    Args:
        in_channels: 2 (left camera) or 4 (left + right).
        time_steps: T of the cumulative stack.
        base_channels: stem width.
        stages: encoder stages (each halves the resolution).
        blocks, bottleneck_blocks, attention, input_stride: see :class:`SpikingDepthUNet`.
        weights: a checkpoint path whose ``"model"`` state dict is loaded.

    Returns:
        A :class:`SpikingDepthUNet`.
    """
    net = SpikingDepthUNet(in_channels=in_channels, time_steps=time_steps,
                           channels=tuple(base_channels * 2 ** i for i in range(stages + 1)), blocks=blocks,
                           bottleneck_blocks=bottleneck_blocks, attention=attention, input_stride=input_stride)
    if weights is not None:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["model"])
    return net
