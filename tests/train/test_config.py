"""Config files and overrides."""

from __future__ import annotations

import pytest

from evstream.train.config import load_config, train_config


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
