"""Loss functions against their formulas on hand cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from evstream.train.losses import (early_exit_loss, kl_consistency, rate_mse_loss, tet_loss, trt_loss,
                                   tssd_loss)


def test_rate_mse_hand_case():
    rates = torch.tensor([[0.5, 0.0, 1.0]])
    # one-hot of class 2 = [0, 0, 1]: squared errors 0.25, 0, 0 -> mean 0.25 / 3
    assert rate_mse_loss(rates, torch.tensor([2])).item() == pytest.approx(0.25 / 3)


def test_tet_is_mean_of_per_step_ce_plus_mse():
    logits = torch.tensor([[[2.0, 0.0]], [[0.0, 2.0]]])  # T=2, B=1, C=2
    labels = torch.tensor([0])
    ce0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    ce1 = -math.log(1 / (math.exp(2) + 1))
    mse = ((2 - 1) ** 2 + 1 + 1 + (2 - 1) ** 2) / 4
    assert tet_loss(logits, labels, lam=0.1).item() == pytest.approx(0.9 * (ce0 + ce1) / 2 + 0.1 * mse, rel=1e-6)


def test_kl_is_zero_for_equal_logits_and_positive_otherwise():
    z = torch.randn(4, 5)
    assert kl_consistency(z, z).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_consistency(z, z + torch.randn(4, 5)).item() > 0


def test_trt_tssd_and_early_exit_compose_their_terms():
    g = torch.Generator().manual_seed(0)
    z, zr, zs, zw = (torch.randn(3, 4, generator=g) for _ in range(4))
    y = torch.tensor([0, 1, 3])
    ce = F.cross_entropy
    expected = ce(z, y) + ce(zr, y) + 0.5 * kl_consistency(zr, z, 2.0) + 2.0 * ce(zs, y)
    assert trt_loss(z, zr, zs, y, tau=2.0, lambda_kl=0.5, lambda_star=2.0).item() == pytest.approx(expected.item())
    expected = ce(z, y) + 0.3 * kl_consistency(z, zr, 3.0) + 0.7 * kl_consistency(zw, z, 3.0)
    assert tssd_loss(z, y, zr, zw, alpha=0.3, beta=0.7, tau=3.0).item() == pytest.approx(expected.item())
    assert early_exit_loss(z, [zr, zw], y).item() == pytest.approx((ce(z, y) + 0.5 * (ce(zr, y) + ce(zw, y))).item())


def test_distillation_targets_are_detached():
    z = torch.randn(2, 3, requires_grad=True)
    teacher = torch.randn(2, 3, requires_grad=True)
    tssd_loss(z, torch.tensor([0, 1]), teacher, torch.randn(2, 3)).backward()
    assert teacher.grad is None and z.grad is not None
