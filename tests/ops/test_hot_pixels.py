"""Hot-pixel detection (robust statistics, tonic's rate rule) and removal; the stream filter chunked == whole."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.functional
from hypothesis import given, settings
from hypothesis import strategies as st

from evstream import EVENT_DTYPE, make_events
from evstream.ops.hot_pixels import (HotPixelFilter, drop_pixels, find_hot_pixels, hot_pixel_filter, hot_pixel_mask,
                                     pixel_counts)
from tests.conftest import RECORDINGS, load_reference, synthetic_events
from tests.ops.test_filters import cuts_for, real, split_at

HOT = [(3, 4), (100, 200), (345, 259), (0, 0), (17, 99)]


def with_hot_pixels(events: np.ndarray, rng: np.random.Generator, per_pixel: int) -> np.ndarray:
    """The events plus ``per_pixel`` events at each HOT pixel, spread over the same time span, time-sorted."""
    t = rng.integers(events["t"][0], events["t"][-1], per_pixel * len(HOT))
    x, y = np.repeat(np.array(HOT).T, per_pixel, axis=1)
    hot = make_events(x, y, t, rng.integers(0, 2, len(t)))
    merged = np.concatenate([events, hot])
    return merged[np.argsort(merged["t"], kind="stable")]


def test_pixel_counts_equal_histogram():
    events = synthetic_events(50_000, seed=1)
    expected = np.histogram2d(events["y"], events["x"], bins=(np.arange(261), np.arange(347)))[0]
    np.testing.assert_array_equal(pixel_counts(events, (346, 260, 2)), expected)


def test_finds_exactly_the_injected_hot_pixels(real_or_random):
    rng = np.random.default_rng(0)
    base = synthetic_events(200_000, seed=2) if real_or_random == "random" else real("davis346")[0]
    events = with_hot_pixels(base, rng, per_pixel=300)
    mask = find_hot_pixels(events, (346, 260, 2))
    assert sorted(zip(*np.nonzero(mask.T), strict=True)) == sorted(HOT)


def test_rate_rule_equals_tonic():
    events = with_hot_pixels(synthetic_events(100_000, seed=3), np.random.default_rng(1), per_pixel=60)
    for frequency in (100, 400, 1000):
        expected = tonic.functional.identify_hot_pixel(events, frequency)
        found = np.argwhere(find_hot_pixels(events, (346, 260, 2), hot_pixel_frequency=frequency).T)
        np.testing.assert_array_equal(found, expected)


def test_drop_pixels_equals_numpy_twin():
    events = synthetic_events(50_000, seed=4)
    mask = np.random.default_rng(2).random((260, 346)) < 0.1
    np.testing.assert_array_equal(drop_pixels(events, mask), events[~mask[events["y"], events["x"]]])
    np.testing.assert_array_equal(drop_pixels(events[::3], mask), drop_pixels(events[::3].copy(), mask))


def test_filter_learns_then_drops():
    events = with_hot_pixels(synthetic_events(200_000, seed=5), np.random.default_rng(3), per_pixel=400)
    learn_us = 50_000
    result = hot_pixel_filter(events, (346, 260, 2), learn_us=learn_us)
    learning = events["t"] < events["t"][0] + learn_us
    mask = hot_pixel_mask(pixel_counts(events[learning], (346, 260, 2)))
    assert sorted(zip(*np.nonzero(mask.T), strict=True)) == sorted(HOT)
    np.testing.assert_array_equal(result, np.concatenate([events[learning], drop_pixels(events[~learning], mask)]))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_chunked_equals_whole(real_or_random, data):
    base = real("davis346")[0][:30_000] if real_or_random == "real" else synthetic_events(30_000, seed=6, rate_hz=1e6)
    events = with_hot_pixels(base, np.random.default_rng(4), per_pixel=200)
    whole = hot_pixel_filter(events, (346, 260, 2), learn_us=10_000)
    f = HotPixelFilter((346, 260, 2), learn_us=10_000).stream()
    chunked = np.concatenate([f(batch) for batch in split_at(events, data.draw(cuts_for(len(events))))])
    np.testing.assert_array_equal(chunked, whole)
    assert f.mask is not None
    if real_or_random == "real":  # 10 ms of a real scene is enough to find them all
        assert f.mask.sum() == len(HOT)


def test_given_mask_empty_and_bad_input():
    mask = np.zeros((260, 346), dtype=bool)
    mask[4, 3] = True
    events = make_events([3, 4], [4, 4], [1, 2], [0, 1])
    np.testing.assert_array_equal(HotPixelFilter((346, 260, 2), mask=mask)(events), events[1:])
    empty = np.empty(0, dtype=EVENT_DTYPE)
    assert hot_pixel_filter(empty, (346, 260, 2)).dtype == EVENT_DTYPE
    assert not find_hot_pixels(empty, (346, 260, 2)).any()
    with pytest.raises(ValueError, match="outside"):
        pixel_counts(make_events([346], [0], [0], [0]), (346, 260, 2))
    with pytest.raises(ValueError, match="shape"):
        HotPixelFilter((346, 260, 2), mask=mask.T)


def test_real_recordings(shared):
    # the Gen3 sample has six pixels firing alone at 5-66 kHz; the DAVIS346 scene has none
    events = load_reference(RECORDINGS / "evt2/evt2_sample_gen3.raw.ref.npy")
    found = sorted(zip(*np.nonzero(find_hot_pixels(events, (640, 480, 2)).T), strict=True))
    assert found == [(99, 37), (123, 438), (285, 389), (348, 31), (482, 272), (565, 296)]
    assert not find_hot_pixels(*real("davis346")).any()
