"""Losses of the classification papers: TA-SNN's rate MSE, TET, TRT, TSSD and SSNN's early exits.

Logits are ``[B, C]``; per-timestep logits ``[T, B, C]``; labels are class indices ``[B]``.
See ``models.md`` §2.4 (rate MSE), §4 (early exits), §6.1 (TRT), §6.2 (TSSD). TET is Deng et
al. 2022: cross-entropy at every timestep plus a small MSE pulling outputs to a constant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rate_mse_loss(rates: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MSE between output firing rates ``[B, C]`` (mean spikes over T) and the one-hot label (TA-SNN)."""
    return F.mse_loss(rates, F.one_hot(labels, rates.shape[-1]).to(rates.dtype))


def tet_loss(logits_t: torch.Tensor, labels: torch.Tensor, lam: float = 1e-3, phi: float = 1.0) -> torch.Tensor:
    """TET: ``(1 - lam) * mean_t CE(z_t, y) + lam * mean_t MSE(z_t, phi)`` on ``[T, B, C]`` logits."""
    steps = logits_t.shape[0]
    ce = F.cross_entropy(logits_t.flatten(0, 1), labels.repeat(steps))
    mse = F.mse_loss(logits_t, torch.full_like(logits_t, phi))
    return (1 - lam) * ce + lam * mse


def kl_consistency(logits: torch.Tensor, target_logits: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """``tau^2 * KL(softmax(target / tau) || softmax(logits / tau))`` (batch mean), the distillation term."""
    return F.kl_div(F.log_softmax(logits / tau, -1), F.log_softmax(target_logits / tau, -1), log_target=True,
                    reduction="batchmean") * tau * tau


def trt_loss(logits: torch.Tensor, logits_reversed: torch.Tensor, star_logits: torch.Tensor, labels: torch.Tensor,
             *, tau: float = 2.0, lambda_kl: float = 1.0, lambda_star: float = 1.0) -> torch.Tensor:
    """Temporal Reversed Training: CE on the original and time-reversed runs, their logit consistency,
    and CE of the head applied to the star feature ``r * r_reversed`` (``star_logits``)."""
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits_reversed, labels)
            + lambda_kl * kl_consistency(logits_reversed, logits.detach(), tau)
            + lambda_star * F.cross_entropy(star_logits, labels))


def tssd_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor, weak_logits: torch.Tensor,
              *, alpha: float = 1.0, beta: float = 1.0, tau: float = 2.0) -> torch.Tensor:
    """Temporal-Spatial Self-Distillation: task CE, the extended-T run as teacher (detached), and a
    weak intermediate classifier trained towards the final output (detached)."""
    return (F.cross_entropy(logits, labels) + alpha * kl_consistency(logits, teacher_logits.detach(), tau)
            + beta * kl_consistency(weak_logits, logits.detach(), tau))


def early_exit_loss(logits: torch.Tensor, early_logits: list[torch.Tensor], labels: torch.Tensor,
                    weight: float | None = None) -> torch.Tensor:
    """SSNN: CE of the final classifier plus ``weight`` (default 1/len(early)) times each early classifier's CE."""
    loss = F.cross_entropy(logits, labels)
    if early_logits:
        weight = 1.0 / len(early_logits) if weight is None else weight
        loss = loss + weight * sum(F.cross_entropy(z, labels) for z in early_logits)
    return loss
