"""Classification tasks on the simulator's gesture set: representation, cache, losses, training, metrics."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evstream import EVENT_DTYPE
from evstream.datasets import DVSGesture
from evstream.datasets.dvs_gesture import GESTURE_CLASSES
from evstream.nets.live_classifier import LiveClassifier, WindowRecipe
from evstream.sim.gesture import write_gesture_dataset
from evstream.train.baselines import majority_top1
from evstream.train.losses import trt_loss, tssd_loss
from evstream.train.metrics import accuracy, clip_metrics
from evstream.ops.tasnn import to_tasnn_frames
from evstream.train.tasks.classification import (FRAME_CHUNK, ClipWindows, FrameStack, GestureTask, NCaltech101Task,
                                                 RandomWindow)
from evstream.train.trainer import TrainConfig, Trainer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gesture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("gesture")
    write_gesture_dataset(root, users=2, test_users=1, seconds=0.4, seed=3, fps=100.0, progress=False)
    return root


def small_task(root, net="tasnn", **kw):
    options = {"reduction": 2} if net == "tasnn" else {}
    if net == "ssnn":
        options = {"stage_channels": ((8,), (16,), (16,))}
    if net == "sdt":
        options = {"dim": 32, "pooling": "0011"}
    if net == "trevsnn":
        options = {"channels": (4, 8, 8, 16)}
    return GestureTask(root, net=net, time_steps=4, dt_ms=50, ds=8, n_clips=2, cache_dir=root / "cache",
                       net_options=options, **kw)


def test_frame_stack_windows_and_clips():
    ev = np.zeros(4, EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = [0, 8, 8, 127], [0, 0, 4, 127], [1000, 1500, 3999, 9000], [1, 0, 0, 1]
    stack = FrameStack((128, 128, 2), dt_us=1000, ds=4)(ev)
    assert stack.dtype == np.uint16 and stack.shape == (9, 2, 32, 32)  # (9000 - 1000) // 1000 + 1 frames
    assert stack[0, 1, 0, 0] == 1 and stack[0, 0, 0, 2] == 1 and stack[2, 0, 1, 2] == 1 and stack[8, 1, 31, 31] == 1
    assert stack.sum() == 4
    padded = FrameStack((240, 180, 2), dt_us=1000, ds=2, pad_to=128)(ev)
    assert padded.shape == (9, 2, 128, 128) and padded[0, 1, 19, 4] == 1  # (128-90)//2 = 19, (128-120)//2 = 4

    # a long sample is binned in chunks of FRAME_CHUNK frames: the same counts as one call for the whole stack
    rng = np.random.default_rng(0)
    long = np.zeros(5000, EVENT_DTYPE)
    long["x"], long["y"], long["p"] = rng.integers(0, 128, 5000), rng.integers(0, 128, 5000), rng.integers(0, 2, 5000)
    long["t"] = np.sort(rng.integers(0, 150_000, 5000))
    n = int(long["t"][-1] - long["t"][0]) // 1000 + 1
    assert n > 2 * FRAME_CHUNK
    whole = to_tasnn_frames(long, (128, 128, 2), n, 1000, 4).astype(np.uint16)
    np.testing.assert_array_equal(FrameStack((128, 128, 2), dt_us=1000, ds=4)(long), whole)
    np.testing.assert_array_equal(FrameStack((128, 128, 2), dt_us=1000, ds=4, max_frames=100)(long), whole[:100])

    frames = np.arange(9, dtype=np.uint16).reshape(9, 1, 1, 1) * np.ones((1, 2, 1, 1), np.uint16)
    crop = RandomWindow(4, torch.Generator().manual_seed(0))(frames)
    start = int(crop[0, 0, 0, 0])
    assert crop.dtype == torch.float32 and crop[:, 0, 0, 0].tolist() == [start, start + 1, start + 2, start + 3]
    assert RandomWindow(12)(frames)[9:].sum() == 0  # short stacks are zero-padded at the end
    clips = ClipWindows(4, 3)(frames)  # clips over 9 frames: overlap (12 - 9) // 3 = 1, starts 0, 3, 5
    assert clips.shape == (3, 4, 2, 1, 1) and clips.dtype == torch.uint16 and clips[:, 0, 0, 0, 0].tolist() == [0, 3, 5]


def test_gesture_task_datasets_and_cache(gesture_root):
    task = small_task(gesture_root)
    train, test = task.datasets()
    assert (len(train), len(test)) == (11, 11)
    assert sorted(train.labels) == list(range(11))
    x, y = train[3]
    assert x.shape == (4, 2, 16, 16) and y == 3 and float(x.sum()) > 0
    clips, _ = test[0]
    assert clips.shape == (2, 4, 2, 16, 16)
    assert len(list((gesture_root / "cache").rglob("*.npy"))) == 2
    assert task.build_model().time_steps == 4


def test_task_options_and_paper_defaults(gesture_root):
    assert GestureTask.train_defaults["lr"] == 1e-4 and GestureTask.train_defaults["optimizer"] == "adam"
    task = GestureTask(gesture_root)
    assert (task.time_steps, task.dt_us, task.ds, task.n_clips, task.input_size) == (60, 15_000, 4, 10, 32)
    assert task.loss_name == "rate_mse" and GestureTask(gesture_root, net="ssnn").loss_name == "early_exit"
    with pytest.raises(ValueError, match="unknown net"):
        GestureTask(gesture_root, net="resnet")
    with pytest.raises(ValueError, match="does not fit"):
        GestureTask(gesture_root, net="tasnn", loss="tet")
    assert NCaltech101Task.pad_to == 128


def test_short_training_lowers_the_loss(gesture_root, tmp_path):
    task = small_task(gesture_root)
    train, _ = task.datasets()
    torch.manual_seed(0)
    batch = (torch.stack([train[i][0] for i in range(11)]), torch.tensor(train.labels))
    config = TrainConfig(epochs=6, batch_size=4, lr=3e-3, schedule="constant", out_dir=str(tmp_path / "run"),
                         progress=False, seed=1)
    trainer = Trainer(task, config)
    trainer.model.train()
    with torch.no_grad():
        before = float(task.loss(trainer.model, batch, torch.device("cpu")))
    history = trainer.fit()
    trainer.model.train()
    with torch.no_grad():
        after = float(task.loss(trainer.model, batch, torch.device("cpu")))
    assert after < 0.75 * before
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert {"top1", "top1_clip", "vote"} <= set(history[-1]) and (tmp_path / "run" / "last.pt").exists()
    assert not (tmp_path / "run" / "best.pt").exists()  # gesture has no validation split: nothing chosen on test


@pytest.mark.parametrize("loss", ["early_exit", "ce", "tet", "trt", "tssd"])
def test_ssnn_losses(gesture_root, loss):
    task = small_task(gesture_root, net="ssnn", loss=loss)
    train, _ = task.datasets()
    model = task.build_model()
    batch = (torch.stack([train[i][0] for i in range(4)]), torch.tensor(train.labels[:4]))
    value = task.loss(model, batch, torch.device("cpu"))
    assert value.ndim == 0 and float(value.detach()) > 0
    value.backward()
    early_grad = model.early[0].linear.weight.grad
    assert (early_grad is not None) == (loss in ("early_exit", "tssd"))  # TSSD's weak classifier is the first exit
    assert model.head.linear.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("net, loss", [("sdt", "ce"), ("sdt", "tet"), ("trevsnn", "ce")])
def test_transformer_and_reversible_nets_train_on_gesture(gesture_root, net, loss):
    task = small_task(gesture_root, net=net, loss=loss)
    train, _ = task.datasets()
    model = task.build_model()
    batch = (torch.stack([train[i][0] for i in range(3)]), torch.tensor(train.labels[:3]))
    assert batch[0].shape == (3, 4, 2, 16, 16)  # gesture frames: B, T, polarities, 128 / ds
    value = task.loss(model, batch, torch.device("cpu"))
    value.backward()
    assert value.ndim == 0 and float(value.detach()) > 0
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads[:4]) and sum(float(g.abs().sum()) for g in
                                                                                  grads if g is not None) > 0
    model.eval()
    with torch.no_grad():
        scores = model(batch[0].transpose(0, 1).float())
    assert scores.logits.shape == (3, 11)


def test_trt_reverses_time_and_classifies_the_star_of_the_rates(gesture_root):
    task = small_task(gesture_root, net="ssnn", loss="trt", loss_options={"tau": 3.0, "lambda_star": 0.5})
    model = task.build_model()
    train, _ = task.datasets()
    x, labels = torch.stack([train[i][0] for i in range(4)]), torch.tensor(train.labels[:4])
    forward, backward = model(x.transpose(0, 1)), model(x.flip(1).transpose(0, 1))  # [B, T, ...]: T is dim 1
    star = model.classify(forward.rates * backward.rates)
    expected = trt_loss(forward.logits, backward.logits, star, labels, tau=3.0, lambda_star=0.5)
    torch.testing.assert_close(task.loss(model, (x, labels), torch.device("cpu")), expected)
    ce = F.cross_entropy(forward.logits, labels) + F.cross_entropy(backward.logits, labels)
    assert float(expected.detach()) > float(ce.detach())


def test_tssd_teacher_is_the_extended_run_and_the_student_its_last_clip(gesture_root):
    task = small_task(gesture_root, net="ssnn", loss="tssd", tssd_chunks=3)
    model = task.build_model()
    train, _ = task.datasets()
    x, labels = torch.stack([train[i][0] for i in range(4)]), torch.tensor(train.labels[:4])
    assert x.shape[1] == 3 * task.time_steps  # training windows cover the teacher's T_t = 3 T
    clips = [model(c.transpose(0, 1)) for c in x.split(task.time_steps, dim=1)]
    teacher = torch.stack([c.logits for c in clips]).mean(0)
    expected = tssd_loss(clips[-1].logits, labels, teacher, clips[-1].early[0])
    torch.testing.assert_close(task.loss(model, (x, labels), torch.device("cpu")), expected)
    with pytest.raises(ValueError, match="tssd_chunks"):
        small_task(gesture_root, net="ssnn", loss="tssd", tssd_chunks=1)


def test_metrics_by_hand():
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]])
    assert accuracy(scores, torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)
    # 2 samples x 3 clips: sample 0 has clips right, right, wrong; sample 1 wrong, wrong, right
    clips = torch.tensor([[[0.0, 1.0], [0.2, 0.8], [0.9, 0.1]],
                          [[0.0, 0.6], [0.1, 0.5], [0.95, 0.0]]])
    m = clip_metrics(clips, torch.tensor([1, 0]))
    assert m == {"top1": pytest.approx(0.5), "top1_clip": pytest.approx(0.5), "vote": pytest.approx(0.5)}
    # summed scores of sample 1: [1.05, 1.1] -> class 1, wrong; sample 0: [1.1, 1.9] -> right
    with pytest.raises(ValueError):
        clip_metrics(scores, torch.tensor([1, 0, 0]))


def test_export_gives_a_live_classifier(gesture_root, tmp_path):
    task = small_task(gesture_root)
    model = task.build_model()
    task.export(model, tmp_path / "m.pt", metrics={"top1": 0.25})
    clf = LiveClassifier.from_checkpoint(tmp_path / "m.pt")
    assert clf.recipe == WindowRecipe((128, 128, 2), 4, 50_000, 8) and clf.names == GESTURE_CLASSES
    events = DVSGesture(gesture_root, "test").events(0)
    assert clf(events).probabilities.shape == (11,)


def test_evaluate_discard_sweep_and_spike_stats(gesture_root, capsys):
    task = small_task(gesture_root)
    _, test = task.datasets()
    loader = torch.utils.data.DataLoader(test, batch_size=6)
    model = task.build_model()
    capsys.readouterr()
    result = task.evaluate(model, loader, torch.device("cpu"), progress=False)
    assert capsys.readouterr().err == ""
    assert set(result) == {"top1", "top1_clip", "vote", "samples", "majority_top1", "firing_rate", "energy_uj",
                           "ann_energy_uj"}
    assert result["samples"] == len(test) and result["majority_top1"] == majority_top1(torch.tensor(test.labels))
    # 12 clips per loader batch, 3 forward passes of at most 5; one clip at a time gives the same numbers
    chunked = small_task(gesture_root, eval_clips=5).evaluate(model, loader, torch.device("cpu"))
    assert "eval" in capsys.readouterr().err  # the progress bar
    single = small_task(gesture_root, eval_clips=1).evaluate(model, loader, torch.device("cpu"), progress=False)
    assert chunked == pytest.approx(result) and single == pytest.approx(result)
    assert all(0 <= result[k] <= 1 for k in ("top1", "top1_clip", "vote"))
    rows = task.discard_sweep(model, loader, thresholds=(0.0, 1.01))
    assert [r["kept"] for r in rows] == [1.0, 0.0]
    assert rows[0]["top1"] == pytest.approx(result["top1_clip"])
    stats = task.spike_stats(model, loader)
    assert 0 < stats["firing_rate"] < 1 and 0 < stats["energy_uj"] < stats["ann_energy_uj"]
    for key in ("firing_rate", "energy_uj", "ann_energy_uj"):  # evaluate profiles the same clips
        assert result[key] == pytest.approx(stats[key])
