"""PLIF against spikingjelly's ParametricLIFNode, including the gradient of w."""

import pytest
import torch

from evstream.snn import PLIF, PLIFCell

sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron")


@pytest.mark.parametrize("decay_input, v_reset, detach_reset", [(True, 0.0, False), (False, None, True),
                                                                (True, None, False)])
def test_equals_spikingjelly(decay_input, v_reset, detach_reset):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 2, 9, generator=g, dtype=torch.float64) + 0.7
    grad_out = torch.randn(x.shape, generator=g, dtype=torch.float64)
    ref_node = sj_neuron.ParametricLIFNode(init_tau=3.0, decay_input=decay_input, v_reset=v_reset,
                                           detach_reset=detach_reset, step_mode="m").double()
    ours = PLIF(init_tau=3.0, decay_input=decay_input, v_reset=v_reset, detach_reset=detach_reset).double()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = ref_node(xa)
    out, state = ours(xb)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(state.v, ref_node.v, rtol=0, atol=1e-6)
    (ref * grad_out).sum().backward()
    (out * grad_out).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.w.grad, ref_node.w.grad, rtol=1e-6, atol=1e-6)
    assert float(ours.w.grad.abs()) > 0


def test_cell_matches_multi_step_and_inference_path():
    x = torch.rand(5, 3, 4, generator=torch.Generator().manual_seed(4)) * 2
    multi, _ = PLIF()(x)
    with torch.no_grad():
        fast, _ = PLIF()(x)
    cell, state, outs = PLIFCell(), None, []
    for xt in x:
        s, state = cell(xt, state)
        outs.append(s)
    torch.testing.assert_close(torch.stack(outs), multi)
    torch.testing.assert_close(fast, multi.detach())


def test_init_tau_checked():
    with pytest.raises(ValueError):
        PLIF(init_tau=1.0)
