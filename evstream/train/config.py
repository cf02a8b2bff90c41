"""YAML configs with command-line overrides, turned into typed settings at the boundary.

A config file holds a ``train:`` group (fields of :class:`TrainConfig`) and a ``task:`` group
(the task builder's keyword arguments). ``--set group.key=value`` overrides any entry; values
are parsed as YAML (``--set train.lr=1e-3``, ``--set task.T=16``).
"""

from __future__ import annotations

import dataclasses
import os

import yaml

from evstream.train.trainer import TrainConfig


def load_config(path: os.PathLike | str | None = None, overrides: list[str] | None = None) -> dict:
    """The merged config: the file (if any), then each ``key.path=value`` override."""
    config: dict = {"train": {}, "task": {}}
    if path is not None:
        with open(path) as f:
            loaded = yaml.safe_load(f) or {}
        unknown = set(loaded) - set(config)
        if unknown:
            raise ValueError(f"{path}: unknown config groups {sorted(unknown)} (expected 'train' and 'task')")
        for group, values in loaded.items():
            config[group].update(values or {})
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"override {item!r} must look like group.key=value (e.g. train.lr=0.01)")
        group, name = key.split(".", 1)
        if group not in config:
            raise ValueError(f"override {item!r}: unknown group {group!r} (train or task)")
        config[group][name] = _parse_value(value)
    return config


def _parse_value(text: str):
    """YAML scalar parsing, plus ``1e-4``-style floats that YAML 1.1 reads as strings."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def train_config(values: dict) -> TrainConfig:
    """A :class:`TrainConfig` from a dict, rejecting unknown keys by name."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"unknown train settings {sorted(unknown)}; known: {sorted(fields)}")
    return TrainConfig(**values)
