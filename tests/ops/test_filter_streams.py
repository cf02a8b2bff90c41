"""The stateful filters as transforms and as streams: a reused transform equals a fresh one on every call (in any
sample order, as DataLoader workers call it); a stream carries state across batches and resets, with one
StreamResetWarning, exactly where time goes back."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tonic.functional
from hypothesis import given, settings
from hypothesis import strategies as st

from evstream.datasets import NMNIST
from evstream.ops import StreamResetWarning
from evstream.ops.denoise import BackgroundActivityFilter, Denoise
from evstream.ops.hot_pixels import HotPixelFilter
from evstream.ops.refractory import RefractoryPeriod
from tests.conftest import SHARED, synthetic_events
from tests.ops.test_filters import SMALL, cuts_for, split_at

FILTERS = {
    "Denoise": lambda size: Denoise(size, filter_time=3000),
    "BackgroundActivityFilter": lambda size: BackgroundActivityFilter(size, duration_us=2000),
    "RefractoryPeriod": lambda size: RefractoryPeriod(size, refractory_period=1000),
    "HotPixelFilter": lambda size: HotPixelFilter(size, learn_us=20_000, contrast=3.0, n_sigma=2.0),
}
"""Each stateful filter, with windows that keep some events and drop others on N-MNIST and random streams."""
SAMPLES = range(0, 1000, 125)
"""Eight real N-MNIST samples, one of most digits (every sample's times start near 0)."""


@pytest.fixture(scope="module")
def nmnist(shared):
    return NMNIST(SHARED / "datasets/nmnist_small", "train")


@pytest.mark.parametrize("name", FILTERS)
def test_reused_transform_equals_fresh_in_any_sample_order(nmnist, name):
    make = FILTERS[name]
    fresh = {i: make(nmnist.sensor_size)(nmnist.events(i)) for i in SAMPLES}
    dataset = NMNIST(SHARED / "datasets/nmnist_small", "train", transform=make(nmnist.sensor_size))
    for order in (SAMPLES, reversed(SAMPLES), [375, 375, 0, 875, 0]):  # as workers may call one instance
        for i in order:
            np.testing.assert_array_equal(dataset[i][0], fresh[i])
    kept = sum(len(f) for f in fresh.values())
    assert 0 < kept < sum(len(nmnist.events(i)) for i in SAMPLES)  # the filter does something here


def test_denoise_transform_is_tonics_on_every_sample(nmnist):
    # the case: a reused stateful Denoise kept 3,584 events of a sample where a fresh one keeps 1,123
    transform = Denoise(nmnist.sensor_size, filter_time=10_000)
    for i in SAMPLES:
        events = nmnist.events(i)
        np.testing.assert_array_equal(transform(events), tonic.functional.denoise_numpy(events, 10_000))


@pytest.mark.parametrize("name", FILTERS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), data=st.data())
def test_stream_resets_where_time_goes_back_with_one_warning(name, seed, data):
    # two recordings played one after the other: the stream gives what the transform gives on each
    first = synthetic_events(3000, *SMALL[:2], seed=seed, rate_hz=1e5)
    second = synthetic_events(2000, *SMALL[:2], seed=seed + 1, rate_hz=1e5)
    second["t"] += data.draw(st.integers(0, int(first["t"][-1]) - 1)) - second["t"][0]  # starts before first ends
    transform = FILTERS[name](SMALL)
    stream = transform.stream()
    events = np.concatenate([first, second])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = np.concatenate([stream(batch) for batch in split_at(events, data.draw(cuts_for(len(events))))])
    np.testing.assert_array_equal(kept, np.concatenate([transform(first), transform(second)]))
    assert [type(w.message) for w in caught] == [StreamResetWarning]
    message = str(caught[0].message)
    assert message.startswith(f"{name} stream: time went back from {first['t'][-1]} us to {second['t'][0]} us")


@pytest.mark.parametrize("name", FILTERS)
def test_each_step_back_is_one_reset(name):
    passes = [synthetic_events(1500, *SMALL[:2], seed=s, rate_hz=1e5) for s in range(4)]
    transform = FILTERS[name](SMALL)
    stream = transform.stream()
    with pytest.warns(StreamResetWarning) as caught:
        kept = stream(np.concatenate(passes))  # three steps back in one batch
    assert len(caught) == 3
    np.testing.assert_array_equal(kept, np.concatenate([transform(p) for p in passes]))
    stream.reset()  # an explicit reset (a new recording) warns nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(stream(passes[0]), transform(passes[0]))


@pytest.mark.parametrize("name", ["Denoise", "BackgroundActivityFilter", "RefractoryPeriod"])
def test_steps_back_within_the_tolerance_are_filtered_as_they_come(name):
    # a driver reordering packets: batches overlap by up to 800 us; with max_step_back_us=1000 nothing resets
    # and the stream gives what one call gives on the (slightly unsorted) concatenation
    events = synthetic_events(6000, *SMALL[:2], seed=4, rate_hz=1e5)
    batches = [events[i:i + 500].copy() for i in range(0, len(events), 500)]
    for k, batch in enumerate(batches[1:], 1):
        batch["t"] -= 800 * (k % 2)
    transform = FILTERS[name](SMALL)
    stream = transform.stream(max_step_back_us=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = np.concatenate([stream(b) for b in batches])
    np.testing.assert_array_equal(kept, transform(np.concatenate(batches)))
    with pytest.warns(StreamResetWarning):  # a strict stream resets at each of those steps
        transform.stream()(np.concatenate(batches))


def test_stream_errors_name_the_event_and_reprs():
    stream = Denoise(SMALL, filter_time=100).stream()
    events = synthetic_events(100, *SMALL[:2], seed=1, rate_hz=1e5)
    restart = events.copy()
    restart["x"][7] = 40
    with pytest.warns(StreamResetWarning), pytest.raises(ValueError, match=r"event 107 at \(x=40, y="):
        stream(np.concatenate([events, restart]))
    with pytest.raises(ValueError, match="max_step_back_us"):
        Denoise(SMALL).stream(max_step_back_us=-1)
    assert repr(RefractoryPeriod(SMALL, 100).stream(5)) == (
        "RefractoryPeriod(sensor_size=(40, 30, 2), refractory_period=100).stream(max_step_back_us=5)")
    assert repr(HotPixelFilter(SMALL).stream()).endswith(".stream(max_step_back_us=0)")
