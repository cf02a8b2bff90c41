"""denoise against tonic, the background-activity filter against dv-processing; chunked == whole."""

from __future__ import annotations

import datetime

import dv_processing as dv
import numpy as np
import pytest
import tonic.functional
from hypothesis import given, settings
from hypothesis import strategies as st

from evstream import EVENT_DTYPE, make_events
from evstream.ops.denoise import BackgroundActivityFilter, Denoise, background_activity_filter, denoise
from tests.conftest import RECORDINGS, load_reference, synthetic_events

REAL = {  # reference decode, sensor size
    "davis346": ("aedat4/davis346_aestream.aedat4.ref.npy", (346, 260, 2)),
    "dvxplorer": ("aedat4/dvxplorer_tonic_sample.aedat4.ref.npy", (320, 240, 2)),
    "ncars": ("dat/ncars_sample_tonic.dat.ref.npy", (304, 240, 2)),
    "nmnist": ("atis_bin/nmnist_sample_tonic.bin.ref.npy", (34, 34, 2)),
    "pedestrians": ("evt3/pedestrians_gen41.raw.ref.npy", (1280, 720, 2)),
}
SMALL = (40, 30, 2)


def real(name: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    path, size = REAL[name]
    return load_reference(RECORDINGS / path), size


def split_at(events: np.ndarray, cuts) -> list[np.ndarray]:
    """The events cut at the given indices (any order, repeats give empty batches)."""
    return np.split(events, sorted(cuts))


def cuts_for(n: int):
    return st.lists(st.integers(0, n), max_size=12)


def dv_store(events: np.ndarray) -> dv.EventStore:
    store = dv.EventStore()
    for x, y, t, p in events[["x", "y", "t", "p"]].tolist():
        store.push_back(t, x, y, bool(p))
    return store


def dv_background_activity(store: dv.EventStore, size, duration_us: int) -> np.ndarray:
    f = dv.noise.BackgroundActivityNoiseFilter(size[:2], backgroundActivityDuration=datetime.timedelta(
        microseconds=duration_us))
    f.accept(store)
    out = f.generateEvents().numpy()
    return make_events(out["x"], out["y"], out["timestamp"], out["polarity"])


@pytest.mark.parametrize("filter_time", [0, 1, 100, 1000, 1000.5, 10_000])
def test_denoise_equals_tonic_random(filter_time):
    events = synthetic_events(20_000, *SMALL[:2], seed=3, rate_hz=1e5)
    expected = tonic.functional.denoise_numpy(events, filter_time)
    result = denoise(events, SMALL, filter_time)
    assert result.dtype == EVENT_DTYPE
    assert 0 < len(result) or filter_time == 0
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("name", ["davis346", "ncars", "nmnist", "pedestrians"])
def test_denoise_equals_tonic_real(name):
    events, size = real(name)
    expected = tonic.functional.denoise_numpy(events, 5000)
    result = denoise(events, size, 5000)
    assert 0 < len(result) < len(events)
    np.testing.assert_array_equal(result, expected)


def test_denoise_long_stream_moves_its_base():
    # bursts 40 minutes apart: relative int32 times must be rebased, results stay exact
    rng = np.random.default_rng(5)
    bursts = [synthetic_events(500, 16, 16, seed=s, rate_hz=1e5) for s in range(4)]
    for k, burst in enumerate(bursts):
        burst["t"] += k * 2_400_000_000 + rng.integers(0, 1000)
    events = np.concatenate(bursts)
    np.testing.assert_array_equal(denoise(events, (16, 16, 2), 300), tonic.functional.denoise_numpy(events, 300))


def stream_source(source: str, seed: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """20 k events of the DAVIS346 recording, or a random stream on a small sensor."""
    if source == "real":
        events, size = real("davis346")
        return events[:20_000], size
    return synthetic_events(5000, *SMALL[:2], seed=seed, rate_hz=2e5), SMALL


@pytest.mark.parametrize("source", ["real", "random"])
@pytest.mark.parametrize("make", [lambda size: Denoise(size, filter_time=2000),
                                  lambda size: BackgroundActivityFilter(size, duration_us=500)],
                         ids=["Denoise", "BackgroundActivityFilter"])
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), data=st.data())
def test_chunked_equals_whole(make, source, seed, data):
    events, size = stream_source(source, seed)
    whole = make(size)(events)
    f = make(size)
    chunked = np.concatenate([f(batch) for batch in split_at(events, data.draw(cuts_for(len(events))))])
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("duration_us", [1, 500, 2000, 20_000])
def test_background_activity_equals_dv_random(duration_us):
    events = synthetic_events(5000, *SMALL[:2], seed=7, rate_hz=2e5)
    expected = dv_background_activity(dv_store(events), SMALL, duration_us)
    np.testing.assert_array_equal(background_activity_filter(events, SMALL, duration_us), expected)


def test_background_activity_equals_dv_real_recording():
    # dv-processing reads the file itself; we filter the reference decode of the same file
    recording = dv.io.MonoCameraRecording(str(RECORDINGS / "aedat4/davis346_aestream.aedat4"))
    store = dv.EventStore()
    while (batch := recording.getNextEventBatch()) is not None:
        store.add(batch)
    events, size = real("davis346")
    expected = dv_background_activity(store, size, 2000)
    result = background_activity_filter(events, size, 2000)
    assert 0 < len(result) < len(events)
    np.testing.assert_array_equal(result, expected)


def test_background_activity_semantics():
    # diagonal neighbours support, the pixel itself and distance-2 pixels do not, support is strict (< duration)
    events = make_events([5, 6, 6, 8, 9], [5, 6, 6, 6, 9], [1000, 1099, 1150, 1160, 3000], [1, 1, 1, 0, 1])
    kept = background_activity_filter(events, (10, 10, 2), 100)
    np.testing.assert_array_equal(kept["t"], [1099])


@pytest.mark.parametrize("op", [lambda e: denoise(e, SMALL, 100), lambda e: background_activity_filter(e, SMALL, 100)])
def test_empty_and_non_contiguous_input(op):
    empty = op(np.empty(0, dtype=EVENT_DTYPE))
    assert empty.dtype == EVENT_DTYPE and empty.shape == (0,)
    events = synthetic_events(4000, *SMALL[:2], seed=1, rate_hz=1e5)
    np.testing.assert_array_equal(op(events[::2]), op(events[::2].copy()))


def test_rejects_bad_input():
    events = make_events([40], [0], [10], [1])
    with pytest.raises(ValueError, match="outside the 40x30 sensor"):
        denoise(events, SMALL, 100)
    with pytest.raises(TypeError):
        background_activity_filter(np.zeros(3, dtype=[("x", "u2"), ("y", "u2")]), SMALL, 100)
    with pytest.raises(ValueError):
        Denoise(SMALL, filter_time=-1)


def test_repr_and_reset():
    f = Denoise(SMALL, filter_time=100)
    events = synthetic_events(2000, *SMALL[:2], seed=2, rate_hz=1e5)
    first = f(events)
    f.reset()
    np.testing.assert_array_equal(f(events), first)
    assert repr(f) == "Denoise(sensor_size=(40, 30, 2), filter_time=100)"
    assert "duration_us=2000" in repr(BackgroundActivityFilter(SMALL))
