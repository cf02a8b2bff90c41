"""T-RevSNN (Hu, Yao et al., ICML 2024): temporal-reversible columns with O(1)-in-T training memory.

Each time step t is a column (a sub-network of its own, official ``models/spike_rev_reuse.py``). Inside
a column no neuron carries state across time: every spike is ``Q(x) = round(clip(x, 0, 1))`` with the
straight-through gradient (temporal dynamics turned off). Time steps meet only at the four level
outputs ("temporal turn-on" neurons), through the reversible update

    c_l^(t) = F_l(c_{l-1}^(t), c_{l+1}^(t-1)) + alpha_l * c_l^(t-1)       (c_{-1}^(t) = stem_t(x_t))

with alpha_l a learnable per-channel scale (initial 0.5, |alpha| clamped >= 1e-3); the states c are kept
in float64 (:data:`STATE_DTYPE`, what makes the reverse step exact enough over many columns). F_l is the
fusion ``down(Q(c_{l-1})) + up(Q(c_{l+1}))`` (conv-BN, up: nearest upsampling) followed by two
spiking ConvNeXt blocks ``x + [gamma *] dw(ScaledStd-pw(Q(ScaledStd-pw(dw(Q(x))))))`` whose second pw/dw
pair is shared by every column of the level (the official "reuse"). Column 0 has no up path and
starts from c = 0. The classifier reads ``c_3^(T) / T`` once: Q, spatial mean, two ScaledStd 1x1 convs
(the official leaky ReLU between them has slope 1, the identity).

Training memory: :class:`TemporalReversible` runs all T columns under ``no_grad`` and keeps only the
input and the last states c^(T). Its backward walks the columns from T down to 1, rebuilding
c^(t-1) = (c^(t) - F_l(...)) / alpha_l level by level (3, 2, 1, 0: each F_l needs c_{l+1}^(t-1),
rebuilt just before; c^(0), a function of x_0 alone, is recomputed instead, so the exact zeros of the
empty pixels -- on the edge of Q's gradient window -- stay exact) and back-propagating through each F_l once -- the official ``ReverseFunction``
extended over all columns, so the activations held at once are one column's, whatever T. BN layers
keep their running statistics during the recomputation (momentum 0), so they update once per step
as in stored-activation training. ``reversible=False`` gives plain BPTT of the same net.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from evstream.nets.init import trunc_normal_conv_init
from evstream.nets.registry import register
from evstream.snn import quantize

__all__ = ["Column", "ScaledStdConv2d", "SpikeConvNeXtBlock", "TRevSNN", "TRevSNNOutput", "TemporalReversible", "spike",
           "STATE_DTYPE", "trevsnn_cifar10dvs", "trevsnn_gesture"]

ALPHA_INIT = 0.5
ALPHA_MIN = 1e-3
STATE_DTYPE = torch.float64
"""The dtype of the level states c: the reverse step divides by alpha once per column, so a rounding
error of c^(T) reaches c^(1) multiplied by prod 1 / |alpha| (2^15 at T = 16, alpha = 0.5): in float32 that
flips spikes and the gradients drift (measured: 100 % relative error at T = 16); in float64 the rebuilt
states stay within ~1e-11 and the levels, which read c only through spikes, recompute exactly."""


def spike(x: torch.Tensor) -> torch.Tensor:
    """T-RevSNN's stateless spike ``round(clip(x, 0, 1))``, gradient 1 inside [0, 1] (the official ``Quant``)."""
    return quantize(x, 1.0)


class ScaledStdConv2d(nn.Conv2d):
    """Conv2d with scaled weight standardisation (timm's ``ScaledStdConv2d``, NF-Nets): per output channel
    the weight is standardised (mean 0, variance 1 over fan-in, eps 1e-6) and scaled by gain / sqrt(fan-in).

    Args: as ``nn.Conv2d`` (bias on by default; padding None = (k - 1) // 2); ``gain_init`` the initial gain.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, groups: int = 1, bias: bool = True, gain_init: float = 1.0,
                 eps: float = 1e-6):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=(kernel_size - 1) // 2 if padding is None else padding, groups=groups, bias=bias)
        self.gain = nn.Parameter(torch.full((out_channels, 1, 1, 1), float(gain_init)))
        self.scale = self.weight[0].numel() ** -0.5
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              weight=(self.gain * self.scale).view(-1), training=True, momentum=0.0,
                              eps=self.eps).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _depthwise(channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)


class SpikeConvNeXtBlock(nn.Module):
    """``x + [gamma *] dw2(pw2(Q(pw1(dw1(Q(x))))))``: dw = depthwise k x k conv (bias), pw = 1x1 ScaledStd
    conv C -> 4C -> C.

    Args:
        dim: channels C.
        kernel_size: k of the depthwise convs.
        pw2, dw2: the second pw / dw pair, shared with other columns (the official "reuse" block); None
            builds this block's own pair and its layer scale gamma (initial 1).

    Shape: ``[B, C, H, W]`` -> same.
    """

    def __init__(self, dim: int, kernel_size: int, pw2: nn.Module | None = None, dw2: nn.Module | None = None):
        super().__init__()
        self.dw1, self.pw1 = _depthwise(dim, kernel_size), ScaledStdConv2d(dim, 4 * dim, 1)
        own = pw2 is None
        self.pw2 = ScaledStdConv2d(4 * dim, dim, 1) if own else pw2
        self.dw2 = _depthwise(dim, kernel_size) if own else dw2
        self.gamma = nn.Parameter(torch.ones(1, dim, 1, 1)) if own else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw2(self.pw2(spike(self.pw1(self.dw1(spike(x))))))
        return x + (y if self.gamma is None else y * self.gamma)


class _ConvBN(nn.Sequential):
    """Q -> conv (no bias) -> BN [-> nearest upsampling x2]: the official Down/UpSampling."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, upsample: bool = False):
        parts = [nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=False), nn.BatchNorm2d(c_out)]
        super().__init__(*parts, *([nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(spike(x))


class _Level(nn.Module):
    """F_l: fusion of the level below (this step) and above (previous step), then two ConvNeXt blocks."""

    def __init__(self, level: int, channels: Sequence[int], kernel_size: int, first: bool, shared: nn.ModuleList):
        super().__init__()
        c = channels
        self.down = {0: None, 1: _ConvBN(c[0], c[1], 3, 2), 2: _ConvBN(c[1], c[2], 3, 2),
                     3: _ConvBN(c[2], c[3], 1, 1)}[level]
        self.up = None if first or level == 3 else {0: _ConvBN(c[1], c[0], 1, 1, upsample=True),
                                                    1: _ConvBN(c[2], c[1], 1, 1, upsample=True),
                                                    2: _ConvBN(c[3], c[2], 1, 1)}[level]
        self.blocks = nn.Sequential(SpikeConvNeXtBlock(c[level], kernel_size),
                                    SpikeConvNeXtBlock(c[level], kernel_size, shared[0], shared[1]))

    def forward(self, below: torch.Tensor, above: torch.Tensor | None) -> torch.Tensor:
        x = below if self.down is None else self.down(below)
        if self.up is not None:
            x = x + self.up(above)
        return self.blocks(x)


class Column(nn.Module):
    """One time step's sub-network: a stem (ScaledStd conv 3x3 C_in -> c_0), four levels and their alphas.

    Args:
        in_channels, channels, kernel_size: input channels, the level widths, the depthwise kernel.
        first: column 0 (no up paths, no previous state).
        shared: per level, the ``(pw2, dw2)`` pair every column's second block uses.
    """

    def __init__(self, in_channels: int, channels: Sequence[int], kernel_size: int, first: bool,
                 shared: nn.ModuleList):
        super().__init__()
        self.first = first
        self.stem = ScaledStdConv2d(in_channels, channels[0], 3, padding=1)
        self.levels = nn.ModuleList(_Level(i, channels, kernel_size, first, shared[i]) for i in range(4))
        self.alphas = nn.ParameterList(nn.Parameter(torch.full((1, c, 1, 1), ALPHA_INIT)) for c in channels)

    def level(self, i: int, below: torch.Tensor, above: torch.Tensor | None) -> torch.Tensor:
        """F_i(below, above) in the state dtype (``above`` unused by level 3 and by column 0); the level
        itself runs in the weights' dtype."""
        dtype = self.stem.weight.dtype
        above = None if self.first or i == 3 else above.to(dtype)
        return self.levels[i](below.to(dtype), above).to(STATE_DTYPE)

    def step(self, x: torch.Tensor, prev: Sequence[torch.Tensor] | None) -> list[torch.Tensor]:
        """c^(t) (:data:`STATE_DTYPE`) from the frame x_t ``[B, C_in, H, W]`` and c^(t-1) (None for column 0)."""
        below, out = self.stem(x), []
        for i in range(4):
            c = self.level(i, below, None if prev is None or i == 3 else prev[i + 1])
            if prev is not None:
                c = c + self.alphas[i].to(STATE_DTYPE) * prev[i]
            out.append(c)
            below = c
        return out

    def clamp_alphas(self) -> None:
        """|alpha| >= 1e-3, sign kept (the official ``_clamp_abs``): the reverse step divides by alpha."""
        with torch.no_grad():
            for a in self.alphas:
                a.copy_(torch.where(a < 0, -a.abs().clamp(min=ALPHA_MIN), a.abs().clamp(min=ALPHA_MIN)))


@contextlib.contextmanager
def _running_stats_frozen(module: nn.Module):
    """BN momentum 0 inside and its batch count restored after (the recomputation must not update the
    running statistics a second time)."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(bns, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().requires_grad_(True)


class TemporalReversible(torch.autograd.Function):
    """All T columns with the reversible backward: ``apply(columns, x, *params) -> c_3^(T)``.

    ``x`` is ``[T, B, C, H, W]``; ``params`` the unique parameters of ``columns`` (so autograd returns
    their gradients). Saves x and c^(T) only.
    """

    @staticmethod
    def forward(ctx, columns: nn.ModuleList, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            c = None
            for t, column in enumerate(columns):
                c = column.step(x[t], c)
        ctx.columns = columns
        ctx.save_for_backward(x, *c)
        return c[3].clone()

    @staticmethod
    def backward(ctx, grad_c3: torch.Tensor):
        x, *c = ctx.saved_tensors
        columns = ctx.columns
        params = list(columns.parameters())
        index = {id(p): i for i, p in enumerate(params)}
        grads: list[torch.Tensor | None] = [None] * len(params)
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[1] else None
        g = [torch.zeros_like(ci) for ci in c[:3]] + [grad_c3]  # dL/dc^(t), from the later columns

        def backprop(output, grad_output, inputs):
            """One backward through ``output``; adds the parameter gradients, returns those of ``inputs``."""
            found = torch.autograd.grad(output, [*inputs, *params], grad_output, allow_unused=True)
            for i, gp in enumerate(found[len(inputs):]):
                if gp is not None:
                    grads[i] = gp if grads[i] is None else grads[i] + gp
            return found[:len(inputs)]

        def add(a, b):
            return b if a is None else a + b

        with torch.enable_grad(), _running_stats_frozen(columns):
            for t in range(len(columns) - 1, -1, -1):
                column = columns[t]
                below_grad = [None] * 4  # dL/dc_i^(t) through level i + 1 of this column
                prev: list[torch.Tensor | None] = [None] * 4  # c^(t-1), rebuilt
                g_prev: list[torch.Tensor | None] = [None] * 4
                exact = None
                if t == 1:  # c^(0) depends on x_0 alone: recomputed, not rebuilt (its exact zeros stay exact)
                    with torch.no_grad():
                        exact = columns[0].step(x[0], None)
                for i in (3, 2, 1, 0):
                    if i == 0:
                        xt = _leaf(x[t]) if grad_x is not None else x[t]
                        below, inputs = column.stem(xt), ([xt] if grad_x is not None else [])
                    else:
                        below = _leaf(c[i - 1])
                        inputs = [below]
                    above = None if column.first or i == 3 else _leaf(prev[i + 1])
                    inputs += [above] if above is not None else []
                    out = column.level(i, below, above)
                    g_up = add(below_grad[i], g[i])
                    found = backprop(out, g_up, inputs)
                    if i == 0 and grad_x is not None:
                        grad_x[t] = found[0]
                    elif i > 0:
                        below_grad[i - 1] = found[0]
                    if above is not None:
                        g_prev[i + 1] = add(g_prev[i + 1], found[-1])
                    if not column.first:
                        alpha = column.alphas[i]
                        with torch.no_grad():
                            a = alpha.to(STATE_DTYPE)
                            prev[i] = (c[i] - out) / a if exact is None else exact[i]
                            k = index[id(alpha)]
                            ga = (g_up * prev[i]).sum(dim=(0, 2, 3), keepdim=True).to(alpha.dtype)
                            grads[k] = add(grads[k], ga)
                            g_prev[i] = add(g_prev[i], g_up * a)
                c, g = prev, g_prev
        return (None, grad_x, *grads)


class _SpikeClassifier(nn.Module):
    """Q, spatial mean, ScaledStd 1x1 C -> classes, ScaledStd 1x1 classes -> classes (the official
    ``SpikeClassifier``; its leaky ReLU of slope 1 between them is the identity)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.fc1, self.fc2 = ScaledStdConv2d(channels, num_classes, 1), ScaledStdConv2d(num_classes, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(spike(x).mean(dim=(-1, -2), keepdim=True))).flatten(1)


class TRevSNNOutput(NamedTuple):
    """T-RevSNN predictions: ``logits [B, C]`` of the classifier read once after the last column."""

    logits: torch.Tensor


class TRevSNN(nn.Module):
    """T-RevSNN for event frames: T columns (one per frame), the classifier on ``c_3^(T) / T``.

    Args:
        num_classes: classes.
        time_steps: T, the number of columns.
        in_channels: input channels (2 polarities).
        channels: the four level widths (official ``tiny_dvs``: 32, 64, 128, 256).
        kernel_size: depthwise kernel (3).
        reversible: train with :class:`TemporalReversible` (memory O(1) in T); False: plain BPTT.

    Shape: ``[T, B, C_in, H, W]`` (H, W multiples of 4) -> :class:`TRevSNNOutput` (logits ``[B, num_classes]``).
    """

    def __init__(self, num_classes: int, time_steps: int, *, in_channels: int = 2,
                 channels: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 3, reversible: bool = True):
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"T-RevSNN has four levels, got channels {tuple(channels)}")
        self.time_steps, self.reversible = int(time_steps), bool(reversible)
        self.shared = nn.ModuleList(nn.ModuleList([ScaledStdConv2d(4 * ch, ch, 1), _depthwise(ch, kernel_size)])
                                    for ch in channels)
        self.columns = nn.ModuleList(Column(in_channels, channels, kernel_size, t == 0, self.shared)
                                     for t in range(self.time_steps))
        self.classifier = _SpikeClassifier(channels[3], num_classes)
        self.apply(trunc_normal_conv_init)

    def forward(self, x: torch.Tensor) -> TRevSNNOutput:
        if x.ndim != 5 or x.shape[0] != self.time_steps or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"expected frames [T={self.time_steps}, B, C, H, W] with H, W multiples of 4, "
                             f"got shape {tuple(x.shape)}")
        for column in self.columns:
            column.clamp_alphas()
        if self.reversible and torch.is_grad_enabled():
            c3 = TemporalReversible.apply(self.columns, x, *self.columns.parameters())
        else:
            c = None
            for t, column in enumerate(self.columns):
                c = column.step(x[t], c)
            c3 = c[3]
        return TRevSNNOutput(self.classifier((c3 / self.time_steps).to(self.columns[0].stem.weight.dtype)))

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, reversible={self.reversible}"


@register("trevsnn_gesture")
def trevsnn_gesture(*, num_classes: int = 11, in_channels: int = 2, input_size: int = 32, time_steps: int = 8,
                    channels: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 3,
                    reversible: bool = True) -> TRevSNN:
    """The official DVS model ``tiny_dvs`` (channels 32-64-128-256, 8 columns, 2 x 32 x 32 frames).

    Args:
        num_classes, in_channels, time_steps: classes, input channels, T (= columns).
        input_size: side of the square frames (a multiple of 4).
        channels, kernel_size, reversible: as :class:`TRevSNN`.

    Example:
        >>> net = trevsnn_gesture(time_steps=2)
        >>> net(torch.rand(2, 1, 2, 32, 32)).logits.shape
        torch.Size([1, 11])
    """
    if input_size % 4:
        raise ValueError(f"T-RevSNN needs an input side that is a multiple of 4, got {input_size}")
    return TRevSNN(num_classes, time_steps, in_channels=in_channels, channels=channels, kernel_size=kernel_size,
                   reversible=reversible)


@register("trevsnn_cifar10dvs")
def trevsnn_cifar10dvs(*, num_classes: int = 10, in_channels: int = 2, input_size: int = 32, time_steps: int = 8,
                       channels: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 3,
                       reversible: bool = True) -> TRevSNN:
    """``tiny_dvs`` for CIFAR10-DVS (the official DVS summary reads 2 x 32 x 32 frames). Args as :func:`trevsnn_gesture`."""
    return trevsnn_gesture(num_classes=num_classes, in_channels=in_channels, input_size=input_size,
                           time_steps=time_steps, channels=channels, kernel_size=kernel_size, reversible=reversible)
