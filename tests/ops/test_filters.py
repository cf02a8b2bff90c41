"""What every streaming time-table filter (denoise, background activity, refractory period) must do:
match tonic on random streams, real recordings and long streams, give the same events batch by batch as in one
call, and take empty and non-contiguous input."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.functional
from hypothesis import given, settings
from hypothesis import strategies as st

from evstream import EVENT_DTYPE
from evstream.ops.denoise import BackgroundActivityFilter, Denoise, background_activity_filter, denoise
from evstream.ops.refractory import RefractoryPeriod, refractory_period
from tests.conftest import RECORDINGS, load_reference, synthetic_events

REAL = {  # reference decode, sensor size
    "davis346": ("aedat4/davis346_aestream.aedat4.ref.npy", (346, 260, 2)),
    "ncars": ("dat/ncars_sample_tonic.dat.ref.npy", (304, 240, 2)),
    "nmnist": ("atis_bin/nmnist_sample_tonic.bin.ref.npy", (34, 34, 2)),
    "pedestrians": ("evt3/pedestrians_gen41.raw.ref.npy", (1280, 720, 2)),
}
SMALL = (40, 30, 2)
TONIC_PAIRS = [(denoise, tonic.functional.denoise_numpy, 5000),
               (refractory_period, tonic.functional.refractory_period_numpy, 1000)]
"""(ours, tonic's, window us): each filter with the tonic function it equals."""


def real(name: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    path, size = REAL[name]
    return load_reference(RECORDINGS / path), size


def split_at(events: np.ndarray, cuts) -> list[np.ndarray]:
    """The events cut at the given indices (any order, repeats give empty batches)."""
    return np.split(events, sorted(cuts))


def cuts_for(n: int):
    return st.lists(st.integers(0, n), max_size=12)


def stream_source(source: str, seed: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """20 k events of the DAVIS346 recording, or a random stream on a small sensor."""
    if source == "real":
        events, size = real("davis346")
        return events[:20_000], size
    return synthetic_events(5000, *SMALL[:2], seed=seed, rate_hz=2e5), SMALL


@pytest.mark.parametrize(("ours", "theirs", "window_us"),
                         [(denoise, tonic.functional.denoise_numpy, w) for w in (0, 1, 100, 1000, 1000.5, 10_000)]
                         + [(refractory_period, tonic.functional.refractory_period_numpy, w)
                            for w in (0, 1, 50, 999.5, 1000, 100_000)])
def test_equals_tonic_random(ours, theirs, window_us):
    events = synthetic_events(20_000, *SMALL[:2], seed=3, rate_hz=1e5)
    result = ours(events, SMALL, window_us)
    assert result.dtype == EVENT_DTYPE
    assert 0 < len(result) or window_us == 0
    np.testing.assert_array_equal(result, theirs(events, window_us))


@pytest.mark.parametrize("name", ["davis346", "ncars", "nmnist", "pedestrians"])
@pytest.mark.parametrize(("ours", "theirs", "window_us"), TONIC_PAIRS, ids=["denoise", "refractory_period"])
def test_equals_tonic_real(shared, ours, theirs, window_us, name):
    events, size = real(name)
    result = ours(events, size, window_us)
    assert 0 < len(result) < len(events)
    np.testing.assert_array_equal(result, theirs(events, window_us))


@pytest.mark.parametrize(("ours", "theirs", "window_us"), TONIC_PAIRS, ids=["denoise", "refractory_period"])
def test_long_stream_moves_its_base(ours, theirs, window_us):
    # bursts 40 minutes apart: relative int32 times must be rebased, results stay exact
    rng = np.random.default_rng(5)
    bursts = [synthetic_events(500, 16, 16, seed=s, rate_hz=1e5) for s in range(4)]
    for k, burst in enumerate(bursts):
        burst["t"] += k * 2_400_000_000 + rng.integers(0, 1000)
    events = np.concatenate(bursts)
    np.testing.assert_array_equal(ours(events, (16, 16, 2), window_us // 10), theirs(events, window_us // 10))


@pytest.mark.parametrize("make", [lambda size: Denoise(size, filter_time=2000),
                                  lambda size: BackgroundActivityFilter(size, duration_us=500),
                                  lambda size: RefractoryPeriod(size, refractory_period=500)],
                         ids=["Denoise", "BackgroundActivityFilter", "RefractoryPeriod"])
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), data=st.data())
def test_chunked_equals_whole(make, real_or_random, seed, data):
    events, size = stream_source(real_or_random, seed)
    whole = make(size)(events)
    stream = make(size).stream()
    chunked = np.concatenate([stream(batch) for batch in split_at(events, data.draw(cuts_for(len(events))))])
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("op", [lambda e: denoise(e, SMALL, 100), lambda e: background_activity_filter(e, SMALL, 100),
                                lambda e: refractory_period(e, SMALL, 100)],
                         ids=["denoise", "background_activity_filter", "refractory_period"])
def test_empty_and_non_contiguous_input(op):
    empty = op(np.empty(0, dtype=EVENT_DTYPE))
    assert empty.dtype == EVENT_DTYPE and empty.shape == (0,)
    events = synthetic_events(4000, *SMALL[:2], seed=1, rate_hz=1e5)
    np.testing.assert_array_equal(op(events[::2]), op(events[::2].copy()))
    np.testing.assert_array_equal(op(events[1::3]), op(events[1::3].copy()))
