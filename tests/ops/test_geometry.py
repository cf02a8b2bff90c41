"""Crop, translate, flips, downsampling and polarity merge against tonic and plain-numpy twins."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.transforms

from evstream import EVENT_DTYPE, make_events
from evstream.ops.geometry import (CenterCrop, Crop, Downsample, FlipLR, FlipUD, MergePolarities, center_crop, crop,
                                   downsample, flip_lr, flip_ud, merge_polarities, translate)
from tests.conftest import synthetic_events
from tests.ops.test_filters import real

SIZE = (346, 260, 2)


@pytest.fixture(scope="module")
def events(shared):
    return real("davis346")[0]


def test_crop_equals_numpy_twin(events):
    x, y, w, h = 100, 40, 64, 48
    inside = (events["x"] >= x) & (events["x"] < x + w) & (events["y"] >= y) & (events["y"] < y + h)
    expected = events[inside].copy()
    expected["x"] -= x
    expected["y"] -= y
    result = crop(events, (x, y, w, h))
    assert 0 < len(result) < len(events)
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(Crop((x, y, w, h))(events), expected)


@pytest.mark.parametrize("size", [(200, 100), 128, (346, 260)])
def test_center_crop_equals_tonic(events, size):
    expected = tonic.transforms.CenterCrop(SIZE, size)(events)
    np.testing.assert_array_equal(center_crop(events, SIZE, size), expected)
    np.testing.assert_array_equal(CenterCrop(SIZE, size)(events), expected)


def test_center_crop_pads_a_larger_size(events):
    # tonic means to pad here too, but its uint16 subtraction overflows on numpy 2
    result = center_crop(events, SIZE, (400, 300))
    np.testing.assert_array_equal(result, translate(events, (400, 300, 2), 27, 20))


@pytest.mark.parametrize("dx, dy", [(0, 0), (5, -7), (-300, 200), (346, 0)])
def test_translate_equals_numpy_twin(events, dx, dy):
    x, y = events["x"].astype(int) + dx, events["y"].astype(int) + dy
    inside = (x >= 0) & (x < SIZE[0]) & (y >= 0) & (y < SIZE[1])
    expected = events[inside].copy()
    expected["x"], expected["y"] = x[inside], y[inside]
    np.testing.assert_array_equal(translate(events, SIZE, dx, dy), expected)


def test_flips_equal_tonic(events):
    np.testing.assert_array_equal(flip_lr(events, SIZE), tonic.transforms.RandomFlipLR(SIZE, p=1.0)(events))
    np.testing.assert_array_equal(flip_ud(events, SIZE), tonic.transforms.RandomFlipUD(SIZE, p=1.0)(events))
    np.testing.assert_array_equal(FlipLR(SIZE)(FlipLR(SIZE)(events)), events)
    np.testing.assert_array_equal(FlipUD(SIZE)(FlipUD(SIZE)(events)), events)
    with pytest.raises(ValueError, match="outside"):
        flip_lr(events, (300, 260, 2))


@pytest.mark.parametrize("factor", [2, 4])
def test_integer_downsample_equals_tonic(events, factor):
    expected = tonic.transforms.Downsample(spatial_factor=1 / factor)(events)
    np.testing.assert_array_equal(downsample(events, factor), expected)


@pytest.mark.parametrize("kwargs", [{"spatial_factor": 0.5}, {"spatial_factor": 1 / 3}, {"spatial_factor": 0.37},
                                    {"spatial_factor": (0.25, 0.7)}, {"sensor_size": SIZE, "target_size": (100, 64)},
                                    {"time_factor": 0.001, "spatial_factor": 0.5}, {"time_factor": 1.7}, {}])
def test_downsample_with_tonics_arguments_equals_tonic(events, kwargs):
    np.testing.assert_array_equal(Downsample(**kwargs)(events), tonic.transforms.Downsample(**kwargs)(events))


def test_tonics_float_factor_is_not_integer_division():
    # 49 * (1 / 49) is 0.999... in float64: tonic's Downsample(spatial_factor=1 / 49) maps x = 49 to 0, not 1
    events = make_events([48, 49, 98, 99], [0, 0, 0, 0], [1, 2, 3, 4], [0, 1, 0, 1])
    np.testing.assert_array_equal(Downsample(spatial_factor=1 / 49)(events)["x"], [0, 0, 1, 2])
    np.testing.assert_array_equal(Downsample(factor=49)(events)["x"], [0, 1, 2, 2])
    np.testing.assert_array_equal(Downsample(spatial_factor=1 / 49)(events),
                                  tonic.transforms.Downsample(spatial_factor=1 / 49)(events))


def test_downsample_integer_division(events):
    result = Downsample(factor=(3, 5))(events)
    np.testing.assert_array_equal(result["x"], events["x"] // 3)
    np.testing.assert_array_equal(result["y"], events["y"] // 5)
    np.testing.assert_array_equal(result[["t", "p"]], events[["t", "p"]])
    with pytest.raises(ValueError, match="factor must be >= 1"):
        downsample(events, 0)
    with pytest.raises(ValueError, match="one of factor"):
        downsample(events, 2, spatial_factor=0.5)
    with pytest.raises(ValueError, match=r"spatial_factor must be in \(0, 1\]"):
        Downsample(spatial_factor=2)(events)
    with pytest.raises(ValueError, match="target_size needs sensor_size"):
        Downsample(target_size=(10, 10))(events)


def test_merge_polarities_equals_tonic(events):
    expected = tonic.transforms.MergePolarities()(events)
    np.testing.assert_array_equal(merge_polarities(events), expected)
    np.testing.assert_array_equal(MergePolarities()(events), expected)


@pytest.mark.parametrize("op", [lambda e: crop(e, (1, 1, 5, 5)), lambda e: center_crop(e, SIZE, 10),
                                lambda e: translate(e, SIZE, 3, 3), lambda e: flip_lr(e, SIZE),
                                lambda e: flip_ud(e, SIZE), lambda e: downsample(e, 2), merge_polarities])
def test_empty_batches_chunks_and_input_untouched(op):
    empty = op(np.empty(0, dtype=EVENT_DTYPE))
    assert empty.dtype == EVENT_DTYPE and empty.shape == (0,)
    events = synthetic_events(5000, seed=9)
    before = events.copy()
    whole = op(events)
    np.testing.assert_array_equal(np.concatenate([op(b) for b in np.split(events, [7, 1000, 1000, 4321])]), whole)
    np.testing.assert_array_equal(op(events[::2]), op(events[::2].copy()))
    np.testing.assert_array_equal(events, before)


@pytest.mark.parametrize("op", [lambda e, out: crop(e, (100, 40, 64, 48), out=out),
                                lambda e, out: translate(e, SIZE, -5, 7, out=out),
                                lambda e, out: flip_ud(e, SIZE, out=out), lambda e, out: downsample(e, (3, 5), out=out),
                                lambda e, out: merge_polarities(e, out=out)])
def test_reused_out_buffer(events, op):
    out = np.empty(len(events) + 3, EVENT_DTYPE)
    result = op(events, out)
    assert result.base is out
    np.testing.assert_array_equal(result, op(events, None))
    with pytest.raises(ValueError, match="at least"):
        op(events, out[:10])


def test_downsample_large_factors():
    events = synthetic_events(2000, seed=5)
    events["x"][:3] = [65535, 65534, 0]
    for factor in (7, 65535, 65536, 1 << 20):
        np.testing.assert_array_equal(downsample(events, factor)["x"], events["x"].astype(np.int64) // factor)
