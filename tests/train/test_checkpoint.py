"""Checkpoints: atomic saving (mode, no leftovers), weights_only loading, one-line errors for bad files."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from torch import nn

from evstream import checkpoint
from evstream.checkpoint import CheckpointError, load, load_model_state, save_atomic


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_save_is_atomic_readable_by_others_and_round_trips(tmp_path, umask_022):
    net = _net()
    path = tmp_path / "run" / "last.pt"
    save_atomic({"model": net.state_dict(), "epoch": 3, "history": [{"top1": float("nan")}], "config": {"lr": 0.1}},
                path)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert os.listdir(path.parent) == ["last.pt"]
    state = load(path)
    assert state["epoch"] == 3 and state["config"] == {"lr": 0.1}
    other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    load_model_state(other, state, path)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(other.state_dict()[key], value)


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, failure):
    path = tmp_path / "last.pt"
    save_atomic({"model": _net().state_dict(), "epoch": 1}, path)
    before = path.read_bytes()

    def half_written(state, f):
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04 half a checkpoint")
        raise failure

    monkeypatch.setattr(checkpoint.torch, "save", half_written)
    with pytest.raises(type(failure)):
        save_atomic({"model": _net().state_dict(), "epoch": 2}, path)
    assert os.listdir(tmp_path) == ["last.pt"] and path.read_bytes() == before


def test_unusable_files_are_named_with_the_reason(tmp_path):
    good = tmp_path / "good.pt"
    save_atomic({"model": _net().state_dict(), "epoch": 0}, good)
    cases = {
        "missing.pt": (None, "no such checkpoint file"),
        "garbage.pt": (b"\x00not a checkpoint at all", "not a readable evstream checkpoint ("),
        "cut.pt": (good.read_bytes()[:300], "not a readable evstream checkpoint ("),
        "text.pt": (b"model: 3\n", "not a readable evstream checkpoint ("),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(CheckpointError) as err:
            load(path)
        message = str(err.value)
        assert message.startswith(f"{path}: {reason}") and "\n" not in message, message
    with pytest.raises(CheckpointError, match="not a file"):
        load(tmp_path)


class Payload:
    """Anything but weights: weights_only refuses to build it (a pickle could run code here)."""

    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_foreign_and_unsafe_files_are_refused(tmp_path, capsys):
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": {}, "extra": Payload()}, unsafe)
    capsys.readouterr()
    with pytest.raises(CheckpointError, match=f"^{unsafe}: not a readable evstream checkpoint \\(Weights only load"):
        load(unsafe)
    assert capsys.readouterr().out == ""  # nothing ran

    pickled = tmp_path / "pickled.pt"
    pickled.write_bytes(pickle.dumps({"model": {}}))
    with pytest.raises(CheckpointError, match="not a readable evstream checkpoint"):
        load(pickled)

    bare = tmp_path / "bare.pt"
    torch.save(_net().state_dict(), bare)
    with pytest.raises(CheckpointError, match=f"^{bare}: not an evstream checkpoint: no 'model' state dict \\(a bare "
                                               "state dict\\); use a last.pt"):
        load(bare)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(CheckpointError, match="it holds a Tensor, not a dict"):
        load(tensor)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": _net().state_dict(), "epoch": 1}, other)
    with pytest.raises(CheckpointError, match=r"no 'model' state dict \(keys \['epoch', 'state_dict'\]\)"):
        load(other)


def test_weights_of_another_network_are_described(tmp_path):
    path = tmp_path / "x.pt"
    wider = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(CheckpointError) as err:
        load_model_state(_net(), {"model": wider.state_dict(), "net": "tasnn_gesture"}, path)
    assert str(err.value) == (f"{path}: does not fit the Sequential built from these settings (it holds a "
                              "tasnn_gesture network): 3 of another shape (0.bias (5,) vs (3,), 0.weight (5, 4) vs "
                              "(3, 4), 2.weight (2, 5) vs (2, 3); checkpoint vs model)")
    deeper = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match=r"2 unexpected \(3.bias, 3.weight\)$"):
        load_model_state(_net(), {"model": deeper.state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"2 weights missing \(3.bias, 3.weight\)$"):
        load_model_state(deeper, {"model": _net().state_dict()}, path)
    exported = {"model": deeper.state_dict(), "builder": "mlp", "kwargs": {"depth": 3}}  # a live depth checkpoint
    with pytest.raises(CheckpointError, match=r"\(it holds a mlp network built with depth=3\): 2 unexpected"):
        load_model_state(_net(), exported, path)


def test_trainer_checkpoints_load_with_weights_only(tmp_path, umask_022):
    """History rows with numpy numbers (what evaluate() may return) are saved as Python numbers."""
    import numpy as np

    from evstream.train.trainer import TrainConfig, Trainer

    class Tiny:
        metric, metric_mode = "score", "max"
        eval_split = "val"  # best.pt is chosen on a validation split only

        def build_model(self):
            return _net()

        def datasets(self):
            data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randn(8, 2))
            return data, data

        def loss(self, model, batch, device):
            x, y = batch
            return ((model(x) - y) ** 2).mean()

        def evaluate(self, model, loader, device, *, progress=True):
            return {"score": np.float64(0.5), "count": np.int64(8), "undefined": np.float32("nan")}

    config = TrainConfig(epochs=1, batch_size=4, out_dir=str(tmp_path), progress=False)
    Trainer(Tiny(), config).fit()
    state = load(tmp_path / "best.pt")
    row = state["history"][0]
    assert (type(row["score"]), type(row["count"]), state["best"]) == (float, int, 0.5)
    assert row["undefined"] != row["undefined"]  # NaN kept in the checkpoint (JSON output makes it null)
    assert os.stat(tmp_path / "last.pt").st_mode & 0o777 == 0o644
