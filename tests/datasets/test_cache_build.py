"""``evstream cache``: resumable after a kill, shards that add up to the whole cache, a trainer that reads it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from evstream.cli import main
from evstream.datasets import NMNIST
from evstream.datasets.cache_build import Shard, build_cache, cache_entries
from evstream.errors import UserError
from evstream.train.tasks.nmnist import NMNISTTask

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = ["--set", "task.val_fraction=0.5"]  # 2 recordings per digit: one trains, one validates


def _task(root, cache):
    return NMNISTTask(root, cache_dir=cache, val_fraction=0.5)


def _entries(cache) -> dict[str, bytes]:
    """Every file under the cache, by relative path, with its bytes."""
    return {os.path.relpath(p, cache): p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file()}


def test_shard_parse_and_take():
    assert Shard.parse("1/3") == Shard(1, 3) and Shard.parse(" 0 / 1 ") == Shard()
    assert Shard(1, 3).take(list(range(8))) == [1, 4, 7]
    for text, problem in (("2/2", "0 <= I < N"), ("0/0", "0 <= I < N"), ("1", "expected I/N"), ("a/b", "expected")):
        with pytest.raises(UserError, match=problem):
            Shard.parse(text)


def test_entries_are_what_the_trainer_reads(nmnist_few, tmp_path):
    train, val = _task(nmnist_few, tmp_path / "cache").datasets()
    (group,) = cache_entries([train, val])  # both subsets of Train/ share one cache folder
    assert group.indices == tuple(range(20)) and sorted(train.indices + val.indices) == list(range(20))
    (part,) = cache_entries([val])
    assert part.indices == tuple(val.indices)


def test_a_killed_run_leaves_no_half_entry_and_the_rerun_skips_done_ones(nmnist_few, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    datasets = _task(nmnist_few, cache).datasets()
    assert build_cache(datasets, limit=7, progress=False) == {"entries": 20, "cached_before": 0, "built": 7}
    (folder,) = cache.iterdir()
    done = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert sorted(done) == [f"{i:07d}.npy" for i in range(7)]
    # a kill in the middle of the 8th entry's write: half its bytes are on disk when the process stops
    real_save = np.save

    def half_save(file, array):
        real_save(file, array)
        with open(file, "r+b") as f:
            f.truncate(os.path.getsize(file) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        build_cache(datasets, progress=False)
    monkeypatch.setattr(np, "save", real_save)
    assert {p.name for p in folder.iterdir()} == set(done)  # no half entry, no temporary file
    # what a SIGKILL leaves: the temporary file of the entry being written
    (folder / ".0000007.npy.k1ll3d.tmp.npy").write_bytes(b"\x93NUMPY half")
    assert build_cache(datasets, progress=False) == {"entries": 20, "cached_before": 7, "built": 13}
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:07d}.npy" for i in range(20)]
    assert {name: (folder / name).stat().st_mtime_ns for name in done} == done  # done entries were not rewritten
    fresh = NMNIST(nmnist_few, transform=_task(nmnist_few, cache).representation)
    for index in (0, 7, 19):
        np.testing.assert_array_equal(np.load(folder / f"{index:07d}.npy"), fresh.transform(fresh.events(index)))
    assert build_cache(datasets, progress=False) == {"entries": 20, "cached_before": 20, "built": 0}


def test_two_shards_together_equal_the_unsharded_cache(nmnist_few, tmp_path, capsys):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    assert main(["cache", "nmnist", "--data", str(nmnist_few), "--cache-dir", str(whole), "--quiet", *SETTINGS]) == 0
    assert json.loads(capsys.readouterr().out)["built"] == 20
    assert main(["cache", "nmnist", "--data", str(nmnist_few), "--cache-dir", str(sharded), "--shard", "1/2", "--quiet",
                 *SETTINGS]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first == {"entries": 10, "cached_before": 0, "built": 10, "shard": "1/2", "cache_dir": str(sharded)}
    (folder,) = sharded.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:07d}.npy" for i in range(1, 20, 2)]  # its own part
    assert main(["cache", "nmnist", "--data", str(nmnist_few), "--cache-dir", str(sharded), "--shard", "0/2", "--workers", "2",
                 "--quiet", *SETTINGS]) == 0
    assert json.loads(capsys.readouterr().out)["built"] == 10
    assert _entries(sharded) == _entries(whole)  # same key folder, same files, same bytes


def test_training_reads_the_built_cache_without_decoding(nmnist_few, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    assert main(["cache", "nmnist", "--data", str(nmnist_few), "--cache-dir", str(cache), "--quiet", *SETTINGS]) == 0
    capsys.readouterr()
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.npy")}

    def no_decoding(self, index):
        raise AssertionError(f"sample {index} was decoded again")

    monkeypatch.setattr(NMNIST, "events", no_decoding)
    assert main(["train", "nmnist", "--data", str(nmnist_few), "--cache-dir", str(cache), "--epochs", "1", "--batch-size",
                 "5", "--out", str(tmp_path / "run"), "--set", "train.progress=false",
                 "--set", "task.net_options={channels: [4, 8], votes: 2}", *SETTINGS]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["samples"] == 10
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.npy")} == before


def test_cache_command_errors_are_one_line(nmnist_few, tmp_path, capsys, monkeypatch):
    for argv, problem in (
            (["--shard", "2/2"], "shard 2/2: need 0 <= I < N"),
            (["--workers", "0"], "--workers must be at least 1"),
            (["--split", "test"], "Test is missing"),
            (["--set", "task.coding=rsc"], "set input_scale")):
        assert main(["cache", "nmnist", "--data", str(nmnist_few), "--cache-dir", str(tmp_path / "c"), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and problem in err and err.startswith("evstream cache: error: ")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if os.fspath(path) == str(nmnist_few) and
                        mode == os.W_OK else real_access(path, mode, **kw))  # a read-only data folder
    assert main(["cache", "nmnist", "--data", str(nmnist_few)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the data folder is not writable" in err and "--cache-dir" in err
