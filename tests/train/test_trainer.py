"""The trainer lowers the loss, resumes to the same weights after a kill, DDP follows one process, epochs
are numbered from 1, nothing is selected or scheduled on a test split, and a batch larger than the data is refused."""

from __future__ import annotations

import hashlib
import csv
import os
import socket
import struct

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from evstream.checkpoint import load, state_digest
from evstream.errors import UserError
import numpy as np

from evstream.train.trainer import TrainConfig, Trainer, accumulation_steps, lr_factor, parameter_groups


class BlobsTask:
    """Three Gaussian blobs in 8-D: a small classification task with a dropout net."""

    metric = "accuracy"
    metric_mode = "max"
    eval_split = "val"

    def build_model(self):
        return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 3))

    def datasets(self):
        g = torch.Generator().manual_seed(123)
        centres = torch.randn(3, 8, generator=g) * 2
        labels = torch.arange(96) % 3
        x = centres[labels] + torch.randn(96, 8, generator=g)
        data = torch.utils.data.TensorDataset(x, labels)
        return data, data

    def loss(self, model, batch, device):
        x, y = batch
        return nn.functional.cross_entropy(model(x.to(device)), y.to(device))

    def evaluate(self, model, loader, device, *, progress=True):
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
        return {"accuracy": correct / len(loader.dataset)}


def _config(tmp_path, **kw):
    kw = {"epochs": 4, **kw}
    return TrainConfig(batch_size=16, lr=0.01, optimizer="sgd", momentum=0.9, out_dir=str(tmp_path), progress=False,
                       **kw)


def test_training_lowers_the_loss_and_writes_logs(tmp_path):
    history = Trainer(BlobsTask(), _config(tmp_path)).fit()
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["accuracy"] > 0.9
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    assert (tmp_path / "log.csv").read_text().splitlines()[0].startswith("epoch,train_loss,lr")


def test_kill_mid_epoch_then_resume_gives_the_same_weights(tmp_path):
    reference = Trainer(BlobsTask(), _config(tmp_path / "ref"))
    reference.fit()

    def die(epoch, step):
        if epoch == 2 and step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(BlobsTask(), _config(tmp_path / "run"), on_step=die).fit()
    assert load(tmp_path / "run" / "last.pt")["epoch"] == 2  # epochs 1 and 2 done, killed in epoch 3
    resumed = Trainer(BlobsTask(), _config(tmp_path / "run"))
    resumed.fit(resume=True)
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert len(resumed.history) == 4


def _ddp_worker(rank, port, out_dir):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    config = TrainConfig(epochs=3, batch_size=16, lr=0.01, optimizer="sgd", momentum=0.9, out_dir=out_dir,
                         progress=False)
    Trainer(NoDropoutTask(), config).fit()
    torch.distributed.destroy_process_group()


class NoDropoutTask(BlobsTask):
    def build_model(self):
        return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))


@pytest.mark.slow
def test_two_process_ddp_agrees_with_one_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(tmp_path / "ddp")), nprocs=2, join=True)
    single = Trainer(NoDropoutTask(), TrainConfig(epochs=3, batch_size=16, lr=0.01, optimizer="sgd", momentum=0.9,
                                                  out_dir=str(tmp_path / "one"), progress=False))
    single.fit()
    ddp_state = load(tmp_path / "ddp" / "last.pt")["model"]
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp_state["module." + key] if "module." + key in ddp_state else ddp_state[key],
                                   value, rtol=1e-5, atol=1e-6)


class ConstantLossTask(NoDropoutTask):
    """A training loss that never moves (zero gradients) while the evaluated accuracy keeps rising."""

    def __init__(self):
        self.calls = 0

    def loss(self, model, batch, device):
        x, _ = batch
        return model(x.to(device)).sum() * 0.0 + 1.0

    def evaluate(self, model, loader, device, *, progress=True):
        self.calls += 1
        return {"accuracy": 0.1 * self.calls}


class ConstantMetricTask(NoDropoutTask):
    def evaluate(self, model, loader, device, *, progress=True):
        return {"accuracy": 0.5}


def _plateau(tmp_path, **kw):
    return TrainConfig(epochs=5, batch_size=32, lr=0.1, optimizer="sgd", momentum=0.0, schedule="plateau",
                       plateau_patience=2, out_dir=str(tmp_path), progress=False, **kw)


def test_plateau_schedule_steps_on_the_training_loss(tmp_path):
    trainer = Trainer(ConstantLossTask(), _plateau(tmp_path / "flat"))
    trainer.fit()
    # epoch 1 sets the lowest loss; epochs 2-3 are the patience; epoch 4 exceeds it: epoch 5 runs at 0.01,
    # however much the evaluated accuracy rises
    assert [round(row["lr"], 6) for row in trainer.history] == [0.1, 0.1, 0.1, 0.1, 0.01]
    assert [row["train_loss"] for row in trainer.history] == [1.0] * 5
    falling = Trainer(ConstantMetricTask(), _plateau(tmp_path / "falling"))
    falling.fit()  # a falling training loss keeps the rate, however flat the evaluated accuracy
    assert [row["lr"] for row in falling.history] == [0.1] * 5


def test_epochs_are_numbered_from_one(tmp_path, capsys):
    trainer = Trainer(BlobsTask(), _config(tmp_path, epochs=2))
    history = trainer.fit()
    assert [row["epoch"] for row in history] == [1, 2]
    with open(tmp_path / "log.csv", newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [1, 2]
    assert load(tmp_path / "last.pt")["epoch"] == 2
    capsys.readouterr()
    longer = Trainer(BlobsTask(), _config(tmp_path, epochs=3))  # continues with epoch 3
    assert [row["epoch"] for row in longer.fit(resume=True)] == [1, 2, 3]
    assert "  epochs    3, resuming after epoch 2; batch 16, 6 steps per epoch\n" in capsys.readouterr().err
    assert load(tmp_path / "last.pt")["epoch"] == 3


class ReportOnlyTask(BlobsTask):
    """Evaluates its test split."""

    eval_split = "test"


def test_no_best_model_is_chosen_on_a_test_split(tmp_path, capsys):
    trainer = Trainer(ReportOnlyTask(), _config(tmp_path))
    history = trainer.fit()
    assert (tmp_path / "last.pt").exists() and not (tmp_path / "best.pt").exists()
    assert "accuracy" in history[-1] and trainer.best is None  # reported every epoch, selected never
    assert "  samples   train 96, test 96 (metrics reported, no best.pt: the model is last.pt)\n" in \
        capsys.readouterr().err


def test_start_up_summary(tmp_path, capsys):
    Trainer(BlobsTask(), _config(tmp_path, epochs=1)).fit()
    err = capsys.readouterr().err
    assert err.startswith("training BlobsTask\n")
    parameters = 8 * 32 + 32 + 32 * 3 + 3
    for line in ("samples   train 96, val 96 (best.pt on accuracy, max)",
                 f"net       Sequential, {parameters:,} parameters", "device    cpu", f"output    {tmp_path}",
                 "epochs    1; batch 16, 6 steps per epoch", "optimiser sgd lr 0.01, schedule cosine"):
        assert f"  {line}\n" in err


def test_a_batch_larger_than_the_training_set_is_refused(tmp_path):
    trainer = Trainer(BlobsTask(), TrainConfig(epochs=1, batch_size=97, out_dir=str(tmp_path), progress=False))
    with pytest.raises(ValueError, match=r"batch size 97 is larger than the training set \(96 samples\): "
                                         r"lower --batch-size to at most 96"):
        trainer.fit()
    assert not any(tmp_path.iterdir())  # no last.pt, best.pt or log for an epoch of zero steps
    Trainer(BlobsTask(), TrainConfig(epochs=1, batch_size=96, out_dir=str(tmp_path), progress=False)).fit()
    assert (tmp_path / "best.pt").exists()


class NormBlobsTask(NoDropoutTask):
    def build_model(self):
        return nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))


def _ids(params):
    return sorted(id(p) for p in params)


def test_ultralytics_groups_decay_only_weights_scaled_by_the_nominal_batch():
    model = NormBlobsTask().build_model()
    config = TrainConfig(batch_size=16, weight_decay=5e-4, nominal_batch=64, decay_norm_and_bias=False)
    biases, norms, weights = parameter_groups(model, config)
    assert accumulation_steps(config) == 4
    assert _ids(biases["params"]) == _ids([model[0].bias, model[1].bias, model[3].bias])
    assert _ids(norms["params"]) == _ids([model[1].weight])
    assert _ids(weights["params"]) == _ids([model[0].weight, model[3].weight])
    assert biases["weight_decay"] == norms["weight_decay"] == 0.0
    assert weights["weight_decay"] == pytest.approx(5e-4)  # 16 * 4 / 64
    large = TrainConfig(batch_size=80, weight_decay=5e-4, nominal_batch=64, decay_norm_and_bias=False)
    assert accumulation_steps(large) == 1 and parameter_groups(model, large)[2]["weight_decay"] == pytest.approx(5e-4 * 80 / 64)
    (single,) = parameter_groups(model, TrainConfig(weight_decay=1e-4))
    assert len(single["params"]) == 6 and single["weight_decay"] == 1e-4


def test_yolo_warmup_ramps_lr_momentum_per_iteration(tmp_path):
    config = TrainConfig(epochs=5, batch_size=4, lr=0.02, optimizer="sgd", momentum=0.937, schedule="linear",
                         lrf=0.1, warmup_epochs=1, warmup_style="yolo", decay_norm_and_bias=False,
                         out_dir=str(tmp_path), progress=False)
    seen = []
    trainer = Trainer(NormBlobsTask(), config, on_step=lambda e, s: seen.append(
        (e, s, [g["lr"] for g in trainer.optimizer.param_groups], trainer.optimizer.param_groups[0]["momentum"])))
    trainer.fit()
    assert len(seen) == 5 * 24
    warmup = 100  # max(1 epoch * 24 batches, 100 iterations)
    for iteration, (epoch, step, lrs, momentum) in enumerate(seen):
        target = 0.02 * (1 - 0.9 * epoch / 5)  # linear to lrf over every epoch: no epoch-level ramp
        if iteration <= warmup:
            assert lrs[0] == pytest.approx(np.interp(iteration, [0, warmup], [0.1, target]))
            assert lrs[1] == lrs[2] == pytest.approx(np.interp(iteration, [0, warmup], [0.0, target]))
            assert momentum == pytest.approx(np.interp(iteration, [0, warmup], [0.8, 0.937]))
        else:
            assert lrs == pytest.approx([lr_factor(4, config) * 0.02] * 3) and momentum == pytest.approx(0.937)


def test_nominal_batch_accumulates_gradients(tmp_path):
    config = TrainConfig(epochs=2, batch_size=4, lr=0.01, optimizer="sgd", nominal_batch=16,
                         out_dir=str(tmp_path), progress=False)
    trainer = Trainer(NormBlobsTask(), config)
    steps = []
    trainer.optimizer.register_step_post_hook(lambda optimizer, args, kwargs: steps.append(1))
    trainer.fit()
    assert len(steps) == 2 * 24 // 4


def test_state_digest_by_hand():
    state = {"w": torch.tensor([1, 2], dtype=torch.int8), "b": torch.tensor(0.5)}
    expected = hashlib.sha256(b"w:torch.int8:(2,);\x01\x02" + b"b:torch.float32:();" + struct.pack("<f", 0.5))
    assert state_digest(state) == expected.hexdigest()
    assert state_digest({"b": state["b"], "w": state["w"]}) != expected.hexdigest()  # order is part of it


def test_multistep_schedule_follows_torch_multisteplr(tmp_path):
    """StereoSpike's official schedule (MultiStepLR([8, 42, 60], 0.5)), shortened: lr halves after epochs 2 and 4."""
    config = TrainConfig(epochs=6, batch_size=32, lr=0.1, optimizer="adam", schedule="multistep", milestones=(2, 4),
                         gamma=0.5, out_dir=str(tmp_path), progress=False)
    seen = []
    trainer = Trainer(NoDropoutTask(), config,
                      on_step=lambda e, s: s == 0 and seen.append(trainer.optimizer.param_groups[0]["lr"]))
    trainer.fit()
    reference = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule = torch.optim.lr_scheduler.MultiStepLR(reference, milestones=[2, 4], gamma=0.5)
    expected = []
    for _ in range(6):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        schedule.step()
    assert seen == pytest.approx(expected) and expected == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    official = TrainConfig(schedule="multistep", milestones=(8, 42, 60), gamma=0.5)
    assert [lr_factor(e, official) for e in (0, 7, 8, 41, 42, 59, 60, 69)] == [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert "schedule x0.5 after epochs 2, 4" in trainer.summary(3)
    for bad in ((4, 2), (0, 3), (2, 2)):
        with pytest.raises(UserError, match=r"^train.milestones must be increasing epochs >= 1"):
            TrainConfig(schedule="multistep", milestones=bad)
