"""YAML configs with command-line overrides, turned into typed settings at the boundary.

A config file holds a ``train:`` group (fields of :class:`TrainConfig`) and a ``task:`` group
(the task class's keyword arguments). ``--set group.key=value`` overrides any entry; values
are parsed as YAML (``--set train.lr=1e-3``, ``--set task.T=16``). Every setting is checked
against the type its target declares (:func:`check_options`: the dataclass field or the
constructor's annotation), so a wrong key or type fails here, naming the setting, and never
deep inside training.
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence

import yaml

from evstream.errors import UserError
from evstream.train.trainer import TrainConfig

__all__ = ["check_options", "load_config", "train_config"]


def load_config(path: os.PathLike | str | None = None, overrides: list[str] | None = None) -> dict:
    """The merged config: the file (if any), then each ``key.path=value`` override."""
    config: dict = {"train": {}, "task": {}}
    if path is not None:
        try:
            with open(path) as f:
                loaded = yaml.safe_load(f) or {}
        except OSError as err:
            raise UserError(f"{path}: cannot read the config ({err.strerror})") from None
        except yaml.YAMLError as err:
            raise UserError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
        if not isinstance(loaded, dict):
            raise UserError(f"{path}: a config is a mapping with 'train' and 'task' groups, "
                            f"not a {type(loaded).__name__}")
        unknown = set(loaded) - set(config)
        if unknown:
            raise UserError(f"{path}: unknown config groups {sorted(unknown)} (expected 'train' and 'task')")
        for group, values in loaded.items():
            if values is not None and not isinstance(values, dict):
                raise UserError(f"{path}: the {group!r} group must be a mapping of settings")
            config[group].update(values or {})
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise UserError(f"override {item!r} must look like group.key=value (e.g. train.lr=0.01)")
        group, name = key.split(".", 1)
        if group not in config:
            raise UserError(f"override {item!r}: unknown group {group!r} (train or task)")
        config[group][name] = _parse_value(value, item)
    return config


def _parse_value(text: str, item: str):
    """YAML scalar parsing, plus ``1e-4``-style floats that YAML 1.1 reads as strings."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(f"override {item!r}: the value is not valid YAML") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def train_config(values: dict) -> TrainConfig:
    """A :class:`TrainConfig` from a dict: unknown keys and wrong types rejected by name, ranges by
    ``TrainConfig.__post_init__``."""
    return TrainConfig(**check_options("train", TrainConfig, values))


def _signatures(target: Callable) -> list[Callable]:
    """``target`` (a class's ``__init__``), then, while one passes ``**options`` on, its bases' ``__init__``s."""
    if not isinstance(target, type):
        return [target]
    chain = []
    for cls in target.__mro__:
        if "__init__" not in vars(cls) or cls is object:
            continue
        chain.append(vars(cls)["__init__"])
        if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(chain[-1]).parameters.values()):
            break
    return chain


def _settable(target: Callable) -> dict[str, inspect.Parameter]:
    """The keyword parameters of ``target`` a config may set: keyword-only ones and those with a default
    (a subclass's first, then those of the bases it passes ``**options`` to)."""
    params: dict[str, inspect.Parameter] = {}
    for function in _signatures(target):
        for name, p in inspect.signature(function).parameters.items():
            if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty):
                params.setdefault(name, p)
    return params


def _annotations(target: Callable) -> dict:
    """Resolved annotations of ``target``'s parameters ({} for those that cannot be resolved)."""
    hints: dict = {}
    for function in reversed(_signatures(target)):
        try:
            hints.update(typing.get_type_hints(function))
        except Exception:  # a forward reference only a type checker sees: check nothing rather than fail
            continue
    return hints


def check_options(group: str, target: Callable, values: Mapping) -> dict:
    """``values`` checked against the keyword parameters of ``target`` (a class or function).

    Each key must be a parameter; each value must fit its annotation (or, unannotated, the type of
    its default). Integral floats become int for an int, ints become float for a float, numbers
    become str for a str (YAML reads ``out_dir=2024`` as a number); anything else of the wrong
    type is an error.

    Raises:
        UserError: ``"unknown <group> settings [...]; known: [...]"`` or
            ``"<group>.<key>: expected <type>, got <value>"``.
    """
    params = _settable(target)
    unknown = sorted(set(values) - set(params))
    if unknown:
        raise UserError(f"unknown {group} settings {unknown}; known: {sorted(params)}")
    hints = _annotations(target)
    checked = {}
    for name, value in values.items():
        default = params[name].default
        annotation = hints.get(name, typing.Any if default in (None, inspect.Parameter.empty) else type(default))
        try:
            checked[name] = _coerce(value, annotation)
        except TypeError:
            raise UserError(f"{group}.{name}: expected {_describe(annotation)}, got {value!r}") from None
    return checked


def _coerce(value, annotation):
    """``value`` as ``annotation`` (see :func:`check_options`); TypeError when it does not fit."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in args:
            if arm is not type(None):
                try:
                    return _coerce(value, arm)
                except TypeError:
                    pass
        raise TypeError
    kind = origin or annotation
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif kind is os.PathLike:
        if isinstance(value, str):
            return value
    elif kind in (dict, Mapping):
        if isinstance(value, dict):
            return value
    elif kind in (tuple, list, Sequence):
        if isinstance(value, (list, tuple)):
            return tuple(value) if kind is tuple else list(value)
    elif isinstance(kind, type) and isinstance(value, kind):
        return value
    raise TypeError


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", os.PathLike: "a path",
          dict: "a mapping", Mapping: "a mapping", tuple: "a list", list: "a list", Sequence: "a list"}


def _describe(annotation) -> str:
    """``int | None`` -> ``"an integer or null"``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arms = ("null" if arm is type(None) else _describe(arm) for arm in typing.get_args(annotation))
        return " or ".join(dict.fromkeys(arms))
    kind = typing.get_origin(annotation) or annotation
    return _NAMES.get(kind, getattr(kind, "__name__", str(kind)))
