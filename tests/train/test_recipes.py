"""``--recipe``: ``cpu`` keeps each task's defaults, ``paper`` resolves to the official code's hyperparameters
(values read from BICLab/TA-SNN and BICLab/Attention-SNN ``Config.py`` / ``create_net``, urancon/StereoSpike
``train.py``), and anything given explicitly still wins."""

from __future__ import annotations

import pytest

from evstream.cli import build_parser, main
from evstream.train.commands import _settings
from evstream.train.config import train_config
from evstream.train.recipes import PAPER, recipe_settings
from evstream.train.tasks.classification import Cifar10DvsTask, GestureTask


def resolved(*argv: str) -> tuple[type, dict, dict, dict]:
    """``(task class, default train settings, explicit train settings, task options)`` of a train command."""
    return _settings(build_parser().parse_args(["train", *argv]))


def train_settings(*argv: str) -> dict:
    _, defaults, explicit, _ = resolved(*argv)
    return vars(train_config({**defaults, **explicit}))


PLATEAU = {"schedule": "plateau", "plateau_factor": 0.1, "plateau_patience": 5}


def test_paper_gesture_tasnn_is_the_official_config(tmp_path):
    # TA-SNN DVSGestures/CNN/Config.py: dt = 1, T = 30, ds = 4, clip = 1, batch 16, 100 epochs, Adam lr 1e-4
    # (betas 0.9, 0.999, no weight decay); create_net: ReduceLROnPlateau(mode='min', factor=0.1, patience=5)
    # stepped on the training loss (process.py)
    cls, _, _, task = resolved("gesture", "--data", str(tmp_path), "--recipe", "paper")
    assert cls is GestureTask and task == {"time_steps": 30, "dt_ms": 1, "ds": 4, "n_clips": 1}
    built = GestureTask(tmp_path, **task)
    assert (built.time_steps, built.dt_us, built.ds, built.n_clips, built.input_size) == (30, 1000, 4, 1, 32)
    train = train_settings("gesture", "--data", str(tmp_path), "--recipe", "paper")
    assert {k: train[k] for k in ("optimizer", "lr", "weight_decay", "batch_size", "epochs", *PLATEAU)} == {
        "optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0, "batch_size": 16, "epochs": 100, **PLATEAU}


def test_paper_gesture_masnn_is_the_official_config(tmp_path):
    # MA_SNN/DVSGestures/CNN/Config.py: T = 60, batch 128, 300 epochs, clip 10, Adam lr 1e-4; dt 15 ms (issue #8)
    _, _, _, task = resolved("gesture", "--data", str(tmp_path), "--net", "masnn", "--recipe", "paper")
    assert task == {"net": "masnn", "time_steps": 60, "dt_ms": 15, "ds": 4, "n_clips": 10}
    train = train_settings("gesture", "--data", str(tmp_path), "--net", "masnn", "--recipe", "paper")
    assert (train["batch_size"], train["epochs"], train["lr"], train["schedule"]) == (128, 300, 1e-4, "plateau")


def test_paper_cifar10dvs_is_the_official_config(tmp_path):
    # TA-SNN CIFAR10DVS/CNN/Config.py: dt = 1, T = 10, ds = 1, batch 64, 300 epochs, Adam lr 1e-3, plateau
    _, _, _, task = resolved("cifar10dvs", "--data", str(tmp_path), "--recipe", "paper")
    built = Cifar10DvsTask(tmp_path, **task)
    assert (built.time_steps, built.dt_us, built.ds, built.input_size) == (10, 1000, 1, 128)
    train = train_settings("cifar10dvs", "--data", str(tmp_path), "--recipe", "paper")
    assert {k: train[k] for k in ("lr", "batch_size", "epochs", *PLATEAU)} == {
        "lr": 1e-3, "batch_size": 64, "epochs": 300, **PLATEAU}
    # MA_SNN/CIFAR10DVS/CNN/Config.py: dt = 10, T = 20, batch 128, 300 epochs
    _, _, _, task = resolved("cifar10dvs", "--data", str(tmp_path), "--net", "masnn", "--recipe", "paper")
    assert (task["time_steps"], task["dt_ms"]) == (20, 10)


def test_paper_stereospike_and_gen1(tmp_path):
    train = train_settings("mvsec", "--data", str(tmp_path), "--net", "stereospike", "--recipe", "paper")
    assert (train["epochs"], train["schedule"], train["milestones"], train["gamma"]) == (70, "multistep",
                                                                                        (8, 42, 60), 0.5)
    _, _, _, task = resolved("gen1", "--data", str(tmp_path), "--recipe", "paper")
    assert task == {"scale": "s", "T": 2}
    train = train_settings("gen1", "--data", str(tmp_path), "--recipe", "paper")
    assert (train["optimizer"], train["lr"], train["batch_size"], train["nominal_batch"]) == ("sgd", 0.02, 80, 64)


def test_cpu_recipe_is_the_task_defaults_and_explicit_settings_win(tmp_path):
    for task in ("gesture", "cifar10dvs", "gen1", "mvsec", "nmnist", "ncaltech101"):
        assert resolved(task, "--data", str(tmp_path)) == resolved(task, "--data", str(tmp_path), "--recipe", "cpu")
    cls, defaults, _, task = resolved("gesture", "--data", str(tmp_path))
    assert task == {} and defaults == {**cls.train_defaults, "out_dir": "runs/gesture"}
    _, defaults, explicit, task = resolved("gesture", "--data", str(tmp_path), "--recipe", "paper",
                                           "--batch-size", "2", "--set", "task.dt_ms=5")
    assert defaults["batch_size"] == 16 and explicit["batch_size"] == 2 and task["dt_ms"] == 5


def test_paper_without_official_code_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "nmnist", "--data", str(tmp_path), "--recipe", "paper"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no paper recipe for nmnist with net 'cnn'" in err
    assert "gesture/tasnn" in err and "mvsec/stereospike" in err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "gesture", "--data", str(tmp_path), "--recipe", "fast"])
    assert recipe_settings("gen1", "paper") == (PAPER["gen1"]["spike_yolo"]["train"],
                                                PAPER["gen1"]["spike_yolo"]["task"])


def test_help_lists_the_paper_recipes(capsys):
    for command in ("train", "eval"):
        with pytest.raises(SystemExit):
            main([command, "gesture", "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "--recipe {cpu,paper}" in out
        assert ("gesture tasnn: task.time_steps=30 task.dt_ms=1 task.ds=4 task.n_clips=1 train.optimizer=adam "
                "train.lr=0.0001") in out
        assert "gesture masnn: task.time_steps=60 task.dt_ms=15" in out and "train.batch_size=128 train.epochs=300" in out
        assert "cifar10dvs tasnn: task.time_steps=10 task.dt_ms=1" in out
