"""to_time_surface against tonic's to_timesurface_numpy."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.functional

from evstream import EVENT_DTYPE
from evstream.ops import ToTimesurface, to_time_surface
from tests.conftest import RECORDINGS, load_reference, synthetic_events

def tonic_surfaces(events, sensor_size, **kwargs):
    return tonic.functional.to_timesurface_numpy(events.copy(), sensor_size, **kwargs)


@pytest.mark.parametrize("kwargs", [dict(dt=1000, tau=500), dict(dt=1000.0, tau=3000.0, overlap=200),
                                    dict(dt=2500, tau=1e4, overlap=500, include_incomplete=True)], ids=str)
def test_random_streams_equal_tonic(kwargs):
    events = synthetic_events(20_000, seed=1)
    result = to_time_surface(events, (346, 260, 2), **kwargs)
    expected = tonic_surfaces(events, (346, 260, 2), **kwargs)
    assert result.shape == expected.shape and result.dtype == np.float64
    np.testing.assert_array_equal(result, expected)


def test_recording_equals_tonic(shared):
    events = load_reference(RECORDINGS / "aedat4/davis346_aestream.aedat4.ref.npy")
    kwargs = dict(dt=20_000, tau=5_000, include_incomplete=True)
    np.testing.assert_array_equal(to_time_surface(events, (346, 260, 2), **kwargs),
                                  tonic_surfaces(events, (346, 260, 2), **kwargs))


def test_values_by_hand_and_edge_cases():
    events = np.zeros(3, EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = [0, 1, 0], [0, 0, 0], [0, 50, 150], [1, 0, 1]
    surfaces = to_time_surface(events, (2, 1, 2), dt=100, tau=100, include_incomplete=True)
    assert surfaces.shape == (2, 2, 1, 2)
    np.testing.assert_allclose(surfaces[0, :, 0], [[0.0, np.exp(-0.5)], [np.exp(-1.0), 0.0]])
    np.testing.assert_allclose(surfaces[1, :, 0], [[0.0, np.exp(-1.5)], [np.exp(-0.5), 0.0]])
    assert not to_time_surface(np.empty(0, EVENT_DTYPE), (2, 1, 2), dt=10, tau=5).any()
    with pytest.raises(ValueError, match="> 0"):
        to_time_surface(events, (2, 1, 2), dt=0, tau=5)
    np.testing.assert_array_equal(ToTimesurface((2, 1, 2), 100, 100, include_incomplete=True)(events), surfaces)


def test_streams_longer_than_uint32_microseconds_equal_tonic():
    """Over 2**32 µs (71 min) the pixel memory switches from uint32 to int64 times: still tonic's values."""
    events = synthetic_events(2_000, width=8, height=6, seed=5)
    events["t"] = np.sort(np.random.default_rng(5).integers(0, 3 * 2**32, len(events)))
    kwargs = dict(dt=2**31, tau=2**30, include_incomplete=True)
    np.testing.assert_array_equal(to_time_surface(events, (8, 6, 2), **kwargs),
                                  tonic_surfaces(events, (8, 6, 2), **kwargs))


def test_unsorted_times_raise_instead_of_wrapping_the_memory():
    events = np.zeros(8, EVENT_DTYPE)
    events["t"] = [0, 2**33, 10, 20, 30, 40, 50, 400]
    with pytest.raises(ValueError, match="sorted"):
        to_time_surface(events, (2, 1, 2), dt=100, tau=100, include_incomplete=True)
