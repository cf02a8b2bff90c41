"""The profiler's numbers against a hand computation on a two-layer net."""

import pytest
import torch
from torch import nn

from evstream.snn import ILIF, LIF, SeqConv2d, SeqLinear, SpikeProfiler, Spiking, format_report


def two_layer_net():
    fc1 = SeqLinear(4, 3, bias=False)
    fc2 = SeqLinear(3, 2, bias=False)
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
        fc2.weight.fill_(1.0)
    return nn.Sequential(fc1, Spiking(LIF(v_reset=None)), fc2)


def test_two_layer_hand_computation():
    net = two_layer_net()
    # T = 2, B = 2; inputs chosen so the LIF (tau 2, V_th 1, soft reset) spikes are known
    x = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]],
                      [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    with SpikeProfiler(net) as prof:
        net(x)
    # fc1 out per step: sample0 [2, 0, 1], sample1 [1, 0, 2] at t0; sample0 [2, 0, 1], sample1 0 at t1
    # LIF H = V + (I - V)/2: t0: [1, 0, .5] -> s [1,0,0], V [0,0,.5]; [.5,0,1] -> s [0,0,1], V [.5,0,0]
    #                        t1: [1, 0, .75] -> s [1,0,0];            [.25,0,0] -> s [0,0,0]
    spikes = 3.0
    rep = prof.report()
    assert rep["samples"] == 2
    fc1, fc2 = rep["layers"]["0"], rep["layers"]["2"]
    assert fc1["first"] and not fc2["first"]
    assert fc1["macs"] == 2 * 5              # T * non-zero weights per sample (5 of fc1's 12: zeros are no synapses)
    assert fc2["macs"] == 2 * 2 * 3
    assert fc1["input_rate"] == pytest.approx(float(x.mean()))
    rate = spikes / (2 * 2 * 3)
    assert rep["neurons"]["1.neuron"]["firing_rate"] == pytest.approx(rate)
    assert fc2["input_rate"] == pytest.approx(rate)
    assert fc2["sops"] == pytest.approx(12 * rate)
    assert fc1["energy_pj"] == pytest.approx(10 * 4.6)
    assert fc2["energy_pj"] == pytest.approx(12 * rate * 0.9)
    assert rep["energy_pj"] == pytest.approx(10 * 4.6 + 12 * rate * 0.9)
    assert rep["ann_energy_pj"] == pytest.approx(22 * 4.6)
    assert rep["total_sops"] == pytest.approx(12 * rate)
    table = prof.table()
    assert "1.neuron" in table and "(MAC)" in table and table == format_report(rep)
    # hooks are removed on exit
    net(x)
    assert prof.report()["samples"] == 2


def test_conv_macs_and_integer_rates():
    conv1 = SeqConv2d(2, 4, 3, padding=1, bias=False)
    conv2 = SeqConv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    net = nn.Sequential(conv1, Spiking(ILIF.coco()), conv2)
    x = torch.rand(3, 2, 2, 8, 8, generator=torch.Generator().manual_seed(9)) * 6
    with torch.no_grad():
        spikes = ILIF.coco()(conv1(x))[0]
        with SpikeProfiler(net) as prof:
            net(x)
    rep = prof.report()
    assert rep["layers"]["0"]["macs"] == 3 * 2 * 4 * 8 * 8 * 9     # T * C_in * C_out * k^2 * H * W
    assert rep["layers"]["2"]["macs"] == 3 * 4 * 6 * 9 * 4 * 4 / 2  # ... / groups, stride 2
    rate = float(spikes.mean())
    assert rep["neurons"]["1.neuron"]["firing_rate"] == pytest.approx(rate)
    assert rep["layers"]["2"]["sops"] == pytest.approx(rep["layers"]["2"]["macs"] * rate)


def test_pruned_weights_are_no_operations():
    """A conv pruned to a quarter of its weights counts a quarter of the MACs and SOPs of the dense one."""
    torch.manual_seed(0)
    conv = SeqConv2d(4, 8, 3, padding=1, bias=False)
    net = nn.Sequential(Spiking(LIF()), conv)
    x = torch.rand(2, 1, 4, 6, 6) * 3
    reports = []
    for keep in (1.0, 0.25):
        with torch.no_grad():
            conv.weight.mul_(torch.arange(conv.weight.numel()).reshape(conv.weight.shape) % 4 < 4 * keep)
        with torch.no_grad(), SpikeProfiler(net) as prof:
            net(x)
        reports.append(prof.report()["layers"]["1"])
    dense, pruned = reports
    assert dense["macs"] == 2 * 8 * 4 * 9 * 6 * 6 and pruned["macs"] == dense["macs"] / 4
    assert pruned["sops"] == pytest.approx(dense["sops"] / 4) and pruned["input_rate"] == dense["input_rate"]
