"""Events-blind baselines: the majority answer and the training labels' most frequent box positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evstream.train.baselines import majority_top1, prior_boxes

A = [10.0, 10.0, 50.0, 50.0]
B = [200.0, 100.0, 240.0, 180.0]
C = [100.0, 150.0, 120.0, 200.0]


def test_majority_top1_is_the_share_of_the_most_frequent_label():
    assert majority_top1(torch.tensor([0, 1, 1, 2])) == 0.5
    assert majority_top1(torch.tensor([3] * 7 + list(range(11)))) == pytest.approx(8 / 18)
    assert majority_top1(torch.arange(11)) == pytest.approx(1 / 11)  # a balanced set: chance
    assert majority_top1(torch.tensor([], dtype=torch.long)) == 0.0


def _samples():
    """Four training samples: class 0 three times near A (jittered by a pixel) and once at B; class 1 at C."""
    return [np.array([[0, *A], [1, *C]]), np.array([[0, *np.add(A, 1)]]), np.array([[0, *np.subtract(A, 1)]]),
            np.array([[0, *B], [1, *C]])]


def test_prior_boxes_are_the_densest_positions_scored_by_their_share():
    prior = prior_boxes(_samples(), 2, per_class=2)
    assert prior.classes.tolist() == [1, 0, 0]  # sorted by score: C (2 of 2), A (3 of 4), B (1 of 4)
    torch.testing.assert_close(prior.scores, torch.tensor([1.0, 0.75, 0.25], dtype=torch.float64))
    torch.testing.assert_close(prior.boxes, torch.tensor([C, A, B], dtype=torch.float64))  # ties: the first A
    one = prior_boxes(_samples(), 2, per_class=1)
    assert one.classes.tolist() == [1, 0] and one.boxes[1].tolist() == A


def test_prior_boxes_skip_a_class_without_boxes_and_reject_bad_settings():
    prior = prior_boxes(_samples(), 3)  # class 2 never appears
    assert set(prior.classes.tolist()) == {0, 1} and len(prior.scores) == 3
    empty = prior_boxes([np.zeros((0, 5))], 2)
    assert empty.boxes.shape == (0, 4) and len(empty.scores) == len(empty.classes) == 0
    with pytest.raises(ValueError, match="per_class"):
        prior_boxes(_samples(), 2, per_class=0)


def test_frequencies_are_counted_in_chunks(monkeypatch):
    import evstream.train.baselines as baselines

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (300, 2))
    rows = [np.array([[0, x, y, x + 30, y + 30]]) for x, y in xy]
    whole = prior_boxes(rows, 1, per_class=20)
    monkeypatch.setattr(baselines, "_ROWS", 7)
    chunked = prior_boxes(rows, 1, per_class=20)
    torch.testing.assert_close(chunked.boxes, whole.boxes)
    torch.testing.assert_close(chunked.scores, whole.scores)
