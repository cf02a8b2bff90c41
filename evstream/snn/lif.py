"""Leaky integrate-and-fire neuron with spikingjelly's semantics and argument names.

Per time step t (time in steps of dt, potentials in units of the threshold scale):

    decay_input=True:   H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau
    decay_input=False:  H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]
    S[t] = H(H[t] - V_th)                          (surrogate gradient in backward)
    hard reset:         V[t] = S[t] V_reset + (1 - S[t]) H[t]
    soft reset (None):  V[t] = H[t] - S[t] V_th    (V_reset read as 0 in the charge)

``detach_reset`` cuts the gradient through S[t] in the reset term. The state starts at
V = V_reset (0 for soft reset) unless one is given.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from evstream.snn.surrogate import heaviside, resolve

__all__ = ["LIF", "LIFCell", "LIFParams", "LIFState", "lif_multi_step", "lif_step"]

Decay = float | torch.Tensor


class LIFParams(NamedTuple):
    """LIF parameters.

    Args:
        tau: membrane time constant in time steps (>= 1).
        decay_input: whether the input is also divided by ``tau``.
        v_threshold: firing threshold V_th.
        v_reset: reset potential (hard reset); ``None`` selects the soft reset V -= S V_th.
        detach_reset: detach the spike in the reset term.
        surrogate: surrogate gradient name (see :mod:`evstream.snn.surrogate`).
        alpha: surrogate width; ``None`` takes the surrogate's default.
    """

    tau: float = 2.0
    decay_input: bool = True
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    detach_reset: bool = False
    surrogate: str = "sigmoid"
    alpha: float | None = None


class LIFState(NamedTuple):
    """LIF state: the membrane potential after reset, V, shaped like one step's input."""

    v: torch.Tensor


def check_params(p: LIFParams) -> LIFParams:
    """Validate ``p`` and fill in the surrogate width; raises ValueError/TypeError."""
    if not isinstance(p, LIFParams):
        raise TypeError(f"expected LIFParams, got {type(p).__name__}")
    if not p.tau >= 1.0:
        raise ValueError(f"tau must be >= 1 time step, got {p.tau}")
    name, alpha = resolve(p.surrogate, p.alpha)
    v_reset = None if p.v_reset is None else float(p.v_reset)
    return p._replace(tau=float(p.tau), v_threshold=float(p.v_threshold), v_reset=v_reset, surrogate=name,
                      alpha=alpha)


def initial_v(x: torch.Tensor, p: LIFParams) -> torch.Tensor:
    """The resting potential shaped like ``x``: V_reset, or 0 for soft reset."""
    return torch.full_like(x, 0.0 if p.v_reset is None else p.v_reset)


def charge(x: torch.Tensor, v: torch.Tensor, k: Decay, p: LIFParams) -> torch.Tensor:
    """H = V + (X - (V - V_reset)) k, or V - (V - V_reset) k + X; ``k = 1 / tau`` (float or tensor)."""
    rel = v if p.v_reset is None else v - p.v_reset
    if p.decay_input:
        return v + (x - rel) * k
    return v - rel * k + x


def fire_reset(h: torch.Tensor, p: LIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike S = H(H - V_th) with the surrogate, then the hard or soft reset; returns (S, V)."""
    s = heaviside(h - p.v_threshold, p.surrogate, p.alpha)
    sr = s.detach() if p.detach_reset else s
    if p.v_reset is None:
        return s, h - sr * p.v_threshold
    return s, sr * p.v_reset + (1.0 - sr) * h


def step_with_decay(x: torch.Tensor, v: torch.Tensor, k: Decay, p: LIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """One differentiable LIF step with decay ``k = 1 / tau`` (used by LIF and PLIF)."""
    return fire_reset(charge(x, v, k, p), p)


def lif_step(x: torch.Tensor, state: LIFState | None, p: LIFParams) -> tuple[torch.Tensor, LIFState]:
    """One LIF time step.

    Args:
        x: input current X[t].
        state: previous state, or ``None`` for the resting potential.
        p: parameters (:class:`LIFParams`).

    Shape: x ``[B, ...]``; spikes and ``state.v`` have the same shape.

    Returns:
        ``(spikes, LIFState(v))``.

    Example:
        >>> s, st = lif_step(torch.tensor([1.5, 3.0]), None, LIFParams())
        >>> s, st.v
        (tensor([0., 1.]), tensor([0.7500, 0.0000]))
    """
    p = check_params(p)
    v = initial_v(x, p) if state is None else state.v
    s, v = step_with_decay(x, v, 1.0 / p.tau, p)
    return s, LIFState(v)


def _pure_inference(x_seq: torch.Tensor, v: torch.Tensor, k: Decay, p: LIFParams
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Out-of-place no-grad loop for ``torch.compile``: no surrogate, no autograd bookkeeping.

    Same formula as the in-place eager loop (Inductor may round differently in the last
    bit). On CPU, Inductor lays conv outputs out channels_last, so feature maps
    ``[T, B, C, H, W]`` are stepped and concatenated in that memory format: the T steps, an
    eval BN before and the spike writes become one vectorised pass and a following pool
    reads contiguous channels (``torch.stack`` would write NCHW, adding transposing passes).
    """
    channels_last = x_seq.ndim == 5 and x_seq.device.type == "cpu"
    if channels_last:
        x_seq = x_seq.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, x_seq.shape[:2])
        v = v.contiguous(memory_format=torch.channels_last)
    vr = 0.0 if p.v_reset is None else p.v_reset
    keep = 1.0 - k
    spikes = []
    for x in x_seq.unbind(0):
        c = x * k if p.decay_input else x
        if vr != 0.0:
            c = c + vr * k
        h = c + v * keep
        fire = h >= p.v_threshold
        s = fire.to(h.dtype)
        v = h - s * p.v_threshold if p.v_reset is None else torch.where(fire, vr, h)
        spikes.append(s)
    if channels_last:  # a 4-D cat keeps the format; stack (5-D) would not
        return torch.cat(spikes).unflatten(0, x_seq.shape[:2]), v
    return torch.stack(spikes), v


def multi_step_with_decay(x_seq: torch.Tensor, v: torch.Tensor, k: Decay, p: LIFParams
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run T steps from potential ``v``; returns (spikes ``[T, ...]``, final V).

    Inference (autograd off) computes H = (1 - k) V + c[t] with the input term
    c[t] = k X[t] + k V_reset (decay_input) or X[t] + k V_reset: in eager mode in place
    (the input term precomputed once), under ``torch.compile`` as a pure loop Inductor fuses.
    Under autograd it runs the differentiable step (spikingjelly's formula and gradients).
    """
    needs_grad = torch.is_grad_enabled() and (x_seq.requires_grad or v.requires_grad
                                              or isinstance(k, torch.Tensor) and k.requires_grad)
    if needs_grad:
        spikes = []
        for x in x_seq:
            s, v = step_with_decay(x, v, k, p)
            spikes.append(s)
        return torch.stack(spikes), v
    if torch.compiler.is_compiling():
        return _pure_inference(x_seq, v, k, p)
    vr = 0.0 if p.v_reset is None else p.v_reset
    c = x_seq * k if p.decay_input else x_seq
    if vr != 0.0:
        c = c + vr * k
    keep = 1.0 - k
    out = torch.empty_like(x_seq)
    for t in range(x_seq.shape[0]):
        h = torch.add(c[t], v, alpha=keep) if isinstance(keep, float) else torch.addcmul(c[t], v, keep)
        s = torch.ge(h, p.v_threshold, out=out[t])  # the spike written straight into the output
        if p.v_reset is None:
            v = h.sub_(s, alpha=p.v_threshold)
        elif vr == 0.0:
            v = h.addcmul_(h, s, value=-1.0)  # H - H S: exactly 0 where S = 1, H where S = 0
        else:
            v = h.masked_fill_(s.bool(), vr)
    return out, v


def lif_multi_step(x_seq: torch.Tensor, state: LIFState | None, p: LIFParams) -> tuple[torch.Tensor, LIFState]:
    """LIF over a sequence; equals T calls of :func:`lif_step`.

    Args:
        x_seq: input currents, time first.
        state: state before the first step, or ``None`` for the resting potential.
        p: parameters (:class:`LIFParams`).

    Shape: x_seq ``[T, B, ...]``; spikes ``[T, B, ...]``; ``state.v`` ``[B, ...]``.

    Returns:
        ``(spikes, LIFState(v))`` with the state after the last step.
    """
    p = check_params(p)
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be [T, B, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    v = initial_v(x_seq[0], p) if state is None else state.v
    spikes, v = multi_step_with_decay(x_seq, v, 1.0 / p.tau, p)
    return spikes, LIFState(v)


class _LIFBase(nn.Module):
    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False, surrogate: str = "sigmoid",
                 alpha: float | None = None):
        super().__init__()
        self.p = check_params(LIFParams(tau, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.p._asdict().items())


class LIFCell(_LIFBase):
    """One LIF step, for a live loop that carries the state between windows.

    Args: see :class:`LIFParams` (same names and defaults as spikingjelly's ``LIFNode``).

    Shape: input ``[B, ...]``; output spikes ``[B, ...]``.

    Returns:
        ``forward(x, state=None) -> (spikes, LIFState)``.

    Example:
        >>> cell = LIFCell(tau=2.0, v_reset=None)
        >>> s, state = cell(torch.ones(1, 4))
        >>> s, state = cell(torch.ones(1, 4), state)
    """

    def forward(self, x: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        return lif_step(x, state, self.p)


class LIF(_LIFBase):
    """Multi-step LIF on ``[T, B, ...]``; starts from rest unless given a state.

    Args: see :class:`LIFParams` (same names and defaults as spikingjelly's ``LIFNode``).

    Shape: input ``[T, B, ...]``; output spikes ``[T, B, ...]``.

    Returns:
        ``forward(x, state=None) -> (spikes, LIFState)``.

    Example:
        >>> lif = LIF(tau=2.0, detach_reset=True)
        >>> spikes, state = lif(torch.rand(4, 2, 8))
    """

    def forward(self, x: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        return lif_multi_step(x, state, self.p)
