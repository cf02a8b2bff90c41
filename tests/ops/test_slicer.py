"""slice_by_time / slice_by_count against tonic's slicers; the stream Slicer equals slicing the concatenation."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.slicers
from hypothesis import given, settings
from hypothesis import strategies as st

from evstream import EVENT_DTYPE
from evstream.ops.slicer import Slicer, slice_by_count, slice_by_time
from tests.conftest import synthetic_events
from tests.ops.test_filters import cuts_for, real, split_at


def assert_windows_equal(result, expected):
    assert [len(w) for w in result] == [len(w) for w in expected]
    if result:
        assert {w.dtype for w in result} == {EVENT_DTYPE}
        np.testing.assert_array_equal(np.concatenate(result), np.concatenate(expected))


@pytest.mark.parametrize("window_us, overlap_us", [(10_000, 0), (10_000, 2500), (7_000, 6_900), (100, 0)])
@pytest.mark.parametrize("name", ["davis346", "ncars"])
def test_time_windows_equal_tonic(shared, name, window_us, overlap_us):
    events, _ = real(name)
    expected = tonic.slicers.slice_events_by_time(events, window_us, overlap_us)
    assert_windows_equal(slice_by_time(events, window_us, overlap_us), expected)


@pytest.mark.parametrize("event_count, overlap", [(1000, 0), (1000, 300), (333, 300)])
def test_count_windows_equal_tonic(shared, event_count, overlap):
    events, _ = real("davis346")
    for include_incomplete in (False, overlap == 0):
        expected = tonic.slicers.slice_events_by_count(events, event_count, overlap, include_incomplete)
        assert_windows_equal(slice_by_count(events, event_count, overlap, include_incomplete), expected)


def test_incomplete_windows_hold_the_last_event():
    events = synthetic_events(1000, seed=2, rate_hz=1e4)
    windows = slice_by_time(events, 30_000, 10_000, include_incomplete=True)
    complete = slice_by_time(events, 30_000, 10_000)
    assert len(windows) == len(complete) + 2  # ceil(window / stride) - 1 windows still open at the end
    assert all(w[-1] == events[-1] for w in windows[len(complete):])
    start = int(events["t"][0])
    assert np.array_equal(windows[-1], events[events["t"] >= start + (len(windows) - 1) * 20_000])
    assert sum(map(len, slice_by_time(events, 30_000, include_incomplete=True))) == len(events)


def test_gaps_give_empty_windows_and_start_us():
    events = synthetic_events(10, seed=0, rate_hz=1e6)
    events["t"] = [0, 1, 2, 3, 4, 50, 51, 52, 53, 99]
    windows = slice_by_time(events, 10, start_us=-10)
    assert [len(w) for w in windows] == [0, 5, 0, 0, 0, 0, 4, 0, 0, 0]
    assert slice_by_time(events[:0], 10) == [] and slice_by_count(events[:0], 3, include_incomplete=True) == []


def stream(slicer: Slicer, batches):
    windows = []
    for batch in batches:
        windows += slicer.push(batch)
        buffered = slicer.buffered
        if slicer.by_time and len(buffered):
            assert buffered["t"][-1] - buffered["t"][0] < slicer.length
        else:
            assert len(buffered) < slicer.length
    return windows


@settings(max_examples=30, deadline=None)  # per source: 60 in all
@given(data=st.data(), window_us=st.integers(1, 20_000), overlap_frac=st.floats(0, 0.9),
       start_shift=st.one_of(st.none(), st.integers(-5000, 5000)))
def test_time_slicer_equals_slicing_the_concatenation(real_or_random, data, window_us, overlap_frac, start_shift):
    use_real = real_or_random == "real"
    events = real("ncars")[0] if use_real else synthetic_events(3000, seed=data.draw(st.integers(0, 99)), rate_hz=2e5)
    window_us = max(window_us, 200) if use_real else window_us  # at most ~5,000 windows
    overlap_us = int(window_us * overlap_frac)
    start_us = None if start_shift is None else int(events["t"][0]) + start_shift
    slicer = Slicer(window_us=window_us, overlap_us=overlap_us, start_us=start_us)
    pushed = stream(slicer, split_at(events, data.draw(cuts_for(len(events)))))
    assert_windows_equal(pushed, slice_by_time(events, window_us, overlap_us, start_us=start_us))
    assert_windows_equal(pushed + slicer.flush(),
                         slice_by_time(events, window_us, overlap_us, include_incomplete=True, start_us=start_us))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), event_count=st.integers(1, 500), overlap_frac=st.floats(0, 0.99))
def test_count_slicer_equals_slicing_the_concatenation(data, event_count, overlap_frac):
    events = synthetic_events(2500, seed=data.draw(st.integers(0, 99)))
    overlap = int(event_count * overlap_frac)
    slicer = Slicer(event_count=event_count, overlap=overlap)
    pushed = stream(slicer, split_at(events, data.draw(cuts_for(len(events)))))
    assert_windows_equal(pushed, slice_by_count(events, event_count, overlap))
    assert_windows_equal(pushed + slicer.flush(), slice_by_count(events, event_count, overlap, include_incomplete=True))
    assert slicer.flush() == [] and len(slicer.buffered) == 0


def test_rejects_bad_arguments_and_unsorted_batches():
    with pytest.raises(ValueError):
        Slicer(window_us=10, event_count=10)
    with pytest.raises(ValueError):
        Slicer(window_us=10, overlap_us=10)
    events = synthetic_events(100, seed=1)
    slicer = Slicer(window_us=100)
    slicer.push(events[50:])
    with pytest.raises(ValueError, match="sorted"):
        slicer.push(events[:50])
    assert repr(Slicer(event_count=5, overlap=2)) == "Slicer(event_count=5, overlap=2)"


def test_unsorted_batch_after_an_emptied_buffer():
    events = synthetic_events(20, seed=3)
    slicer = Slicer(event_count=10)
    assert len(slicer.push(events[10:])) == 1 and len(slicer.buffered) == 0
    with pytest.raises(ValueError, match="sorted"):
        slicer.push(events[:10])
