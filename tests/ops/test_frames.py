"""to_frame against tonic.functional.to_frame_numpy: all four slicing modes, real and random streams."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.functional

from evstream import EVENT_DTYPE
from evstream._jit import PREFETCH_MIN_BYTES
from evstream.ops import ToFrame, to_frame
from evstream.ops.frames import search_times
from tests.conftest import RECORDINGS, load_reference, synthetic_events

MODES = [
    dict(time_window=1000),
    dict(time_window=1000.0, overlap=300.0, include_incomplete=True),
    dict(time_window=2500, overlap=0, include_incomplete=False),
    dict(event_count=777),
    dict(event_count=777, overlap=100, include_incomplete=True),
    dict(event_count=5000, overlap=2500, include_incomplete=False),
    dict(n_time_bins=7),
    dict(n_time_bins=7, overlap=0.3),
    dict(n_event_bins=9),
    dict(n_event_bins=9, overlap=0.25),
]


def tonic_frames(events, sensor_size, **mode):
    return tonic.functional.to_frame_numpy(events.copy(), sensor_size, **mode)


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_random_streams_equal_tonic(mode, seed):
    events = synthetic_events(20_000, seed=seed, rate_hz=2e6 if seed else 1e6)
    expected = tonic_frames(events, (346, 260, 2), **mode)
    result = to_frame(events, (346, 260, 2), **mode)
    assert result.dtype == expected.dtype == np.int16
    np.testing.assert_array_equal(result, expected)


RECORDED = [
    ("aedat4/davis346_aestream.aedat4.ref.npy", (346, 260, 2), 10_000, 20_000),
    ("evt3/evt3_sample_gen41.raw.ref.npy", (1280, 720, 2), 1_000, 40_000),
    ("aedat4/dvxplorer_tonic_sample.aedat4.ref.npy", (320, 240, 2), 50_000, 20_000),
]


@pytest.mark.parametrize("name, sensor_size, window, count", RECORDED, ids=[r[0] for r in RECORDED])
def test_recordings_equal_tonic(shared, name, sensor_size, window, count):
    events = load_reference(RECORDINGS / name)
    for mode in (dict(time_window=window, overlap=window // 4, include_incomplete=True),
                 dict(event_count=count, overlap=count // 3), dict(n_time_bins=5, overlap=0.2), dict(n_event_bins=4)):
        np.testing.assert_array_equal(to_frame(events, sensor_size, **mode), tonic_frames(events, sensor_size, **mode))


def test_start_and_end_time_pad_empty_frames():
    events = synthetic_events(5_000, seed=3)
    mode = dict(time_window=700, start_time=int(events["t"][0]) - 2_000, end_time=int(events["t"][-1]) + 3_000)
    result = to_frame(events, (346, 260, 2), **mode)
    np.testing.assert_array_equal(result, tonic_frames(events, (346, 260, 2), **mode))
    assert result[0].sum() == 0 and result[-1].sum() == 0


def test_single_polarity_sensor_merges_and_rejects_mixed():
    events = synthetic_events(3_000, seed=4)
    events["p"] = 1
    result = to_frame(events, (346, 260, 1), event_count=1_000)
    np.testing.assert_array_equal(result, tonic_frames(events, (346, 260, 1), event_count=1_000))
    assert events["p"].min() == 1  # tonic sets p = 0 in place; we do not
    with pytest.raises(ValueError, match="single polarity"):
        to_frame(synthetic_events(100), (346, 260, 1), event_count=10)


def test_empty_input_gives_empty_frames_of_the_right_shape():
    empty = np.empty(0, EVENT_DTYPE)
    assert to_frame(empty, (34, 26, 2), time_window=100).shape == (1, 2, 26, 34)
    assert to_frame(empty, (34, 26, 2), event_count=100).shape == (1, 2, 26, 34)
    assert to_frame(empty, (34, 26, 2), n_time_bins=3).shape == (3, 2, 26, 34)
    assert not to_frame(empty, (34, 26, 2), n_event_bins=4).any()


def test_out_buffer_is_reused_and_zeroed():
    events = synthetic_events(10_000, seed=5)
    out = np.full((4, 2, 260, 346), 9, np.int32)
    result = to_frame(events, (346, 260, 2), n_event_bins=4, out=out)
    assert result is out
    np.testing.assert_array_equal(out, tonic_frames(events, (346, 260, 2), n_event_bins=4))


def test_non_contiguous_and_foreign_dtypes():
    events = synthetic_events(10_000, seed=6)
    strided = events[::3]
    np.testing.assert_array_equal(to_frame(strided, (346, 260, 2), time_window=2_000),
                                  tonic_frames(np.ascontiguousarray(strided), (346, 260, 2), time_window=2_000))
    tonic_dtype = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "?")])
    foreign = np.empty(len(events), tonic_dtype)
    for name in "xytp":
        foreign[name] = events[name]
    np.testing.assert_array_equal(to_frame(foreign, (346, 260, 2), event_count=999),
                                  to_frame(events, (346, 260, 2), event_count=999))


def test_invalid_input_raises():
    events = synthetic_events(1_000, seed=7)
    with pytest.raises(ValueError, match="exactly one"):
        to_frame(events, (346, 260, 2), time_window=10, event_count=10)
    with pytest.raises(ValueError, match="> 0"):
        to_frame(events, (346, 260, 2), time_window=100, overlap=100)
    with pytest.raises(ValueError, match="outside sensor_size"):
        to_frame(events, (300, 260, 2), event_count=100)
    with pytest.raises(ValueError, match="sorted"):
        to_frame(events[::-1], (346, 260, 2), n_time_bins=1)
    swapped = events.copy()
    swapped[[500, 501]] = swapped[[501, 500]]
    with pytest.raises(ValueError, match="sorted"):
        to_frame(swapped, (346, 260, 2), time_window=10_000)


def test_transform_calls_the_function():
    events = synthetic_events(5_000, seed=8)
    transform = ToFrame((346, 260, 2), time_window=1_500, overlap=500, include_incomplete=True)
    np.testing.assert_array_equal(transform(events), to_frame(events, (346, 260, 2), time_window=1_500, overlap=500,
                                                              include_incomplete=True))


def test_search_times_equals_numpy_searchsorted():
    events = synthetic_events(5_000, seed=9)
    events["t"] //= 7  # many repeated times
    rng = np.random.default_rng(0)
    t = events["t"]
    for values in (rng.integers(t[0] - 10, t[-1] + 10, 300), rng.uniform(t[0] - 10, t[-1] + 10, 300),
                   np.array([t[0], t[-1], t[100]]), np.empty(0, np.int64)):
        np.testing.assert_array_equal(search_times(events, values), np.searchsorted(t, values))
    assert search_times(events, int(t[100])).shape == ()  # a scalar gives a scalar, as in numpy


def test_counting_on_a_large_sensor_equals_tonic():
    """1280x720x2 frames (beyond L2) with overlapping slices, merged polarity and bad input."""
    events = synthetic_events(60_000, width=1280, height=720, seed=11)
    for mode in (dict(time_window=10_000, overlap=2_500, include_incomplete=True), dict(n_event_bins=3)):
        expected = tonic_frames(events, (1280, 720, 2), **mode)
        np.testing.assert_array_equal(to_frame(events, (1280, 720, 2), **mode), expected)
        wide = np.empty(expected.shape, np.float64)
        assert wide[0].nbytes >= PREFETCH_MIN_BYTES  # the prefetching kernel
        np.testing.assert_array_equal(to_frame(events, (1280, 720, 2), **mode, out=wide), expected)
    merged = events.copy()
    merged["p"] = 0
    np.testing.assert_array_equal(to_frame(merged, (1280, 720, 1), event_count=7_000),
                                  tonic_frames(merged, (1280, 720, 1), event_count=7_000))
    swapped = events.copy()
    swapped[[500, 501]] = swapped[[501, 500]]
    with pytest.raises(ValueError, match="sorted"):
        to_frame(swapped, (1280, 720, 2), time_window=100_000)
    with pytest.raises(ValueError, match="outside"):
        to_frame(events, (1280, 700, 2), n_event_bins=2)
