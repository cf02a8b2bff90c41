"""Multi-bit spikes (Xiao et al., arXiv 2407.05739): fixed-point spikes with m.n bits.

A spike holds m integer and n fractional bits:

    S = clip(round(U 2^n) / 2^n, 0, 2^m - 2^-n)     (straight-through gradient inside the clip)

The neuron is the I-LIF of :mod:`evstream.snn.ilif` with ``scale = 2^n`` and
``max_spike = 2^m - 2^-n``; SpikeYOLO's I-LIF is n = 0 with D = 2^m - 1 levels.
Energy is counted as one accumulate per set bit (:func:`set_bits`).
"""

from __future__ import annotations

import torch

from evstream.snn.ilif import ILIF, ILIFParams

__all__ = ["multibit_lif", "multibit_params", "set_bits"]


def multibit_params(int_bits: int, frac_bits: int = 0, decay: float = 0.25, input_scale: float = 1.0,
                    detach_reset: bool = True) -> ILIFParams:
    """I-LIF parameters for m = ``int_bits``, n = ``frac_bits`` fixed-point spikes.

    Returns:
        :class:`ILIFParams` with ``scale = 2**n`` and ``max_spike = 2**m - 2**-n``.

    Example:
        >>> multibit_params(2, 1).max_spike
        3.5
    """
    if int_bits < 0 or frac_bits < 0 or int_bits + frac_bits < 1:
        raise ValueError(f"need int_bits, frac_bits >= 0 and at least one bit, got {int_bits}, {frac_bits}")
    scale = float(2 ** frac_bits)
    return ILIFParams(decay, input_scale, 2.0 ** int_bits - 1.0 / scale, scale, detach_reset)


def multibit_lif(int_bits: int, frac_bits: int = 0, decay: float = 0.25, input_scale: float = 1.0) -> ILIF:
    """A multi-step multi-bit neuron (an :class:`ILIF` with :func:`multibit_params`)."""
    return ILIF(multibit_params(int_bits, frac_bits, decay, input_scale))


def set_bits(spikes: torch.Tensor, frac_bits: int = 0) -> torch.Tensor:
    """Number of set bits of each fixed-point spike (accumulates it costs).

    Shape: any -> same shape, integer dtype.
    """
    code = torch.round(spikes * 2 ** frac_bits).to(torch.int64)
    count = torch.zeros_like(code)
    while bool(torch.any(code > 0)):
        count += code & 1
        code = code >> 1
    return count
