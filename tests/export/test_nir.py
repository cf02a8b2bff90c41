"""NIR export and import: the stated discretisation by hand, round trips on real N-MNIST recordings,
snntorch's and norse's importers on the bundled model's graph, a graph snntorch writes, refusals."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from evstream.cli import main
from evstream.errors import UserError
from evstream.nets import build
from evstream.nets.live_classifier import load_classifier
from evstream.snn import (LIF, PLIF, BICLabLIF, SeqAvgPool2d, SeqBatchNorm2d, SeqConv2d, SeqFlatten, SeqLinear,
                          SeqMaxPool2d, Spiking, fuse_conv_bn)
from evstream.export.nir import NIRNeuron, from_nir, to_nir
from tests.export.conftest import DVS128, MODELS, windows

nir = pytest.importorskip("nir")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def euler(node, currents: np.ndarray, dt: float) -> np.ndarray:
    """NIR's equations stepped by hand (the module docstring's reading): LIF by forward Euler with step
    dt from v = v_leak, IF as v += r I from v = 0; fire when v > v_threshold, then v = v_reset."""
    if isinstance(node, nir.IF):
        v, leak, gain = np.zeros(currents.shape[1:]), None, node.r
    else:
        v, leak, gain = np.broadcast_to(node.v_leak, currents.shape[1:]).copy(), node.v_leak, node.r
    spikes = []
    for current in currents:
        v = v + gain * current if leak is None else v + dt / node.tau * (leak - v + gain * current)
        fired = v > node.v_threshold
        v = np.where(fired, node.v_reset, v)
        spikes.append(fired.astype(np.float64))
    return np.stack(spikes)


def plif(w: float) -> PLIF:
    neuron = PLIF(init_tau=2.0)
    neuron.w.data.fill_(w)
    return neuron


NEURONS = {  # neuron, its NIR node type and (tau in steps, r, v_leak, v_threshold, v_reset) worked out by hand
    "lif": (LIF(tau=3.0), nir.LIF, (3.0, 1.0, 0.0, 1.0, 0.0)),
    "lif_no_decay_input": (LIF(tau=2.5, decay_input=False, v_threshold=0.8, v_reset=-0.2), nir.LIF,
                           (2.5, 2.5, -0.2, 0.8, -0.2)),
    "plif": (plif(0.3), nir.LIF, (1 + math.exp(-0.3), 1.0, 0.0, 1.0, 0.0)),  # 1 / sigmoid(0.3)
    "biclab": (BICLabLIF(decay=0.3, v_threshold=0.3, v_reset=0.3), nir.LIF, (1 / 0.7, 1 / 0.7, 0.0, 0.3, 0.3)),
    "if": (LIF(tau=math.inf, decay_input=False, v_threshold=0.7), nir.IF, (None, 1.0, None, 0.7, 0.0)),
}


@pytest.mark.parametrize("kind", NEURONS)
def test_neurons_follow_the_stated_forward_euler_discretisation(kind):
    neuron, node_type, (tau_steps, r, v_leak, v_th, v_reset) = NEURONS[kind]
    dt = 1e-3
    graph = to_nir(neuron, (16,), dt=dt)
    node = next(n for n in graph.nodes.values() if isinstance(n, (nir.LIF, nir.IF)))
    assert type(node) is node_type and node.v_threshold.shape == (16,)
    if tau_steps is not None:
        np.testing.assert_allclose(node.tau, tau_steps * dt, rtol=1e-7)
        np.testing.assert_allclose(node.v_leak, v_leak, rtol=0, atol=1e-12)
    np.testing.assert_allclose(node.r, r, rtol=1e-7)
    np.testing.assert_allclose(node.v_threshold, v_th, rtol=1e-7)
    np.testing.assert_allclose(node.v_reset, v_reset, rtol=1e-7)
    currents = np.random.default_rng(3).uniform(-0.5, 2.0, (40, 4, 16))
    with torch.no_grad():
        ours = neuron(torch.from_numpy(currents))[0].numpy()
        back = from_nir(graph)(torch.from_numpy(currents)).numpy()
    reference = euler(node, currents, dt)
    assert 0.02 < reference.mean() < 0.98  # the inputs make the neurons fire and stay silent
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(back, reference)


def _spikes(model: nn.Module, kinds) -> list[torch.Tensor]:
    """Record the outputs of every neuron of ``kinds`` during the next forward calls."""
    out = []
    for module in model.modules():
        if isinstance(module, kinds):
            module.register_forward_hook(lambda m, i, o: out.append(o[0] if isinstance(o, tuple) else o))
    return out


def test_bundled_nmnist_model_round_trips_through_a_nir_file(nmnist_val, tmp_path):
    model, info = load_classifier(MODELS / "nmnist_cnn.pt")
    graph = to_nir(model, (2, 34, 34))
    kinds = [type(graph.nodes[name]).__name__ for name in ["input", *[b for _, b in graph.edges]]]
    assert kinds == ["Input", "Conv2d", "SumPool2d", "LIF", "Conv2d", "SumPool2d", "LIF", "Conv2d", "SumPool2d", "LIF",
                     "Flatten", "Affine", "LIF", "Linear", "Output"]
    fused = fuse_conv_bn(model)
    conv = fused.features[0].synapse[0]  # BN folded in, then the pool's 1/4
    np.testing.assert_array_equal(graph.nodes["features.0.synapse.0"].weight, conv.weight.detach().numpy() / 4)
    np.testing.assert_array_equal(graph.nodes["features.0.synapse.0"].bias, conv.bias.detach().numpy() / 4)
    tau = 1 / torch.sigmoid(model.features[0].neuron.w).item() * 1e-4
    np.testing.assert_allclose(graph.nodes["features.0.neuron"].tau, tau, rtol=1e-12)
    assert graph.metadata["time_steps"] == 3 and "(T * 10)" in graph.metadata["readout"]
    nir.write(tmp_path / "nmnist.nir", graph)
    net = from_nir(tmp_path / "nmnist.nir")
    assert net.dt == 1e-4

    frames, labels = nmnist_val
    theirs, ours = _spikes(model, PLIF), _spikes(net, NIRNeuron)
    with torch.no_grad():
        rates, votes = model(frames), net(frames)
    assert len(ours) == len(theirs) == 4
    for a, b in zip(theirs, ours):  # every spike of every layer, before the readout
        assert a.sum() > 1000
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    torch.testing.assert_close(votes.sum(0), torch.round(rates * 30), rtol=0, atol=0)  # integer votes per class
    assert (votes.sum(0).argmax(1) == labels).float().mean() == (rates.argmax(1) == labels).float().mean() > 0.9


def test_plain_conv_lif_net_round_trips_in_both_pool_forms(nmnist_val):
    torch.manual_seed(0)
    bn = SeqBatchNorm2d(8)
    bn.running_mean.uniform_(-0.2, 0.2), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.uniform_(0.5, 1.5)
    net = nn.Sequential(SeqConv2d(2, 8, 3, padding=1, bias=False), bn, SeqAvgPool2d(2),
                        Spiking(LIF(tau=2.0, v_threshold=0.3)), SeqAvgPool2d(3, stride=2, padding=1),
                        SeqConv2d(8, 16, 3, stride=2), Spiking(PLIF(init_tau=3.0, v_threshold=0.05)), SeqFlatten(),
                        SeqLinear(16 * 4 * 4, 10),
                        Spiking(LIF(tau=4.0, decay_input=False, v_threshold=0.1, v_reset=-0.1))).eval()
    frames = nmnist_val[0][:, :40]
    with torch.no_grad():
        expected = fuse_conv_bn(net)(frames)
        unfused = net(frames)
    assert 0.02 < expected.mean() < 0.5
    for pool in ("sum", "avg"):
        graph = to_nir(net, (2, 34, 34), avg_pool=pool)
        pools = [type(graph.nodes[n]).__name__ for n in ("2", "4")]
        assert pools == (["SumPool2d", "AvgPool2d"] if pool == "sum" else ["AvgPool2d", "AvgPool2d"])
        with torch.no_grad():
            out = from_nir(graph)(frames)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
        assert (out != unfused).float().mean() < 1e-3  # BN folding rounds differently: rare threshold ties


def test_tasnn_without_attention_exports_its_biclab_cells(shared):
    from evstream.nets.live_classifier import WindowRecipe

    torch.manual_seed(1)
    net = build("tasnn_gesture", time_steps=8, input_size=16, attention=False).eval()
    recipe = WindowRecipe((128, 128, 2), 8, 50_000, ds=8)
    frames = torch.stack([torch.from_numpy(recipe(w)) for w in windows(DVS128, 12, 400_000, chip="DVS128")], 1)
    graph = to_nir(net, (2, 16, 16))
    cell = graph.nodes["features.0.neuron"]
    np.testing.assert_allclose(cell.v_reset, 0.3), np.testing.assert_allclose(cell.r, 1 / 0.7)
    theirs = _spikes(net, BICLabLIF)
    with torch.no_grad():
        rates = net(frames)
        imported = from_nir(graph)
        ours = _spikes(imported, NIRNeuron)
        out = imported(frames)
    torch.testing.assert_close(out.mean(0), rates, rtol=0, atol=0)
    for a, b in zip(theirs, ours):
        assert a.sum() > 0
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def _run_peer(step, frames: torch.Tensor, reset) -> torch.Tensor:
    """Per-class vote counts of a peer's imported module, one unbatched recording at a time (the peers'
    Flatten takes NIR's per-sample start_dim 0 literally)."""
    counts = []
    with torch.no_grad():
        for b in range(frames.shape[1]):
            state = reset()
            total = 0
            for t in range(frames.shape[0]):
                out, state = step(frames[t, b], state)
                total = total + out
            counts.append(total)
    return torch.stack(counts)


@pytest.mark.slow
def test_snntorch_and_norse_run_the_exported_graph_to_evstreams_votes(nmnist_val):
    snntorch = pytest.importorskip("snntorch")
    from snntorch import utils as snn_utils
    from snntorch.import_nir import import_from_nir
    norse = pytest.importorskip("norse.torch")

    model, _ = load_classifier(MODELS / "nmnist_cnn.pt")
    graph = to_nir(model, (2, 34, 34))
    frames, labels = nmnist_val
    with torch.no_grad():
        votes = torch.round(model(frames) * 30)

    snn_net = import_from_nir(graph)
    assert any(isinstance(m, snntorch.Leaky) for m in snn_net.modules())

    def snn_step(x, state):
        out = snn_net(x)
        return (out[0] if isinstance(out, tuple) else out), state

    with warnings.catch_warnings():  # norse 1.1 calls nirtorch's deprecated load()
        warnings.simplefilter("ignore", DeprecationWarning)
        norse_net = norse.from_nir(graph, dt=graph.metadata["dt"])
    for name, step, reset in (("snntorch", snn_step, lambda: snn_utils.reset(snn_net)),
                              ("norse", norse_net, lambda: None)):
        counts = _run_peer(step, frames, reset)
        differ = (counts != votes).float().mean().item()
        # measured: identical vote counts on all 95 recordings; tolerance 1 % of the (recording, class) counts
        assert differ <= 0.01, f"{name}: {differ:.2%} of the vote counts differ"
        assert (counts.argmax(1) != votes.argmax(1)).sum() <= 1, name
        assert (counts.argmax(1) == labels).float().mean() > 0.9


def test_graph_written_by_snntorch_imports_into_evstream_modules(nmnist_val, tmp_path):
    snn = pytest.importorskip("snntorch")
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(2)

    def leaky(beta: float, shape: tuple) -> nn.Module:  # full-shape parameters: snntorch's exporter needs them
        return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.full(shape, 0.2), init_hidden=True,
                         reset_mechanism="zero")

    net = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.AvgPool2d((2, 2)), leaky(0.8, (8, 17, 17)),
                        nn.Conv2d(8, 16, 3, padding=1), nn.AvgPool2d((2, 2)), leaky(0.7, (16, 8, 8)),
                        nn.Flatten(), nn.Linear(16 * 8 * 8, 10), leaky(0.9, (10,))).eval()
    with warnings.catch_warnings():  # snntorch 1.0 calls nirtorch's deprecated extract_nir_graph()
        warnings.simplefilter("ignore", DeprecationWarning)
        graph = export_to_nir(net, torch.zeros(1, 2, 34, 34), ignore_dims=[0])
    nir.write(tmp_path / "snntorch.nir", graph)
    imported = from_nir(tmp_path / "snntorch.nir")  # no dt in snntorch's metadata: 1e-4, its step
    lifs = [m for m in imported.modules() if isinstance(m, NIRNeuron)]
    assert [m.lif.p.tau for m in lifs] == pytest.approx([5.0, 10 / 3, 10.0], rel=1e-6)
    assert not any(m.lif.p.decay_input for m in lifs)  # r = tau / dt: beta V + I, snntorch's update

    frames = nmnist_val[0][:, :60]
    theirs = []
    for module in net:
        if isinstance(module, snn.Leaky):
            module.register_forward_hook(lambda m, i, o: theirs.append(o))
    ours = _spikes(imported, NIRNeuron)
    with torch.no_grad():
        snn_utils.reset(net)
        for t in range(frames.shape[0]):
            net(frames[t])
        imported(frames)
    for layer, ours_layer in enumerate(ours):
        snn_layer = torch.stack(theirs[layer::3])
        assert snn_layer.sum() > 50
        torch.testing.assert_close(ours_layer, snn_layer, rtol=0, atol=0)


def test_nets_with_parts_nir_cannot_express_are_refused_naming_them(capsys, tmp_path):
    with pytest.raises(UserError) as err:
        to_nir(nn.Sequential(SeqConv2d(2, 4, 3), SeqMaxPool2d(2), Spiking(LIF(v_reset=None))), (2, 16, 16))
    message = str(err.value)
    assert "\n" not in message and message.startswith("cannot export Sequential to NIR: ")
    assert "1 (SeqMaxPool2d: NIR has no max pooling)" in message
    assert "2.neuron (LIF with soft reset (V -= V_th): NIR resets to v_reset)" in message

    with pytest.raises(UserError, match=r"ILIF: integer spikes; NIR spikes are binary.*MaxPool2d"):
        to_nir(build("spike_yolo", scale="rt").eval(), (3, 64, 64))

    out = tmp_path / "gesture.nir"
    assert main(["export", str(MODELS / "gesture_tasnn.pt"), "--format", "nir", "--out", str(out)]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and not out.exists()
    assert line == ("evstream export: error: cannot export SpikingClassifier to NIR: features.0.attention, "
                    "features.1.attention, features.2.attention and 2 more (TemporalAttention: NIR has no "
                    "attention node)")


def test_export_command_writes_a_graph_evstream_reads_back(capsys, tmp_path):
    out = tmp_path / "nmnist.nir"
    args = ["export", str(MODELS / "nmnist_cnn.pt"), "--format", "nir", "--out", str(out), "--dt", "0.11"]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (")
    graph = nir.read(out)
    assert graph.metadata["dt"] == 0.11 and graph.metadata["net"] == "cnn_nmnist"
    model, _ = load_classifier(MODELS / "nmnist_cnn.pt")
    tau = 1 / torch.sigmoid(model.classifier[0].neuron.w).item() * 0.11
    np.testing.assert_allclose(graph.nodes["classifier.0.neuron"].tau, tau, rtol=1e-12)
    assert from_nir(out).layer("classifier.0.neuron").lif.p.tau == pytest.approx(tau / 0.11, rel=1e-12)
    assert main(args) == 2
    assert "the output exists; pass --force" in capsys.readouterr().err


def test_from_nir_refuses_what_evstream_cannot_run(tmp_path):
    def graph(node, edges=None):
        nodes = {"input": nir.Input(input_type=np.array([4])), "n": node, "output": nir.Output(output_type=np.array([4]))}
        return nir.NIRGraph(nodes=nodes, edges=edges or [("input", "n"), ("n", "output")], type_check=False)

    ones = np.ones(4)
    cuba = nir.CubaLIF(tau_syn=ones, tau_mem=ones, r=ones, v_leak=0 * ones, v_threshold=ones)
    with pytest.raises(UserError, match=r"NIR node 'n' is a CubaLIF, which evstream does not read"):
        from_nir(graph(cuba))
    lif = nir.LIF(tau=np.array([1e-3, 2e-3, 1e-3, 1e-3]), r=ones, v_leak=0 * ones, v_threshold=ones)
    with pytest.raises(UserError, match=r"'n': tau differs between neurons"):
        from_nir(graph(lif))
    fast = nir.LIF(tau=1e-5 * ones, r=ones, v_leak=0 * ones, v_threshold=ones)
    with pytest.raises(UserError, match=r"tau 1e-05 s is shorter than the step dt = 0.0001 s"):
        from_nir(graph(fast))
    recurrent = nir.LIF(tau=1e-3 * ones, r=ones, v_leak=0 * ones, v_threshold=ones)
    with pytest.raises(UserError, match="recurrent edges"):
        from_nir(graph(recurrent, [("input", "n"), ("n", "n"), ("n", "output")]))
    with pytest.raises(UserError, match="no such NIR file"):
        from_nir(tmp_path / "missing.nir")
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="bad.nir: not a readable NIR file"):
        from_nir(tmp_path / "bad.nir")


def test_leak_and_gain_of_a_foreign_lif_become_the_input_and_rest_potential():
    # v_leak 0.5 != v_reset 0 and r 2 (neither 1 nor tau / dt): X = r I + (v_leak - v_reset), start at v_leak
    shape = np.ones(3)
    node = nir.LIF(tau=4e-4 * shape, r=2 * shape, v_leak=0.5 * shape, v_threshold=1.2 * shape, v_reset=0 * shape)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])), "n": node,
                                "output": nir.Output(output_type=np.array([3]))},
                         edges=[("input", "n"), ("n", "output")])
    currents = np.random.default_rng(5).uniform(-0.3, 1.0, (50, 2, 3))
    with torch.no_grad():
        out = from_nir(graph)(torch.from_numpy(currents)).numpy()
    reference = euler(node, currents, 1e-4)
    assert 0.05 < reference.mean() < 0.95
    np.testing.assert_array_equal(out, reference)
