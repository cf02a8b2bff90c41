"""SpikeYOLO's meta SNN blocks (models.md §1.2; BICLab/SpikeYOLO ``yolo_spikformer.py``).

Every block is built from :class:`Synapse` units: an I-LIF (integer spikes 0..D) followed by a
chain of linear layers (convs, BN, BN-with-pad) on ``[T, B, C, H, W]``. Residual additions are
made on the real-valued chain outputs (membrane shortcuts), so every conv receives spikes.

Inference:

* :meth:`Synapse.fuse` folds a unit's chain (BN, re-parameterised RepConv / SepRepConv) into one
  ``Conv2d`` with bias; :func:`fuse_model` folds every unit of a network.
* In binary mode (:func:`set_binary`, fused units only) each integer spike tensor is expanded
  into D binary virtual timesteps, the bias-free conv runs on the binary tensor, the D partial
  sums are added and the bias is added once: the same numbers as the integer mode.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from evstream.snn.ilif import ILIF, ILIFParams, collapse_virtual_steps, expand_virtual_steps
from evstream.snn.layers import seq_apply

__all__ = ["BNPad2d", "MS_AllConvBlock", "MS_ConvBlock", "MS_DownSampling", "MS_StandardConv", "RepConv",
           "SepConv", "SpikeSPPF", "Synapse", "fold_chain", "fuse_model", "set_binary", "spike_conv"]


class BNPad2d(nn.BatchNorm2d):
    """BatchNorm followed by a border of ``pad`` pixels holding the BN's value for a zero input.

    The border equals what BN gives a zero-padded input, so a following valid conv folds into a
    zero-padded conv on the BN's input (SpikeYOLO's ``BNAndPadLayer``).

    Shape: ``[N, C, H, W]`` -> ``[N, C, H + 2 pad, W + 2 pad]``.
    """

    def __init__(self, num_features: int, pad: int = 1):
        super().__init__(num_features)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.pad == 0:
            return y
        value = (self.bias - self.running_mean * self.weight / torch.sqrt(self.running_var + self.eps)).detach()
        y = F.pad(y, [self.pad] * 4)
        border = torch.ones_like(y[:1, :1], dtype=torch.bool)
        border[..., self.pad:-self.pad, self.pad:-self.pad] = False
        return torch.where(border, value.view(1, -1, 1, 1).to(y.dtype), y)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pad={self.pad}"


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias.detach() - bn.running_mean * scale


def _fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> nn.Conv2d:
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      groups=conv.groups, bias=True).to(conv.weight)
    w = conv.weight.detach()
    b = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels).to(w)
    if bn is not None:
        scale, shift = _bn_affine(bn)
        w, b = w * scale.view(-1, 1, 1, 1), b * scale + shift
    fused.weight.data.copy_(w)
    fused.bias.data.copy_(b)
    return fused


@torch.no_grad()
def _compose(chain: nn.Sequential) -> nn.Conv2d:
    """Compose a stride-1 chain of 1x1 convs, BN layers and one k x k conv (dense or depthwise).

    The running map is ``y = W * x + b`` with W ``[C_out, C_in, K, K]``; each layer acts on it linearly.
    """
    first = chain[0]
    c_in = first.in_channels if isinstance(first, nn.Conv2d) else first.num_features
    ref = next(chain.parameters())
    weight = torch.eye(c_in).to(ref)[:, :, None, None]
    bias = torch.zeros(c_in).to(ref)
    for layer in chain:
        if isinstance(layer, nn.BatchNorm2d):
            scale, shift = _bn_affine(layer)
            weight, bias = weight * scale.view(-1, 1, 1, 1), bias * scale + shift
            continue
        w = layer.weight.detach()
        if layer.kernel_size == (1, 1) and layer.groups == 1:
            weight, bias = torch.einsum("oc,cikl->oikl", w[:, :, 0, 0], weight), w[:, :, 0, 0] @ bias
        elif weight.shape[-1] == 1 and layer.groups == layer.in_channels == layer.out_channels:
            weight, bias = w * weight[:, :, 0, 0, None, None], w.sum((1, 2, 3)) * bias
        elif weight.shape[-1] == 1 and layer.groups == 1:
            weight, bias = torch.einsum("ockl,ci->oikl", w, weight[:, :, 0, 0]), w.sum((2, 3)) @ bias
        else:
            raise ValueError("fold_chain: a chain holds at most one spatial conv (dense or depthwise)")
        if layer.bias is not None:
            bias = bias + layer.bias.detach()
    kernel = weight.shape[-1]
    fused = nn.Conv2d(c_in, weight.shape[0], kernel, 1, kernel // 2, bias=True).to(ref)
    fused.weight.data.copy_(weight)
    fused.bias.data.copy_(bias)
    return fused


def fold_chain(chain: nn.Sequential) -> nn.Conv2d:
    """One ``Conv2d`` (with bias) equal to ``chain`` in eval mode.

    ``chain`` is either ``[Conv2d]``, ``[Conv2d, BatchNorm2d]`` (any stride and groups), or a
    stride-1 "same" chain of 1x1 convs, one valid k x k conv (dense or depthwise) and BN /
    :class:`BNPad2d` layers whose padding restores the size (RepConv, SepRepConv).
    """
    layers = list(chain)
    if isinstance(layers[0], nn.Conv2d) and len(layers) <= 2 and not isinstance(layers[-1], BNPad2d):
        return _fold_conv_bn(layers[0], layers[1] if len(layers) == 2 else None)
    kernels = [m.kernel_size[0] for m in layers if isinstance(m, nn.Conv2d)]
    pads = [m.pad for m in layers if isinstance(m, BNPad2d)]
    strided = any(m.stride != (1, 1) for m in layers if isinstance(m, nn.Conv2d))
    if strided or sum(k - 1 for k in kernels) != 2 * sum(pads):
        raise ValueError("fold_chain: only stride-1 chains whose padding keeps the size can be folded")
    return _compose(chain)


class Synapse(nn.Module):
    """I-LIF -> linear chain on ``[T, B, C, H, W]`` (no I-LIF in the stem, which sees real frames).

    Args:
        chain: the linear layers (run on the flattened ``T * B`` batch).
        neuron: I-LIF parameters, or ``None`` for the stem.

    Shape: ``[T, B, C_in, H, W]`` -> ``[T, B, C_out, H', W']``.
    """

    def __init__(self, chain: nn.Sequential, neuron: ILIFParams | None):
        super().__init__()
        self.neuron = ILIF(neuron) if neuron is not None else None
        self.chain = chain
        self.binary = False

    @property
    def fused(self) -> bool:
        return len(self.chain) == 1 and isinstance(self.chain[0], nn.Conv2d) and self.chain[0].bias is not None

    def fuse(self) -> None:
        """Fold the chain into one conv with bias (eval-mode BN statistics)."""
        if not self.fused:
            self.chain = nn.Sequential(fold_chain(self.chain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.neuron is None:
            return seq_apply(self.chain, x)
        spikes = self.neuron(x)[0]
        if not self.binary:
            return seq_apply(self.chain, spikes)
        conv, depth = self.chain[0], int(self.neuron.p.max_spike)
        binary = expand_virtual_steps(spikes, depth)
        y = seq_apply(lambda z: F.conv2d(z, conv.weight, None, conv.stride, conv.padding, conv.dilation,
                                         conv.groups), binary)
        return collapse_virtual_steps(y, depth) + conv.bias.view(1, 1, -1, 1, 1)


def spike_conv(c1: int, c2: int, k: int = 1, s: int = 1, *, neuron: ILIFParams | None, bn: bool = True,
               bias: bool = False, groups: int = 1, padding: int | None = None) -> Synapse:
    """I-LIF -> Conv k x k (stride s, "same" padding unless given) -> BN: MS_StandardConv / SpikeConv.

    ``bn=False, bias=True`` is SpikeConvWithoutBN; ``neuron=None`` a stem conv.
    """
    conv = nn.Conv2d(c1, c2, k, s, k // 2 if padding is None else padding, groups=groups, bias=bias)
    return Synapse(nn.Sequential(conv, nn.BatchNorm2d(c2)) if bn else nn.Sequential(conv), neuron)


def MS_StandardConv(c1: int, c2: int, k: int = 1, s: int = 1, *, neuron: ILIFParams) -> Synapse:  # noqa: N802
    """I-LIF -> Conv k x k (no bias, "same" padding, stride s) -> BN."""
    return spike_conv(c1, c2, k, s, neuron=neuron)


def MS_DownSampling(c1: int, c2: int, k: int, s: int, p: int, *, first: bool,  # noqa: N802
                    neuron: ILIFParams) -> Synapse:
    """[I-LIF unless ``first``] -> Conv k x k stride s padding p with bias -> BN."""
    return spike_conv(c1, c2, k, s, neuron=None if first else neuron, bias=True, padding=p)


def RepConv(c1: int, c2: int, *, extra_bn: bool = False) -> nn.Sequential:  # noqa: N802
    """Re-parameterisable 3x3 chain: 1x1 c1->c1, BN+pad 1, depthwise 3x3, 1x1 c1->c2, BN (+ BN).

    ``extra_bn`` appends MS_ConvBlock's outer BN. Folds into one 3x3 conv (:func:`fold_chain`).
    """
    layers = [nn.Conv2d(c1, c1, 1, bias=False), BNPad2d(c1, 1), nn.Conv2d(c1, c1, 3, groups=c1, bias=False),
              nn.Conv2d(c1, c2, 1, bias=False), nn.BatchNorm2d(c2)]
    return nn.Sequential(*layers, *([nn.BatchNorm2d(c2)] if extra_bn else []))


class SepConv(nn.Module):
    """Inverted separable conv (MobileNetV2 style) with spike-first units.

    I-LIF -> 1x1 C->2C + BN -> I-LIF -> depthwise k x k + BN -> I-LIF -> SepRepConv
    (BN+pad, 1x1 2C->C, depthwise 3x3) + BN.

    Shape: ``[T, B, C, H, W]`` -> same.
    """

    def __init__(self, dim: int, kernel_size: int = 7, *, neuron: ILIFParams):
        super().__init__()
        mid = 2 * dim
        self.pw1 = spike_conv(dim, mid, 1, neuron=neuron)
        self.dw2 = spike_conv(mid, mid, kernel_size, neuron=neuron, groups=mid)
        self.pw3 = Synapse(nn.Sequential(BNPad2d(mid, 1), nn.Conv2d(mid, dim, 1, bias=False),
                                         nn.Conv2d(dim, dim, 3, groups=dim, bias=False), nn.BatchNorm2d(dim)), neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw3(self.dw2(self.pw1(x)))


class MS_ConvBlock(nn.Module):  # noqa: N801
    """SNN-Block-2 (deep stages): x += SepConv(x); x += RepConv_{rC->C}(RepConv_{C->rC}(x)), spike first.

    Args:
        dim: C (kept). mlp_ratio: r. kernel_size: SepConv kernel. neuron: I-LIF parameters.

    Shape: ``[T, B, C, H, W]`` -> same.
    """

    def __init__(self, dim: int, mlp_ratio: float = 4.0, kernel_size: int = 7, *, neuron: ILIFParams):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.sep = SepConv(dim, kernel_size, neuron=neuron)
        self.conv1 = Synapse(RepConv(dim, hidden, extra_bn=True), neuron)
        self.conv2 = Synapse(RepConv(hidden, dim, extra_bn=True), neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sep(x)
        return x + self.conv2(self.conv1(x))


class MS_AllConvBlock(nn.Module):  # noqa: N801
    """SNN-Block-1 (high-resolution stages): x += SepConv(x); x += StdConv3x3_{rC->C}(StdConv3x3_{C->rC}(x)).

    Shape: ``[T, B, C, H, W]`` -> same.
    """

    def __init__(self, dim: int, mlp_ratio: float = 4.0, kernel_size: int = 7, *, neuron: ILIFParams):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.sep = SepConv(dim, kernel_size, neuron=neuron)
        self.conv1 = MS_StandardConv(dim, hidden, 3, neuron=neuron)
        self.conv2 = MS_StandardConv(hidden, dim, 3, neuron=neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sep(x)
        return x + self.conv2(self.conv1(x))


class SpikeSPPF(nn.Module):
    """Spiking SPPF: SpikeConv 1x1 c1->c1/2, three chained max-pools (k, stride 1) on its output,
    concatenation of the four, SpikeConv 1x1 -> c2.

    Shape: ``[T, B, c1, H, W]`` -> ``[T, B, c2, H, W]``.
    """

    def __init__(self, c1: int, c2: int, k: int = 5, *, neuron: ILIFParams):
        super().__init__()
        hidden = c1 // 2
        self.cv1 = spike_conv(c1, hidden, 1, neuron=neuron)
        self.cv2 = spike_conv(4 * hidden, c2, 1, neuron=neuron)
        self.pool = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(seq_apply(self.pool, y[-1]))
        return self.cv2(torch.cat(y, 2))


def fuse_model(model: nn.Module) -> nn.Module:
    """Fold every :class:`Synapse` of ``model`` (in place; BN uses running statistics). Returns ``model``."""
    for module in model.modules():
        if isinstance(module, Synapse):
            module.fuse()
    return model


def set_binary(model: nn.Module, binary: bool = True) -> nn.Module:
    """Switch every spiking :class:`Synapse` to binary virtual-timestep inference (fused units only)."""
    for module in model.modules():
        if isinstance(module, Synapse) and module.neuron is not None:
            if binary and not module.fused:
                raise ValueError("binary mode needs fused synapses: call fuse_model(model) first")
            module.binary = binary
    return model
