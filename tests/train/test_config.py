"""Config files and overrides."""

from __future__ import annotations

import pytest

from evstream.errors import UserError
from evstream.train.config import check_options, load_config, train_config
from evstream.train.trainer import TrainConfig


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.01\n  epochs: 3\ntask:\n  T: 8\n")
    config = load_config(path, ["train.lr=1e-4", "task.net=masnn", "task.T=16"])
    assert config == {"train": {"lr": 1e-4, "epochs": 3}, "task": {"T": 16, "net": "masnn"}}
    assert train_config(config["train"]).lr == 1e-4


def test_bad_keys_are_named(tmp_path):
    with pytest.raises(ValueError, match="group.key=value"):
        load_config(None, ["lr=3"])
    with pytest.raises(ValueError, match="unknown train settings \\['lrate'\\]"):
        train_config({"lrate": 1})


def test_task_options_are_checked_against_the_task_constructor():
    from evstream.train.tasks.classification import GestureTask
    from evstream.train.tasks.depth import MvsecTask

    assert check_options("task", GestureTask, {"time_steps": 8.0, "dt_ms": 5, "net_options": {"reduction": 2}}) == {
        "time_steps": 8, "dt_ms": 5.0, "net_options": {"reduction": 2}}
    assert check_options("task", MvsecTask, {"cameras": ["left", "right"]}) == {"cameras": ("left", "right")}
    with pytest.raises(UserError, match=r"^unknown task settings \['bogus'\]; known: \['cache_dir', 'ds', "):
        check_options("task", GestureTask, {"bogus": 3})
    with pytest.raises(UserError, match="^task.time_steps: expected an integer or null, got 'abc'$"):
        check_options("task", GestureTask, {"time_steps": "abc"})
    with pytest.raises(UserError, match="^task.time_steps: expected an integer or null, got 2.5$"):
        check_options("task", GestureTask, {"time_steps": 2.5})
    with pytest.raises(UserError, match="^task.net_options: expected a mapping or null, got 3$"):
        check_options("task", GestureTask, {"net_options": 3})
    with pytest.raises(UserError, match="^task.cameras: expected a list, got 'left'$"):
        check_options("task", MvsecTask, {"cameras": "left"})


def test_train_settings_are_typed_and_ranged():
    assert train_config({"lr": 1, "epochs": 3.0, "out_dir": 2024}) == TrainConfig(lr=1.0, epochs=3, out_dir="2024")
    for values, message in [({"lr": "fast"}, "^train.lr: expected a number, got 'fast'$"),
                            ({"progress": "sometimes"}, "^train.progress: expected true or false, got 'sometimes'$"),
                            ({"epochs": 0}, "^train.epochs must be > 0, got 0$"),
                            ({"epochs": -1}, "^train.epochs must be > 0, got -1$"),
                            ({"batch_size": 0}, "^train.batch_size must be > 0, got 0$"),
                            ({"lr": 0.0}, "^train.lr must be > 0, got 0.0$"),
                            ({"weight_decay": -1e-4}, "^train.weight_decay must be >= 0, got -0.0001$"),
                            ({"optimizer": "rmsprop"}, "^train.optimizer: unknown value 'rmsprop' \\(one of adam, "),
                            ({"schedule": "step"}, "^train.schedule: unknown value 'step' ")]:
        with pytest.raises(UserError, match=message):
            train_config(values)


def test_bad_config_files_are_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: [1, 2\n")
    with pytest.raises(UserError, match=f"^{path}: not valid YAML"):
        load_config(path)
    path.write_text("- 1\n")
    with pytest.raises(UserError, match=f"^{path}: a config is a mapping"):
        load_config(path)
    path.write_text("train: 3\n")
    with pytest.raises(UserError, match=f"^{path}: the 'train' group must be a mapping"):
        load_config(path)
    with pytest.raises(UserError, match=f"^{tmp_path / 'none.yaml'}: cannot read the config"):
        load_config(tmp_path / "none.yaml")


def test_zero_sizes_are_errors_not_defaults(tmp_path):
    from evstream.train.tasks.classification import GestureTask
    from evstream.train.tasks.depth import MvsecTask
    from evstream.train.tasks.detection import Gen1Task

    for name in ("time_steps", "dt_ms", "ds", "n_clips"):
        with pytest.raises(UserError, match=f"^task.{name} must be > 0, got 0$"):
            GestureTask(tmp_path, **{name: 0})
    assert GestureTask(tmp_path, time_steps=None).time_steps == 60  # None (unset) still means the default
    with pytest.raises(UserError, match="^task.T must be > 0, got 0$"):
        Gen1Task(tmp_path, T=0)
    with pytest.raises(UserError, match="^task.window_us must be > 0, got -5$"):
        MvsecTask(tmp_path, window_us=-5)


@pytest.mark.parametrize("args,message", [
    (["--set", "task.bogus=3"], "unknown task settings ['bogus']; known: ['cache_dir', 'ds', 'dt_ms', 'eval_clips', "
                                "'loss', 'loss_options', 'n_clips', 'net', 'net_options', 'time_steps', 'tssd_chunks']"),
    (["--set", "task.time_steps=abc"], "task.time_steps: expected an integer or null, got 'abc'"),
    (["--set", "task.time_steps=0"], "task.time_steps must be > 0, got 0"),
    (["--set", "task.dt_ms=-2"], "task.dt_ms must be > 0, got -2.0"),
    (["--set", "train.lr=fast"], "train.lr: expected a number, got 'fast'"),
    (["--set", "train.bogus=1"], "unknown train settings ['bogus']; known: ['amp', 'batch_size', 'cudnn_benchmark', "),
    (["--epochs", "-1"], "train.epochs must be > 0, got -1"),
    (["--batch-size", "0"], "train.batch_size must be > 0, got 0"),
    (["--set", "lr=3"], "override 'lr=3' must look like group.key=value (e.g. train.lr=0.01)"),
    (["--device", "gpu"], "train.device: Expected one of cpu, cuda, "),
    (["--device", "cuda:99"], "train.device: 'cuda:99', but this machine has "),
    (["--set", "task.net_options={depth: 3}"], "cannot build the gesture model from these settings "
                                               "(tasnn_gesture() got an unexpected keyword argument 'depth')"),
])
def test_bad_settings_fail_in_one_line_before_training(tmp_path, capsys, args, message):
    from evstream.cli import main

    out = tmp_path / "run"
    assert main(["train", "gesture", "--data", str(tmp_path), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"evstream train: error: {message}"), err
    assert not out.exists()


def test_flags_are_values_not_yaml(tmp_path, capsys):
    from evstream.cli import main

    out = tmp_path / "run: [1]"  # YAML would read a mapping; --out is a folder name
    assert main(["train", "gesture", "--data", str(tmp_path), "--out", str(out), "--resume",
                 "--set", "task.time_steps=0"]) == 2
    note, error = capsys.readouterr().err.splitlines()
    assert note == f"evstream train: nothing to resume in {out} (no last.pt): starting at epoch 1"
    assert error == "evstream train: error: task.time_steps must be > 0, got 0"
