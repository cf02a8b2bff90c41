"""Counting kernels split their frames across threads (evstream._parallel): the counts, and the
errors, are those of one thread."""

from __future__ import annotations

import numpy as np
import pytest

import evstream._parallel as parallel
from evstream.ops import integrate_by_number, to_cumulative_stack, to_frame
from tests.conftest import synthetic_events


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PART_RECORDS", 1000)


def _with_threads(monkeypatch, threads, function):
    monkeypatch.setenv("EVSTREAM_THREADS", str(threads))
    return function()


@pytest.mark.parametrize("name,function", [
    ("to_frame time bins", lambda ev: to_frame(ev, (346, 260, 2), n_time_bins=10)),
    ("to_frame overlapping event bins", lambda ev: to_frame(ev, (346, 260, 2), n_event_bins=7, overlap=0.5)),
    ("integrate_by_number", lambda ev: integrate_by_number(ev, (346, 260, 2), 9)),
    ("to_cumulative_stack", lambda ev: to_cumulative_stack(ev, (346, 260, 2), 10)),
])
def test_counts_equal_one_thread(small_parts, monkeypatch, name, function):
    events = synthetic_events(50_000, 346, 260, seed=3)
    one = _with_threads(monkeypatch, 1, lambda: function(events))
    assert one.sum() > 0
    for threads in (2, 5):
        np.testing.assert_array_equal(_with_threads(monkeypatch, threads, lambda: function(events)), one)


def test_errors_equal_one_thread(small_parts, monkeypatch):
    events = synthetic_events(50_000, 346, 260, seed=4)
    events["x"][40_000] = 400
    for threads in (1, 3):
        with pytest.raises(ValueError, match="to_frame: events outside sensor_size"):
            _with_threads(monkeypatch, threads, lambda: to_frame(events, (346, 260, 2), n_time_bins=10))
    monkeypatch.setenv("EVSTREAM_THREADS", "two")
    with pytest.raises(ValueError, match="EVSTREAM_THREADS must be a whole number"):
        to_frame(events, (346, 260, 2), n_time_bins=10)
