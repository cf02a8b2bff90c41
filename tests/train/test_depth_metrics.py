"""E2Depth depth metrics on hand cases."""

from __future__ import annotations

import numpy as np
import pytest

from evstream.train.depth_metrics import depth_to_log, evaluate_depth, frame_metrics, log_to_depth


def test_log_depth_round_trip_and_anchor_values():
    d = np.array([1.0, 10.0, 80.0])
    np.testing.assert_allclose(log_to_depth(depth_to_log(d)), d)
    assert depth_to_log(80.0) == 1.0
    assert depth_to_log(80.0 * np.exp(-3.70378)) == pytest.approx(0.0)


def test_frame_metrics_hand_case():
    # valid pixels: 0 < t < max(t) = 80 (the 80 m pixel and the NaN are excluded)
    target = np.array([[5.0, 10.0, 20.0, 80.0, np.nan]])
    prediction = np.array([[4.0, 10.0, 25.0, 50.0, 7.0]])
    m = frame_metrics(target, prediction)
    t, p = np.array([5.0, 10, 20]), np.array([4.0, 10, 25])
    assert m["mean_depth_error"] == pytest.approx((1 + 0 + 5) / 3, rel=1e-6)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 0 + 25) / 3), rel=1e-6)
    assert m["abs_rel"] == pytest.approx((1 / 5 + 0 + 5 / 20) / 3, rel=1e-5)
    assert m["delta1"] == pytest.approx(3 / 3)  # ratios 1.25, 1, 1.25 are all <= 1.25
    d = np.log(t) - np.log(p)
    assert m["silog"] == pytest.approx((d ** 2).mean() - d.mean() ** 2, rel=1e-4)
    assert m["median_diff"] == pytest.approx(0.0)
    cut = frame_metrics(target, prediction, cutoff=10.0)
    assert cut["mean_depth_error"] == pytest.approx(1.0, rel=1e-5)  # only the 5 m pixel


def test_evaluate_depth_averages_frames_and_cutoffs():
    target = np.full((4, 4), 30.0)
    target[0, 0] = 80.0
    target[1] = 8.0
    prediction = target + 1.0
    result = evaluate_depth([target, target], [prediction, prediction])
    assert result["mean_depth_error"] == pytest.approx(1.0, rel=1e-6)
    assert result["mean_depth_error@10"] == pytest.approx(1.0, rel=1e-6)
    assert "mean_depth_error@30" in result and result["rmse@20"] == pytest.approx(1.0, rel=1e-6)
