"""Spike-driven Transformer: parameter counts against the official layer table, SPS shapes, membrane
shortcuts, the paper's energy accounting, (the gesture-task training step: tests/train/test_classification_task.py)."""

import pytest
import torch

from evstream.nets import build
from evstream.nets.sdt import SpikeDrivenTransformer, SpikeMLP, SpikingPatchSplitting
from evstream.snn import LIF, SpikeProfiler

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def official_parameters(in_channels, dim, depth, heads, classes, mlp_ratio=4):
    """The parameter count of the official ``SpikeDrivenTransformer``, from its layer table."""
    widths = [in_channels, dim // 8, dim // 4, dim // 2, dim]
    sps = sum(9 * a * b + 2 * b for a, b in zip(widths[:-1], widths[1:])) + 9 * dim * dim + 2 * dim  # + RPE
    hidden = mlp_ratio * dim
    attention = 3 * (dim * dim + 2 * dim) + heads * heads + (dim * dim + dim + 2 * dim)  # q k v, talking_heads, proj
    mlp = (dim * hidden + hidden + 2 * hidden) + (hidden * dim + dim + 2 * dim)
    return sps + depth * (attention + mlp) + dim * classes + classes


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_parameter_counts_equal_the_official_code():
    # the official code builds (printed by its model/spikeformer.py with conf/gesture/2_256_200E_t16.yml):
    # 2,567,051 parameters, the paper's 2.57M for 2-256 on DVS128 Gesture / CIFAR10-DVS
    assert official_parameters(2, 256, 2, 8, 11) == 2_567_051
    assert round(official_parameters(2, 256, 2, 8, 10) / 1e6, 2) == 2.57
    # its talking_heads conv (h x h per block) is never called in forward and is left out here
    for name, kw, table in [("sdt_gesture", {}, (2, 256, 2, 8, 11)), ("sdt_cifar10dvs", {}, (2, 256, 2, 8, 10)),
                            ("sdt_nmnist", {}, (2, 128, 2, 8, 10)),
                            ("sdt_gesture", {"num_classes": 1000, "in_channels": 3, "dim": 384, "depth": 8,
                                             "pooling": "1111"}, (3, 384, 8, 8, 1000))]:
        _, dim, depth, heads, _ = table
        assert count(build(name, **kw)) == official_parameters(*table) - depth * heads * heads
    assert official_parameters(3, 384, 8, 8, 1000) == 16_816_536  # ImageNet 8-384 (paper: 16.81M)


def test_sps_token_grid_and_rpe_on_the_membrane():
    sps = SpikingPatchSplitting(2, 16, "0111").double().eval()
    x = torch.rand(2, 1, 2, 32, 32, dtype=torch.float64) * 3
    assert sps(x).shape == (2, 1, 16, 4, 4)  # the gesture model's pools: 128 x 128 -> 16 x 16 tokens, 32 -> 4
    assert SpikingPatchSplitting(2, 64, "1110")(torch.rand(1, 1, 2, 34, 34)).shape == (1, 1, 64, 5, 5)
    with torch.no_grad():  # RPE branch silenced: the output is the stage-3 membrane itself
        sps.rpe_bn.weight.zero_()
        sps.rpe_bn.bias.zero_()
        h = x
        for i in range(3):
            h = sps.lifs[i](sps.bns[i](sps.convs[i](h)))[0]
            h = sps.pool(h) if i else h
        expected = sps.pool(sps.bns[3](sps.convs[3](h)))
        torch.testing.assert_close(sps(x), expected)
    with pytest.raises(ValueError, match="pooling"):
        SpikingPatchSplitting(2, 64, "011")
    with pytest.raises(ValueError, match="multiple of 8"):
        SpikingPatchSplitting(2, 60)


def test_mlp_membrane_shortcut_formula():
    mlp = SpikeMLP(8, 32).double().eval()
    with torch.no_grad():
        for bn in (mlp.fc1_bn, mlp.fc2_bn):
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(3, 2, 8, 4, 4, dtype=torch.float64) * 2
    lif = LIF(tau=2.0, detach_reset=True)
    h = mlp.fc1_bn(mlp.fc1_conv(lif(x)[0]))
    expected = x + mlp.fc2_bn(mlp.fc2_conv(lif(h)[0]))  # residual on the membrane, before the spikes
    torch.testing.assert_close(mlp(x), expected)


def test_energy_counts_the_mask_and_add_of_sdsa():
    torch.manual_seed(0)
    net = SpikeDrivenTransformer(5, dim=32, depth=1, num_heads=4, pooling="0011", time_steps=3).eval()
    with torch.no_grad():  # make the neurons fire
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(3.0)
                m.bias.uniform_(0.0, 2.5)
    x = torch.poisson(torch.full((3, 2, 2, 16, 16), 0.5))
    attn = net.blocks[0][0]
    spikes = {}
    hooks = [getattr(attn, n).register_forward_hook(lambda m, i, o, n=n: spikes.__setitem__(n, o[0]))
             for n in ("k_lif", "v_lif")]
    with torch.no_grad(), SpikeProfiler(net) as prof:
        net(x)
    for h in hooks:
        h.remove()
    rep = prof.report()
    layers = rep["layers"]
    t, n_tokens, dim = 3, 4 * 4, 32
    token_sum = layers["blocks.0.0.token_sum"]
    adds = float((spikes["k_lif"] * spikes["v_lif"]).sum()) / 2  # non-zeros of K * V per sample
    assert adds > 0
    assert token_sum["macs"] == t * n_tokens * dim and token_sum["sops"] == pytest.approx(adds)
    assert token_sum["energy_pj"] == pytest.approx(0.9 * adds)
    assert layers["sps.convs.0"]["first"] and layers["sps.convs.0"]["energy_pj"] == pytest.approx(
        4.6 * 3 * 16 * 16 * 2 * 4 * 9)  # E_MAC FL of the first conv (T H W C_in C_out k^2)
    q = layers["blocks.0.0.q_conv"]
    assert q["sops"] == pytest.approx(q["macs"] * q["input_rate"])  # E_AC T R FL on spikes
    assert rep["energy_pj"] == pytest.approx(sum(r["energy_pj"] for r in layers.values()))
