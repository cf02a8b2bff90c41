"""SpikeDetect: YOLOv8's decoupled anchor-free head with spiking convs and DFL (reg_max 16).

Per level: a box branch [SpikeConv 3x3, SpikeConv 3x3, SpikeConvWithoutBN 1x1 -> 4 reg_max] and a
class branch [SpikeConv 3x3, SpikeConv 3x3, SpikeConvWithoutBN 1x1 -> nc], concatenated and
averaged over T. :func:`decode` turns the raw maps into boxes: softmax over the reg_max bins,
expected distance (left, top, right, bottom) in grid cells, times the level's stride.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from evstream.nets.spike_yolo.blocks import spike_conv
from evstream.snn.ilif import ILIFParams

__all__ = ["SpikeDetect", "decode", "dfl_expectation", "dist_to_xyxy", "make_anchors"]


class SpikeDetect(nn.Module):
    """YOLOv8-style spiking detection head.

    Args:
        num_classes: nc.
        channels: input channels of each level (P3, P4, P5).
        strides: pixel stride of each level.
        neuron: I-LIF parameters.
        reg_max: DFL bins per side (16).

    Shape: list of ``[T, B, C_i, H_i, W_i]`` -> list of ``[B, 4 reg_max + nc, H_i, W_i]`` (raw maps;
    box bins first, class logits last).
    """

    def __init__(self, num_classes: int, channels: tuple[int, ...], strides: tuple[int, ...], *,
                 neuron: ILIFParams, reg_max: int = 16):
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError(f"one stride per level: got {len(channels)} levels and {len(strides)} strides")
        self.num_classes, self.reg_max, self.strides = num_classes, reg_max, tuple(strides)
        c2 = max(16, channels[0] // 4, 4 * reg_max)
        c3 = max(channels[0], min(num_classes, 100))
        self.box = nn.ModuleList(_branch(c, c2, 4 * reg_max, neuron) for c in channels)
        self.cls = nn.ModuleList(_branch(c, c3, num_classes, neuron) for c in channels)
        self.reset_bias()

    def reset_bias(self, image_size: int = 640) -> None:
        """YOLOv8's bias init: box 1.0, class log(5 / nc / (image_size / stride)^2)."""
        with torch.no_grad():
            for box, cls, stride in zip(self.box, self.cls, self.strides, strict=True):
                box[-1].chain[0].bias.fill_(1.0)
                cls[-1].chain[0].bias.fill_(math.log(5 / self.num_classes / (image_size / stride) ** 2))

    def forward(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.cat((box(x), cls(x)), 2).mean(0) for x, box, cls in zip(levels, self.box, self.cls, strict=True)]

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reg_max={self.reg_max}, strides={self.strides}"


def _branch(c_in: int, c_mid: int, c_out: int, neuron: ILIFParams) -> nn.Sequential:
    """SpikeConv 3x3 c_in->c_mid, SpikeConv 3x3 c_mid->c_mid, SpikeConvWithoutBN 1x1 c_mid->c_out."""
    return nn.Sequential(spike_conv(c_in, c_mid, 3, neuron=neuron), spike_conv(c_mid, c_mid, 3, neuron=neuron),
                         spike_conv(c_mid, c_out, 1, neuron=neuron, bn=False, bias=True))


def make_anchors(shapes: list[tuple[int, int]], strides: tuple[int, ...], *, device=None,
                 dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres (grid cells + 0.5, in grid units) and their strides.

    Shape: ``([A, 2] xy, [A, 1])`` with A = sum of H_i W_i, levels in order, row-major.
    """
    points, stride_rows = [], []
    for (h, w), stride in zip(shapes, strides, strict=True):
        ys = torch.arange(h, device=device, dtype=dtype) + 0.5
        xs = torch.arange(w, device=device, dtype=dtype) + 0.5
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((gx, gy), -1).view(-1, 2))
        stride_rows.append(torch.full((h * w, 1), float(stride), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(stride_rows)


def dfl_expectation(bins: torch.Tensor, reg_max: int = 16) -> torch.Tensor:
    """Expected distance of each side: softmax over ``reg_max`` bins, weights 0..reg_max-1.

    Shape: ``[..., 4 reg_max]`` -> ``[..., 4]`` (left, top, right, bottom, grid units).
    """
    prob = bins.unflatten(-1, (4, reg_max)).softmax(-1)
    return prob @ torch.arange(reg_max, device=bins.device, dtype=prob.dtype)


def dist_to_xyxy(distances: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(left, top, right, bottom) distances from anchor points -> xyxy boxes. Shape ``[..., 4]``."""
    lt, rb = distances.chunk(2, -1)
    return torch.cat((points - lt, points + rb), -1)


def decode(maps: list[torch.Tensor], strides: tuple[int, ...], reg_max: int = 16
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes and class probabilities from the head's raw maps.

    Returns:
        ``(boxes [B, A, 4] xyxy in input pixels, scores [B, A, nc] sigmoid probabilities)``.
    """
    flat = torch.cat([m.flatten(2) for m in maps], 2).transpose(1, 2)  # [B, A, no]
    points, stride = make_anchors([m.shape[2:] for m in maps], strides, device=flat.device, dtype=flat.dtype)
    boxes = dist_to_xyxy(dfl_expectation(flat[..., :4 * reg_max], reg_max), points) * stride
    return boxes, flat[..., 4 * reg_max:].sigmoid()
