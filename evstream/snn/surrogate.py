"""Surrogate gradients: a Heaviside forward with a smooth backward, chosen by name.

Each surrogate is a pair (primitive, derivative) of the centred input ``x = u - V_th``:
the forward pass is the step ``H(x) = 1[x >= 0]``, the backward pass uses the
derivative of the smooth primitive, scaled by a width parameter ``alpha``.

| name        | primitive g(x)                               | g'(x)                                  | alpha |
|-------------|----------------------------------------------|----------------------------------------|-------|
| "sigmoid"   | sigmoid(alpha x)                             | alpha g (1 - g)                        | 4.0   |
| "atan"      | arctan(pi/2 alpha x) / pi + 1/2              | alpha / 2 / (1 + (pi/2 alpha x)^2)     | 2.0   |
| "rectangle" | clip(x / alpha + 1/2, 0, 1)                  | 1/alpha where abs(x) < alpha/2         | 1.0   |
| "triangle"  | piecewise quadratic, 0 -> 1 on abs(x) < 1/a  | max(0, alpha - alpha^2 abs(x))         | 1.0   |

"sigmoid" and "atan" follow spikingjelly's ``Sigmoid`` / ``ATan``; "rectangle" is the
BICLab window of width ``alpha`` (TA-SNN's ``a``). The straight-through quantiser of
I-LIF and multi-bit spikes is :func:`quantize`.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

__all__ = ["SURROGATES", "Surrogate", "heaviside", "quantize", "surrogate_names"]


def _sigmoid_primitive(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.sigmoid(alpha * x)


def _sigmoid_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    sg = torch.sigmoid(alpha * x)
    return (1.0 - sg) * sg * alpha


def _atan_primitive(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.atan(math.pi / 2 * alpha * x) / math.pi + 0.5


def _atan_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha / 2 / (1 + (math.pi / 2 * alpha * x).square())


def _rectangle_primitive(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return (x / alpha + 0.5).clamp(0.0, 1.0)


def _rectangle_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return (x.abs() < alpha / 2).to(x.dtype) / alpha


def _triangle_primitive(x: torch.Tensor, alpha: float) -> torch.Tensor:
    y = alpha * x.clamp(-1.0 / alpha, 1.0 / alpha)
    return 0.5 + y - y * y.abs() / 2


def _triangle_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return (alpha - alpha * alpha * x.abs()).clamp_min(0.0)


class Surrogate(NamedTuple):
    """One surrogate: its smooth primitive, the derivative used in backward, the default width."""

    primitive: Callable[[torch.Tensor, float], torch.Tensor]
    grad: Callable[[torch.Tensor, float], torch.Tensor]
    alpha: float


SURROGATES: dict[str, Surrogate] = {
    "sigmoid": Surrogate(_sigmoid_primitive, _sigmoid_grad, 4.0),
    "atan": Surrogate(_atan_primitive, _atan_grad, 2.0),
    "rectangle": Surrogate(_rectangle_primitive, _rectangle_grad, 1.0),
    "triangle": Surrogate(_triangle_primitive, _triangle_grad, 1.0),
}


def surrogate_names() -> tuple[str, ...]:
    """The names accepted by ``surrogate=``."""
    return tuple(SURROGATES)


def resolve(name: str, alpha: float | None) -> tuple[str, float]:
    """Check a surrogate name and fill in its default width.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: unknown name or a non-positive ``alpha``.
    """
    if not isinstance(name, str):
        raise TypeError(f"surrogate must be a name (one of {surrogate_names()}), got {type(name).__name__}")
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {surrogate_names()}")
    alpha = SURROGATES[name].alpha if alpha is None else float(alpha)
    if not alpha > 0:
        raise ValueError(f"surrogate alpha must be > 0, got {alpha}")
    return name, alpha


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, name: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.name, ctx.alpha = name, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * SURROGATES[ctx.name].grad(x, ctx.alpha), None, None


def heaviside(x: torch.Tensor, surrogate: str = "sigmoid", alpha: float | None = None) -> torch.Tensor:
    """Spike function ``H(x) = 1[x >= 0]`` whose gradient is the named surrogate's.

    Args:
        x: centred membrane potential ``u - V_th`` (same units as the potential).
        surrogate: one of :func:`surrogate_names`.
        alpha: surrogate width; ``None`` takes the surrogate's default.

    Shape: any; the output has the shape and dtype of ``x``.

    Returns:
        Spikes in {0, 1}.

    Example:
        >>> heaviside(torch.tensor([-0.1, 0.0, 0.2]), "atan")
        tensor([0., 1., 1.])
    """
    name, alpha = resolve(surrogate, alpha)
    if not torch.is_grad_enabled() or not x.requires_grad:
        return (x >= 0).to(x.dtype)
    return _Heaviside.apply(x, name, alpha)


class _Quantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, max_value: float, scale: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.max_value = max_value
        return torch.round(u.clamp(0.0, max_value) * scale) / scale

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (u,) = ctx.saved_tensors
        inside = (u >= 0) & (u <= ctx.max_value)
        return grad_out * inside.to(grad_out.dtype), None, None


def quantize(u: torch.Tensor, max_value: float, scale: float = 1.0) -> torch.Tensor:
    """Straight-through quantiser ``S = round(clip(U, 0, max) * scale) / scale``.

    The gradient is 1 where ``0 <= U <= max`` and 0 outside (rounding ignored), as in
    SpikeYOLO's ``MultiSpike`` (``scale = 1``, ``max = D``) and multi-bit spikes
    (``scale = 2**n``, ``max = 2**m - 2**-n``).

    Args:
        u: membrane potential.
        max_value: upper clip bound (> 0, a multiple of ``1 / scale``).
        scale: quantisation levels per unit; 1 gives integer spikes.

    Shape: any; the output has the shape and dtype of ``u``.

    Returns:
        Quantised spikes in ``{0, 1/scale, ..., max_value}``.

    Example:
        >>> quantize(torch.tensor([-0.3, 0.6, 2.4, 7.0]), 4.0)
        tensor([0., 1., 2., 4.])
    """
    if not max_value > 0 or not scale > 0:
        raise ValueError(f"max_value and scale must be > 0, got {max_value}, {scale}")
    if not torch.is_grad_enabled() or not u.requires_grad:
        return torch.round(u.clamp(0.0, max_value) * scale) / scale
    return _Quantize.apply(u, float(max_value), float(scale))
