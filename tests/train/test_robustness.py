"""Input codings, FGSM / PGD with EOT, Cohen et al.'s certificate, and the ``evstream robustness`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from evstream.cli import main
from evstream.nets import build
from evstream.snn.coding import CodedClassifier, DirectCoding, PoissonCoding, RandomizedSmoothingCoding, coding
from evstream.train.robustness import (ABSTAIN, binomial_tail, certify, clopper_pearson_lower, fgsm, pgd, predict,
                                       smoothed_radius)
from evstream.train.tasks.nmnist import NMNISTTask
from evstream.train.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")



class _Frames(nn.Module):
    """A linear classifier of ``[T, B, F]`` frames: the mean over T of ``W x_t + b``."""

    def __init__(self, features: int = 12, classes: int = 4, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.linear = nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).mean(0)


def _ce(model, u, labels) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model(u), labels))


def test_codings_draw_what_they_say():
    torch.manual_seed(0)
    p = torch.full((2000, 50), 0.3, requires_grad=True)
    spikes = PoissonCoding()(p)
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    assert abs(float(spikes.detach().mean()) - 0.3) < 4 * math.sqrt(0.3 * 0.7 / p.numel())  # Bernoulli(0.3)
    spikes.sum().backward()
    assert torch.equal(p.grad, torch.ones_like(p))  # straight through: the gradient of the expectation
    x = torch.zeros(4000, 50, requires_grad=True)
    noisy = RandomizedSmoothingCoding(0.25)(x)
    assert abs(float(noisy.detach().std()) - 0.25) < 0.005 and abs(float(noisy.detach().mean())) < 0.002
    noisy.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    assert torch.equal(DirectCoding()(p), p)
    with pytest.raises(ValueError, match="sigma > 0"):
        coding("rsc", 0.0)
    with pytest.raises(ValueError, match="unknown input coding"):
        coding("rate")
    model = CodedClassifier(_Frames(), DirectCoding(), scale=4.0)
    counts = torch.tensor([[[0.0, 2.0, 4.0, 9.0] * 3]])
    assert torch.equal(model.unit(counts), torch.tensor([[[0.0, 0.5, 1.0, 1.0] * 3]]))


def test_fgsm_raises_a_convex_loss_by_at_least_eps_times_the_gradient_norm():
    """For a linear classifier the cross-entropy is convex in the input, so
    ``loss(u + eps sign g) >= loss(u) + eps ||g||_1`` (the first-order term), a hand bound."""
    model = _Frames()
    torch.manual_seed(1)
    u, labels = torch.rand(3, 8, 12) * 0.8 + 0.1, torch.randint(0, 4, (8,))
    u_grad = u.clone().requires_grad_(True)
    loss_sum = F.cross_entropy(model(u_grad), labels, reduction="sum")
    (g,) = torch.autograd.grad(loss_sum, u_grad)
    eps = 0.05
    adversarial = fgsm(model, u, labels, eps)
    per_sample = F.cross_entropy(model(adversarial), labels, reduction="none").detach()
    clean = F.cross_entropy(model(u), labels, reduction="none").detach()
    bound = clean + eps * g.abs().sum((0, 2))
    assert bool((per_sample >= bound - 1e-5).all()) and bool((per_sample > clean).all())
    assert float((adversarial - u).abs().max()) == pytest.approx(eps)


def _trained_snn(sigma: float) -> tuple[CodedClassifier, torch.Tensor, torch.Tensor]:
    """A small PLIF net inside RSC, trained for a nmnist_few steps to tell a bright left half (class 0) from a
    bright right half (class 1) of 8x8 frames; with its training frames and labels."""
    torch.manual_seed(0)
    net = build("cnn_nmnist", num_classes=2, time_steps=3, input_size=8, channels=(4, 8), votes=2)
    model = CodedClassifier(net, RandomizedSmoothingCoding(sigma), scale=1.0)
    labels = torch.arange(8) % 2
    u = torch.rand(3, 8, 2, 8, 8) * 0.3
    for i, label in enumerate(labels.tolist()):
        u[:, i, :, :, 4 * label:4 * label + 4] += 0.6
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(30):
        optimiser.zero_grad()
        F.cross_entropy(model.forward_unit(u) * 10, labels).backward()
        optimiser.step()
    return model.eval(), u, labels


def test_attacks_raise_the_loss_of_a_spiking_net_through_its_surrogate_and_pgd_stays_in_the_ball():
    model, u, labels = _trained_snn(0.1)
    eps = 8 / 255

    def expected_loss(x):
        torch.manual_seed(5)  # the same noise draws for every input compared
        return float(np.mean([_ce(model.forward_unit, x, labels) for _ in range(16)]))

    clean = expected_loss(u)
    fast = fgsm(model.forward_unit, u, labels, eps, eot=4)
    strong = pgd(model.forward_unit, u, labels, eps, steps=7, eot=4, generator=torch.Generator().manual_seed(0))
    assert expected_loss(fast) > clean and expected_loss(strong) > clean
    for adversarial in (fast, strong):
        assert float((adversarial - u).abs().max()) <= eps + 1e-6
        assert float(adversarial.min()) >= 0 and float(adversarial.max()) <= 1
    near_top = torch.full_like(u, 0.99)  # projection keeps [0, 1] where the ball leaves it
    top = pgd(model.forward_unit, near_top, labels, eps, steps=3, eot=1, generator=torch.Generator().manual_seed(1))
    assert float(top.max()) <= 1.0 and float((top - near_top).abs().max()) <= eps + 1e-6


def test_predict_averages_the_draws():
    scores = iter([torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])])
    assert predict(lambda u: next(scores), torch.zeros(1), draws=2).tolist() == [1]  # mean (0.5, 1.5)


@pytest.mark.parametrize("k, n", [(0, 10), (1, 10), (7, 10), (10, 10), (480, 500), (990, 1000), (100, 100)])
def test_clopper_pearson_lower_bound_is_the_beta_quantile(k, n):
    alpha = 0.001
    expected = 0.0 if k == 0 else stats.beta.ppf(alpha, k, n - k + 1)  # Cohen et al.'s proportion_confint(beta)
    assert clopper_pearson_lower(k, n, alpha) == pytest.approx(expected, abs=1e-9)
    if 0 < k:
        assert binomial_tail(k, n, expected) == pytest.approx(alpha, rel=1e-6)


def test_certified_radius_by_hand():
    # all n draws agree: P(X >= n) = p^n = alpha, so pA = alpha^(1/n); 0.001^(1/100) = 0.933254300796991
    assert clopper_pearson_lower(100, 100, 0.001) == pytest.approx(0.933254300796991, abs=1e-12)
    # Phi^-1(0.975) = 1.959963984540054 (the two-sided 95 % normal quantile)
    assert smoothed_radius(0.975, 0.5) == pytest.approx(0.5 * 1.959963984540054, abs=1e-12)
    assert smoothed_radius(0.5, 1.0) == 0.0 and smoothed_radius(0.3, 1.0) == 0.0

    def always_three(x):
        out = torch.zeros(x.shape[1], 5)
        out[:, 3] = 1
        return out

    guess, radius = certify(always_three, torch.zeros(2, 1, 4), 0.25, n0=10, n=100, alpha=0.001, classes=5)
    assert guess == 3 and radius == pytest.approx(0.25 * stats.norm.ppf(0.001 ** (1 / 100)), abs=1e-9)
    coin = iter(range(10 ** 6))

    def alternating(x):
        out = torch.zeros(x.shape[1], 2)
        out[torch.arange(x.shape[1]), torch.tensor([next(coin) % 2 for _ in range(x.shape[1])])] = 1
        return out

    assert certify(alternating, torch.zeros(1, 1, 3), 0.5, n0=10, n=200, alpha=0.001, classes=2) == (ABSTAIN, 0.0)


def test_certificate_of_a_half_space_is_sound_and_close():
    """f(x) = [w . x > 0]: the smoothed classifier's exact radius is the distance to the plane, w . u / |w|."""
    w = torch.tensor([3.0, -1.0, 2.0, 0.5])

    def half_space(x):
        above = (x[0] @ w > 0).long()
        return F.one_hot(above, 2).float()

    u = torch.tensor([[[0.2, -0.1, 0.1, 0.0]]])  # [T=1, B=1, 4]
    distance = float(u[0, 0] @ w / w.norm())
    torch.manual_seed(0)
    guess, radius = certify(half_space, u, 0.5, n0=100, n=20000, alpha=0.001, batch=5000, classes=2)
    assert guess == 1 and 0.85 * distance < radius <= distance


def test_robustness_command_on_a_small_rsc_net(nmnist_few, tmp_path, capsys):
    options = {"net_options": {"channels": (4, 8), "votes": 2}, "val_fraction": 0.5, "input_scale": 8.0,
               "coding": "rsc", "coding_sigma": 0.25}
    task = NMNISTTask(nmnist_few, cache_dir=tmp_path / "cache", **options)
    Trainer(task, TrainConfig(epochs=1, batch_size=5, out_dir=str(tmp_path / "run"), progress=False)).fit()
    common = ["robustness", "nmnist", "--data", str(nmnist_few), "--checkpoint", str(tmp_path / "run/last.pt"),
              "--cache-dir", str(tmp_path / "cache"), "--set", "task.val_fraction=0.5",
              "--set", "task.net_options={channels: [4, 8], votes: 2}", "--samples", "4", "--eps", "8/255", "--eot", "2",
              "--draws", "2", "--pgd-steps", "2", "--certify-n", "50", "--n0", "10", "--quiet"]
    argv = [*common, "--set", "task.input_scale=8", "--set", "task.coding=rsc"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 4 and result["split"] == "val" and result["sigma"] == 0.25
    assert result["coding"] == "RandomizedSmoothingCoding" and result["eot"] == 2
    for key in ("top1_clean", "top1_fgsm@8/255", "top1_pgd@8/255", "certified_top1", "abstained"):
        assert 0 <= result[key] <= 1
    for bad, problem in ((["--eps", "2"], "must be in (0, 1]"), (["--eps", "x"], "expected a number"),
                         (["--eot", "0"], "--eot must be at least 1"), (["--alpha", "1"], "--alpha must be in")):
        assert main([*argv, *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and problem in err
    assert main(common) == 2  # the same net without its coding settings reads counts
    assert "set task.input_scale" in capsys.readouterr().err
