"""Integrated frames against spikingjelly's integrate_events_by_fixed_frames_number / _by_fixed_duration.

``spikingjelly.datasets`` imports torchvision (not installed), so the four reference functions are
compiled here from spikingjelly's own source file (only those function definitions, unchanged)
and called as they are.
"""

from __future__ import annotations

import ast
import importlib.util
import math
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from evstream import EVENT_DTYPE, make_events
from evstream.ops import IntegrateByDuration, IntegrateByNumber, IntegrateByTime, integrate_by_duration, \
    integrate_by_number, integrate_by_time
from tests.conftest import RECORDINGS, load_reference, synthetic_events

REFERENCE_FUNCTIONS = ("integrate_events_segment_to_frame", "cal_fixed_frames_number_segment_index",
                       "integrate_events_by_fixed_frames_number", "integrate_events_by_fixed_duration")


@pytest.fixture(scope="module")
def spikingjelly():
    """spikingjelly.datasets.utils' integrate functions, compiled from its source without its imports."""
    spec = importlib.util.find_spec("spikingjelly")
    if spec is None:
        pytest.skip("spikingjelly is not installed")
    source_path = Path(spec.origin).parent / "datasets" / "utils.py"
    tree = ast.parse(source_path.read_text())
    tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in REFERENCE_FUNCTIONS]
    namespace = {"np": np, "math": math, "Optional": Optional}
    exec(compile(tree, str(source_path), "exec"), namespace)
    return namespace


def as_dict(events):
    return {key: np.ascontiguousarray(events[key]) for key in "txyp"}


@pytest.mark.parametrize("frames_num", [1, 4, 16])
@pytest.mark.parametrize("seed", [0, 1])
def test_split_by_number_and_time_equal_spikingjelly(spikingjelly, frames_num, seed):
    events = synthetic_events(20_003, seed=seed)
    reference = spikingjelly["integrate_events_by_fixed_frames_number"]
    for ours, split_by in ((integrate_by_number, "number"), (integrate_by_time, "time")):
        result = ours(events, (346, 260, 2), frames_num)
        expected = reference(as_dict(events), split_by, frames_num, 260, 346)
        assert result.dtype == expected.dtype == np.float64 and result.shape == expected.shape
        np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("duration", [997, 5_000, 20_003])
def test_fixed_duration_equals_spikingjelly(spikingjelly, duration):
    events = synthetic_events(20_000, seed=2)
    expected = spikingjelly["integrate_events_by_fixed_duration"](as_dict(events), duration, 260, 346)
    np.testing.assert_array_equal(integrate_by_duration(events, (346, 260, 2), duration), expected)


def test_duration_dividing_the_span_puts_the_last_event_in_the_last_frame(spikingjelly):
    events = make_events([0, 1, 2, 3], [0, 0, 0, 0], [100, 150, 200, 300], [1, 0, 1, 1])
    expected = spikingjelly["integrate_events_by_fixed_duration"](as_dict(events), 100, 1, 4)
    result = integrate_by_duration(events, (4, 1, 2), 100)
    np.testing.assert_array_equal(result, expected)
    assert result.shape[0] == 2 and result[1].sum() == 2


@pytest.mark.parametrize("name, sensor_size", [("aedat4/davis346_aestream.aedat4.ref.npy", (346, 260, 2)),
                                               ("evt3/evt3_sample_gen41.raw.ref.npy", (1280, 720, 2))])
def test_recordings_equal_spikingjelly(shared, spikingjelly, name, sensor_size):
    events = load_reference(RECORDINGS / name)
    width, height, _ = sensor_size
    by_frames = spikingjelly["integrate_events_by_fixed_frames_number"]
    np.testing.assert_array_equal(integrate_by_time(events, sensor_size, 6),
                                  by_frames(as_dict(events), "time", 6, height, width))
    np.testing.assert_array_equal(integrate_by_number(events, sensor_size, 6),
                                  by_frames(as_dict(events), "number", 6, height, width))
    span = int(events["t"][-1] - events["t"][0])
    np.testing.assert_array_equal(
        integrate_by_duration(events, sensor_size, span // 5 + 1),
        spikingjelly["integrate_events_by_fixed_duration"](as_dict(events), span // 5 + 1, height, width))


def test_where_spikingjelly_fails():
    """An empty time slice (spikingjelly raises IndexError) gives an empty frame; one timestamp gives one frame."""
    gap = make_events([0, 1, 2], [0, 0, 0], [0, 1, 100], [1, 1, 0])
    frames = integrate_by_time(gap, (3, 1, 2), 4)
    assert frames[:, :, 0].sum(axis=(1, 2)).tolist() == [2, 0, 0, 1]
    same = make_events([0, 1], [0, 0], [7, 7], [1, 0])
    assert integrate_by_duration(same, (2, 1, 2), 10).shape == (1, 2, 1, 2)
    assert integrate_by_time(same, (2, 1, 2), 3)[-1].sum() == 2
    empty = np.empty(0, EVENT_DTYPE)
    assert integrate_by_number(empty, (2, 1, 2), 3).shape == (3, 2, 1, 2)
    assert integrate_by_duration(empty, (2, 1, 2), 10).shape == (0, 2, 1, 2)


def test_transforms():
    events = synthetic_events(3_000, seed=5)
    sensor_size = (346, 260, 2)
    np.testing.assert_array_equal(IntegrateByNumber(sensor_size, 3)(events),
                                  integrate_by_number(events, sensor_size, 3))
    np.testing.assert_array_equal(IntegrateByTime(sensor_size, 3)(events), integrate_by_time(events, sensor_size, 3))
    np.testing.assert_array_equal(IntegrateByDuration((346, 260, 2), 500)(events),
                                  integrate_by_duration(events, (346, 260, 2), 500))
