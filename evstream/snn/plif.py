"""Parametric LIF (PLIF, Fang et al. 2021): LIF with a learnable time constant.

The decay is ``k = 1 / tau = sigmoid(w)`` with a learnable scalar ``w`` initialised to
``-log(init_tau - 1)`` (spikingjelly's ``ParametricLIFNode``); charge, fire and reset are
those of :mod:`evstream.snn.lif` with ``1 / tau`` replaced by ``k``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from evstream.snn.lif import LIFParams, LIFState, check_params, initial_v, multi_step_with_decay, step_with_decay

__all__ = ["PLIF", "PLIFCell", "plif_multi_step", "plif_step"]


def plif_step(x: torch.Tensor, state: LIFState | None, p: LIFParams, w: torch.Tensor
              ) -> tuple[torch.Tensor, LIFState]:
    """One PLIF step with decay ``sigmoid(w)``; ``p.tau`` is ignored.

    Args:
        x: input current X[t].
        state: previous state or ``None`` (rest).
        p: LIF parameters (threshold, reset, surrogate).
        w: learnable scalar, ``1 / tau = sigmoid(w)``.

    Shape: x ``[B, ...]``; spikes and ``state.v`` alike.

    Returns:
        ``(spikes, LIFState(v))``.
    """
    p = check_params(p)
    v = initial_v(x, p) if state is None else state.v
    s, v = step_with_decay(x, v, torch.sigmoid(w), p)
    return s, LIFState(v)


def plif_multi_step(x_seq: torch.Tensor, state: LIFState | None, p: LIFParams, w: torch.Tensor
                    ) -> tuple[torch.Tensor, LIFState]:
    """PLIF over ``[T, B, ...]``; equals T calls of :func:`plif_step`.

    Returns:
        ``(spikes [T, B, ...], LIFState(v))``.
    """
    p = check_params(p)
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be [T, B, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    v = initial_v(x_seq[0], p) if state is None else state.v
    spikes, v = multi_step_with_decay(x_seq, v, torch.sigmoid(w), p)
    return spikes, LIFState(v)


class _PLIFBase(nn.Module):
    def __init__(self, init_tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False, surrogate: str = "sigmoid",
                 alpha: float | None = None):
        super().__init__()
        if not init_tau > 1.0:
            raise ValueError(f"init_tau must be > 1, got {init_tau}")
        self.p = check_params(LIFParams(init_tau, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha))
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    def extra_repr(self) -> str:
        fields = {k: v for k, v in self.p._asdict().items() if k != "tau"}
        return f"init_tau={self.p.tau!r}, " + ", ".join(f"{k}={v!r}" for k, v in fields.items())


class PLIFCell(_PLIFBase):
    """One PLIF step. Args as spikingjelly's ``ParametricLIFNode`` (init_tau, decay_input, ...).

    Returns:
        ``forward(x, state=None) -> (spikes, LIFState)``.
    """

    def forward(self, x: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        return plif_step(x, state, self.p, self.w)


class PLIF(_PLIFBase):
    """Multi-step PLIF on ``[T, B, ...]``, starting from rest unless given a state.

    Returns:
        ``forward(x, state=None) -> (spikes [T, B, ...], LIFState)``.

    Example:
        >>> spikes, state = PLIF(init_tau=2.0)(torch.rand(4, 2, 8))
    """

    def forward(self, x: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        return plif_multi_step(x, state, self.p, self.w)
