"""TA-SNN frame stacks and clip samplers: hand cases and a numpy twin of TA-SNN's binning."""

from __future__ import annotations

import numpy as np
import pytest

from evstream import EVENT_DTYPE, make_events
from evstream.ops import ToTASNNClips, ToTASNNFrames, tasnn_clip_starts, tasnn_random_start, to_tasnn_clips, \
    to_tasnn_frames
from tests.conftest import synthetic_events


def twin(events, sensor_size, n_frames, dt, ds, start):
    """Plain numpy: frame k counts events in [start + k dt, start + (k + 1) dt) at (p, y // ds, x // ds)."""
    width, height, _ = sensor_size
    frames = np.zeros((n_frames, 2, -(-height // ds), -(-width // ds)), np.float32)
    k = (events["t"] - start) // dt
    keep = (k >= 0) & (k < n_frames)
    np.add.at(frames, (k[keep], events["p"][keep], events["y"][keep] // ds, events["x"][keep] // ds), 1)
    return frames


@pytest.mark.parametrize("ds", [1, 4, 5])
def test_stack_equals_numpy_twin(ds):
    events = synthetic_events(30_000, seed=ds)
    start = int(events["t"][1000])
    result = to_tasnn_frames(events, (346, 260, 2), 30, 500, ds, start_time=start)
    assert result.shape == (30, 2, -(-260 // ds), -(-346 // ds)) and result.dtype == np.float32
    np.testing.assert_array_equal(result, twin(events, (346, 260, 2), 30, 500, ds, start))
    np.testing.assert_array_equal(to_tasnn_frames(events, (346, 260, 2), 30, 500, ds),
                                  twin(events, (346, 260, 2), 30, 500, ds, events["t"][0]))


def test_hand_case_binarize_and_normalize():
    events = make_events([0, 1, 1, 7, 7, 7], [0, 0, 0, 3, 3, 3], [0, 5, 6, 12, 13, 40], [1, 0, 0, 1, 1, 1])
    counts = to_tasnn_frames(events, (8, 4, 2), 3, 10, ds=4)
    assert counts.shape == (3, 2, 1, 2)
    np.testing.assert_array_equal(counts[0], [[[2, 0]], [[1, 0]]])  # (1, 0) twice OFF, (0, 0) once ON
    np.testing.assert_array_equal(counts[1], [[[0, 0]], [[0, 2]]])  # x 7 // 4 = 1
    assert counts[2].sum() == 0  # t = 40 is past the 30 us stack
    np.testing.assert_array_equal(to_tasnn_frames(events, (8, 4, 2), 3, 10, ds=4, binarize=True), np.minimum(counts, 1))
    np.testing.assert_array_equal(to_tasnn_frames(events, (8, 4, 2), 3, 10, ds=4, normalize=True), counts / 2)
    empty = to_tasnn_frames(np.empty(0, EVENT_DTYPE), (8, 4, 2), 3, 10, normalize=True)
    assert empty.shape == (3, 2, 4, 8) and not empty.any()
    with pytest.raises(ValueError, match="outside"):
        to_tasnn_frames(events, (7, 4, 2), 3, 10, ds=4)


def test_clip_starts_match_tasnn_rule():
    # clips longer than the recording overlap by (3 * 500 - 1000) // 3 = 166; the last is moved back to end at 1000
    np.testing.assert_array_equal(tasnn_clip_starts(0, 1000, 3, 500), [0, 334, 500])
    # shorter clips are spread with a gap of (10000 - 3000) // 3 = 2333
    np.testing.assert_array_equal(tasnn_clip_starts(100, 10_100, 3, 1000), [100, 3433, 6766])
    # a window longer than the recording starts before it, as in TA-SNN
    np.testing.assert_array_equal(tasnn_clip_starts(0, 100, 2, 300), [-200, -200])
    starts = tasnn_clip_starts(0, 1_000_000, 10, 60_000)
    assert (starts >= 0).all() and (starts + 60_000 <= 1_000_000).all() and (np.diff(starts) > 0).all()


def test_random_start_uses_the_generator():
    rng = np.random.default_rng(0)
    draws = [tasnn_random_start(1000, 10_000, 3000, rng) for _ in range(200)]
    assert min(draws) >= 1000 and max(draws) < 7000
    assert draws == [tasnn_random_start(1000, 10_000, 3000, g) for g in [np.random.default_rng(0)] for _ in range(200)]
    assert tasnn_random_start(1000, 2000, 3000, rng) == 1000


def test_clips_are_stacks_at_the_clip_starts():
    events = synthetic_events(20_000, seed=9)
    clips = to_tasnn_clips(events, (346, 260, 2), 8, 1000, n_clips=4, ds=2)
    starts = tasnn_clip_starts(events["t"][0], events["t"][-1], 4, 8000)
    assert clips.shape == (4, 8, 2, 130, 173)
    for clip, start in zip(clips, starts, strict=True):
        np.testing.assert_array_equal(clip, twin(events, (346, 260, 2), 8, 1000, 2, start))
    np.testing.assert_array_equal(ToTASNNClips((346, 260, 2), 8, 1000, 4, 2)(events), clips)
    np.testing.assert_array_equal(ToTASNNFrames((346, 260, 2), 8, 1000, 2)(events),
                                  to_tasnn_frames(events, (346, 260, 2), 8, 1000, 2))
