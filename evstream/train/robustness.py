"""Adversarial robustness of a classifier: FGSM and PGD with expectation over the coding's randomness, and
the certified radius of randomized smoothing.

Attacks (white box, L-infinity, on the [0, 1] input ``u`` of a :class:`~evstream.snn.coding.CodedClassifier`):
FGSM (Goodfellow et al. 2015) takes one step ``u + eps sign(g)``; PGD (Madry et al. 2018) starts at a
uniform point of the eps-ball and takes ``steps`` steps of ``step_size``, each projected back on the
ball and on [0, 1]. ``g`` is the gradient of the cross-entropy of the scores, through the spiking
neurons' surrogate gradients, averaged over ``eot`` draws of the input coding (expectation over
transformation, Athalye et al. 2018: the attack on a randomized classifier). A randomized model's
prediction is the argmax of its scores averaged over ``draws`` draws.

Certification (Cohen et al. 2019, CERTIFY): the smoothed classifier ``g(u) = argmax_c P(f(u + N(0,
sigma^2 I)) = c)`` of a base classifier ``f``; ``n0`` noisy samples choose the class ``cA``, ``n``
more count it, ``pA`` is the one-sided Clopper-Pearson lower bound at level ``1 - alpha``, and the
prediction ``cA`` holds within the L2 radius ``sigma * Phi^-1(pA)`` with probability ``1 - alpha``
(abstain when ``pA <= 1/2``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ABSTAIN", "binomial_tail", "certify", "clopper_pearson_lower", "fgsm", "pgd", "predict",
           "smoothed_radius"]

ABSTAIN = -1
"""The class :func:`certify` returns when it cannot certify (``pA <= 1/2``)."""

Classifier = Callable[[torch.Tensor], torch.Tensor]  # [0, 1] frames [T, B, ...] -> scores [B, classes]


def _gradient(model: Classifier, u: torch.Tensor, labels: torch.Tensor, eot: int) -> torch.Tensor:
    """The input gradient of the cross-entropy, averaged over ``eot`` draws of the model's randomness."""
    u = u.detach().requires_grad_(True)
    total = torch.zeros_like(u)
    for _ in range(eot):
        loss = F.cross_entropy(model(u), labels)
        total += torch.autograd.grad(loss, u)[0]
    return total / eot


def fgsm(model: Classifier, u: torch.Tensor, labels: torch.Tensor, eps: float, *, eot: int = 1) -> torch.Tensor:
    """FGSM: ``clamp(u + eps * sign(E[grad]), 0, 1)``.

    Args:
        model: classifier of [0, 1] frames ``[T, B, ...]`` (e.g. ``CodedClassifier.forward_unit``).
        u: clean frames in [0, 1]; labels: ``[B]`` true classes.
        eps: L-infinity budget in input units.
        eot: draws of the model's randomness per gradient (1 for a deterministic model).
    """
    return (u + eps * _gradient(model, u, labels, eot).sign()).clamp(0, 1).detach()


def pgd(model: Classifier, u: torch.Tensor, labels: torch.Tensor, eps: float, *, steps: int = 7,
        step_size: float | None = None, eot: int = 1, random_start: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """PGD: ``steps`` signed-gradient steps of ``step_size`` (default ``eps / 4``), each projected on
    ``[u - eps, u + eps]`` and [0, 1]; from a uniform point of the ball when ``random_start``.

    Args as :func:`fgsm`; ``generator`` draws the start.
    """
    step_size = eps / 4 if step_size is None else float(step_size)
    low, high = (u - eps).clamp(min=0), (u + eps).clamp(max=1)
    x = u.detach().clone()
    if random_start:
        noise = torch.rand(u.shape, generator=generator, device=u.device, dtype=u.dtype)
        x = (x + (2 * noise - 1) * eps).clamp(0, 1)
    for _ in range(int(steps)):
        x = x + step_size * _gradient(model, x, labels, eot).sign()
        x = torch.maximum(torch.minimum(x, high), low).detach()
    return x


@torch.no_grad()
def predict(model: Classifier, u: torch.Tensor, *, draws: int = 1) -> torch.Tensor:
    """Classes ``[B]``: the argmax of the scores averaged over ``draws`` draws of the model's randomness."""
    return torch.stack([model(u).float() for _ in range(draws)]).mean(0).argmax(1)


def binomial_tail(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``, summed in log space (exact to float rounding)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])
    j = np.arange(k, n + 1)
    terms = (log_factorial[n] - log_factorial[j] - log_factorial[n - j]) + j * math.log(p) + (n - j) * math.log1p(-p)
    top = terms.max()
    return float(min(1.0, math.exp(top) * np.exp(terms - top).sum()))


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided Clopper-Pearson lower confidence bound of a binomial proportion at level ``1 - alpha``:
    the ``p`` with ``P(X >= k | n, p) = alpha`` (the Beta(k, n - k + 1) quantile at ``alpha``; 0 when k = 0).

    Cohen et al.'s ``proportion_confint(k, n, alpha=2 * alpha, method="beta")[0]``. Found by bisection
    on :func:`binomial_tail`, which increases with ``p``.
    """
    if not (0 <= k <= n and n >= 1 and 0 < alpha < 1):
        raise ValueError(f"need 0 <= k <= n, n >= 1 and 0 < alpha < 1, got k={k}, n={n}, alpha={alpha}")
    if k == 0:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if binomial_tail(k, n, mid) < alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def smoothed_radius(p_lower: float, sigma: float) -> float:
    """Cohen et al.'s certified L2 radius ``sigma * Phi^-1(pA)`` (0 when ``pA <= 1/2``: no certificate)."""
    return sigma * NormalDist().inv_cdf(p_lower) if p_lower > 0.5 else 0.0


@torch.no_grad()
def _noisy_counts(base: Classifier, u: torch.Tensor, sigma: float, count: int, batch: int, classes: int
                  ) -> np.ndarray:
    """How often ``base`` picks each class on ``count`` draws of ``u + N(0, sigma^2)`` (``u``: one sample ``[T, 1, ...]``)."""
    counts = np.zeros(classes, np.int64)
    done = 0
    while done < count:
        size = min(batch, count - done)
        x = u.expand(u.shape[0], size, *u.shape[2:])
        predictions = base(x + sigma * torch.randn_like(x)).argmax(1)
        counts += np.bincount(predictions.cpu().numpy(), minlength=classes)
        done += size
    return counts


def certify(base: Classifier, u: torch.Tensor, sigma: float, *, n0: int = 100, n: int = 1000, alpha: float = 0.001,
            batch: int = 250, classes: int) -> tuple[int, float]:
    """Cohen et al.'s CERTIFY for one sample: ``(class, certified L2 radius)``, or ``(ABSTAIN, 0.0)``.

    Args:
        base: the base classifier of [0, 1] frames (deterministic; e.g. ``CodedClassifier.net``).
        u: one sample's frames ``[T, 1, ...]`` in [0, 1].
        sigma: the smoothing noise.
        n0: draws that choose the class; n: draws that bound its probability; alpha: failure probability.
        batch: draws per forward pass; classes: the number of classes.
    """
    guess = int(_noisy_counts(base, u, sigma, n0, batch, classes).argmax())
    k = int(_noisy_counts(base, u, sigma, n, batch, classes)[guess])
    p_lower = clopper_pearson_lower(k, n, alpha)
    if p_lower <= 0.5:
        return ABSTAIN, 0.0
    return guess, smoothed_radius(p_lower, sigma)
