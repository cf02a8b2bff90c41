"""Gen1Task: the trainer contract, both evaluations on hand-made detections, and a real model end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from evstream import EVENT_DTYPE
from evstream.datasets.gen1 import Gen1Detection
from evstream.io import write_events
from evstream.nets.spike_yolo.nms import NMSResult
from evstream.train.baselines import prior_boxes
from evstream.train.commands import task_class
from evstream.train.config import train_config
from evstream.train.tasks.detection import Gen1Task, to_sensor_detections

BBOX = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"), ("class_id", "u1"),
                 ("confidence", "<f4"), ("track_id", "<u4")])
ROWS = [(1_000_000, 40, 50, 60, 40, 0, 1), (1_000_000, 200, 100, 20, 50, 1, 2), (2_000_000, 60, 60, 80, 60, 0, 1)]


def _tree(root, rows=ROWS, splits=("train", "val")):
    for split in splits:
        folder = root / split
        folder.mkdir(parents=True)
        events = np.zeros(400, EVENT_DTYPE)
        rng = np.random.default_rng(0)
        events["x"], events["y"] = rng.integers(0, 304, 400), rng.integers(0, 240, 400)
        events["t"], events["p"] = np.sort(rng.integers(700_000, 2_000_000, 400)), rng.integers(0, 2, 400)
        write_events(folder / "rec_td.dat", events, (304, 240, 2), format="dat")
        np.save(folder / "rec_bbox.npy", np.array([(*r[:6], 1.0, r[6]) for r in rows], BBOX))
    return root


def _perfect(dataset: Gen1Detection, shift: float = 0.0) -> list[NMSResult]:
    out = []
    for i in range(len(dataset)):
        t = torch.from_numpy(dataset.targets(i)).double()
        out.append(NMSResult(t[:, 1:] + shift, torch.linspace(0.9, 0.8, len(t)).double(), t[:, 0].long()))
    return out


def test_registered_for_the_cli_with_the_paper_sgd_settings():
    assert task_class("gen1") is Gen1Task
    config = train_config(Gen1Task.train_defaults)
    assert (config.optimizer, config.lr, config.momentum, config.weight_decay) == ("sgd", 0.02, 0.937, 5e-4)
    assert (config.schedule, config.lrf, config.warmup_epochs) == ("linear", 0.004, 10)
    assert (config.warmup_style, config.warmup_momentum, config.warmup_bias_lr) == ("yolo", 0.8, 0.1)
    assert (config.nominal_batch, config.decay_norm_and_bias, config.grad_clip) == (64, False, 10.0)
    assert Gen1Task.metric == "sample_mAP50" and Gen1Task.metric_mode == "max"


def test_both_maps_are_one_for_perfect_detections(tmp_path):
    task = Gen1Task(_tree(tmp_path))
    _, val = task.datasets()
    assert len(val) == 2
    results = _perfect(val)
    assert task._sample_map(val, results) == pytest.approx(  # Ultralytics' perfect score is 0.995
        {"sample_mAP50": 0.995, "sample_mAP": 0.995, "sample_coco_mAP50": 1.0, "sample_coco_mAP": 1.0})
    assert task._prophesee_map(val, results) == pytest.approx({"prophesee_mAP50": 1.0, "prophesee_mAP": 1.0})


def test_maps_drop_for_shifted_detections(tmp_path):
    task = Gen1Task(_tree(tmp_path))
    _, val = task.datasets()
    shifted = _perfect(val, shift=12.0)  # 12 input pixels: IoU well below 0.95 for every box
    sample = task._sample_map(val, shifted)
    assert 0.0 <= sample["sample_mAP"] < 0.5 and 0.0 <= sample["sample_coco_mAP"] < 0.5
    prophesee = task._prophesee_map(val, shifted)
    assert prophesee["prophesee_mAP"] < 0.5


def test_events_blind_prior_is_scored_by_the_same_map_code(tmp_path):
    at_the_same_place = [(t, *r[1:]) for t in (1_000_000, 1_500_000, 2_000_000) for r in ROWS[:2]]
    task = Gen1Task(_tree(tmp_path, at_the_same_place, ("train", "test")), eval_split="test")
    train, test = task.datasets()
    prior = task.prior()  # the train split's labels, whatever the events
    assert_close(prior.boxes, prior_boxes([train.targets(i) for i in range(len(train))], 2).boxes)
    assert len(prior.scores) == 2 and prior.scores.tolist() == [1.0, 1.0]  # one position per class, in every sample
    assert task.score(test, [prior] * len(test)) == pytest.approx(  # where every box always is: perfect
        {"sample_mAP50": 0.995, "sample_mAP": 0.995, "sample_coco_mAP50": 1.0, "sample_coco_mAP": 1.0,
         "prophesee_mAP50": 1.0, "prophesee_mAP": 1.0})
    elsewhere = NMSResult(prior.boxes + 100.0, prior.scores, prior.classes)  # no overlap with any box
    assert set(task.score(test, [elsewhere] * len(test)).values()) == {0.0}
    with pytest.raises(ValueError, match="one result per sample"):
        task.score(test, [prior])


def test_no_prior_without_a_train_split(tmp_path):
    task = Gen1Task(_tree(tmp_path, splits=("test",)), scale="rt", T=1, imgsz=64, eval_split="test")
    assert task.prior() is None
    test = task.dataset("test")
    metrics = task.evaluate(task.build_model(), torch.utils.data.DataLoader(test, batch_size=2, collate_fn=task.collate),
                            torch.device("cpu"), progress=False)
    assert "sample_mAP50" in metrics and not any(k.startswith("prior_") for k in metrics)


def test_sensor_detections_invert_the_letterbox(tmp_path):
    task = Gen1Task(_tree(tmp_path))
    _, val = task.datasets()
    det = to_sensor_detections(val, 1_000_000, _perfect(val)[0])
    assert det["t"].tolist() == [1_000_000, 1_000_000] and det["class_id"].tolist() == [0, 1]
    np.testing.assert_allclose(np.stack([det["x"], det["y"], det["w"], det["h"]], 1), [r[1:5] for r in ROWS[:2]],
                               atol=1e-4)


def test_loss_and_evaluate_with_a_real_model(tmp_path):
    torch.manual_seed(0)
    task = Gen1Task(_tree(tmp_path), scale="rt", T=1, imgsz=64)
    model = task.build_model()
    train, val = task.datasets()
    loader = torch.utils.data.DataLoader(val, batch_size=2, collate_fn=task.collate)
    frames, targets = next(iter(loader))
    assert frames.shape == (1, 2, 3, 64, 64) and targets.shape == (3, 6)
    loss = task.loss(model, (frames, targets), torch.device("cpu"))
    loss.backward()
    assert loss.ndim == 0 and loss.item() > 0
    assert model.head.cls[0][-1].chain[0].bias.grad.abs().sum() > 0
    metrics = task.evaluate(model, loader, torch.device("cpu"))
    maps = {"sample_mAP50", "sample_mAP", "sample_coco_mAP50", "sample_coco_mAP", "prophesee_mAP50", "prophesee_mAP"}
    assert set(metrics) == maps | {f"prior_{k}" for k in maps} | {"firing_rate", "energy_uj", "ann_energy_uj"}
    assert {k: metrics[f"prior_{k}"] for k in maps} == pytest.approx(task.score(val, [task.prior()] * len(val)))
    assert 0.0 <= metrics["sample_mAP50"] <= 1.0 and -1.0 <= metrics["prophesee_mAP50"] <= 1.0
    assert 0.0 <= metrics["firing_rate"] <= 4.0 and 0.0 < metrics["energy_uj"] < metrics["ann_energy_uj"]
    one_at_a_time = Gen1Task(tmp_path, scale="rt", T=1, imgsz=64, eval_batch=1)
    assert one_at_a_time.evaluate(model, loader, torch.device("cpu"), progress=False) == pytest.approx(metrics)


def test_cli_trains_then_evaluates_and_exports_a_live_detector(tmp_path, capsys):
    import json

    from evstream.cli import main
    from evstream.nets.spike_yolo.live import load_detector

    data, run = _tree(tmp_path / "data"), tmp_path / "run"
    common = ["--data", str(data), "--scale", "rt", "--set", "task.T=1", "--batch-size", "2"]
    assert main(["train", "gen1", *common, "--epochs", "1", "--out", str(run), "--set", "train.progress=false"]) == 0
    capsys.readouterr()
    assert main(["eval", "gen1", *common, "--checkpoint", str(run / "last.pt"), "--export", str(tmp_path / "d.pt")]) == 0
    metrics = json.loads(capsys.readouterr().out.splitlines()[0])
    assert set(metrics) >= {"sample_mAP50", "prophesee_mAP50", "firing_rate", "energy_uj"}
    model, info = load_detector(tmp_path / "d.pt")
    assert info["net_options"] == {"scale": "rt", "num_classes": 2, "T": 1, "D": 4, "bn_eps": 1e-3}
    assert info["recipe"] == {"sensor_size": (304, 240, 2), "n_time_bins": 1, "window_us": 250_000, "imgsz": 320,
                              "resize": "linear"}
    assert info["names"] == ["car", "pedestrian"] and info["metrics"] == metrics
    trained = torch.load(run / "last.pt", weights_only=True)["model"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, trained[key])


def test_eval_builds_an_exported_detector_with_its_own_batchnorm_eps(tmp_path):
    """The bundled detector (eps not stored: torch's 1e-5) and a new one (eps stored) are scored as trained;
    ``task.bn_eps`` / ``task.bn_momentum`` set a trained net's BatchNorms."""
    bns = lambda model: [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]  # noqa: E731
    task = Gen1Task(tmp_path, scale="rt", T=1)
    assert {(m.eps, m.momentum) for m in bns(task.build_model())} == {(1e-3, 0.03)}
    legacy = {"net": "spike_yolo", "net_options": {"scale": "rt", "num_classes": 2, "T": 1, "D": 4}}
    assert {m.eps for m in bns(task.build_model_for(legacy))} == {1e-5}
    stored = {"net": "spike_yolo", "net_options": {**legacy["net_options"], "bn_eps": 2e-4}}
    assert {m.eps for m in bns(task.build_model_for(stored))} == {2e-4}
    assert {m.eps for m in bns(task.build_model_for({"model": {}}))} == {1e-3}  # a training checkpoint
    old = Gen1Task(tmp_path, scale="rt", T=1, bn_eps=1e-5, bn_momentum=0.1)
    assert {(m.eps, m.momentum) for m in bns(old.build_model())} == {(1e-5, 0.1)}
