"""HATS (averaged time surfaces) equal to tonic's ToAveragedTimesurface on tonic's int16 events, value for value."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.io
from tonic.functional import to_averaged_timesurface_numpy

from evstream import EVENT_DTYPE, make_events
from evstream.ops import ToAveragedTimesurface, merge_polarities, to_averaged_time_surface
from tests.conftest import RECORDINGS, load_reference, synthetic_events

NMNIST = (34, 34, 2)


def tonic_hats(events, sensor_size, cell_size=10, surface_size=5, time_window=1e3, tau=100, decay="exp"):
    """tonic's HATS on its own event dtype (x, y int16)."""
    return to_averaged_timesurface_numpy(events.astype(tonic.io.events_struct), sensor_size, cell_size, surface_size,
                                         time_window, tau, decay)


@pytest.mark.parametrize(("cell_size", "surface_size", "time_window", "tau", "decay"), [
    (10, 5, 1e3, 100, "exp"),  # tonic's defaults
    (10, 7, 5e3, 500, "exp"),
    (5, 3, 2e4, 1e3, "lin"),
    (4, 1, 1e4, 1e3, "exp"),  # one-pixel surfaces: tonic's sums run in numpy's pairwise order
    (4, 1, 3e4, 2e3, "lin"),
    (34, 9, 1e5, 3e3, "exp"),  # one cell, long window: hundreds of neighbours per event
    (7, 7, 0, 50, "exp"),  # only simultaneous events count
])
def test_equals_tonic_on_a_real_nmnist_sample(shared, cell_size, surface_size, time_window, tau, decay):
    events = load_reference(RECORDINGS / "atis_bin/nmnist_sample_tonic.bin.ref.npy")
    expected = tonic_hats(events, NMNIST, cell_size, surface_size, time_window, tau, decay)
    result = to_averaged_time_surface(events, NMNIST, cell_size, surface_size, time_window, tau, decay)
    assert result.dtype == np.float32 and result.shape == expected.shape
    assert np.count_nonzero(result) > 0
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("t0", [0, 40_000_000])  # from 0 (the window start clamps at 0), and beyond 2**24 us
def test_equals_tonic_on_random_streams(seed, t0):
    # float32 times lose the microseconds after 2**24 us (~17 s): tonic's rounding is kept
    events = synthetic_events(3000, 23, 17, seed=seed, rate_hz=2e5)
    events["t"] += t0
    size = (23, 17, 2)
    for params in ((6, 5, 3e3, 400.0, "exp"), (8, 3, 2e3, 300, "lin")):
        expected = tonic_hats(events, size, *params)
        np.testing.assert_array_equal(to_averaged_time_surface(events, size, *params), expected)


def test_hand_computed_neighbour_to_the_left():
    # two ON events in cell 0: the second sees the first one pixel to its left, 80 us before
    events = make_events([4, 5], [5, 5], [1000, 1080], [1, 1])
    result = ToAveragedTimesurface((20, 10, 2), surface_size=3, cell_size=10, time_window=1e3, tau=100)(events)
    expected = np.zeros((2, 2, 3, 3), np.float32)
    expected[0, 1, 1, 1] = 1  # each event's own centre, averaged over the two
    expected[0, 1, 1, 0] = np.exp(np.float32(-0.8)) / 2  # 0.2247
    np.testing.assert_allclose(result, expected, rtol=1e-7)
    np.testing.assert_array_equal(result, tonic_hats(events, (20, 10, 2), 10, 3, 1e3, 100))
    # tonic on evstream's own uint16 coordinates: 4 - 5 wraps to 65535 and the neighbour is lost
    assert to_averaged_timesurface_numpy(events, (20, 10, 2), 10, 3, 1e3, 100, "exp")[0, 1, 1, 0] == 0


def test_one_polarity_channel_merges_polarities():
    # tonic indexes the channel by p, so P = 1 fails on ON events; merged first, it agrees with ours
    events = synthetic_events(2000, 20, 20, seed=5, rate_hz=1e5)
    np.testing.assert_array_equal(to_averaged_time_surface(events, (20, 20, 1), 5, 3),
                                  tonic_hats(merge_polarities(events), (20, 20, 1), 5, 3))


def test_empty_tonic_dtype_and_bad_input():
    empty = to_averaged_time_surface(np.empty(0, EVENT_DTYPE), (25, 12, 2), cell_size=10, surface_size=3)
    assert empty.shape == (6, 2, 3, 3) and not empty.any()
    events = synthetic_events(500, 20, 20, seed=1, rate_hz=1e5)
    np.testing.assert_array_equal(to_averaged_time_surface(events.astype(tonic.io.events_struct), (20, 20, 2)),
                                  to_averaged_time_surface(events, (20, 20, 2)))
    for kwargs, message in (({"surface_size": 4}, "odd"), ({"surface_size": 11}, "odd and at most cell_size"),
                            ({"decay": "gauss"}, "decay"), ({"tau": 0}, "tau"), ({"time_window": -1}, "time_window")):
        with pytest.raises(ValueError, match=message):
            to_averaged_time_surface(events, (20, 20, 2), **kwargs)
    with pytest.raises(ValueError, match="sorted"):
        to_averaged_time_surface(events[::-1], (20, 20, 2))
    with pytest.raises(ValueError, match="outside sensor_size"):
        to_averaged_time_surface(events, (19, 20, 2))
    with pytest.raises(ValueError, match="too long together"):
        to_averaged_time_surface(make_events([0, 0], [0, 0], [0, 3 * 10**8], [0, 0]), (20, 20, 2),
                                 time_window=1e9, tau=1e7)
