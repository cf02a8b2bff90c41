"""The ``--device cuda`` paths of every task, run here with CUDA mocked.

``fake_cuda`` makes torch report one CUDA device; tensors and modules sent to ``cuda`` stay on the
CPU but every such call is recorded (with its ``non_blocking`` flag), factories asked for a CUDA
tensor make a CPU one, and ``torch.autocast("cuda", dtype)`` records its arguments and runs a CPU
autocast of that dtype, so the forward pass and loss really run in float16. What is checked: the
command's device check passes, the loaders pin memory, every batch goes to the device with
``non_blocking=True``, the loss runs under float16 autocast with a GradScaler, cuDNN benchmarks,
and training and evaluation finish with finite numbers. A CPU-only assumption (a batch left on
the CPU, a blocking copy, a loader without pinned memory) fails it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from torch import nn

from evstream.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true but no accelerator")]

FACTORIES = ("zeros", "ones", "empty", "full", "arange", "tensor", "as_tensor", "zeros_like", "ones_like",
             "full_like", "empty_like", "rand", "randn", "randint", "linspace", "eye")


def _is_cuda(device) -> bool:
    return isinstance(device, (str, torch.device)) and torch.device(device).type == "cuda"


@dataclass
class Recorder:
    copies: list = field(default_factory=list)  # non_blocking flag of each tensor sent to cuda
    modules: int = 0  # modules sent to cuda
    factories: int = 0  # tensors made on cuda (made on the CPU here)
    autocast: list = field(default_factory=list)  # (device_type, dtype, enabled)
    pinned: list = field(default_factory=list)  # pin_memory of each DataLoader


@pytest.fixture
def fake_cuda(monkeypatch):
    record = Recorder()
    in_module_to = []
    tensor_to, module_to, loader_init = torch.Tensor.to, nn.Module.to, torch.utils.data.DataLoader.__init__

    def fake_tensor_to(self, *args, **kwargs):
        if args and _is_cuda(args[0]):
            args = ("cpu", *args[1:])
            if not in_module_to:
                record.copies.append(kwargs.get("non_blocking", len(args) > 2 and args[2]))
        elif _is_cuda(kwargs.get("device")):
            kwargs["device"] = "cpu"
            if not in_module_to:
                record.copies.append(kwargs.get("non_blocking", False))
        return tensor_to(self, *args, **kwargs)

    def fake_module_to(self, *args, **kwargs):
        if (args and _is_cuda(args[0])) or _is_cuda(kwargs.get("device")):
            record.modules += 1
            args, kwargs = (("cpu", *args[1:]) if args else args), {k: v for k, v in kwargs.items() if k != "device"}
        in_module_to.append(True)
        try:
            return module_to(self, *args, **kwargs)
        finally:
            in_module_to.pop()

    def factory(original):
        @functools.wraps(original)
        def make(*args, **kwargs):
            if _is_cuda(kwargs.get("device")):
                record.factories += 1
                kwargs["device"] = "cpu"
            return original(*args, **kwargs)
        return make

    def fake_autocast(device_type, dtype=None, enabled=True, **kwargs):
        record.autocast.append((device_type, dtype, enabled))
        return torch.amp.autocast_mode.autocast("cpu", dtype=dtype, enabled=enabled)

    def fake_loader_init(self, *args, **kwargs):
        record.pinned.append(kwargs.get("pin_memory", False))
        loader_init(self, *args, **kwargs)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.Tensor, "to", fake_tensor_to)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: fake_tensor_to(self, "cuda", **k))
    monkeypatch.setattr(nn.Module, "to", fake_module_to)
    monkeypatch.setattr(torch, "autocast", fake_autocast)
    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", fake_loader_init)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    for name in FACTORIES:
        monkeypatch.setattr(torch, name, factory(getattr(torch, name)))
    return record


def _train_then_eval(task: str, data, tmp_path, capsys, *settings: str) -> dict:
    common = ["--data", str(data), "--device", "cuda", "--batch-size", "2", *settings]
    run = tmp_path / "run"
    assert main(["train", task, *common, "--epochs", "1", "--out", str(run), "--set", "train.progress=false"]) == 0
    history = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert np.isfinite(history["train_loss"])
    assert main(["eval", task, *common, "--checkpoint", str(run / "last.pt"), "--set", "train.progress=false"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[0])


def _check(record: Recorder) -> None:
    assert record.modules >= 2  # the trained model, then the evaluated one
    assert record.copies and all(record.copies), "a batch went to the GPU with a blocking copy"
    assert record.pinned and all(record.pinned), "a loader does not pin memory on CUDA"
    assert ("cuda", torch.float16, True) in record.autocast  # the official trainer's float16 AMP
    assert torch.backends.cudnn.benchmark


def test_gesture_on_cuda(fake_cuda, tmp_path, capsys):
    """Also the code path of cifar10dvs, ncaltech101 and nmnist (one classification task class)."""
    from evstream.sim.gesture import write_gesture_dataset

    root = tmp_path / "gesture"
    write_gesture_dataset(root, users=2, test_users=1, seconds=0.4, seed=3, fps=100.0, progress=False)
    metrics = _train_then_eval("gesture", root, tmp_path, capsys, "--set", "task.time_steps=4", "--set",
                               "task.dt_ms=50", "--set", "task.ds=8", "--set", "task.n_clips=2", "--set",
                               "task.net_options={reduction: 2}")
    assert 0.0 <= metrics["top1"] <= 1.0
    _check(fake_cuda)


def test_gen1_detection_on_cuda(fake_cuda, tmp_path, capsys):
    from tests.train.test_detection_task import _tree

    metrics = _train_then_eval("gen1", _tree(tmp_path / "gen1"), tmp_path, capsys, "--scale", "rt",
                               "--set", "task.T=1")
    assert "sample_mAP50" in metrics
    _check(fake_cuda)


def test_mvsec_depth_on_cuda(fake_cuda, tmp_path, capsys):
    from tests.train.test_depth_task import RECORDING

    metrics = _train_then_eval("mvsec", RECORDING, tmp_path, capsys, "--set", "task.scenario=synthetic",
                               "--set", "task.time_steps=2", "--set", "task.base_channels=4", "--set",
                               "task.stages=2")
    assert np.isfinite(metrics["mean_depth_error@10"])
    _check(fake_cuda)
