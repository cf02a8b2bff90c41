"""Every real recording decodes to exactly its peer reference; streaming equals the full decode."""

from __future__ import annotations

import numpy as np
import pytest

import evstream
from tests.conftest import RECORDINGS, VECTORS, load_reference

CASES = [
    ("aedat2/MovingDarkBox_dvs128.aedat", "aedat2", {"chip": "DVS128"}),
    ("aedat2/IMU_translBoxes_davis240c.aedat", "aedat2", {}),
    ("aedat4/davis346_aestream.aedat4", "aedat4", {}),
    ("aedat4/dvxplorer_tonic_sample.aedat4", "aedat4", {}),
    ("aedat4/davis346_test_data_trimmed.aedat4", "aedat4", {}),
    ("dat/ncars_sample_tonic.dat", "dat", {}),
    ("dat/imx636_faery_gen4.dat", "dat", {}),
    ("evt2/evt2_sample_gen3.raw", "evt2", {}),
    ("evt3/evt3_sample_gen41.raw", "evt3", {}),
    ("evt3/pedestrians_gen41.raw", "evt3", {}),
    ("atis_bin/nmnist_sample_tonic.bin", "atis_bin", {}),
    ("atis_bin/ncaltech101_Faces_easy_image_0001.bin", "atis_bin", {}),
]
# Files in dataset layouts built from real events (../shared/vectors), with their expected decodes.
VECTOR_CASES = [
    ("aedat31/dvs128_movingbox.aedat", "aedat31/expected.npy", "aedat31", {}),
    ("gen1/gen1_like/train/sample_td.dat", "gen1/expected_td.npy", "dat", {}),
    ("mvsec/mvsec_like_data.hdf5", "mvsec/expected_events.npy", "mvsec", {}),
    ("dsec/events_left/events.h5", "dsec/expected_abs.npy", "dsec", {}),
    ("dsec/events_left/events_plain.h5", "dsec/expected_abs.npy", "dsec", {}),
]
ALL = [(RECORDINGS / f, RECORDINGS / (f + ".ref.npy"), fmt, opts) for f, fmt, opts in CASES] + [
    (VECTORS / f, VECTORS / ref, fmt, opts) for f, ref, fmt, opts in VECTOR_CASES]
IDS = [str(case[0].relative_to(case[0].parents[1])) for case in ALL]


@pytest.fixture(scope="module", params=ALL, ids=IDS)
def case(request, shared):
    path, ref_path, fmt, opts = request.param
    return path, load_reference(ref_path), fmt, opts


def test_detects_format_and_decodes_exactly(case):
    path, ref, fmt, opts = case
    assert evstream.io.detect_format(path) == fmt
    events = evstream.read_events(path, **opts)
    assert events.dtype == evstream.EVENT_DTYPE
    np.testing.assert_array_equal(events, ref)


@pytest.mark.parametrize("n", [3, 977, 65536])
def test_chunks_concatenate_to_full_decode(case, n):
    path, ref, _, opts = case
    n = max(n, len(ref) // 20_000)  # bound the number of chunks (a Python loop per chunk)
    with evstream.open_events(path, **opts) as reader:
        chunks = list(reader.chunks(n))
    assert all(len(c) == n for c in chunks[:-1]) and 0 < len(chunks[-1]) <= n
    np.testing.assert_array_equal(np.concatenate(chunks), ref)


@pytest.mark.parametrize("window_us", [1, 997, 50_000])
def test_time_windows_concatenate_to_full_decode(case, window_us):
    path, ref, _, opts = case
    span = int(ref["t"][-1] - ref["t"][0])
    window_us = max(window_us, span // 20_000)  # bound the number of windows (a Python loop per window)
    with evstream.open_events(path, **opts) as reader:
        windows = list(reader.time_windows(window_us))
    assert len(windows) == span // window_us + 1
    t0 = int(ref["t"][0])
    for k in (0, len(windows) // 2, len(windows) - 1):
        w = windows[k]
        assert np.all((w["t"] >= t0 + k * window_us) & (w["t"] < t0 + (k + 1) * window_us))
    np.testing.assert_array_equal(np.concatenate(windows), ref)


def test_seek_lands_on_first_event_at_or_after(case):
    path, ref, _, opts = case
    t = ref["t"]
    with evstream.open_events(path, **opts) as reader:
        for target in (int(t[0]) - 5, int(t[len(t) // 3]), int(t[len(t) // 3]) + 1, int(t[-1]), int(t[-1]) + 1):
            reader.seek(target)
            first = np.searchsorted(t, target, side="left")
            np.testing.assert_array_equal(reader.read(), ref[first:])
        reader.seek(int(t[len(t) // 2]))
        windows = list(reader.time_windows(10_000))
        first = np.searchsorted(t, t[len(t) // 2], side="left")
        np.testing.assert_array_equal(np.concatenate(windows), ref[first:])
