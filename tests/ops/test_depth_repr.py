"""Cumulative stacking (X_t = sum_{k <= t} E_k) and StereoSpike's 50 ms histogram."""

from __future__ import annotations

import numpy as np
import pytest

from evstream import EVENT_DTYPE, make_events
from evstream.ops import ToCumulativeStack, ToStereoSpikeInput, to_cumulative_stack, to_stereospike_histogram, \
    to_stereospike_input
from tests.conftest import RECORDINGS, load_reference, synthetic_events


def histogram(events, sensor_size):
    """Plain numpy 2-polarity count frame."""
    width, height, _ = sensor_size
    counts = np.zeros((2, height, width), np.float32)
    np.add.at(counts, (events["p"], events["y"], events["x"]), 1)
    return counts


@pytest.mark.parametrize("n_time_bins", [1, 5, 16])
def test_cumulative_stack_is_monotone_and_ends_at_the_total(n_time_bins):
    events = synthetic_events(30_000, seed=n_time_bins)
    stack = to_cumulative_stack(events, (346, 260, 2), n_time_bins)
    assert stack.shape == (n_time_bins, 2, 260, 346) and stack.dtype == np.float32
    assert (np.diff(stack, axis=0) >= 0).all()
    np.testing.assert_array_equal(stack[-1], histogram(events, (346, 260, 2)))


def test_cumulative_stack_bins_by_hand():
    events = make_events([0, 1, 2, 3], [0, 0, 0, 0], [0, 24, 25, 99], [1, 0, 1, 1])
    stack = to_cumulative_stack(events, (4, 1, 2), 4, start_time=0, end_time=100)
    assert stack[:, :, 0].sum(axis=(1, 2)).tolist() == [2, 3, 3, 4]  # bins [0, 25), [25, 50), [50, 75), [75, 100)
    np.testing.assert_array_equal(stack[0, :, 0], [[0, 1, 0, 0], [1, 0, 0, 0]])
    assert not to_cumulative_stack(np.empty(0, EVENT_DTYPE), (4, 1, 2), 3).any()


def test_cumulative_stack_differences_are_the_bins(shared):
    events = load_reference(RECORDINGS / "aedat4/davis346_aestream.aedat4.ref.npy")
    start, end = int(events["t"][0]), int(events["t"][-1]) + 1
    stack = to_cumulative_stack(events, (346, 260, 2), 6)
    bins = np.diff(stack, axis=0, prepend=0)
    edges = start + np.arange(7) * (end - start) // 6
    for k in range(6):
        inside = events[(events["t"] >= edges[k]) & (events["t"] < edges[k + 1])]
        np.testing.assert_array_equal(bins[k], histogram(inside, (346, 260, 2)))
    np.testing.assert_array_equal(ToCumulativeStack((346, 260, 2), 6)(events), stack)


def test_stereospike_histogram_counts_the_50_ms_before():
    events = make_events([0, 1, 1, 2], [0, 0, 0, 1], [49_999, 50_000, 60_000, 100_000], [1, 0, 0, 1])
    result = to_stereospike_histogram(events, (3, 2, 2), end_time=100_000)
    assert result.shape == (2, 2, 3) and result.dtype == np.float32
    np.testing.assert_array_equal(result, histogram(events[1:3], (3, 2, 2)))  # [50 000, 100 000)
    left, right = synthetic_events(5_000, seed=1), synthetic_events(5_000, seed=2)
    end = 4_000
    both = to_stereospike_input(left, right, (346, 260, 2), end)
    assert both.shape == (4, 260, 346)
    np.testing.assert_array_equal(both[:2], histogram(left[left["t"] < end], (346, 260, 2)))
    np.testing.assert_array_equal(both[2:], histogram(right[right["t"] < end], (346, 260, 2)))
    np.testing.assert_array_equal(ToStereoSpikeInput((346, 260, 2))(left, right, end), both)
