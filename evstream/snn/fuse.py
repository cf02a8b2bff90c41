"""Inference-time fusion: fold eval-mode BatchNorm into the preceding conv or linear layer.

In eval mode a BatchNorm is the affine map ``y = (x - mean) / sqrt(var + eps) * gamma + beta``
with its running statistics, so ``BN(conv(x))`` equals one conv with scaled weights and a
bias: ``W' = W * s``, ``b' = (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)`` per
output channel. Folding removes one pass over every activation tensor, eager or compiled.
It is exact up to float rounding (the tests bound the difference at 1e-5).

Pairs are found where the data flow is known: consecutive children of every
``nn.Sequential`` in the model (conv then BN, linear then BN1d), plus any explicit
``pairs`` of dotted module names for models whose forward calls a conv then a BN held as
attributes. The folded layer keeps its class (``SeqConv2d`` stays ``SeqConv2d``) and the
BN is replaced by ``nn.Identity``. SpikeYOLO folds its own units (``SpikeYOLO.fuse``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

__all__ = ["fuse_conv_bn"]

_CONV_BN = ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d),
            (nn.Linear, nn.BatchNorm1d))


def _foldable(layer: nn.Module, bn: nn.Module) -> bool:
    if not any(isinstance(layer, c) and isinstance(bn, b) for c, b in _CONV_BN):
        return False
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        return False
    out = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    return bn.num_features == out and bn.running_mean is not None


@torch.no_grad()
def _fold(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Fold ``bn`` into ``layer`` in place (weights replaced, a bias added if missing)."""
    ones = torch.ones_like(bn.running_mean)
    gamma = bn.weight if bn.weight is not None else ones
    beta = bn.bias if bn.bias is not None else torch.zeros_like(ones)
    if isinstance(layer, nn.Linear):
        w, b = fuse_linear_bn_weights(layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.eps, gamma, beta)
    else:
        w, b = fuse_conv_bn_weights(layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.eps, gamma, beta)
    layer.weight = nn.Parameter(w.detach().to(layer.weight.dtype), requires_grad=False)
    layer.bias = nn.Parameter(b.detach().to(layer.weight.dtype), requires_grad=False)


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def fuse_conv_bn(model: nn.Module, pairs: Iterable[tuple[str, str]] = (), *, inplace: bool = False) -> nn.Module:
    """Fold every eval-mode BatchNorm that follows a conv / linear layer into that layer.

    Args:
        model: a network in eval mode (``model.eval()``); training-mode BNs raise ValueError
            because their output depends on batch statistics.
        pairs: extra ``(layer_name, bn_name)`` dotted names (as in ``named_modules``) for
            pairs outside ``nn.Sequential``; the caller vouches that the forward feeds the
            layer's output straight into the BN and nowhere else.
        inplace: modify ``model`` instead of a deep copy.

    Shape: unchanged; the fused model maps the same input to the same output (float rounding).

    Returns:
        The fused model (``model`` itself when ``inplace``), in eval mode, with each folded BN
        replaced by ``nn.Identity`` and the folded layers' parameters frozen.

    Example:
        >>> from evstream.snn import LIF, SeqBatchNorm2d, SeqConv2d, Spiking
        >>> net = nn.Sequential(SeqConv2d(2, 8, 3, padding=1, bias=False), SeqBatchNorm2d(8),
        ...                     Spiking(LIF())).eval()
        >>> fused = fuse_conv_bn(net)
        >>> type(fused[1]).__name__
        'Identity'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    pairs = [tuple(p) for p in pairs]
    if not inplace:
        model = copy.deepcopy(model)
    modules = dict(model.named_modules())
    found: list[tuple[str, str]] = []
    for name, mod in modules.items():
        if isinstance(mod, nn.Sequential):
            kids = list(mod.named_children())
            prefix = f"{name}." if name else ""
            for (a, la), (b, lb) in zip(kids, kids[1:]):
                if _foldable(la, lb):
                    found.append((prefix + a, prefix + b))
    for a, b in pairs:
        if a not in modules or b not in modules:
            raise ValueError(f"no module named {a!r} or {b!r} in the model")
        if not _foldable(modules[a], modules[b]):
            raise TypeError(f"cannot fold {type(modules[b]).__name__} {b!r} into {type(modules[a]).__name__} {a!r}")
        found.append((a, b))
    for _, b in found:
        if modules[b].training:
            raise ValueError(f"BatchNorm {b!r} is in training mode; call model.eval() before fusing")
    if len({b for _, b in found}) != len(found) or len({a for a, _ in found}) != len(found):
        raise ValueError("each layer and each BatchNorm can take part in one pair only")
    for a, b in found:
        _fold(modules[a], modules[b])
        _set(model, b, nn.Identity())
    return model.eval()
