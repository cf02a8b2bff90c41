"""The importer of the official SpikeYOLO checkpoints against the official code's own records.

``data/spikeyolo_official`` holds what the official BICLab/SpikeYOLO code (commit 309ef5e) built and
computed, written by its ``make_golden.py``: the state-dict names and shapes of ``DetectionModel``
(COCO release: scales n, s, m, l at 80 classes; Gen1 release: s at 2 classes) and, for generated
weights under the official names at depth 0.33 / width 0.125, the official raw head maps and
decoded output. Here the same weights are generated (``make_golden.official_weights``), imported
and run through evstream: the outputs must be the official ones.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evstream.checkpoint import CheckpointError
from evstream.nets.spike_yolo import spike_yolo
from evstream.nets.spike_yolo.official import (convert_official_state_dict, load_official, official_names,
                                               read_official_state_dict)
from evstream.snn.ilif import ILIFParams

DATA = Path(__file__).parent / "data" / "spikeyolo_official"
_spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)


def official_keys(variant: str) -> dict:
    with gzip.open(DATA / f"{variant}_keys.json.gz", "rt") as f:
        return json.load(f)


def official_state(shapes: dict) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in golden.official_weights(shapes).items()}


MODELS = [("coco", "n", 80), ("coco", "s", 80), ("coco", "m", 80), ("coco", "l", 80), ("gen1", "s", 2)]


@pytest.mark.parametrize("variant, scale, nc", MODELS)
def test_names_and_shapes_are_the_official_ones(variant, scale, nc):
    """Every official weight has exactly one evstream weight of its shape, at every released scale."""
    table = official_keys(variant)
    shapes = {k: tuple(s) for k, s in table[f"{scale}_nc{nc}"]}
    with torch.device("meta"):  # names and shapes are what is checked here: no memory, no arithmetic
        state = {k: torch.empty(s) for k, s in shapes.items() if not k.endswith("dfl.conv.weight")}
        model, options = convert_official_state_dict(state, variant=variant)
    assert options["scale"] == scale and options["num_classes"] == nc and options["variant"] == variant
    names = official_names(model)
    assert set(names.values()) == set(shapes) - {"model.26.dfl.conv.weight"}
    ours = model.state_dict()
    assert all(tuple(ours[k].shape) == shapes[v] for k, v in names.items())
    # the official count holds the DFL conv's 16 fixed weights, which evstream computes instead
    assert sum(p.numel() for p in model.parameters()) == table[f"{scale}_nc{nc}_parameters"] - 16


def _official_model(variant: str) -> tuple[nn.Module, dict]:
    table = official_keys(variant)
    nc = 80 if variant == "coco" else 2
    reference = spike_yolo(scale="rt", num_classes=nc, variant=variant)  # depth 0.33, width 0.125
    ours = reference.state_dict()
    shapes = {v: tuple(ours[k].shape) for k, v in official_names(reference).items()}
    shapes["model.26.dfl.conv.weight"] = (1, 16, 1, 1)
    return convert_official_state_dict(official_state(shapes), variant=variant)


@pytest.mark.parametrize("variant", ["coco", "gen1"])
def test_imported_model_computes_the_official_outputs(variant):
    """Raw head maps and decoded boxes/scores equal the official model's on the same weights and input."""
    model, options = _official_model(variant)
    assert options["T"] == {"coco": 1, "gen1": 2}[variant]
    neurons = {m.p for m in model.modules() if isinstance(getattr(m, "p", None), ILIFParams)}
    assert neurons == {ILIFParams.coco(4) if variant == "coco" else ILIFParams.gen1(4)}
    expected = np.load(DATA / f"{variant}_golden.npz")
    x = torch.from_numpy(golden.official_input(options["T"]))  # [B, T, 3, H, W], the official layout
    with torch.no_grad():
        raw = model(x[:, 0] if variant == "coco" else x.transpose(0, 1))
        boxes, scores = model.predict(x[:, 0] if variant == "coco" else x.transpose(0, 1))
    for i, level in enumerate(raw):
        np.testing.assert_allclose(level.numpy(), expected[f"raw{i}"], rtol=1e-5, atol=1e-5)
    xywh = torch.cat(((boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]), -1)
    decoded = torch.cat((xywh, scores), -1).transpose(1, 2)  # official: [B, 4 + nc, anchors], boxes xywh
    np.testing.assert_allclose(decoded.numpy(), expected["decoded"], rtol=1e-5, atol=1e-4)


def _ultralytics_checkpoint(state: dict[str, torch.Tensor], path: Path, monkeypatch) -> None:
    """``torch.save`` of an Ultralytics training checkpoint: pickled module objects of a class the reader
    cannot import (``ultralytics.nn.tasks.DetectionModel``), half precision, weights under ``ema``."""
    package = ["ultralytics", "ultralytics.nn", "ultralytics.nn.tasks"]
    for name in package:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    detection_model = type("DetectionModel", (nn.Module,), {"__module__": "ultralytics.nn.tasks"})
    sys.modules["ultralytics.nn.tasks"].DetectionModel = detection_model
    root = detection_model()
    for key, value in state.items():
        *path_parts, leaf = key.split(".")
        module = root
        for part in path_parts:
            if part not in module._modules:
                module.add_module(part, nn.Module())
            module = module._modules[part]
        if "running" in leaf or "num_batches" in leaf:
            module.register_buffer(leaf, value.clone())
        else:
            module.register_parameter(leaf, nn.Parameter(value.clone(), requires_grad=False))
    torch.save({"epoch": -1, "best_fitness": None, "model": None, "ema": root.half(), "updates": 1000,
                "optimizer": None, "train_args": {"model": "snn_yolov8.yaml"}}, path)


def test_reads_a_pickled_ultralytics_checkpoint_without_running_its_code(tmp_path, monkeypatch):
    model, _ = _official_model("gen1")
    names = official_names(model)
    state = {names[k]: v for k, v in model.state_dict().items()}
    state["model.26.dfl.conv.weight"] = torch.arange(16.0).view(1, 16, 1, 1)
    path = tmp_path / "best.pt"
    _ultralytics_checkpoint(state, path, monkeypatch)
    for name in ("ultralytics.nn.tasks", "ultralytics.nn", "ultralytics"):
        monkeypatch.delitem(sys.modules, name)  # the reader has no Ultralytics to import
    read = read_official_state_dict(path)
    assert set(read) == set(state)
    for key, value in state.items():
        assert read[key].dtype == (torch.float32 if value.is_floating_point() else value.dtype)
        torch.testing.assert_close(read[key], value.half().to(read[key].dtype) if value.is_floating_point()
                                   else value, rtol=0, atol=0)
    imported, options = load_official(path)
    assert options == {"scale": "rt", "num_classes": 2, "in_channels": 3, "T": 2, "D": 4, "variant": "gen1"}
    rebuilt = spike_yolo(**options)
    rebuilt.load_state_dict(imported.state_dict())


def test_converted_checkpoint_runs_as_a_live_detector(tmp_path):
    from evstream.nets.spike_yolo.live import SpikeYOLODetector
    from evstream.nets.spike_yolo.official import _main

    model, _ = _official_model("gen1")
    names = official_names(model)
    source = tmp_path / "official.pt"
    torch.save({"model": {names[k]: v for k, v in model.state_dict().items()}}, source)
    assert _main([str(source), str(tmp_path / "converted.pt")]) == 0
    detector = SpikeYOLODetector.from_checkpoint(tmp_path / "converted.pt")
    assert detector.recipe.resize == "linear" and detector.recipe.n_time_bins == 2
    assert detector.names == ("car", "pedestrian")


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_official_state_dict(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_official_state_dict(tmp_path / "junk.pt")
    model, _ = _official_model("gen1")
    names = official_names(model)
    state = {names[k]: v for k, v in model.state_dict().items()}
    del state["model.9.cv1.conv.weight"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"1 missing \(model.9.cv1.conv.weight\)") as err:
        load_official(tmp_path / "partial.pt")
    assert "\n" not in str(err.value)
    state = {names[k]: v for k, v in model.state_dict().items()}
    state["model.26.dfl.conv.weight"] = torch.ones(1, 16, 1, 1)
    with pytest.raises(ValueError, match="dfl.conv.weight is not 0..reg_max-1"):
        convert_official_state_dict(state)
