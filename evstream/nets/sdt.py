"""Spike-driven Transformer (Yao et al., NeurIPS 2023): spiking patch splitting, SDSA blocks, a spiking head.

Layer table (official ``model/spikeformer.py``, ``module/sps.py``, ``module/ms_conv.py``), L-D = blocks-dim:

- SPS: four conv 3x3 (no bias) + BN stages C_in -> D/8 -> D/4 -> D/2 -> D; stages 0-2 end in a LIF
  then an optional max-pool (3, stride 2, padding 1); stage 3 max-pools its BN output (membrane) before
  the LIF; then the relative position embedding conv 3x3 D -> D (no bias) + BN, added to the stage-3
  membrane (membrane shortcut). ``pooling`` ("0111", "0011", "1111") says which stages pool.
- L blocks: :class:`evstream.snn.SDSA` (1x1 conv Q, K, V, proj; membrane shortcut) then the MLP
  LIF -> conv 1x1 D -> 4D (bias) + BN -> LIF -> conv 1x1 4D -> D (bias) + BN, added to the block's membrane.
- Head: mean over tokens, LIF, linear D -> classes; logits = mean over T of the per-step logits.

Every LIF: tau 2, V_th 1, hard reset to 0, detach_reset, sigmoid surrogate (spikingjelly's
``MultiStepLIFNode``); the SDSA attention LIF has V_th 0.5. The official SDSA also builds a
``talking_heads`` conv1d (h x h weights) that its forward never calls: it is left out here, so a net
has ``L * h * h`` parameters fewer than the official code reports (2-256: 128 of 2,567,051).

Energy (paper §4, Table 1): the first conv sees event counts (E_MAC FL); every other conv / linear
sees spikes (E_AC T R FL); SDSA's K * V and Q * A are masks and its token sum adds the non-zeros of
K * V (E_AC T R N D) -- :class:`evstream.snn.SpikeProfiler` counts exactly these.

Neuromorphic configurations: DVS128 Gesture 2-256, 128 x 128, pooling "0111", T 16 (no Erode);
CIFAR10-DVS 2-256, 64 x 64, pooling "0011", T 10 (TET) / 16, with the Erode max-pools (``dvs=True``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from evstream.nets.init import trunc_normal_conv_init
from evstream.nets.registry import register
from evstream.snn import LIF, SDSA, SeqBatchNorm2d, SeqConv2d, SeqLinear, SeqMaxPool2d

__all__ = ["SDTOutput", "SpikeDrivenTransformer", "SpikeMLP", "SpikingPatchSplitting", "sdt_cifar10dvs",
           "sdt_gesture", "sdt_nmnist"]


def _lif() -> LIF:
    return LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True, surrogate="sigmoid")


class SpikingPatchSplitting(nn.Module):
    """SPS: conv-BN-LIF stages C_in -> D/8 -> D/4 -> D/2 -> D with optional max-pools, and the
    relative position embedding added on the membrane.

    Args:
        in_channels: C_in (2 polarities).
        dim: D (a multiple of 8).
        pooling: four "0"/"1" flags, one per stage (a 3x3 stride-2 max-pool after it).

    Shape: ``[T, B, C_in, H, W]`` -> membrane ``[T, B, D, H', W']`` (each pool: side -> ceil(side / 2)).
    """

    def __init__(self, in_channels: int, dim: int, pooling: str = "0111"):
        super().__init__()
        if dim % 8:
            raise ValueError(f"dim must be a multiple of 8, got {dim}")
        if len(pooling) != 4 or set(pooling) - {"0", "1"}:
            raise ValueError(f"pooling must be four 0/1 flags such as '0111', got {pooling!r}")
        widths = [in_channels, dim // 8, dim // 4, dim // 2, dim]
        self.pooling = pooling
        self.convs = nn.ModuleList(SeqConv2d(a, b, 3, padding=1, bias=False) for a, b in zip(widths[:-1], widths[1:]))
        self.bns = nn.ModuleList(SeqBatchNorm2d(b) for b in widths[1:])
        self.lifs = nn.ModuleList(_lif() for _ in range(4))
        self.pool = SeqMaxPool2d(3, stride=2, padding=1)
        self.rpe_conv, self.rpe_bn = SeqConv2d(dim, dim, 3, padding=1, bias=False), SeqBatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(3):
            x = self.lifs[i](self.bns[i](self.convs[i](x)))[0]
            if self.pooling[i] == "1":
                x = self.pool(x)
        feat = self.bns[3](self.convs[3](x))
        if self.pooling[3] == "1":
            feat = self.pool(feat)
        return feat + self.rpe_bn(self.rpe_conv(self.lifs[3](feat)[0]))


class SpikeMLP(nn.Module):
    """The block's MLP with membrane shortcut: X + BN(conv(LIF(BN(conv(LIF(X)))))), 1x1 convs D -> hidden -> D.

    Shape: ``[T, B, D, H, W]`` -> same.
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1_lif, self.fc1_conv, self.fc1_bn = _lif(), SeqConv2d(dim, hidden, 1), SeqBatchNorm2d(hidden)
        self.fc2_lif, self.fc2_conv, self.fc2_bn = _lif(), SeqConv2d(hidden, dim, 1), SeqBatchNorm2d(dim)
        self.hidden_shortcut = hidden == dim  # the official adds the input again when hidden == D

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1_bn(self.fc1_conv(self.fc1_lif(x)[0]))
        if self.hidden_shortcut:
            h = h + x
            x = h
        return x + self.fc2_bn(self.fc2_conv(self.fc2_lif(h)[0]))


class SDTOutput(NamedTuple):
    """Spike-driven Transformer predictions.

    Args:
        logits: ``[B, C]``, the head averaged over T (cross-entropy, evaluation).
        logits_t: ``[T, B, C]`` per step (TET).
    """

    logits: torch.Tensor
    logits_t: torch.Tensor


class SpikeDrivenTransformer(nn.Module):
    """SPS, ``depth`` blocks of SDSA + MLP (membrane shortcuts), a LIF + linear head.

    Args:
        num_classes: classes.
        in_channels: input channels (2 polarities).
        dim: embedding D.
        depth: blocks L.
        num_heads: SDSA heads h.
        mlp_ratio: MLP hidden width / D.
        pooling: SPS pooling flags.
        dvs: SDSA's Erode max-pools (the official CIFAR10-DVS model).
        time_steps: T (checked on input).

    Shape: ``[T, B, C_in, H, W]`` -> :class:`SDTOutput`.
    """

    def __init__(self, num_classes: int, *, in_channels: int = 2, dim: int = 256, depth: int = 2, num_heads: int = 8,
                 mlp_ratio: float = 4.0, pooling: str = "0111", dvs: bool = False, time_steps: int = 16):
        super().__init__()
        self.time_steps = int(time_steps)
        self.sps = SpikingPatchSplitting(in_channels, dim, pooling)
        self.blocks = nn.ModuleList(nn.Sequential(SDSA(dim, num_heads, dvs=dvs), SpikeMLP(dim, int(dim * mlp_ratio)))
                                    for _ in range(depth))
        self.head_lif, self.head = _lif(), SeqLinear(dim, num_classes)
        self.apply(trunc_normal_conv_init)

    def forward(self, x: torch.Tensor) -> SDTOutput:
        if x.ndim != 5 or x.shape[0] != self.time_steps:
            raise ValueError(f"expected frames [T={self.time_steps}, B, C, H, W], got shape {tuple(x.shape)}")
        x = self.sps(x)
        for block in self.blocks:
            x = block(x)
        logits_t = self.head(self.head_lif(x.flatten(3).mean(3))[0])
        return SDTOutput(logits_t.mean(0), logits_t)

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}"


@register("sdt_gesture")
def sdt_gesture(*, num_classes: int = 11, in_channels: int = 2, input_size: int = 128, time_steps: int = 16,
                dim: int = 256, depth: int = 2, num_heads: int = 8, mlp_ratio: float = 4.0,
                pooling: str = "0111") -> SpikeDrivenTransformer:
    """The official DVS128 Gesture model, 2-256, T 16 (``conf/gesture/2_256_200E_t16.yml``): 2,566,923 parameters.

    Args:
        num_classes, in_channels, time_steps: classes, input channels, T.
        input_size: side of the square frames (128; the gesture task's ds 4 gives 32 -> 4 x 4 tokens).
        dim, depth, num_heads, mlp_ratio, pooling: the L-D configuration (2-256, 8 heads, ratio 4, "0111").

    Shape: ``[T, B, 2, S, S]`` -> :class:`SDTOutput`.

    Example:
        >>> net = sdt_gesture(time_steps=2)
        >>> net(torch.rand(2, 1, 2, 32, 32)).logits.shape
        torch.Size([1, 11])
    """
    del input_size  # any side works: the tokens are whatever the pools leave
    return SpikeDrivenTransformer(num_classes, in_channels=in_channels, dim=dim, depth=depth, num_heads=num_heads,
                                  mlp_ratio=mlp_ratio, pooling=pooling, time_steps=time_steps)


@register("sdt_cifar10dvs")
def sdt_cifar10dvs(*, num_classes: int = 10, in_channels: int = 2, input_size: int = 64, time_steps: int = 10,
                   dim: int = 256, depth: int = 2, num_heads: int = 8, mlp_ratio: float = 4.0,
                   pooling: str = "0011") -> SpikeDrivenTransformer:
    """The official CIFAR10-DVS model, 2-256 with the Erode pools (``conf/cifar10-dvs/2_256_200E_t10_TET.yml``,
    64 x 64 frames, T 10; the paper also reports T 16). Args as :func:`sdt_gesture`."""
    del input_size
    return SpikeDrivenTransformer(num_classes, in_channels=in_channels, dim=dim, depth=depth, num_heads=num_heads,
                                  mlp_ratio=mlp_ratio, pooling=pooling, dvs=True, time_steps=time_steps)


@register("sdt_nmnist")
def sdt_nmnist(*, num_classes: int = 10, in_channels: int = 2, input_size: int = 34, time_steps: int = 3,
               dim: int = 128, depth: int = 2, num_heads: int = 8, mlp_ratio: float = 4.0,
               pooling: str = "1110") -> SpikeDrivenTransformer:
    """A small Spike-driven Transformer for N-MNIST's 34 x 34 frames: 2-128, pooling "1110" (34 -> 17 -> 9 -> 5:
    5 x 5 tokens), T 3.

    Args as :func:`sdt_gesture`.
    """
    del input_size
    return SpikeDrivenTransformer(num_classes, in_channels=in_channels, dim=dim, depth=depth, num_heads=num_heads,
                                  mlp_ratio=mlp_ratio, pooling=pooling, time_steps=time_steps)
