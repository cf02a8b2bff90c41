"""Strict JSON of results: NaN and infinities become null; numpy and torch numbers become Python ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evstream.jsonout import plain, to_json


def test_non_finite_numbers_become_null():
    metrics = {"top1": 0.5, "val_loss": float("nan"), "ratio": np.float64("inf"), "rmse": np.float32("-inf"),
               "per_class": [1.0, np.nan], "pair": (np.int64(3), True)}
    text = to_json(metrics)
    assert text == ('{"top1": 0.5, "val_loss": null, "ratio": null, "rmse": null, "per_class": [1.0, null], '
                    '"pair": [3, true]}')
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))


def test_plain_turns_numpy_and_torch_into_builtins_keeping_nan():
    value = plain({1: np.float64(0.25), "t": torch.tensor([1.5, 2.0]), "b": np.bool_(False), "p": Path("a/b"),
                   "n": np.float32("nan")})
    assert value["1"] == 0.25 and type(value["1"]) is float
    assert value["t"] == [1.5, 2.0] and value["b"] is False and value["p"] == "a/b"
    assert type(value["n"]) is float and value["n"] != value["n"]
    with pytest.raises(TypeError, match="object is not a plain value"):
        plain(object())
