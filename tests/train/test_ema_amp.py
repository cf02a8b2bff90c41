"""Weight EMA (Ultralytics' ModelEMA: ramp, evaluated, exported, resumed) and mixed precision in the shared trainer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from evstream.checkpoint import load
from evstream.errors import UserError
from evstream.train.ema import ModelEMA
from evstream.train.precision import autocast_dtype
from evstream.train.trainer import TrainConfig, Trainer
from tests.train.test_trainer import NoDropoutTask


def test_ema_follows_ultralytics_formula_by_hand():
    """v = d v + (1 - d) w with d = 0.9999 (1 - exp(-updates / 2000)); integer buffers untouched."""
    model = nn.BatchNorm1d(1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = ModelEMA(model)
    expected = 0.0
    for update, value in enumerate([1.0, 2.0, -4.0], start=1):
        with torch.no_grad():
            model.weight.fill_(value)
            model.num_batches_tracked.fill_(update)
        ema.update(model)
        d = 0.9999 * (1 - math.exp(-update / 2000))
        expected = d * expected + (1 - d) * value
        assert ema.module.weight.item() == pytest.approx(expected, rel=1e-6)
    assert ema.updates == 3 and ema.module.num_batches_tracked.item() == 0
    assert ema.factor(2000) == pytest.approx(0.9999 * (1 - math.exp(-1)))
    assert not any(p.requires_grad for p in ema.module.parameters())


class RecordingTask(NoDropoutTask):
    """Records which model is evaluated, and the autocast state and dtype the loss ran with."""

    def __init__(self):
        self.evaluated, self.autocast = [], []

    def loss(self, model, batch, device):
        x, y = batch
        out = model(x.to(device))
        self.autocast.append((torch.is_autocast_enabled(device.type), out.dtype))
        return nn.functional.cross_entropy(out, y.to(device))

    def evaluate(self, model, loader, device, *, progress=True):
        self.evaluated.append(model)
        return super().evaluate(model, loader, device)


def _config(tmp_path, **kw):
    return TrainConfig(**{"epochs": 2, "batch_size": 16, "lr": 0.05, "optimizer": "sgd", "momentum": 0.9,
                          "out_dir": str(tmp_path), "progress": False, "ema_tau": 3.0, **kw})


def test_ema_is_evaluated_and_saved_as_the_model(tmp_path):
    task = RecordingTask()
    trainer = Trainer(task, _config(tmp_path, ema=True))
    trainer.fit()
    assert all(model is trainer.ema.module for model in task.evaluated)
    assert trainer.ema.updates == 2 * 6  # 96 samples / 16 per step, 2 epochs
    saved = load(tmp_path / "last.pt")
    for key, value in trainer.ema.module.state_dict().items():
        torch.testing.assert_close(saved["model"][key], value, rtol=0, atol=0)
        torch.testing.assert_close(saved["train_model"][key], trainer.model.state_dict()[key], rtol=0, atol=0)
    assert saved["ema_updates"] == 12
    assert not torch.equal(saved["model"]["0.weight"], saved["train_model"]["0.weight"])


def test_resume_with_ema_reproduces_the_uninterrupted_run(tmp_path):
    reference = Trainer(RecordingTask(), _config(tmp_path / "ref", ema=True, epochs=3, schedule="constant"))
    reference.fit()
    Trainer(RecordingTask(), _config(tmp_path / "run", ema=True, epochs=1, schedule="constant")).fit()
    resumed = Trainer(RecordingTask(), _config(tmp_path / "run", ema=True, epochs=3, schedule="constant"))
    resumed.fit(resume=True)
    for mine, theirs in ((resumed.model, reference.model), (resumed.ema.module, reference.ema.module)):
        for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.ema.updates == reference.ema.updates == 18


def test_amp_modes_by_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("auto", cuda) == torch.float16
    assert autocast_dtype("bf16", cpu) == torch.bfloat16 and autocast_dtype("off", cuda) is None
    with pytest.raises(UserError, match="train.amp: unknown value 'half'"):
        TrainConfig(amp="half")


def test_cpu_trains_in_float32_by_default(tmp_path):
    task = RecordingTask()
    trainer = Trainer(task, _config(tmp_path, epochs=1))
    trainer.fit()
    assert set(task.autocast) == {(False, torch.float32)} and not trainer.scaler.is_enabled()


@pytest.mark.parametrize("mode, dtype, scaled", [("bf16", torch.bfloat16, False), ("fp16", torch.float16, True)])
def test_autocast_runs_the_forward_in_low_precision_and_keeps_float32_weights(tmp_path, mode, dtype, scaled):
    task = RecordingTask()
    trainer = Trainer(task, _config(tmp_path, amp=mode, grad_clip=10.0))
    history = trainer.fit()
    assert set(task.autocast) == {(True, dtype)}
    assert trainer.scaler.is_enabled() == scaled  # float16 gradients go through a GradScaler (unscaled to clip)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert history[-1]["train_loss"] < history[0]["train_loss"] and math.isfinite(history[-1]["train_loss"])
    assert ("scaler" in load(tmp_path / "last.pt")) == scaled
