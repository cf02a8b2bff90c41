"""I-LIF (COCO and Gen1), virtual timesteps and multi-bit spikes."""

import pytest
import torch
from torch.nn import functional as F

from evstream.snn import (ILIF, ILIFCell, ILIFParams, collapse_virtual_steps, expand_virtual_steps, ilif_multi_step,
                          multibit_lif, multibit_params, set_bits)


def test_coco_hand_trajectory():
    # U0 = X0; U_t = 0.25 (U_{t-1} - S_{t-1}) + X_t; S = round(clip(U, 0, 4))
    x = torch.tensor([[2.7], [1.0], [6.0], [0.1]])
    s, state = ILIF.coco()(x)
    # U0 = 2.7 -> 3, V = -0.3; U1 = -0.075 + 1 = 0.925 -> 1, V = -0.075; U2 = 5.98125 -> 4, V = 1.98125
    # U3 = 0.4953125 + 0.1 = 0.5953125 -> 1, V = -0.4046875
    assert s.flatten().tolist() == [3.0, 1.0, 4.0, 1.0]
    assert state.v.item() == pytest.approx(-0.4046875)


def test_gen1_hand_trajectory():
    # H = V + (X - V) / 2; S = round(clip(H, 0, 4)); V = H - S
    x = torch.tensor([[5.0], [3.0], [-2.0]])
    s, state = ILIF.gen1()(x)
    # H0 = 2.5 -> 2 (half to even), V = 0.5; H1 = 1.75 -> 2, V = -0.25; H2 = -1.125 -> 0, V = -1.125
    assert s.flatten().tolist() == [2.0, 2.0, 0.0]
    assert state.v.item() == pytest.approx(-1.125)


def test_straight_through_gradient_and_detached_reset():
    x = torch.tensor([[-0.5, 0.5, 3.0, 5.0]], dtype=torch.float64, requires_grad=True)
    s, _ = ILIF.coco()(x)
    s.sum().backward()
    assert x.grad.flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    # two steps: S1 depends on X0 only through 0.25 U0 (reset detached)
    x = torch.tensor([[1.2], [1.0]], dtype=torch.float64, requires_grad=True)
    s, _ = ILIF.coco()(x)
    s[1].sum().backward()
    assert x.grad.flatten().tolist() == [0.25, 1.0]


def test_gradcheck_of_the_smooth_part():
    # Away from rounding boundaries the quantiser is piecewise constant; with the straight-through
    # gradient the backward equals that of the identity-in-[0, D] map. Check the potential path
    # (the returned state is differentiable and smooth in x).
    def final_v(x):
        return ilif_multi_step(x, None, ILIFParams.gen1())[1].v

    x = torch.tensor([[0.3, 1.3], [2.2, 0.6]], dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(final_v, (x,), fast_mode=True)


@pytest.mark.parametrize("d", [1, 2, 4, 8])
def test_virtual_steps_are_binary_and_conv_is_exact(d):
    g = torch.Generator().manual_seed(6)
    x = torch.rand(3, 2, 4, 6, 6, generator=g, dtype=torch.float64) * (d + 1.5) - 0.5
    s, _ = ILIF(ILIFParams.coco(d))(x)
    binary = expand_virtual_steps(s, d)
    assert binary.shape == (3 * d, 2, 4, 6, 6)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(collapse_virtual_steps(binary, d), s)
    # dyadic weights keep every float sum exact, so the equality below is exact, not approximate
    w = torch.randint(-8, 9, (5, 4, 3, 3), generator=g).to(torch.float64) / 8
    conv_int = F.conv2d(s.flatten(0, 1), w, padding=1).unflatten(0, (3, 2))
    conv_bin = F.conv2d(binary.flatten(0, 1), w, padding=1).unflatten(0, (3 * d, 2))
    assert torch.equal(collapse_virtual_steps(conv_bin, d), conv_int)
    # sub-step d of step t fires iff d < S[t]
    assert torch.equal(binary.unflatten(0, (3, d))[:, 0], (s >= 1).to(s.dtype))


def test_expand_rejects_non_integer_spikes():
    with pytest.raises(ValueError):
        expand_virtual_steps(torch.tensor([[0.5]]), 4)
    with pytest.raises(ValueError):
        expand_virtual_steps(torch.tensor([[5.0]]), 4)


def test_cell_and_state_carry():
    x = torch.rand(6, 2, 3, generator=torch.Generator().manual_seed(7)) * 5
    whole, st_whole = ILIF.gen1()(x)
    a, st = ILIF.gen1()(x[:2])
    b, st = ILIF.gen1()(x[2:], st)
    torch.testing.assert_close(torch.cat([a, b]), whole)
    cell, state, outs = ILIFCell.gen1(), None, []
    for xt in x:
        o, state = cell(xt, state)
        outs.append(o)
    torch.testing.assert_close(torch.stack(outs), whole)
    torch.testing.assert_close(state.v, st_whole.v)


def test_multibit_quantiser_and_bits():
    p = multibit_params(2, 1)
    assert (p.max_spike, p.scale) == (3.5, 2.0)
    s, state = multibit_lif(2, 1)(torch.tensor([[1.3], [9.0]]))
    # S0 = round(2.6)/2 = 1.5, V = -0.2; U1 = -0.05 + 9 -> clip 3.5, V = 5.45
    assert s.flatten().tolist() == [1.5, 3.5]
    assert state.v.item() == pytest.approx(5.45)
    assert set_bits(torch.tensor([0.0, 0.5, 1.5, 3.5]), 1).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        multibit_params(0, 0)
