"""Sensor fit: every event mapped by one scale and a centring offset, per policy, equal to a plain reference."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from evstream.ops.sensor_fit import SensorFit
from tests.conftest import synthetic_events


def _reference(events, source, target, scale):
    """x' = floor(x * s + (tw - sw * s) / 2) in exact rationals, kept when inside the target."""
    def axis(v, src, tgt):
        return np.array([(Fraction(int(c)) * scale + (tgt - src * scale) / 2).__floor__() for c in v], np.int64)

    x, y = axis(events["x"], source[0], target[0]), axis(events["y"], source[1], target[1])
    keep = (x >= 0) & (x < target[0]) & (y >= 0) & (y < target[1])
    out = events[keep].copy()
    out["x"], out["y"] = x[keep], y[keep]
    return out


@pytest.mark.parametrize("source, target", [((346, 260, 2), (128, 128, 2)), ((240, 180, 2), (304, 240, 2)),
                                            ((1280, 720, 2), (34, 34, 2)), ((34, 34, 2), (346, 260, 2))])
@pytest.mark.parametrize("policy", ["crop", "resize", "pad"])
def test_fit_equals_the_plain_reference(source, target, policy):
    events = synthetic_events(3000, width=source[0], height=source[1], seed=3)
    fit = SensorFit(source, target, policy)
    expected_scale = {"crop": max(Fraction(target[0], source[0]), Fraction(target[1], source[1])),
                      "resize": min(Fraction(target[0], source[0]), Fraction(target[1], source[1])),
                      "pad": Fraction(1)}[policy]
    assert fit.scale == expected_scale
    got = fit(events)
    np.testing.assert_array_equal(got, _reference(events, source, target, expected_scale))
    assert np.all(got["x"] < target[0]) and np.all(got["y"] < target[1])


def test_policies_keep_what_they_promise():
    events = synthetic_events(50_000, width=346, height=260, seed=1)
    resized = SensorFit((346, 260, 2), (128, 128, 2), "resize")(events)
    assert len(resized) == len(events)  # letterbox: nothing lost
    assert resized["y"].min() > 0 and resized["y"].max() < 127  # empty borders above and below
    cropped = SensorFit((346, 260, 2), (128, 128, 2), "crop")(events)
    assert len(cropped) < len(events)  # the sides of the wider axis are dropped
    assert cropped["x"].min() == 0 and cropped["x"].max() == 127 and cropped["y"].max() == 127


def test_boxes_map_back_to_source_pixels():
    fit = SensorFit((346, 260, 2), (304, 240, 2), "resize")
    source_box = np.array([[100.0, 50.0, 200.0, 150.0]])
    s = float(fit.scale)
    offset = np.array([(304 - 346 * s) / 2, (240 - 260 * s) / 2] * 2)
    target_box = source_box * s + offset
    np.testing.assert_allclose(fit.boxes_to_source(target_box), source_box, atol=1e-9)


def test_same_sensor_is_the_identity_and_bad_policy_is_named():
    events = synthetic_events(100, width=128, height=128)
    fit = SensorFit((128, 128, 2), (128, 128, 2))
    assert fit(events) is events and fit.describe() == "input 128x128 (the sensor's own)"
    with pytest.raises(ValueError, match="unknown fit policy 'stretch'"):
        SensorFit((346, 260, 2), (128, 128, 2), "stretch")
