"""The BICLab LIF cell of TA-SNN, MA-SNN and ASA-SNN ("IFCell").

Per time step t (potentials in threshold units):

    U[t] = H[t-1] + X[t]                          (optionally U <- A(U), attention on the membrane)
    O[t] = H(U[t] - V_th)                         (rectangular surrogate: 1/a where abs(U - V_th) < a/2)
    H[t] = decay (O[t] V_reset + (1 - O[t]) U[t]) + bias

Defaults: decay 0.3, bias 0, V_th 0.3, V_reset 0 (ASA-SNN's ``IFCell``; the TA-SNN and MA-SNN
``IFCell`` / ``ConvIFCell`` reset to V_th: pass ``v_reset=v_threshold``), a = 0.5 (DVS Gesture;
1 for CIFAR10-DVS, 0.25 for SHD).
With ``liaf=True`` the cell outputs the analogue ReLU(U) instead of O (the "LIAF" mode).
The gradient flows through O in the reset term, as in the original code.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from evstream.snn.surrogate import heaviside, resolve

__all__ = ["BICLabCell", "BICLabLIF", "BICLabParams", "BICLabState", "biclab_multi_step", "biclab_step"]


class BICLabParams(NamedTuple):
    """BICLab cell parameters.

    Args:
        decay: alpha, the factor on H after reset.
        bias: beta, added to H after the decay.
        v_threshold: V_th.
        v_reset: potential after a spike (0 in ASA-SNN; V_th in TA-SNN and MA-SNN).
        surrogate: surrogate name ("rectangle" in the papers).
        alpha: surrogate width a.
        liaf: output ReLU(U) instead of spikes.
    """

    decay: float = 0.3
    bias: float = 0.0
    v_threshold: float = 0.3
    v_reset: float = 0.0
    surrogate: str = "rectangle"
    alpha: float | None = 0.5
    liaf: bool = False


class BICLabState(NamedTuple):
    """BICLab state: H, the decayed potential carried to the next step."""

    h: torch.Tensor


Attention = nn.Module | None


def _check(p: BICLabParams) -> BICLabParams:
    if not isinstance(p, BICLabParams):
        raise TypeError(f"expected BICLabParams, got {type(p).__name__}")
    name, alpha = resolve(p.surrogate, p.alpha)
    return p._replace(surrogate=name, alpha=alpha)


def _step(x: torch.Tensor, h: torch.Tensor, p: BICLabParams, attention: Attention
          ) -> tuple[torch.Tensor, torch.Tensor]:
    u = h + x
    if attention is not None:
        u = attention(u.unsqueeze(0)).squeeze(0)
    o = heaviside(u - p.v_threshold, p.surrogate, p.alpha)
    h = (o * p.v_reset + (1.0 - o) * u) * p.decay + p.bias
    return (torch.relu(u) if p.liaf else o), h


def biclab_step(x: torch.Tensor, state: BICLabState | None, p: BICLabParams, attention: Attention = None
                ) -> tuple[torch.Tensor, BICLabState]:
    """One step of the BICLab cell.

    Args:
        x: synaptic input X[t] (after conv/BN and any input-side attention).
        state: previous state or ``None`` (H = 0).
        p: :class:`BICLabParams`.
        attention: optional module applied to the membrane U before firing (MA-SNN's
            membrane placement, ASA's ``attention_in_spike``); it sees ``[1, B, ...]``.

    Shape: x ``[B, ...]``; output and ``state.h`` alike.

    Returns:
        ``(spikes or ReLU(U), BICLabState(h))``.

    Example:
        >>> biclab_step(torch.tensor([0.2, 0.5]), None, BICLabParams())
        (tensor([0., 1.]), BICLabState(h=tensor([0.0600, 0.0000])))
    """
    p = _check(p)
    h = torch.zeros_like(x) if state is None else state.h
    out, h = _step(x, h, p, attention)
    return out, BICLabState(h)


def biclab_multi_step(x_seq: torch.Tensor, state: BICLabState | None, p: BICLabParams, attention: Attention = None
                      ) -> tuple[torch.Tensor, BICLabState]:
    """The BICLab cell over ``[T, B, ...]``; equals T calls of :func:`biclab_step`.

    Returns:
        ``(outputs [T, B, ...], BICLabState(h))``.
    """
    p = _check(p)
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be [T, B, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    h = torch.zeros_like(x_seq[0]) if state is None else state.h
    outs = []
    for x in x_seq:
        o, h = _step(x, h, p, attention)
        outs.append(o)
    return torch.stack(outs), BICLabState(h)


class _BICLabBase(nn.Module):
    def __init__(self, decay: float = 0.3, bias: float = 0.0, v_threshold: float = 0.3, v_reset: float = 0.0,
                 surrogate: str = "rectangle", alpha: float | None = 0.5, liaf: bool = False,
                 attention: Attention = None):
        super().__init__()
        self.p = _check(BICLabParams(decay, bias, v_threshold, v_reset, surrogate, alpha, liaf))
        self.attention = attention

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.p._asdict().items())


class BICLabCell(_BICLabBase):
    """One step of the BICLab cell. ``forward(x, state=None) -> (out, BICLabState)``; x ``[B, ...]``."""

    def forward(self, x: torch.Tensor, state: BICLabState | None = None) -> tuple[torch.Tensor, BICLabState]:
        return biclab_step(x, state, self.p, self.attention)


class BICLabLIF(_BICLabBase):
    """The BICLab cell on ``[T, B, ...]``, from H = 0 unless given a state.

    Args: see :class:`BICLabParams`; ``attention`` as in :func:`biclab_step`.

    Returns:
        ``forward(x, state=None) -> (out [T, B, ...], BICLabState)``.

    Example:
        >>> out, state = BICLabLIF(alpha=1.0)(torch.rand(8, 2, 16))
    """

    def forward(self, x: torch.Tensor, state: BICLabState | None = None) -> tuple[torch.Tensor, BICLabState]:
        return biclab_multi_step(x, state, self.p, self.attention)
