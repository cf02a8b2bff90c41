"""refractory_period: tonic's quirks, bad input and repr (its tonic comparisons are in test_filters.py)."""

from __future__ import annotations

import numpy as np
import pytest

from evstream import make_events
from evstream.ops.refractory import RefractoryPeriod, refractory_period
from tests.ops.test_filters import SMALL


def test_tonic_quirks():
    # an event at t = 0 is dropped (tonic starts every pixel at -period); dropped events also reset the pixel
    events = make_events([1, 2, 2, 2], [1, 1, 1, 1], [0, 10, 15, 20], [1, 1, 1, 1])
    np.testing.assert_array_equal(refractory_period(events, (4, 4, 2), 6)["t"], [10])


def test_bad_input_and_repr():
    with pytest.raises(ValueError, match="outside the 40x30 sensor"):
        refractory_period(make_events([0], [30], [5], [0]), SMALL, 10)
    assert repr(RefractoryPeriod(SMALL, 100)) == "RefractoryPeriod(sensor_size=(40, 30, 2), refractory_period=100)"
