"""CropTime: tonic's interval (both ends kept), on sorted or unsorted events, stateless where tonic's is not."""

from __future__ import annotations

import numpy as np
import tonic.transforms

from evstream import EVENT_DTYPE
from evstream.ops import CropTime, crop_time
from tests.conftest import synthetic_events


def test_equals_tonic():
    events = synthetic_events(5000, seed=1, rate_hz=1e5)
    shuffled = events[np.random.default_rng(0).permutation(len(events))]
    t = events["t"]
    for low, high in ((0, None), (int(t[100]), int(t[4000])), (int(t[100]) + 0.5, float(t[4000])), (10**9, None)):
        for sample in (events, shuffled):
            expected = tonic.transforms.CropTime(low, high)(sample)
            np.testing.assert_array_equal(CropTime(low, high)(sample), expected)
            np.testing.assert_array_equal(crop_time(sample, low, high), expected)
    assert crop_time(events, int(t[100]), int(t[100]))["t"].tolist() == [t[100]] * int((t == t[100]).sum())
    assert crop_time(events[:0]).dtype == EVENT_DTYPE


def test_reused_instance_equals_fresh():
    # tonic's CropTime(max=None) stores the first sample's last time as its max and crops later samples there
    first, second = synthetic_events(1000, seed=2), synthetic_events(3000, seed=3)
    tonic_crop, ours = tonic.transforms.CropTime(), CropTime()
    tonic_crop(first), ours(first)
    assert len(tonic_crop(second)) < len(second)
    np.testing.assert_array_equal(ours(second), second)
