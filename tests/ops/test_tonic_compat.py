"""Every tonic transform on evstream arrays against tonic's own dtypes: which give tonic's results unchanged, which
need a cast or evstream's own transform. The README's table is checked against this one."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import tonic.io
import tonic.transforms as T
import torch

from evstream import EVENT_DTYPE
from evstream.ops import CenterCrop, ToAveragedTimesurface
from tests.conftest import RECORDINGS, load_reference

SIZE = (34, 34, 2)
TONIC_STRUCT = tonic.io.events_struct
"""tonic's event dtype: x, y int16, t int64, p bool."""
TONIC_INT64 = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
"""The dtype tonic's N-MNIST reader gives (integer polarity)."""
UNCHANGED = "unchanged"
"""evstream arrays give tonic's results on both of its dtypes."""
INTEGER_POLARITY = "unchanged (integer polarity)"
"""evstream arrays give tonic's results on integer-polarity events; on tonic's bool ``p`` tonic's own code
differs (it writes -1 or a float into a bool)."""
CAST = "cast"
"""evstream arrays give other results: cast first, or use evstream's own transform."""
LABELS = "labels"
"""A target transform: it never sees events."""

CASES = {  # tonic transform: [(instance, the verdict on evstream arrays), ...]
    "CenterCrop": [(T.CenterCrop(SIZE, 20), UNCHANGED), (T.CenterCrop(SIZE, (40, 30)), CAST)],
    "Compose": [(T.Compose([T.Denoise(3000), T.ToFrame(SIZE, n_time_bins=4)]), UNCHANGED)],
    "CropTime": [(T.CropTime(50_000, 200_000), UNCHANGED)],
    "Decimation": [(T.Decimation(3), UNCHANGED)],
    "Denoise": [(T.Denoise(3000), UNCHANGED)],
    "Downsample": [(T.Downsample(spatial_factor=0.5), UNCHANGED),
                   (T.Downsample(time_factor=0.001, spatial_factor=(1 / 3, 0.25)), UNCHANGED),
                   (T.Downsample(sensor_size=SIZE, target_size=(17, 10)), UNCHANGED)],
    "DropEvent": [(T.DropEvent(0.3), UNCHANGED), (T.DropEvent((0.1, 0.6)), UNCHANGED)],
    "DropEventByArea": [(T.DropEventByArea(SIZE, 0.3), UNCHANGED)],
    "DropEventByTime": [(T.DropEventByTime(0.3), UNCHANGED)],
    "DropPixel": [(T.DropPixel(coordinates=[(1, 1), (15, 9), (16, 16)]), UNCHANGED),
                  (T.DropPixel(hot_pixel_frequency=40), UNCHANGED)],
    "EventDownsampling": [(T.EventDownsampling(SIZE, (17, 17), "integrator", dt=1.0, noise_threshold=2), UNCHANGED),
                          (T.EventDownsampling(SIZE, (17, 17), "differentiator", dt=1.0, noise_threshold=2,
                                               differentiator_time_bins=2), UNCHANGED)],
    "EventDrop": [(T.EventDrop(SIZE), UNCHANGED)],
    "MergePolarities": [(T.MergePolarities(), UNCHANGED)],
    "NumpyAsType": [(T.NumpyAsType(int), UNCHANGED), (T.NumpyAsType(np.float32), UNCHANGED)],
    "RandomCrop": [(T.RandomCrop(SIZE, (20, 20)), UNCHANGED)],
    "RandomDropPixel": [(T.RandomDropPixel(0.1, SIZE), UNCHANGED)],
    "RandomFlipLR": [(T.RandomFlipLR(SIZE, 1.0), UNCHANGED)],
    "RandomFlipPolarity": [(T.RandomFlipPolarity(1.0), UNCHANGED)],
    "RandomFlipUD": [(T.RandomFlipUD(SIZE, 1.0), UNCHANGED)],
    "RandomTimeReversal": [(T.RandomTimeReversal(1.0), UNCHANGED),
                           (T.RandomTimeReversal(1.0, flip_polarities=False), UNCHANGED)],
    "RefractoryPeriod": [(T.RefractoryPeriod(1000), UNCHANGED), (T.RefractoryPeriod((500, 5000)), UNCHANGED)],
    "Repeat": [(T.Repeat(3), LABELS)],
    "SpatialJitter": [(T.SpatialJitter(SIZE, 1.0, 1.0), CAST),
                      (T.SpatialJitter(SIZE, 1.0, 1.0, clip_outliers=True), UNCHANGED)],
    "TimeAlignment": [(T.TimeAlignment(), UNCHANGED)],
    "TimeJitter": [(T.TimeJitter(10), UNCHANGED), (T.TimeJitter(100, clip_negative=False, sort_timestamps=True),
                                                   UNCHANGED)],
    "TimeSkew": [(T.TimeSkew(1.1, 10), UNCHANGED), (T.TimeSkew((0.8, 1.2), (0, 150)), UNCHANGED)],
    "ToAveragedTimesurface": [(T.ToAveragedTimesurface(SIZE), CAST),
                              (T.ToAveragedTimesurface(SIZE, 3, 5, 2e4, 5e3, "lin"), CAST)],
    "ToBinaRep": [(T.Compose([T.ToFrame(SIZE, n_time_bins=8), T.ToBinaRep(n_frames=2, n_bits=4)]), UNCHANGED)],
    "ToFrame": [(T.ToFrame(SIZE, time_window=20_000), UNCHANGED),
                (T.ToFrame(SIZE, event_count=500, overlap=100), UNCHANGED),
                (T.ToFrame(None, n_event_bins=5), UNCHANGED)],
    "ToImage": [(T.ToImage(SIZE), UNCHANGED)],
    "ToOneHotEncoding": [(T.ToOneHotEncoding(10), LABELS)],
    "ToSparseTensor": [(T.ToSparseTensor(SIZE, n_time_bins=5), UNCHANGED)],
    "ToTimesurface": [(T.ToTimesurface(SIZE, 10_000, 5000), UNCHANGED)],
    "ToVoxelGrid": [(T.ToVoxelGrid(SIZE, 5), INTEGER_POLARITY)],
    "UniformNoise": [(T.UniformNoise(SIZE, 300), INTEGER_POLARITY),
                     (T.UniformNoise(SIZE, (100, 500)), INTEGER_POLARITY)],
}
FIXES = {  # for a CAST instance, what gives tonic's results on evstream arrays: evstream's own transform, or a cast
    "CenterCrop": lambda t: CenterCrop(t.sensor_size, t.size),  # tonic: OverflowError (x -= -3 in uint16)
    "SpatialJitter": lambda t: lambda events: t(events.astype(TONIC_STRUCT)),  # x < 0 wraps in uint16
    "ToAveragedTimesurface": lambda t: ToAveragedTimesurface(t.sensor_size, t.surface_size, t.cell_size,
                                                             t.time_window, t.tau, t.decay),  # uint16 dx wraps
}


@pytest.fixture(scope="module")
def events(shared):
    return load_reference(RECORDINGS / "atis_bin/nmnist_sample_tonic.bin.ref.npy")


def normalised(result):
    """A result as plain arrays: a dict of int64 columns for events, dense arrays for frames and tensors."""
    if isinstance(result, torch.Tensor):
        result = result.to_dense().numpy()
    if result.dtype.names:
        return {name: result[name].astype(np.int64) for name in result.dtype.names}
    return result


def same(a, b) -> bool:
    a, b = normalised(a), normalised(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    return a.shape == b.shape and np.array_equal(a, b)


def run(transform, events: np.ndarray, seed: int):
    """The transform on a copy, with numpy's global generator (the one tonic draws from) seeded; an error
    is returned as its type."""
    np.random.seed(seed)
    try:
        return transform(events.copy())
    except (OverflowError, ValueError, IndexError) as error:
        return type(error)


def verdicts(name: str) -> set[str]:
    return {verdict for _, verdict in CASES[name]}


def test_every_tonic_transform_is_listed():
    defined = {name for name, cls in inspect.getmembers(T, inspect.isclass) if cls.__module__ == T.__name__}
    assert defined == set(CASES)
    assert {name for name in CASES if CAST in verdicts(name)} == set(FIXES)


@pytest.mark.parametrize("name", [name for name in CASES if LABELS not in verdicts(name)])
def test_tonic_transform_on_evstream_arrays(events, name):
    before = events.copy()
    for k, (transform, verdict) in enumerate(CASES[name]):
        ours = run(transform, events, k)
        on_struct = run(transform, events.astype(TONIC_STRUCT), k)
        on_int64 = run(transform, events.astype(TONIC_INT64), k)
        np.testing.assert_array_equal(events, before)  # tonic never writes into its input
        assert not isinstance(on_struct, type), f"{transform} fails on tonic's own events"
        if verdict == UNCHANGED:
            assert same(ours, on_struct) and same(ours, on_int64), f"{transform} differs from tonic"
            if isinstance(ours, np.ndarray) and ours.dtype.names and "x" in ours.dtype.names and len(ours.dtype) == 4:
                assert ours.dtype in (EVENT_DTYPE, on_struct.dtype)  # events stay ours (or tonic's new array)
        elif verdict == INTEGER_POLARITY:
            assert same(ours, on_int64) and not same(ours, on_struct), f"{transform}"
        else:
            assert isinstance(ours, type) or not same(ours, on_struct), f"{transform} works unchanged now: update CASES"
            assert same(run(FIXES[name](transform), events, k), on_struct), f"the fix for {transform}"


def test_label_transforms_never_see_events():
    for name in [name for name in CASES if LABELS in verdicts(name)]:
        (transform, _), = CASES[name]
        assert not any(p in inspect.signature(transform.__call__).parameters for p in ("events", "event_frames"))


def test_readme_lists_the_same_verdicts():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### tonic's transforms on evstream arrays"):]
    section = section[:section.index("\n### ", 1)]
    items = ["- " + item.replace("\n  ", " ") for item in section.split("\n- ")[1:]]
    for verdict, start in ((UNCHANGED, "- **Work unchanged**"), (INTEGER_POLARITY, "- **Work unchanged, integer"),
                           (CAST, "- **Need a cast"), (LABELS, "- **Labels, not events**")):
        item = next(item for item in items if item.startswith(start))
        listed = {name for name in re.findall(r"`(\w+)`", item.split(":", 1)[1]) if name in CASES}
        assert listed == {name for name in CASES if verdict in verdicts(name)}, verdict
