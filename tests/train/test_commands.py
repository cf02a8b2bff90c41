"""`evstream train` / `evstream eval` end to end on the simulator's gesture set: checkpoints of both kinds,
resume and its settings, and one-line errors for checkpoints that do not fit."""

from __future__ import annotations

import json
import shutil

import pytest

from evstream.cli import main
from evstream.sim.gesture import write_gesture_dataset
from evstream.checkpoint import load

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("gesture")
    write_gesture_dataset(root, users=2, test_users=1, seconds=0.4, seed=3, fps=100.0, progress=False)
    return root


def settings(data, net_options: str = "{reduction: 2}") -> list[str]:
    """A small TA-SNN: T 4 x 50 ms at 16x16, two test clips."""
    return ["--data", str(data), "--batch-size", "4", "--set", "task.time_steps=4", "--set", "task.dt_ms=50",
            "--set", "task.ds=8", "--set", "task.n_clips=2", "--set", f"task.net_options={net_options}",
            "--set", f"task.cache_dir={data / 'cache'}", "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "gesture", *settings(data), "--epochs", "1", "--out", str(out)]) == 0
    return out


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"evstream {command}: error: "), err
    return err.strip()


def strict_json(text: str) -> dict:
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name} in {text}"))


def test_eval_reads_training_and_exported_checkpoints(data, run, tmp_path, capsys, monkeypatch, umask_022):
    capsys.readouterr()
    assert main(["eval", "gesture", *settings(data), "--checkpoint", str(run / "last.pt"),
                 "--export", str(tmp_path / "live.pt")]) == 0
    first, wrote = capsys.readouterr().out.splitlines()
    metrics = strict_json(first)
    assert wrote == f"wrote {tmp_path / 'live.pt'}" and set(metrics) >= {"top1", "top1_clip", "vote", "firing_rate"}
    assert (tmp_path / "live.pt").stat().st_mode & 0o777 == 0o644 and sorted(p.name for p in tmp_path.iterdir()) == [
        "live.pt"]
    exported = load(tmp_path / "live.pt")
    assert exported["net"] == "tasnn_gesture" and exported["metrics"] == metrics
    assert main(["eval", "gesture", *settings(data), "--checkpoint", str(tmp_path / "live.pt")]) == 0
    assert strict_json(capsys.readouterr().out) == metrics  # same weights, same numbers

    from evstream.train.tasks.classification import GestureTask

    evaluate = GestureTask.evaluate
    monkeypatch.setattr(GestureTask, "evaluate", lambda self, *a, **k: {**evaluate(self, *a, **k), "top1": float("nan")})
    assert main(["eval", "gesture", *settings(data), "--checkpoint", str(run / "last.pt")]) == 0
    assert strict_json(capsys.readouterr().out)["top1"] is None


def test_eval_refuses_checkpoints_that_do_not_fit(data, run, tmp_path, capsys):
    capsys.readouterr()
    other = settings(data, "{reduction: 4}")  # another attention width: same names, other shapes
    assert main(["eval", "gesture", *other, "--checkpoint", str(run / "last.pt")]) == 2
    message = one_line_error(capsys, "eval")
    assert message.startswith(f"evstream eval: error: {run / 'last.pt'}: does not fit the SpikingClassifier built "
                              "from these settings: ") and "of another shape" in message
    ssnn = settings(data, "{stage_channels: [[8], [16], [16]]}")
    assert main(["eval", "gesture", *ssnn, "--net", "ssnn", "--checkpoint", str(run / "last.pt")]) == 2
    message = one_line_error(capsys, "eval")
    assert "does not fit the SSNN built from these settings: " in message and "weights missing" in message
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run / "last.pt").read_bytes()[:1000])
    assert main(["eval", "gesture", *settings(data), "--checkpoint", str(corrupt)]) == 2
    assert one_line_error(capsys, "eval").startswith(f"evstream eval: error: {corrupt}: not a readable evstream "
                                                     "checkpoint (")
    assert main(["eval", "gesture", *settings(data), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert one_line_error(capsys, "eval") == f"evstream eval: error: {tmp_path / 'none.pt'}: no such checkpoint file"
    before = (run / "last.pt").read_bytes()
    assert main(["eval", "gesture", *settings(data), "--checkpoint", str(run / "last.pt"),
                 "--export", str(run / "last.pt")]) == 2
    assert "the output is the input file" in one_line_error(capsys, "eval")
    assert (run / "last.pt").read_bytes() == before


def test_resume_keeps_the_saved_settings_and_reports_the_changes(data, run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    capsys.readouterr()
    assert main(["train", "gesture", *settings(data), "--out", str(out), "--resume", "--epochs", "2",
                 "--lr", "0.01"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == (
        f"evstream train: resuming {out / 'last.pt'} after epoch 1 with its saved train settings; changed by this "
        "command: epochs 1 -> 2; kept, as the saved optimiser state holds them (start a new run to change them): "
        "lr 0.0001 (not 0.01)")
    row = strict_json(captured.out)
    assert row["epoch"] == 2 and row["lr"] == pytest.approx(1e-4)  # epochs count from 1
    state = load(out / "last.pt")
    assert state["epoch"] == 2 and state["config"]["epochs"] == 2 and state["config"]["lr"] == 1e-4
    assert [r["epoch"] for r in state["history"]] == [1, 2]

    wider = settings(data, "{reduction: 4}")
    assert main(["train", "gesture", *wider, "--out", str(out), "--resume", "--epochs", "3"]) == 2
    assert "does not fit the SpikingClassifier" in capsys.readouterr().err.splitlines()[-1]
    assert load(out / "last.pt")["epoch"] == 2  # untouched

    (out / "last.pt").write_bytes(b"\x00broken")
    assert main(["train", "gesture", *settings(data), "--out", str(out), "--resume", "--epochs", "3"]) == 2
    assert one_line_error(capsys, "train").startswith(f"evstream train: error: {out / 'last.pt'}: not a readable "
                                                      "evstream checkpoint (")
    assert (out / "last.pt").read_bytes() == b"\x00broken"
