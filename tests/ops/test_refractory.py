"""refractory_period against tonic on real and random streams; the streaming filter chunked == whole."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.functional
from hypothesis import given, settings
from hypothesis import strategies as st

from evstream import EVENT_DTYPE, make_events
from evstream.ops.refractory import RefractoryFilter, refractory_period
from tests.conftest import synthetic_events
from tests.ops.test_denoise import SMALL, cuts_for, real, split_at


@pytest.mark.parametrize("period", [0, 1, 50, 999.5, 1000, 100_000])
def test_equals_tonic_random(period):
    events = synthetic_events(20_000, *SMALL[:2], seed=4, rate_hz=1e5)
    expected = tonic.functional.refractory_period_numpy(events, period)
    result = refractory_period(events, SMALL, period)
    assert result.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("name", ["davis346", "ncars", "nmnist", "pedestrians"])
def test_equals_tonic_real(name):
    events, size = real(name)
    expected = tonic.functional.refractory_period_numpy(events, 1000)
    result = refractory_period(events, size, 1000)
    assert 0 < len(result) < len(events)
    np.testing.assert_array_equal(result, expected)


def test_tonic_quirks():
    # an event at t = 0 is dropped (tonic starts every pixel at -period); dropped events also reset the pixel
    events = make_events([1, 2, 2, 2], [1, 1, 1, 1], [0, 10, 15, 20], [1, 1, 1, 1])
    np.testing.assert_array_equal(refractory_period(events, (4, 4, 2), 6)["t"], [10])


def test_long_stream_moves_its_base():
    bursts = [synthetic_events(500, 8, 8, seed=s, rate_hz=1e5) for s in range(3)]
    for k, burst in enumerate(bursts):
        burst["t"] += k * 3_000_000_000
    events = np.concatenate(bursts)
    np.testing.assert_array_equal(refractory_period(events, (8, 8, 2), 200),
                                  tonic.functional.refractory_period_numpy(events, 200))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_chunked_equals_whole_real(data):
    events, size = real("dvxplorer")
    events = events[:20_000]
    whole = refractory_period(events, size, 500)
    f = RefractoryFilter(size, 500)
    chunked = np.concatenate([f(batch) for batch in split_at(events, data.draw(cuts_for(len(events))))])
    np.testing.assert_array_equal(chunked, whole)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), data=st.data())
def test_chunked_equals_whole_random(seed, data):
    events = synthetic_events(3000, *SMALL[:2], seed=seed, rate_hz=1e5)
    whole = refractory_period(events, SMALL, 300)
    f = RefractoryFilter(SMALL, 300)
    chunked = np.concatenate([f(batch) for batch in split_at(events, data.draw(cuts_for(len(events))))])
    np.testing.assert_array_equal(chunked, whole)


def test_empty_non_contiguous_and_bad_input():
    empty = refractory_period(np.empty(0, dtype=EVENT_DTYPE), SMALL, 10)
    assert empty.dtype == EVENT_DTYPE and empty.shape == (0,)
    events = synthetic_events(3000, *SMALL[:2], seed=1, rate_hz=1e5)
    np.testing.assert_array_equal(refractory_period(events[1::3], SMALL, 100),
                                  refractory_period(events[1::3].copy(), SMALL, 100))
    with pytest.raises(ValueError, match="outside the 40x30 sensor"):
        refractory_period(make_events([0], [30], [5], [0]), SMALL, 10)
    assert repr(RefractoryFilter(SMALL, 100)) == "RefractoryFilter(sensor_size=(40, 30, 2), refractory_period=100)"
