"""The nmnist task on the shared real recordings: splits, frames, augmentation, training, eval CLI, bundled model."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from scipy import ndimage

from evstream.cli import main
from evstream.datasets import NMNIST
from evstream.io import read_events, write_events
from evstream.nets.live_classifier import LiveClassifier, WindowRecipe
from evstream.ops.geometry import translate
from evstream.ops.tasnn import to_tasnn_frames
from evstream.checkpoint import state_digest
from evstream.train.tasks.nmnist import (NMNISTTask, RandomAffineFrames, RandomDropEvents, RandomShiftFrames,
                                         validation_split)
from evstream.train.trainer import TrainConfig, Trainer
from tests.conftest import SHARED

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NMNIST_SMALL = SHARED / "datasets/nmnist_small"
MODELS = Path(__file__).resolve().parents[2] / "models"
CARD = MODELS / "nmnist_cnn.yaml"


def test_validation_split_by_hand():
    labels = [0] * 10 + [1] * 3 + [2] * 21
    train, val = validation_split(labels, 0.1)
    # per class the last floor(0.1 n) in order: class 0 keeps ceil(9) = 9 -> index 9; class 1 ceil(2.7) = 3 -> none;
    # class 2 ceil(18.9) = 19 -> indices 13 + 19, 13 + 20
    assert val == [9, 32, 33] and train == sorted(set(range(34)) - {9, 32, 33})
    with pytest.raises(ValueError, match="val_fraction"):
        validation_split(labels, 0.0)


def test_task_splits_the_real_training_recordings(shared, tmp_path):
    task = NMNISTTask(NMNIST_SMALL, cache_dir=tmp_path / "cache")
    train, val = task.datasets()
    assert (len(train), len(val)) == (905, 95)
    assert not set(train.indices) & set(val.indices)
    labels = NMNIST(NMNIST_SMALL).labels
    assert Counter(labels[i] for i in val.indices) == {0: 9, 1: 11, 2: 9, 3: 9, 4: 10, 5: 9, 6: 9, 7: 11, 8: 8, 9: 10}
    assert val.indices == task.eval_dataset("val").indices and train.indices == task.eval_dataset("train").indices
    x, y = train[0]
    assert x.shape == (3, 2, 34, 34) and x.dtype == torch.float32 and y == 0
    clip, label = val[0]
    recipe = WindowRecipe((34, 34, 2), 3, 110_000)
    events = NMNIST(NMNIST_SMALL).events(val.indices[0])
    np.testing.assert_array_equal(clip.numpy(), recipe(events)[None])  # the live classifier's frames, one clip
    assert int(clip.sum()) == len(events)  # 3 x 110 ms ending at the last event hold the whole recording
    with pytest.raises(FileNotFoundError, match="Test is missing"):
        task.eval_dataset("test")
    with pytest.raises(ValueError, match="splits"):
        task.eval_dataset("validation")
    with pytest.raises(ValueError, match="n_clips"):
        NMNISTTask(NMNIST_SMALL, n_clips=3)


def test_shifted_frames_are_the_frames_of_shifted_events(shared):
    events = read_events(next(iter(sorted((NMNIST_SMALL / "Train/4").glob("*.bin")))), sensor_size=(34, 34, 2))
    start = int(events["t"][0])
    frames = to_tasnn_frames(events, (34, 34, 2), 6, 55_000, start_time=start)
    for seed in range(6):
        torch.manual_seed(seed)
        shifted = RandomShiftFrames(3)(frames)
        torch.manual_seed(seed)
        dx, dy = (int(v) for v in torch.randint(-3, 4, (2,)))
        expected = to_tasnn_frames(translate(events, (34, 34, 2), dx, dy), (34, 34, 2), 6, 55_000, start_time=start)
        np.testing.assert_array_equal(shifted.numpy(), expected)
    np.testing.assert_array_equal(RandomShiftFrames(0)(frames).numpy(), frames)


def test_affine_frames_match_scipy_and_transform_every_frame_alike(shared):
    events = read_events(sorted((NMNIST_SMALL / "Train/2").glob("*.bin"))[0], sensor_size=(34, 34, 2))
    frames = torch.from_numpy(to_tasnn_frames(events, (34, 34, 2), 3, 110_000))
    for seed in range(4):
        torch.manual_seed(seed)
        out = RandomAffineFrames(15.0, 0.2)(frames)
        torch.manual_seed(seed)
        draws = torch.rand(2, dtype=torch.float64) * 2 - 1
        angle, scale = (draws * torch.tensor([15.0, 0.2], dtype=torch.float64)).tolist()
        a, s = math.radians(angle), 1 + scale
        # output pixel (row y, col x) samples the input at c + R (x - c, y - c) / s, c the centre 16.5
        matrix = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) / s
        offset = 16.5 - matrix @ [16.5, 16.5]
        for t in range(3):
            for p in range(2):
                expected = ndimage.affine_transform(frames[t, p].double().numpy(), matrix, offset, order=1,
                                                    mode="grid-constant")
                np.testing.assert_allclose(out[t, p].numpy(), expected, atol=1e-4)  # float32 grid
    np.testing.assert_allclose(RandomAffineFrames(0.0, 0.0)(frames).numpy(), frames.numpy(), atol=1e-4)


def test_dropped_events_thin_the_counts(shared):
    events = read_events(sorted((NMNIST_SMALL / "Train/8").glob("*.bin"))[0], sensor_size=(34, 34, 2))
    frames = torch.from_numpy(to_tasnn_frames(events, (34, 34, 2), 3, 110_000))
    torch.manual_seed(5)
    kept = RandomDropEvents(0.5)(frames)
    torch.manual_seed(5)
    keep = 1 - 0.5 * float(torch.rand(()))
    assert bool((kept <= frames).all()) and bool((kept == kept.round()).all())
    n = len(events)  # binomial(n, keep): within 4 standard deviations
    assert abs(float(kept.sum()) - n * keep) < 4 * math.sqrt(n * keep * (1 - keep))
    assert torch.equal(RandomDropEvents(0.0)(frames), frames)


def test_short_training_lowers_the_loss_on_real_recordings(shared, tmp_path, capsys):
    root = tmp_path / "few"
    for source in [p for d in (0, 1, 7) for p in sorted((NMNIST_SMALL / f"Train/{d}").glob("*.bin"))[:6]]:
        (root / "Train" / source.parent.name).mkdir(parents=True, exist_ok=True)
        (root / "Train" / source.parent.name / source.name).symlink_to(source)
    task = NMNISTTask(root, cache_dir=tmp_path / "cache", net_options={"channels": (4, 8), "votes": 2},
                      val_fraction=0.2, max_shift=0, max_drop=0.0, max_degrees=0.0, max_scale=0.0)
    train, _ = task.datasets()
    config = TrainConfig(epochs=8, batch_size=5, lr=1e-2, schedule="constant", out_dir=str(tmp_path / "run"),
                         progress=False, seed=0)
    trainer = Trainer(task, config)
    torch.manual_seed(0)
    samples = [train[i] for i in range(len(train))]
    batch = (torch.stack([x for x, _ in samples]), torch.tensor([y for _, y in samples]))
    trainer.model.train()
    with torch.no_grad():
        before = float(task.loss(trainer.model, batch, torch.device("cpu")))
    history = trainer.fit()
    trainer.model.train()
    with torch.no_grad():
        after = float(task.loss(trainer.model, batch, torch.device("cpu")))
    assert after < 0.8 * before and history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["samples"] == 3 and history[-1]["majority_top1"] == pytest.approx(1 / 3)
    assert (tmp_path / "run" / "best.pt").exists()
    assert main(["eval", "nmnist", "--data", str(root), "--split", "val", "--checkpoint", str(tmp_path / "run/last.pt"),
                 "--set", "task.val_fraction=0.2", "--set", "task.net_options={channels: [4, 8], votes: 2}",
                 "--set", f"task.cache_dir={tmp_path / 'cache'}"]) == 0
    result = json.loads(capsys.readouterr().out)  # a training checkpoint evaluates as the trainer did
    assert result["samples"] == 3 and result["top1"] == pytest.approx(history[-1]["top1"])


def test_bundled_checkpoint_is_a_live_classifier():
    clf = LiveClassifier.from_checkpoint(MODELS / "nmnist_cnn.pt")
    card = yaml.safe_load(CARD.read_text())
    assert card["checkpoint"] == "models/nmnist_cnn.pt"
    assert clf.recipe == WindowRecipe((34, 34, 2), 3, 110_000) and clf.recipe.window_us >= 314_000
    assert clf.names == NMNIST.classes
    assert sum(p.numel() for p in clf.model.parameters()) == card["net"]["parameters"]
    weights = torch.load(MODELS / "nmnist_cnn.pt", map_location="cpu", weights_only=True)["model"]
    assert state_digest(weights) == card["training"]["state_sha256"]  # benchmarks/reproduce_card.py re-trains it


def test_bundled_model_scores_the_cards_validation_top1(shared, tmp_path, capsys):
    card = yaml.safe_load(CARD.read_text())
    assert main(["eval", "nmnist", "--data", str(NMNIST_SMALL), "--split", "val", "--checkpoint",
                 str(MODELS / "nmnist_cnn.pt"), "--set", f"task.cache_dir={tmp_path / 'cache'}"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 95
    assert result["top1"] == pytest.approx(card["metrics"]["val_top1"], abs=1e-9)
    assert result["majority_top1"] == pytest.approx(card["metrics"]["val_majority_top1"], abs=1e-9)


def test_eval_cli_on_a_fixture_test_tree_agrees_with_the_live_classifier(shared, tmp_path, capsys):
    val = NMNIST(NMNIST_SMALL)
    _, val_indices = validation_split(val.labels, 0.1)
    for index in val_indices[::8]:
        sample = val.samples[index]
        folder = tmp_path / "data/Test" / str(sample.label)
        folder.mkdir(parents=True, exist_ok=True)
        write_events(folder / sample.path.name, read_events(sample.path, sensor_size=(34, 34, 2)), (34, 34, 2))
    data = tmp_path / "data"
    assert main(["eval", "nmnist", "--data", str(data), "--checkpoint", str(MODELS / "nmnist_cnn.pt")]) == 0
    result = json.loads(capsys.readouterr().out)
    test = NMNIST(data, "test")
    clf = LiveClassifier.from_checkpoint(MODELS / "nmnist_cnn.pt")
    live = [int(np.argmax(clf(test.events(i)).probabilities)) == test.labels[i] for i in range(len(test))]
    assert result["samples"] == len(test) == math.ceil(95 / 8)
    assert result["top1"] == pytest.approx(np.mean(live))
    assert {"firing_rate", "energy_uj", "ann_energy_uj", "majority_top1"} <= set(result)
