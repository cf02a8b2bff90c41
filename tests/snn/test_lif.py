"""LIF against spikingjelly's LIFNode (multi-step), golden trajectories and state handling."""

import pytest
import torch

from evstream.snn import LIF, LIFCell, LIFParams, LIFState, SeqConv2d, lif_multi_step, lif_step

sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
sj_surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")

SJ_SURROGATES = {"sigmoid": lambda: sj_surrogate.Sigmoid(), "atan": lambda: sj_surrogate.ATan()}

CONFIGS = [
    dict(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False, surrogate="sigmoid"),
    dict(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=None, detach_reset=True, surrogate="sigmoid"),
    dict(tau=3.0, decay_input=False, v_threshold=0.8, v_reset=None, detach_reset=False, surrogate="atan"),
    dict(tau=1.5, decay_input=False, v_threshold=0.5, v_reset=-0.2, detach_reset=True, surrogate="atan"),
    dict(tau=4.0, decay_input=True, v_threshold=1.2, v_reset=0.3, detach_reset=False, surrogate="sigmoid"),
]


def run_sj(cfg, x):
    cfg = dict(cfg)
    node = sj_neuron.LIFNode(surrogate_function=SJ_SURROGATES[cfg.pop("surrogate")](), step_mode="m", **cfg)
    return node(x), node.v


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_spikingjelly_forward_and_backward(cfg, dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(8, 3, 5, 4, generator=g, dtype=dtype) * 1.5 + 0.6)
    grad_out = torch.randn(x.shape, generator=g, dtype=dtype)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref, ref_v = run_sj(cfg, xa)
    out, state = LIF(**cfg)(xb)
    assert 0.05 < float(out.detach().mean()) < 0.95
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(state.v, ref_v, rtol=0, atol=1e-6)
    (ref * grad_out).sum().backward()
    (out * grad_out).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_inference_path_equals_autograd_path(cfg):
    x = torch.randn(6, 2, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5
    v0 = torch.randn(2, 7, dtype=torch.float64) * 0.3
    with torch.no_grad():
        fast, fast_state = LIF(**cfg)(x, LIFState(v0))
    slow, slow_state = LIF(**cfg)(x.requires_grad_(), LIFState(v0))
    torch.testing.assert_close(fast, slow.detach(), rtol=0, atol=0)
    torch.testing.assert_close(fast_state.v, slow_state.v.detach(), rtol=0, atol=1e-12)
    assert v0.abs().sum() > 0  # the caller's state is not modified in place


def test_golden_trajectory_hard_reset():
    # tau = 2, decay_input: H = V + (X - V) / 2; V_th = 1, hard reset to 0.
    x = torch.tensor([[1.0], [1.0], [1.0], [3.0], [0.0]])
    spikes, state = LIF()(x)
    # H: 0.5, 0.75, 0.875, 1.9375 -> spike, reset 0, then 0.
    assert spikes.flatten().tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert state.v.item() == 0.0


def test_golden_trajectory_soft_reset():
    x = torch.tensor([[3.0], [0.0], [2.0]])
    spikes, state = LIF(v_reset=None)(x)
    # H0 = 1.5 -> spike, V = 0.5; H1 = 0.25; H2 = 0.25 + (2 - 0.25)/2 = 1.125 -> spike, V = 0.125
    assert spikes.flatten().tolist() == [1.0, 0.0, 1.0]
    assert state.v.item() == pytest.approx(0.125)


def test_cell_and_split_sequences_equal_whole_sequence():
    x = torch.randn(10, 2, 3, generator=torch.Generator().manual_seed(2)) + 0.7
    whole, whole_state = LIF(v_reset=None)(x)
    first, st = LIF(v_reset=None)(x[:4])
    second, st = LIF(v_reset=None)(x[4:], st)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    torch.testing.assert_close(st.v, whole_state.v)
    cell, state, outs = LIFCell(v_reset=None), None, []
    for xt in x:
        s, state = cell(xt, state)
        outs.append(s)
    torch.testing.assert_close(torch.stack(outs), whole)
    s, _ = lif_step(x[0], None, LIFParams(v_reset=None))
    torch.testing.assert_close(s, whole[0])


def test_multi_step_call_starts_from_rest():
    lif = LIF()
    x = torch.full((3, 1, 2), 0.9)
    a, _ = lif(x)
    b, _ = lif(x)
    assert torch.equal(a, b)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        LIF(tau=0.5)
    with pytest.raises(ValueError):
        LIF(surrogate="unknown")
    with pytest.raises(TypeError):
        lif_multi_step(torch.zeros(2, 1), None, {"tau": 2.0})
    with pytest.raises(ValueError):
        LIF()(torch.zeros(0, 1, 2))


def test_repr_shows_hyperparameters():
    assert "tau=3.0" in repr(LIF(tau=3.0)) and "v_reset=None" in repr(LIF(v_reset=None))


@pytest.mark.parametrize("shape", [(5, 2, 6), (5, 2, 3, 4, 4)])  # the 5-D case runs channels_last
@pytest.mark.parametrize("cfg", CONFIGS)
def test_compile_branch_equals_eager_inference(cfg, shape, monkeypatch):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(11)) + 0.5
    with torch.no_grad():
        eager, eager_state = LIF(**cfg)(x)
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        pure, pure_state = LIF(**cfg)(x)
    assert pure.shape == eager.shape and pure_state.v.shape == eager_state.v.shape
    torch.testing.assert_close(pure, eager, rtol=0, atol=0)
    torch.testing.assert_close(pure_state.v, eager_state.v, rtol=0, atol=1e-6)


@pytest.mark.parametrize("compiling", [False, True])
@pytest.mark.parametrize("v_reset, final_v", [(0.0, [0.2, 0.0]), (0.3, [0.5, 0.3]), (None, [0.45, 1.55])])
def test_inference_loops_hand_case(v_reset, final_v, compiling, monkeypatch):
    # tau 2, V_th 1. Neuron 0: H = V_r + 1.5 (spike), then V_r + 0.2 (soft: 0.5 + (0.4 - 0.5) / 2).
    # Neuron 1: H = V_r + 0.1, then V_r + 0.1 + 4.9 / 2 (spike; soft: 2.55 - 1). Hard reset is exact.
    x = torch.tensor([[3.0, 0.2], [0.4, 5.0]])
    if compiling:
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with torch.no_grad():
        spikes, state = LIF(v_reset=v_reset)(x)
    assert spikes.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    torch.testing.assert_close(state.v, torch.tensor(final_v), rtol=0, atol=1e-6)
    if v_reset is not None:
        assert state.v[1] == torch.tensor(v_reset)  # exactly V_reset in float32


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # Inductor's import
def test_torch_compile_equals_eager_with_channels_last_spikes():
    conv, lif = SeqConv2d(2, 8, 3, padding=1).eval(), LIF(tau=2.0, detach_reset=True)
    def net(x):
        return lif(conv(x))
    x = torch.rand(3, 2, 2, 8, 8, generator=torch.Generator().manual_seed(5)) * 3.0
    with torch.inference_mode():
        eager, eager_state = net(x)
        compiled, compiled_state = torch.compile(net, dynamic=False)(x)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=0)
    torch.testing.assert_close(compiled_state.v, eager_state.v, rtol=0, atol=1e-6)
    assert compiled.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
