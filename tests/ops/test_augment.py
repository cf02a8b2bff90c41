"""Augmentations: ours draw only from the rng given (tonic's own on our arrays: test_tonic_compat.py)."""

from __future__ import annotations

import numpy as np
import pytest

from evstream.ops.augment import (RandomCrop, RandomFlipLR, RandomFlipUD, RandomShift, RandomTimeCrop, random_crop,
                                  random_flip_lr, random_shift, random_time_crop)
from evstream.ops.geometry import crop, flip_lr, translate
from tests.conftest import synthetic_events
from tests.ops.test_filters import real

SIZE = (346, 260, 2)


def test_same_rng_same_draws_and_no_global_state():
    events = synthetic_events(5000, seed=1)
    transforms = [RandomFlipLR(SIZE), RandomFlipUD(SIZE), RandomShift(SIZE, (30, 20)), RandomCrop(SIZE, (64, 64)),
                  RandomTimeCrop(1000)]
    state = np.random.get_state()[1].copy()
    for transform in transforms:
        first = [transform(events, np.random.default_rng(s)) for s in range(8)]
        again = [transform(events, np.random.default_rng(s)) for s in range(8)]
        for a, b in zip(first, again, strict=True):
            np.testing.assert_array_equal(a, b)
        assert len({len(a) for a in first} | {int(a["x"].sum()) for a in first}) > 1  # the draws vary with the rng
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_flip_follows_the_rng_draw():
    events = synthetic_events(1000, seed=2)
    rng, twin = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(10):
        expected = flip_lr(events, SIZE) if twin.random() < 0.5 else events
        np.testing.assert_array_equal(random_flip_lr(events, SIZE, rng), expected)


def test_shift_and_crop_equal_their_draws():
    events = synthetic_events(20_000, seed=4)
    rng, twin = np.random.default_rng(5), np.random.default_rng(5)
    dx, dy = twin.integers(-30, 30, endpoint=True), twin.integers(-20, 20, endpoint=True)
    np.testing.assert_array_equal(random_shift(events, SIZE, (30, 20), rng), translate(events, SIZE, dx, dy))
    x0, y0 = twin.integers(0, 346 - 64, endpoint=True), twin.integers(0, 260 - 48, endpoint=True)
    result = random_crop(events, SIZE, (64, 48), rng)
    np.testing.assert_array_equal(result, crop(events, (x0, y0, 64, 48)))
    assert result["x"].max() < 64 and result["y"].max() < 48
    with pytest.raises(ValueError):
        random_crop(events, SIZE, (400, 10), rng)


def test_time_crop_is_a_window_of_the_duration(shared):
    events = real("ncars")[0]
    rng = np.random.default_rng(6)
    starts = []
    for _ in range(20):
        clip = random_time_crop(events, 30_000, rng)
        assert np.shares_memory(clip, events) and clip["t"][-1] - clip["t"][0] < 30_000
        starts.append(int(clip["t"][0]))
    assert len(set(starts)) > 10
    np.testing.assert_array_equal(random_time_crop(events, 10**9, rng), events)
    assert random_time_crop(events[:0], 10, rng).shape == (0,)
