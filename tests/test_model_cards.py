"""Model cards (models/*.yaml): stated digests, fresh test sets, and the scripts that re-run a card.

``benchmarks/reproduce_card.py`` re-runs a card's commands and compares the weights' digest with the
bundled checkpoint's; ``benchmarks/fresh_eval.py`` evaluates a checkpoint on test sets made with
seeds the card never used. The bundled cards take minutes to an hour to re-run (their wall times
are stated in them); here both scripts run on a card small enough for the suite.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from evstream.checkpoint import state_digest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fresh_eval  # noqa: E402
import reproduce_card  # noqa: E402

CARDS = ("gesture_tasnn", "detector_spikeyolo", "nmnist_cnn")
"""The cards this suite holds to the rules below (the depth card is another's to bring in line)."""


def _card(name: str) -> dict:
    return yaml.safe_load((ROOT / "models" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", CARDS)
def test_bundled_weights_are_the_ones_the_card_states(name):
    card = _card(name)
    weights = torch.load(ROOT / card["checkpoint"], map_location="cpu", weights_only=True)["model"]
    assert state_digest(weights) == card["training"]["state_sha256"]
    assert (ROOT / card["checkpoint"]).stat().st_size == card["checkpoint_bytes"]
    assert "last" in card["training"]["checkpoint_used"]  # not selected on a test split


@pytest.mark.parametrize("name", ["gesture_tasnn", "detector_spikeyolo"])
def test_fresh_test_sets_use_new_seeds_and_their_summary_is_their_mean(name):
    card = _card(name)
    fresh = card["fresh_test"]
    assert len(set(fresh["seeds"])) >= 2 and not set(fresh["seeds"]) & fresh_eval.used_seeds(card)
    assert "{seed}" in fresh["data"] and "{data}" in fresh["eval"] and card["checkpoint"] in fresh["eval"]
    for metric, row in fresh["results"].items():  # the card's numbers: mean and sample std of the per-seed values
        assert len(row["values"]) == len(fresh["seeds"])
        assert row["mean"] == pytest.approx(np.mean(row["values"]), abs=6e-4)
        assert row["std"] == pytest.approx(np.std(row["values"], ddof=1), abs=6e-4)


def test_used_seeds_fill_and_summary():
    card = {"data": {"command": "evstream simulate road --out d --seed 7 --box-hz 4"},
            "fresh_test": {"used_seeds": [11, 12]}}
    assert fresh_eval.used_seeds(card) == {7, 11, 12}
    assert fresh_eval.fill("x --out {data} --seed {seed} --set 'o={a: 1}'", Path("/t/s"), 5) == \
        "x --out /t/s --seed 5 --set 'o={a: 1}'"
    summary = fresh_eval.summarise({1: {"top1": 0.9, "name": "x"}, 2: {"top1": 0.8, "name": "y"}})
    assert summary == {"top1": {"mean": pytest.approx(0.85), "std": pytest.approx(0.1 / 2 ** 0.5),
                                "range": [0.8, 0.9]}}


def test_relocate_moves_every_written_path_into_the_folder():
    card = _card("gesture_tasnn")
    commands = reproduce_card.relocate([c for _, c in reproduce_card.card_commands(card)], Path("/x"))
    assert "--out /x/data/gesture_sim" in commands[0]
    assert "--data /x/data/gesture_sim" in commands[1] and "--out /x/runs/gesture_tasnn" in commands[1]
    assert "--checkpoint /x/runs/gesture_tasnn/last.pt" in commands[2] and "--export /x/models/gesture_tasnn.pt" in \
        commands[2]
    assert not any(" models/" in c or " data/" in c or " runs/" in c for c in commands)
    detector = reproduce_card.relocate([c for _, c in reproduce_card.card_commands(_card("detector_spikeyolo"))],
                                       Path("/x"))
    assert "task.cache_dir=/x/tmp/det/cache" in detector[1] and "--data /x/tmp/det/road" in detector[2]


def test_fresh_eval_runs_each_seed_and_reuses_kept_sets(tmp_path, capsys):
    card = {"checkpoint": "models/none.pt", "data": {"command": "simulate --seed 3"},
            "fresh_test": {"seeds": [5, 6], "data": "echo {seed} > {data}/made; echo made >> " + str(tmp_path / "log"),
                           "eval": "echo '{\"top1\": 0.'$(cat {data}/made)', \"samples\": 10}'"}}
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    keep = tmp_path / "sets"
    assert fresh_eval.main([str(path), "--keep", str(keep)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["per_seed"] == {"5": {"top1": 0.5, "samples": 10}, "6": {"top1": 0.6, "samples": 10}}
    assert out["summary"]["top1"]["mean"] == pytest.approx(0.55) and out["summary"]["samples"]["std"] == 0.0
    assert fresh_eval.main([str(path), "--keep", str(keep)]) == 0  # the kept sets are reused
    assert (tmp_path / "log").read_text() == "made\nmade\n"
    for seeds, message in (([3, 5], r"\[3\] used by the card"), ([5], "two or more")):
        with pytest.raises(SystemExit, match=message):
            fresh_eval.main([str(path), "--seeds", *map(str, seeds)])


@pytest.mark.slow
def test_reproduce_card_reruns_a_small_card_bit_for_bit(tmp_path, capsys):
    """A card small enough for the suite: simulate, train one epoch, export; then the script re-runs it."""
    sets = "--set task.time_steps=4 --set task.dt_ms=50 --set task.ds=8 --set task.n_clips=2 " \
           "--set 'task.net_options={reduction: 2}'"
    data, run, model = tmp_path / "data", tmp_path / "run", tmp_path / "model.pt"
    card = {"checkpoint": str(model),
            "data": {"command": f"evstream simulate gesture --out {data} --users 2 --test-users 1 --seconds 0.4 "
                                "--fps 100 --seed 3"},
            "training": {"command": f"OMP_NUM_THREADS=1 evstream train gesture --data {data} --net tasnn --epochs 1 "
                                    f"--batch-size 4 --seed 0 --out {run} {sets} --set train.progress=false",
                         "export": f"evstream eval gesture --data {data} --net tasnn --checkpoint {run}/last.pt "
                                   f"--export {model} {sets} --set train.progress=false"}}
    for _, command in reproduce_card.card_commands(card):
        reproduce_card.run_command("a test card command", command)
    card["training"]["state_sha256"] = reproduce_card.weights_digest(model)
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    assert reproduce_card.main([str(path), "--keep", str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out
    assert "bit-identical" in out and "re-run metrics" in out
    assert (tmp_path / "again" / str(model).lstrip("/")).exists() and model.exists()
    card["training"]["export"] = card["training"]["export"].replace(str(model), str(tmp_path / "elsewhere.pt"))
    path.write_text(yaml.safe_dump(card))
    with pytest.raises(SystemExit, match="must write the card's checkpoint"):
        reproduce_card.main([str(path)])
