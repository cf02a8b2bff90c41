"""I-LIF of SpikeYOLO: integer spikes, soft reset by the count, virtual binary timesteps.

Per time step t (potentials in units of the unit threshold):

    H[t] = decay V[t-1] + input_scale X[t]
    S[t] = round(clip(H[t], 0, D) scale) / scale     (straight-through gradient on [0, D])
    V[t] = H[t] - S[t]                               (S detached when detach_reset)

COCO variant (``mem_update`` + ``MultiSpike4``): decay 0.25, input_scale 1, D = 4, so
U[t] = 0.25 (U[t-1] - S[t-1]) + X[t]. Gen1 variant (modified spikingjelly LIF, tau = 2,
decay_input): decay = input_scale = 1 / 2. ``scale = 1`` gives integer spikes; other
scales give the multi-bit spikes of :mod:`evstream.snn.multibit`.

At inference each integer spike expands into D binary virtual steps, b[t, d] = 1[d < S[t]]
(:func:`expand_virtual_steps`); a linear layer gives the same sum.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from evstream.snn.surrogate import quantize

__all__ = ["ILIF", "ILIFCell", "ILIFParams", "ILIFState", "collapse_virtual_steps", "expand_virtual_steps",
           "ilif_multi_step", "ilif_step"]


class ILIFParams(NamedTuple):
    """I-LIF parameters.

    Args:
        decay: factor on the reset potential per step (COCO 0.25; Gen1 1 - 1/tau).
        input_scale: factor on the input (COCO 1; Gen1 1/tau).
        max_spike: clip bound D of the spike value.
        scale: quantisation levels per unit (1 = integer spikes).
        detach_reset: detach the spike in the reset term (True in both variants).
    """

    decay: float = 0.25
    input_scale: float = 1.0
    max_spike: float = 4.0
    scale: float = 1.0
    detach_reset: bool = True

    @classmethod
    def coco(cls, max_spike: int = 4) -> "ILIFParams":
        """SpikeYOLO COCO I-LIF: U = 0.25 (U - S) + X, D = ``max_spike``."""
        return cls(0.25, 1.0, float(max_spike), 1.0, True)

    @classmethod
    def gen1(cls, max_spike: int = 4, tau: float = 2.0) -> "ILIFParams":
        """SpikeYOLO Gen1 I-LIF: V + (X - V) / tau, integer fire, V -= S."""
        return cls(1.0 - 1.0 / tau, 1.0 / tau, float(max_spike), 1.0, True)


class ILIFState(NamedTuple):
    """I-LIF state: the potential after the soft reset, V."""

    v: torch.Tensor


def _check(p: ILIFParams) -> ILIFParams:
    if not isinstance(p, ILIFParams):
        raise TypeError(f"expected ILIFParams, got {type(p).__name__}")
    if not (p.max_spike > 0 and p.scale > 0):
        raise ValueError(f"max_spike and scale must be > 0, got {p.max_spike}, {p.scale}")
    return p


def _step(x: torch.Tensor, v: torch.Tensor, p: ILIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    h = v * p.decay + x * p.input_scale
    s = quantize(h, p.max_spike, p.scale)
    return s, h - (s.detach() if p.detach_reset else s)


def ilif_step(x: torch.Tensor, state: ILIFState | None, p: ILIFParams) -> tuple[torch.Tensor, ILIFState]:
    """One I-LIF step.

    Args:
        x: input X[t]. state: previous state or ``None`` (V = 0). p: :class:`ILIFParams`.

    Shape: x ``[B, ...]``; spikes and ``state.v`` alike.

    Returns:
        ``(spikes, ILIFState(v))`` with spikes in {0, 1/scale, ..., D}.

    Example:
        >>> ilif_step(torch.tensor([0.4, 2.6, 9.0]), None, ILIFParams.coco())[0]
        tensor([0., 3., 4.])
    """
    p = _check(p)
    v = torch.zeros_like(x) if state is None else state.v
    s, v = _step(x, v, p)
    return s, ILIFState(v)


def ilif_multi_step(x_seq: torch.Tensor, state: ILIFState | None, p: ILIFParams) -> tuple[torch.Tensor, ILIFState]:
    """I-LIF over ``[T, B, ...]``; equals T calls of :func:`ilif_step`.

    Returns:
        ``(spikes [T, B, ...], ILIFState(v))``.
    """
    p = _check(p)
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be [T, B, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    v = torch.zeros_like(x_seq[0]) if state is None else state.v
    spikes = []
    for x in x_seq:
        s, v = _step(x, v, p)
        spikes.append(s)
    return torch.stack(spikes), ILIFState(v)


def expand_virtual_steps(spikes: torch.Tensor, max_spike: int) -> torch.Tensor:
    """Expand integer spikes into D binary virtual timesteps, b[t, d] = 1[d < S[t]].

    Args:
        spikes: integer-valued spikes in [0, D].
        max_spike: D.

    Shape: ``[T, B, ...]`` -> ``[T * D, B, ...]`` (the D sub-steps of t are rows t*D ... t*D+D-1).

    Returns:
        A tensor of 0 and 1 whose sum over each group of D rows equals ``spikes``.
    """
    if spikes.ndim < 1:
        raise ValueError("spikes must have a time dimension")
    if torch.any(spikes != torch.round(spikes)) or torch.any(spikes < 0) or torch.any(spikes > max_spike):
        raise ValueError(f"spikes must be integers in [0, {max_spike}]")
    d = torch.arange(max_spike, device=spikes.device, dtype=spikes.dtype).view(1, max_spike, *[1] * (spikes.ndim - 1))
    binary = (d < spikes.unsqueeze(1)).to(spikes.dtype)
    return binary.flatten(0, 1)


def collapse_virtual_steps(binary: torch.Tensor, max_spike: int) -> torch.Tensor:
    """Sum each group of D virtual steps: ``[T * D, B, ...]`` -> ``[T, B, ...]``."""
    if binary.shape[0] % max_spike:
        raise ValueError(f"leading dimension {binary.shape[0]} is not a multiple of D = {max_spike}")
    return binary.unflatten(0, (-1, max_spike)).sum(1)


class _ILIFBase(nn.Module):
    def __init__(self, params: ILIFParams = ILIFParams()):
        super().__init__()
        self.p = _check(params)

    @classmethod
    def coco(cls, max_spike: int = 4):
        """The COCO variant (see :meth:`ILIFParams.coco`)."""
        return cls(ILIFParams.coco(max_spike))

    @classmethod
    def gen1(cls, max_spike: int = 4, tau: float = 2.0):
        """The Gen1 variant (see :meth:`ILIFParams.gen1`)."""
        return cls(ILIFParams.gen1(max_spike, tau))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.p._asdict().items())


class ILIFCell(_ILIFBase):
    """One I-LIF step. ``forward(x, state=None) -> (spikes, ILIFState)``; x ``[B, ...]``."""

    def forward(self, x: torch.Tensor, state: ILIFState | None = None) -> tuple[torch.Tensor, ILIFState]:
        return ilif_step(x, state, self.p)


class ILIF(_ILIFBase):
    """Multi-step I-LIF on ``[T, B, ...]``, from V = 0 unless given a state.

    Args:
        params: :class:`ILIFParams` (default: the COCO variant, D = 4).

    Returns:
        ``forward(x, state=None) -> (spikes [T, B, ...], ILIFState)``.

    Example:
        >>> spikes, state = ILIF.gen1()(torch.rand(2, 1, 8) * 6)
    """

    def forward(self, x: torch.Tensor, state: ILIFState | None = None) -> tuple[torch.Tensor, ILIFState]:
        return ilif_multi_step(x, state, self.p)
