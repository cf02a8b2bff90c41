"""Surrogates: forward is the step, backward is the derivative of the smooth primitive."""

import pytest
import torch

from evstream.snn.surrogate import SURROGATES, heaviside, quantize, surrogate_names


@pytest.mark.parametrize("name", surrogate_names())
@pytest.mark.parametrize("alpha", [None, 0.7, 3.0])
def test_grad_matches_finite_differences_of_primitive(name, alpha):
    sur = SURROGATES[name]
    a = sur.alpha if alpha is None else alpha
    x = torch.linspace(-2.0, 2.0, 401, dtype=torch.float64)
    kinks = torch.tensor([-0.5 * a, 0.5 * a, -1.0 / a, 1.0 / a, 0.0], dtype=torch.float64)
    x = x[(x[:, None] - kinks).abs().min(1).values > 1e-3]
    eps = 1e-6
    fd = (sur.primitive(x + eps, a) - sur.primitive(x - eps, a)) / (2 * eps)
    torch.testing.assert_close(sur.grad(x, a), fd, rtol=1e-6, atol=1e-7)
    assert float(sur.primitive(torch.tensor(-50.0, dtype=torch.float64), a)) == pytest.approx(0.0, abs=1e-2)
    assert float(sur.primitive(torch.tensor(50.0, dtype=torch.float64), a)) == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize("name", surrogate_names())
def test_heaviside_forward_and_backward(name):
    x = torch.tensor([-1.0, -0.1, 0.0, 0.1, 2.0], dtype=torch.float64, requires_grad=True)
    y = heaviside(x, name, 1.5)
    assert y.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    y.backward(torch.arange(1.0, 6.0, dtype=torch.float64))
    expected = torch.arange(1.0, 6.0, dtype=torch.float64) * SURROGATES[name].grad(x.detach(), 1.5)
    torch.testing.assert_close(x.grad, expected)


def test_rectangle_is_biclab_window():
    x = torch.tensor([-0.3, -0.2, 0.0, 0.24, 0.26], requires_grad=True)
    heaviside(x, "rectangle", 0.5).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 2.0, 2.0, 0.0]


def test_bad_names():
    with pytest.raises(ValueError):
        heaviside(torch.zeros(2), "nope")
    with pytest.raises(TypeError):
        heaviside(torch.zeros(2), torch.nn.Sigmoid())
    with pytest.raises(ValueError):
        heaviside(torch.zeros(2), "atan", -1.0)


def test_quantize_values_and_straight_through_gradient():
    u = torch.tensor([-0.5, 0.0, 0.4, 0.6, 2.5, 3.7, 4.0, 5.2], requires_grad=True)
    s = quantize(u, 4.0)
    assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 4.0, 4.0, 4.0]  # round half to even, as torch.round
    s.sum().backward()
    assert u.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    half = quantize(torch.tensor([0.3, 1.26, 9.0]), 3.5, 2.0)
    assert half.tolist() == [0.5, 1.5, 3.5]
