"""A folder replays as a playlist: every file in order, one pass each, labelled by its folder; the running
accuracy of a classifier over it."""

from __future__ import annotations

import shutil

import numpy as np

import evstream
from evstream.events import concat_events
from evstream.live.pipeline import Pipeline, WindowResult
from evstream.live.replay import FileReplaySource
from evstream.live.score import PlaylistScore
from evstream.outputs import Classification
from tests.conftest import RECORDINGS

NMNIST = RECORDINGS / "atis_bin/nmnist_sample_tonic.bin"


def _tree(tmp_path, shared):
    """Test/<digit>/<n>.bin with the real N-MNIST sample under three digits (the layout, not the content)."""
    files = []
    for digit, name in (("3", "1.bin"), ("3", "2.bin"), ("7", "1.bin")):
        path = tmp_path / "Test" / digit / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NMNIST, path)
        files.append(path)
    return files


def test_a_folder_plays_every_file_once_labelled_by_its_folder(tmp_path, shared):
    files = _tree(tmp_path, shared)
    source = FileReplaySource(tmp_path / "Test", speed=float("inf"), sensor_size=(34, 34, 2))
    assert source.files == files and source.sensor_size == (34, 34, 2) and source.info()["playlist_files"] == 3
    seen = []
    pipeline = Pipeline(source, window_us=400_000, max_lag_ms=1e9, on_result=seen.append)
    pipeline.start()
    pipeline.join(60)
    assert pipeline.error is None
    ref = evstream.read_events(NMNIST)
    assert [r.label for r in seen] == ["3", "3", "7"] and [r.sequence for r in seen] == [0, 1, 2]
    for result in seen:  # each file is one partial window holding the whole sample
        assert result.partial
        np.testing.assert_array_equal(result.events, ref)
    assert pipeline.stats.passes == 3 and pipeline.stats.events == 3 * len(ref)


def test_playlist_score_counts_the_last_prediction_of_each_sample():
    names = tuple("0123456789")
    score = PlaylistScore()

    def result(sequence, label, predicted):
        p = np.zeros(10)
        p[int(predicted)] = 1.0
        return WindowResult(0, 1, concat_events([]), Classification(p, names), 1.0, {}, sequence, False, label)

    for r in (result(0, "3", "5"), result(0, "3", "3"), result(1, "7", "1"), result(2, "9", "9")):
        score.update(r)
    tonic_names = WindowResult(0, 1, concat_events([]), Classification(np.eye(2)[1], ("0 - zero", "1 - one")), 1.0,
                               {}, 9, False, "1")
    assert score.samples == 2 and score.last == ("7", "1")  # sample 2 still open
    score.finish()
    assert score.summary() == {"samples": 3, "correct": 2, "top1": 2 / 3, "unscored": 0}
    score.update(tonic_names)  # folder "1" is class "1 - one"
    score.finish()
    assert score.summary() == {"samples": 4, "correct": 3, "top1": 3 / 4, "unscored": 0}
    score.update(WindowResult(0, 1, concat_events([]), None, 1.0, {}, 10, False, "4"))  # no model: ignored
    assert score.samples == 4
    score.update(result(11, "aedat2", "3"))  # a folder that names no class: not scored, counted
    score.update(result(12, "7", "7"))
    score.finish()
    assert score.summary() == {"samples": 5, "correct": 4, "top1": 4 / 5, "unscored": 1}
