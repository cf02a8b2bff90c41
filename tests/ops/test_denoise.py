"""The background-activity filter against dv-processing, and denoise's input checks, repr and reset (the tonic
comparisons and the other shared filter tests are in test_filters.py)."""

from __future__ import annotations

import datetime

import dv_processing as dv
import numpy as np
import pytest

from evstream import make_events
from evstream.ops.denoise import BackgroundActivityFilter, Denoise, background_activity_filter, denoise
from tests.conftest import RECORDINGS, synthetic_events
from tests.ops.test_filters import SMALL, real


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


@pytest.mark.parametrize("duration_us", [1, 500, 2000, 20_000])
def test_background_activity_equals_dv_random(duration_us):
    events = synthetic_events(5000, *SMALL[:2], seed=7, rate_hz=2e5)
    expected = dv_background_activity(dv_store(events), SMALL, duration_us)
    np.testing.assert_array_equal(background_activity_filter(events, SMALL, duration_us), expected)


def test_background_activity_equals_dv_real_recording(shared):
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


def test_rejects_bad_input():
    events = make_events([40], [0], [10], [1])
    with pytest.raises(ValueError, match="outside the 40x30 sensor"):
        denoise(events, SMALL, 100)
    with pytest.raises(TypeError):
        background_activity_filter(np.zeros(3, dtype=[("x", "u2"), ("y", "u2")]), SMALL, 100)
    with pytest.raises(ValueError):
        Denoise(SMALL, filter_time=-1)


def test_repr_and_stream_reset():
    f = Denoise(SMALL, filter_time=100).stream()
    events = synthetic_events(2000, *SMALL[:2], seed=2, rate_hz=1e5)
    first = f(events)
    f.reset()
    np.testing.assert_array_equal(f(events), first)
    assert repr(f) == "Denoise(sensor_size=(40, 30, 2), filter_time=100).stream(max_step_back_us=0)"
    assert "duration_us=2000" in repr(BackgroundActivityFilter(SMALL))
