"""SpikeYOLO (Luo et al., ECCV 2024): YOLOv8 simplified with meta SNN blocks (models.md §1.3).

The layer table of BICLab/SpikeYOLO ``snn_yolov8.yaml`` with its width/depth scaling: channel
arguments are multiplied by the width factor and rounded up to a multiple of 8; repeats n > 1
become ``max(round(n depth), 1)``; MS_ConvBlock / MS_AllConvBlock keep their input channels.

====== ================ ======================= ===========================================
scale  [depth, width]   params (80 classes)     use
====== ================ ======================= ===========================================
n      [0.33, 0.375]    13.2 M                  paper
s      [0.33, 0.50]     23.1 M                  paper; the Gen1 model
m      [0.50, 0.625]    48 M                    paper (P5 block r = 2)
l      [0.50, 0.75]     69 M                    paper (P5 block r = 2)
rt     [0.33, 0.125]    2.0 M                   evstream's real-time CPU scale (not in the paper)
====== ================ ======================= ===========================================

Counts are of the trainable (unfused) model. Folding for inference (:meth:`SpikeYOLO.fuse`) turns each
RepConv / SepRepConv chain into one dense 3x3 conv, which has more weights (rt: 4.1 M fused at 2 classes)
but one conv per spike tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from evstream.nets.registry import register
from evstream.nets.spike_yolo.blocks import (
    MS_AllConvBlock,
    MS_ConvBlock,
    MS_DownSampling,
    MS_StandardConv,
    SpikeSPPF,
    fuse_model,
    set_binary,
)
from evstream.nets.spike_yolo.head import SpikeDetect, decode
from evstream.snn.ilif import ILIFParams
from evstream.snn.layers import SeqUpsample

__all__ = ["BN_EPS", "BN_MOMENTUM", "LEGACY_BN_EPS", "SCALES", "VARIANTS", "Scale", "SpikeYOLO", "spike_yolo"]


@dataclass(frozen=True)
class Scale:
    """Compound scaling: depth and width factors, channel cap, and the P5 block's mlp ratio."""

    depth: float
    width: float
    max_channels: int = 1024
    p5_ratio: float = 1.0

    def channels(self, c: int) -> int:
        return int(math.ceil(min(c, self.max_channels) * self.width / 8) * 8)

    def repeats(self, n: int) -> int:
        return max(round(n * self.depth), 1) if n > 1 else n


SCALES = {
    "n": Scale(0.33, 0.375),
    "s": Scale(0.33, 0.50),
    "m": Scale(0.50, 0.625, p5_ratio=2.0),
    "l": Scale(0.50, 0.75, p5_ratio=2.0),
    "rt": Scale(0.33, 0.125),
}
"""The paper's scales n/s/m/l and evstream's real-time CPU scale ``rt``."""


class SpikeYOLO(nn.Module):
    """SpikeYOLO detector: backbone, neck and :class:`SpikeDetect` head.

    Args:
        scale: a :class:`Scale`.
        num_classes: nc.
        in_channels: input channels (3: the polarity image repeated, as the official data).
        T: time steps when a static ``[B, C, H, W]`` image is given (repeated T times).
        neuron: I-LIF parameters (D = ``neuron.max_spike``).

    Shape:
        ``[T, B, C, H, W]`` (or ``[B, C, H, W]``), H and W multiples of 32 -> list of three raw maps
        ``[B, 4 * 16 + nc, H / s, W / s]`` for s = 8, 16, 32. :meth:`predict` decodes them.
    """

    strides = (8, 16, 32)

    def __init__(self, scale: Scale, num_classes: int, *, in_channels: int = 3, T: int = 1,
                 neuron: ILIFParams):
        super().__init__()
        if num_classes < 1 or T < 1:
            raise ValueError(f"num_classes and T must be >= 1, got {num_classes}, {T}")
        self.num_classes, self.T, self.scale_config = num_classes, T, scale
        c, n, nu = scale.channels, scale.repeats, neuron
        c1, c3, c4, c5 = c(128), c(256), c(512), c(1024)

        def blocks(cls, dim, count, ratio):
            return nn.Sequential(*[cls(dim, ratio, 7, neuron=nu) for _ in range(n(count))])

        self.stem = MS_DownSampling(in_channels, c1, 7, 4, 2, first=True, neuron=nu)    # 1
        self.stage1 = blocks(MS_AllConvBlock, c1, 3, 4)                                 # 2
        self.down2 = MS_DownSampling(c1, c3, 3, 2, 1, first=False, neuron=nu)           # 3
        self.stage2 = blocks(MS_AllConvBlock, c3, 6, 4)                                 # 4 (P3)
        self.down3 = MS_DownSampling(c3, c4, 3, 2, 1, first=False, neuron=nu)           # 5
        self.stage3 = blocks(MS_ConvBlock, c4, 9, 3)                                    # 6 (P4)
        self.down4 = MS_DownSampling(c4, c5, 3, 2, 1, first=False, neuron=nu)           # 7
        self.stage4 = blocks(MS_ConvBlock, c5, 3, 2)                                    # 8
        self.sppf = SpikeSPPF(c5, c5, 5, neuron=nu)                                     # 9
        self.lat5 = MS_StandardConv(c5, c4, 1, neuron=nu)                               # 10
        self.up = SeqUpsample(2.0)                                                      # 11, 15
        self.top4 = MS_ConvBlock(c4, 3, 7, neuron=nu)                                   # 12 (+13 concat)
        self.lat4 = MS_StandardConv(2 * c4, c3, 1, neuron=nu)                           # 14
        self.top3 = MS_AllConvBlock(c3, 4, 7, neuron=nu)                                # 16 (+17 concat)
        self.reduce3 = MS_StandardConv(2 * c3, c3, 1, neuron=nu)                        # 18
        self.out3 = MS_AllConvBlock(c3, 4, 7, neuron=nu)                                # 19 (P3 out)
        self.down_p3 = MS_StandardConv(c3, c3, 3, 2, neuron=nu)                         # 20 (+21 concat)
        self.out4 = MS_ConvBlock(2 * c3, 3, 7, neuron=nu)                               # 22 (P4 out)
        self.down_p4 = MS_StandardConv(2 * c3, c4, 3, 2, neuron=nu)                     # 23 (+24 concat)
        self.out5 = MS_ConvBlock(2 * c4, scale.p5_ratio, 7, neuron=nu)                  # 25 (P5 out)
        self.head = SpikeDetect(num_classes, (c3, 2 * c3, 2 * c4), self.strides, neuron=nu)  # 26

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim == 4:
            x = x.unsqueeze(0).expand(self.T, *x.shape)
        if x.ndim != 5 or x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"expected [T, B, C, H, W] with H, W multiples of 32, got {tuple(x.shape)}")
        x = self.stage1(self.stem(x))
        p3 = self.stage2(self.down2(x))
        p4 = self.stage3(self.down3(p3))
        x = self.sppf(self.stage4(self.down4(p4)))
        l5 = self.lat5(x)
        x = torch.cat((self.top4(self.up(l5)), p4), 2)
        l4 = self.lat4(x)
        x = torch.cat((self.top3(self.up(l4)), p3), 2)
        o3 = self.out3(self.reduce3(x))
        o4 = self.out4(torch.cat((self.down_p3(o3), l4), 2))
        o5 = self.out5(torch.cat((self.down_p4(o4), l5), 2))
        return self.head([o3, o4, o5])

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded predictions: ``(boxes [B, A, 4] xyxy input pixels, scores [B, A, nc])``."""
        return decode(self(x), self.strides, self.head.reg_max)

    def fuse(self) -> SpikeYOLO:
        """Fold BN and the re-parameterised convs into single convs (inference; in place)."""
        return fuse_model(self)

    def set_binary(self, binary: bool = True) -> SpikeYOLO:
        """Binary virtual-timestep inference (T x D binary steps; needs :meth:`fuse`); same outputs."""
        return set_binary(self, binary)


BN_EPS, BN_MOMENTUM = 1e-3, 0.03
"""BatchNorm settings of the official models (Ultralytics' ``initialize_weights`` sets them on every BatchNorm2d)."""
LEGACY_BN_EPS = 1e-5
"""The BatchNorm eps of SpikeYOLO checkpoints written before ``bn_eps`` existed (torch's default)."""

VARIANTS = {"gen1": ILIFParams.gen1, "coco": ILIFParams.coco}
"""The official I-LIF of each release: Gen1 (spikingjelly LIF, tau 2: V + (X - V) / 2) and COCO
(``mem_update``: U = 0.25 (U - S) + X), each with maximum spike D."""


@register("spike_yolo")
def spike_yolo(*, scale: str = "s", num_classes: int = 2, in_channels: int = 3, T: int = 1, D: int = 4,
               variant: str | None = None, neuron: ILIFParams | None = None, bn_eps: float = BN_EPS,
               bn_momentum: float = BN_MOMENTUM) -> SpikeYOLO:
    """Build SpikeYOLO at a scale of :data:`SCALES`.

    Args:
        scale: ``"n" | "s" | "m" | "l"`` (the paper) or ``"rt"`` (real-time CPU).
        num_classes: 80 for COCO, 2 for Gen1.
        in_channels: input channels. T: repeats of a static image input.
        D: I-LIF maximum integer spike (4).
        variant: ``"gen1"`` (the Gen1 release's I-LIF, tau 2) or ``"coco"`` (the COCO release's,
            decay 0.25): picks the neuron (:data:`VARIANTS`) unless ``neuron`` is given. None:
            ``"coco"`` for 80 classes, else ``"gen1"``.
        neuron: explicit I-LIF parameters (their max spike must be D).
        bn_eps, bn_momentum: of every BatchNorm; the official models' are Ultralytics'
            ``initialize_weights`` values (1e-3, 0.03). Models trained by evstream before this
            option used torch's defaults (1e-5, 0.1); their checkpoints say so (:data:`LEGACY_BN_EPS`).

    Example:
        >>> model = spike_yolo(scale="s", num_classes=2)  # the 23.1 M Gen1 model  # doctest: +SKIP
        >>> coco = spike_yolo(scale="s", num_classes=80, variant="coco")  # doctest: +SKIP
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    if variant is None:
        variant = "coco" if num_classes == 80 else "gen1"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    if neuron is None:
        neuron = VARIANTS[variant](D)
    elif int(neuron.max_spike) != D:
        raise ValueError(f"neuron.max_spike {neuron.max_spike} differs from D = {D}")
    model = SpikeYOLO(SCALES[scale], num_classes, in_channels=in_channels, T=T, neuron=neuron)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps, module.momentum = float(bn_eps), float(bn_momentum)
    return model
