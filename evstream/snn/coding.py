"""Input coding layers for frame inputs: direct, Poisson, and randomized smoothing coding (RSC-SNN).

Wu et al. (RSC-SNN, ACM MM 2024) show that Poisson rate coding defends an SNN the way randomized
smoothing does (Cohen et al. 2019): the net sees a random draw around the input, and an attack
must work on the draws' average. Their Randomized Smoothing Coding replaces the Bernoulli draw by
the Gaussian one of randomized smoothing, ``x + N(0, sigma^2)`` fed straight to the first layer,
so the trade between clean accuracy and robustness is set by ``sigma`` and the smoothed classifier
has Cohen's certified radius.

Frames of event counts are first mapped to [0, 1] (:class:`CodedClassifier`'s ``scale``: counts per
pixel and frame that read as 1, clipped above), the range the perturbation budgets refer to. The
draws are fresh on every call, in training and in evaluation alike (the smoothing is part of the
classifier). Gradients flow through every coding: RSC's noise is additive; the Poisson draw passes
the gradient of its expectation (straight through, d spike / d p = 1), the surrogate a white-box
attacker uses.

Shape: every coding maps ``[T, B, ...]`` in [0, 1] to the same shape.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CODINGS", "CodedClassifier", "DirectCoding", "PoissonCoding", "RandomizedSmoothingCoding", "coding"]


class DirectCoding(nn.Module):
    """The frames themselves (direct input coding): deterministic."""

    random = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class PoissonCoding(nn.Module):
    """Bernoulli spikes with probability ``x`` (Poisson rate coding per time step), straight-through gradient."""

    random = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x.clamp(0, 1)
        spikes = torch.bernoulli(p.detach())
        return p + (spikes - p).detach()


class RandomizedSmoothingCoding(nn.Module):
    """RSC: ``x + sigma * N(0, 1)``, fresh Gaussian noise for every element and time step.

    Args:
        sigma: noise standard deviation, in the units of the [0, 1] input.
    """

    random = True

    def __init__(self, sigma: float):
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"RSC needs sigma > 0, got {sigma}")
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


CODINGS = ("direct", "poisson", "rsc")


def coding(name: str, sigma: float = 0.25) -> nn.Module:
    """The coding layer called ``name`` (one of :data:`CODINGS`); ``sigma`` is RSC's noise level."""
    if name == "direct":
        return DirectCoding()
    if name == "poisson":
        return PoissonCoding()
    if name == "rsc":
        return RandomizedSmoothingCoding(sigma)
    raise ValueError(f"unknown input coding {name!r}; choose one of {CODINGS}")


class CodedClassifier(nn.Module):
    """``net(coding(clamp(x / scale, 0, 1)))``: count frames scaled to [0, 1], coded, classified.

    Args:
        net: the classifier on coded frames ``[T, B, C, H, W]`` -> scores ``[B, classes]``.
        coding: a coding layer (:func:`coding`).
        scale: the count per pixel and frame that maps to 1 (larger counts clip to 1).

    ``unit(x)`` is the [0, 1] input an attack perturbs; ``forward_unit(u)`` classifies it.
    The parameters are the net's (a checkpoint of the coded net loads into the plain net as ``net.*``).
    """

    def __init__(self, net: nn.Module, coding: nn.Module, scale: float):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"input scale must be > 0, got {scale}")
        self.net, self.coding, self.scale = net, coding, float(scale)

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        """Count frames -> [0, 1]."""
        return (x / self.scale).clamp(0, 1)

    def forward_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Scores of [0, 1] frames (one draw of the coding)."""
        return self.net(self.coding(u))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_unit(self.unit(x))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
