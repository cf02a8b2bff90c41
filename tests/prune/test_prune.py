"""Pruning on small nets: masks held through optimiser steps, rewinding, both criteria against hand
computations, masks in checkpoints and zeros in the NIR / ONNX exports, the command's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from evstream.cli import main
from evstream.nets import build
from evstream.nets.live_classifier import WindowRecipe, load_classifier, save_classifier
from evstream.prune import CRITERIA, Masks, magnitude_scores, membrane_potentials, probabilistic_scores, prunable_weights
from evstream.prune.commands import CRITERIA as COMMAND_CRITERIA
from evstream.prune.lottery import prune_round
from evstream.snn import LIF, PLIF
from evstream.snn.layers import SeqLinear
from evstream.train.trainer import Trainer, TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OPTIONS = {"num_classes": 3, "time_steps": 2, "input_size": 8, "channels": (4, 6), "votes": 2}


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build("cnn_nmnist", **OPTIONS)


def frames(batch: int, seed: int = 1) -> torch.Tensor:
    """Count frames ``[T, B, 2, 8, 8]`` with a few events per pixel."""
    return torch.poisson(torch.full((2, batch, 2, 8, 8), 0.7), generator=torch.Generator().manual_seed(seed))


def test_prunable_weights_are_the_conv_and_linear_weights():
    names = list(prunable_weights(small_net()))
    assert names == ["features.0.synapse.0.weight", "features.1.synapse.0.weight", "classifier.0.synapse.0.weight"]


def test_magnitude_masks_keep_the_largest_weights_of_every_layer_and_earlier_prunings():
    net = small_net()
    first = Masks.prune(magnitude_scores(net), 0.5)
    for name, w in prunable_weights(net).items():
        kept = w.detach().abs()[first.masks[name]]
        assert first.masks[name].sum() == round(w.numel() * 0.5)
        assert kept.min() >= w.detach().abs()[~first.masks[name]].max()
    scores = {name: torch.rand_like(s) for name, s in magnitude_scores(net).items()}  # new scores, old masks kept
    second = Masks.prune(scores, 0.8, previous=first)
    assert all(not (second.masks[n] & ~first.masks[n]).any() for n in scores)
    assert second.sparsity() == pytest.approx(0.8, abs=2 / first.total())
    with pytest.raises(ValueError, match="only .* are left"):
        Masks.prune(scores, 0.5, previous=second)


def test_masks_stay_applied_after_optimizer_steps():
    net = small_net()
    masks = Masks.prune(magnitude_scores(net), 0.7)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.1)
    handle = masks.attach(net, optimizer)
    x, target = frames(4), torch.eye(3)[torch.tensor([0, 1, 2, 0])]
    for _ in range(3):  # Adam's moments would move a pruned weight again without the hook
        loss = ((net(x) - target) ** 2).mean() + sum(w.sum() for w in prunable_weights(net).values())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        for name, w in prunable_weights(net).items():
            assert torch.all(w[~masks.masks[name]] == 0)
            assert torch.all(w[masks.masks[name]] != 0)
    handle.remove()
    loss = sum(w.sum() for w in prunable_weights(net).values())
    loss.backward()
    optimizer.step()  # detached: the weights move again
    assert any(torch.any(w[~masks.masks[n]] != 0) for n, w in prunable_weights(net).items())


class _TensorTask:
    """A minimal classification task on fixed random frames (the trainer's protocol)."""

    metric, metric_mode, eval_split = "top1", "max", "val"

    def __init__(self):
        x = frames(12, seed=3).transpose(0, 1)
        labels = torch.arange(12) % 3
        self.data = torch.utils.data.TensorDataset(x, labels)

    def build_model(self):
        return small_net(seed=5)

    def datasets(self):
        return self.data, self.data

    def loss(self, model, batch, device):
        x, labels = batch
        return ((model(x.transpose(0, 1)) - torch.eye(3)[labels]) ** 2).mean()

    def evaluate(self, model, loader, device, *, progress=True):
        right = sum(int((model(x.transpose(0, 1)).argmax(1) == y).sum()) for x, y in loader)
        return {"top1": right / len(loader.dataset)}


@pytest.mark.parametrize("criterion", CRITERIA)
def test_a_round_rewinds_the_kept_weights_and_retrains_them_masked(criterion, tmp_path):
    task = _TensorTask()
    trained, rewind = small_net(seed=7).state_dict(), small_net(seed=8).state_dict()
    seen = {}

    def trainer(*args, **kwargs):
        def first_step(epoch, step):
            if (epoch, step) == (0, 0):
                seen.update({k: v.clone() for k, v in run.model.state_dict().items()})

        run = Trainer(*args, **kwargs, on_step=first_step)
        return run

    config = TrainConfig(epochs=2, batch_size=4, lr=1e-2, out_dir=str(tmp_path), progress=False)
    calibration = [frames(6, seed=9)]
    result, masks = prune_round(task, config, trained, rewind, Masks.dense(small_net()), sparsity=0.6,
                                criterion=criterion, calibration=calibration, folder=tmp_path / "r",
                                trainer_factory=trainer)
    assert masks.sparsity() == pytest.approx(0.6, abs=0.01)
    after = result.model.state_dict()
    for name, mask in masks.masks.items():
        assert torch.equal(seen[name][mask], rewind[name][mask])  # the early weights on the kept entries
        assert torch.all(seen[name][~mask] == 0) and torch.all(after[name][~mask] == 0)  # pruned, and held
    assert any(not torch.equal(after[k], seen[k]) for k in seen if k.endswith(("weight", "bias")))  # trained
    others = [k for k in rewind if k not in masks.masks and rewind[k].is_floating_point()]
    assert all(torch.equal(seen[k], rewind[k]) for k in others)  # biases, BN, PLIF w rewound too
    if criterion == "magnitude":  # chosen on the trained weights, not the rewound ones
        expected = Masks.prune({n: trained[n].abs() for n in masks.masks}, 0.6)
        assert all(torch.equal(expected.masks[n], masks.masks[n]) for n in masks.masks)


class _OneNeuron(nn.Module):
    def __init__(self, neuron: nn.Module, weights, bias: float):
        super().__init__()
        self.fc, self.neuron = SeqLinear(len(weights), 1), neuron
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([weights]))
            self.fc.bias.fill_(bias)

    def forward(self, x):
        return self.neuron(self.fc(x))[0]


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_probabilistic_scores_match_a_hand_computation():
    # One LIF neuron (tau 2, input decayed: H = V + (X - V) / 2 from V = 0), T = 1, four samples of two inputs.
    w, b = [0.8, -1.5], 0.6
    net = _OneNeuron(LIF(tau=2.0, v_threshold=1.0, v_reset=0.0), w, b)
    x = torch.tensor([[[1.0, 0.0], [2.0, 1.0], [0.0, 1.0], [3.0, 0.0]]])
    h = [0.5 * (w[0] * a + w[1] * c + b) for a, c in x[0].tolist()]  # 0.7, 0.3, -0.45, 1.5
    mu = sum(h) / 4
    sigma = math.sqrt(sum((v - mu) ** 2 for v in h) / 4)
    mean_x = x[0].mean(0).tolist()  # dmean(H)/dw_j = mean(x_j) / 2
    expected = []
    for j in range(2):
        shift = -w[j] * 0.5 * mean_x[j]  # the mean membrane moves by this when w_j is removed
        expected.append(abs(_phi((1.0 - mu) / sigma) - _phi((1.0 - mu - shift) / sigma)))
    scores = probabilistic_scores(net, [x])["fc.weight"]
    np.testing.assert_allclose(scores[0].numpy(), expected, rtol=1e-5)
    assert expected[1] > expected[0]  # the larger pull of w_1 makes a flip likelier


def test_probabilistic_scores_follow_the_membrane_over_time_steps():
    # PLIF (1/tau = sigmoid(w) = 1/2), hard reset, T = 2: step 2's membrane carries step 1's unless it fired.
    net = _OneNeuron(PLIF(init_tau=2.0, v_threshold=1.0, v_reset=0.0), [1.0], 0.0)
    x = torch.tensor([[[1.2]], [[2.4]]])  # one sample: H1 = 0.6 (no spike), H2 = 0.6 + (2.4 - 0.6) / 2 = 1.5
    h = membrane_potentials(net.neuron, net.fc(x))
    np.testing.assert_allclose(h.flatten().tolist(), [0.6, 1.5], rtol=1e-6)
    mu, sigma = 1.05, 0.45
    shift = -1.0 * (0.5 * 1.2 + (0.25 * 1.2 + 0.5 * 2.4)) / 2  # dH1/dw = x1/2, dH2/dw = x1/4 + x2/2
    expected = abs(_phi((1 - mu) / sigma) - _phi((1 - mu - shift) / sigma))
    assert float(probabilistic_scores(net, [x])["fc.weight"]) == pytest.approx(expected, rel=1e-5)


def test_probabilistic_scores_name_neurons_they_do_not_model():
    from evstream.errors import UserError
    from evstream.snn import BICLabLIF

    net = _OneNeuron(BICLabLIF(), [1.0], 0.0)
    with pytest.raises(UserError, match="models LIF and PLIF membranes; neuron is a BICLabLIF"):
        probabilistic_scores(net, [torch.ones(1, 1, 1)])
    assert COMMAND_CRITERIA == CRITERIA


@pytest.fixture
def pruned(tmp_path) -> tuple:
    """``(path, masks)`` of a small classifier checkpoint pruned to 90 %."""
    net = small_net()
    masks = Masks.prune(magnitude_scores(net), 0.9)
    masks.apply(net.eval())
    path = tmp_path / "pruned.pt"
    save_classifier(path, net, net="cnn_nmnist", net_options=OPTIONS, recipe=WindowRecipe((8, 8, 2), 2, 10_000),
                    names=["a", "b", "c"], masks=masks.state_dict())
    return path, masks


def test_pruned_checkpoints_keep_their_masks_and_zeros_in_nir(pruned, tmp_path):
    path, masks = pruned
    model, info = load_classifier(path)
    assert all(torch.equal(info["masks"][n], masks.masks[n]) for n in masks.masks)
    nir_path = tmp_path / "pruned.nir"
    assert main(["export", str(path), "--format", "nir", "--out", str(nir_path)]) == 0
    from evstream.export.nir import import_nir

    graph = import_nir().read(nir_path)
    weights = {np.asarray(n.weight).shape: np.asarray(n.weight) for n in graph.nodes.values() if hasattr(n, "weight")}
    for name, mask in masks.masks.items():  # BN and pool divisors folded into them: the zeros stay exactly zeros
        assert np.array_equal(weights[tuple(mask.shape)] != 0, mask.numpy()), name


@pytest.mark.slow
def test_pruned_checkpoints_keep_their_zeros_in_onnx(pruned, tmp_path):
    path, masks = pruned
    conv0 = masks.masks["features.0.synapse.0.weight"].numpy()
    onnx = pytest.importorskip("onnx")
    onnx_path = tmp_path / "pruned.onnx"
    assert main(["export", str(path), "--format", "onnx", "--out", str(onnx_path)]) == 0
    from onnx import numpy_helper

    stored = [numpy_helper.to_array(t) for t in onnx.load(onnx_path).graph.initializer]
    first = [t for t in stored if t.shape == conv0.shape]
    assert first and all(np.array_equal(t != 0, conv0) for t in first)


def test_prune_command_refuses_bad_settings(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["prune", "nmnist", "--data", str(tmp_path), "--sparsity", "1.5"])
    assert "a sparsity is a fraction in (0, 1), got '1.5'" in capsys.readouterr().err
    assert main(["prune", "nmnist", "--data", str(tmp_path), "--sparsity", "0.9", "0.5", "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sparsities must increase within (0, 1), got [0.9, 0.5]" in err[0]


def test_prune_command_on_real_recordings_writes_masked_live_checkpoints(nmnist_few, tmp_path, capsys):
    """The whole command on 20 real N-MNIST recordings, both criteria: each round's live checkpoint holds
    its masks, its weights are zero where they say so, and the sparsity reached is the one asked for."""
    out = tmp_path / "tickets"
    assert main(["prune", "nmnist", "--data", str(nmnist_few), "--criterion", "magnitude", "--criterion",
                 "probabilistic", "--sparsity", "0.5", "0.8", "--epochs", "2", "--round-epochs", "1",
                 "--batch-size", "5", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                 "--set", "task.val_fraction=0.5", "--set", "task.net_options={channels: [4, 8], votes: 2}",
                 "--set", "train.progress=false", "--calibration-batches", "1"]) == 0
    capsys.readouterr()
    for criterion in CRITERIA:
        for sparsity in (50, 80):
            model, info = load_classifier(out / criterion / f"sparsity_{sparsity}" / "pruned.pt")
            weights = dict(model.named_parameters())
            kept = sum(int(mask.sum()) for mask in info["masks"].values())
            total = sum(mask.numel() for mask in info["masks"].values())
            assert abs(1 - kept / total - sparsity / 100) < 0.01, (criterion, sparsity)
            for name, mask in info["masks"].items():
                assert torch.all(weights[name.removeprefix("net.")][~mask.bool()] == 0), name
