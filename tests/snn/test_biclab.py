"""The BICLab cell against its formula on hand cases."""

import pytest
import torch

from evstream.snn import BICLabCell, BICLabLIF, BICLabParams, biclab_multi_step, biclab_step


def test_hand_trajectory_asa_reset():
    # decay 0.3, V_th 0.3, reset to 0: U = H + X; O = U >= 0.3; H = 0.3 (O*0 + (1-O) U)
    x = torch.tensor([[0.2], [0.2], [0.1], [0.5]])
    out, state = BICLabLIF()(x)
    # U0 = 0.2 -> 0, H = 0.06; U1 = 0.26 -> 0, H = 0.078; U2 = 0.178 -> 0, H = 0.0534; U3 = 0.5534 -> 1, H = 0
    assert out.flatten().tolist() == [0.0, 0.0, 0.0, 1.0]
    assert state.h.item() == 0.0


def test_hand_trajectory_ta_snn_reset_to_threshold_and_bias():
    x = torch.tensor([[0.5], [0.0]])
    out, state = BICLabLIF(v_reset=0.3, bias=0.01)(x)
    # U0 = 0.5 -> spike, H = 0.3*0.3 + 0.01 = 0.1; U1 = 0.1 -> 0, H = 0.03 + 0.01 = 0.04
    assert out.flatten().tolist() == [1.0, 0.0]
    assert state.h.item() == pytest.approx(0.04)


def test_liaf_outputs_relu_of_membrane():
    x = torch.tensor([[-0.2], [0.5]])
    out, _ = BICLabLIF(liaf=True)(x)
    # U0 = -0.2 -> relu 0, H = -0.06; U1 = 0.44
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 0.44]))


def test_rectangle_gradient_hand_case():
    x = torch.tensor([[0.2, 0.6, 0.31]], requires_grad=True)
    out, _ = BICLabLIF(alpha=0.5)(x)
    out.sum().backward()
    # dO/dX = 1/a where |U - 0.3| < a/2 = 0.25: 0.2 in, 0.6 out, 0.31 in
    assert x.grad.flatten().tolist() == [2.0, 0.0, 2.0]


def test_gradient_through_reset_two_steps():
    # U1 = 0.3 (H0) + X1 with H0 = decay (1 - O0) U0; check dU1/dX0 analytically.
    x0 = torch.tensor([0.25], dtype=torch.float64, requires_grad=True)
    p = BICLabParams(alpha=0.5)
    o0, st = biclab_step(x0, None, p)
    o1, _ = biclab_step(torch.tensor([0.28], dtype=torch.float64), st, p)
    o1.backward()
    # dO1/dU1 = 2 (|0.355 - 0.3| < 0.25); dU1/dX0 = 0.3 (1 - O0) - 0.3 U0 dO0/dU0 = 0.3 - 0.3*0.25*2
    assert x0.grad.item() == pytest.approx(2 * (0.3 - 0.3 * 0.25 * 2))


def test_cell_equals_multi_step_and_membrane_attention_is_applied():
    x = torch.rand(4, 2, 3, 5, 5, generator=torch.Generator().manual_seed(5))
    halve = torch.nn.Identity()
    multi, _ = BICLabLIF(attention=halve)(x)
    cell, state, outs = BICLabCell(), None, []
    for xt in x:
        o, state = cell(xt, state)
        outs.append(o)
    torch.testing.assert_close(torch.stack(outs), multi)

    class Scale(torch.nn.Module):
        def forward(self, u):
            assert u.shape[0] == 1
            return 2.0 * u

    scaled, _ = biclab_multi_step(x, None, BICLabParams(), Scale())
    expected, h = [], torch.zeros_like(x[0])
    for xt in x:  # the formula with U <- 2U before firing
        u = 2.0 * (h + xt)
        o = (u >= 0.3).float()
        h = 0.3 * (1 - o) * u
        expected.append(o)
    torch.testing.assert_close(scaled, torch.stack(expected))
