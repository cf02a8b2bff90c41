"""Fuzzing every reader with real files cut short, flipped bytes, hostile header numbers, and chunks
duplicated, removed or zero-filled.

Whatever the damage, a reader returns events (warning with TruncatedFileWarning when the file
is cut, CorruptDataWarning when part of it looks corrupt, ChipInferredWarning when a damaged
header no longer names its chip) or raises EventFileError; it never crashes, hangs or returns
events outside the sensor.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import evstream
from evstream.io import ChipInferredWarning, CorruptDataWarning
from tests.conftest import RECORDINGS, VECTORS

# (file, bytes kept from its start: real files cut to keep each example fast, options)
FILES = [
    (RECORDINGS / "aedat2/MovingDarkBox_dvs128.aedat", 40_000, {"chip": "DVS128"}),
    (RECORDINGS / "aedat2/IMU_translBoxes_davis240c.aedat", 200_000, {}),
    (VECTORS / "aedat31/dvs128_movingbox.aedat", 60_000, {}),
    (RECORDINGS / "aedat4/davis346_test_data_trimmed.aedat4", None, {}),
    (RECORDINGS / "dat/ncars_sample_tonic.dat", None, {}),
    (RECORDINGS / "evt2/evt2_sample_gen3.raw", 40_000, {}),
    (RECORDINGS / "evt3/pedestrians_gen41.raw", None, {}),
    (RECORDINGS / "atis_bin/nmnist_sample_tonic.bin", None, {}),
]
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_damaged(path, data: bytes, options) -> np.ndarray | None:
    path.write_bytes(data)
    with warnings.catch_warnings():
        for category in (evstream.TruncatedFileWarning, CorruptDataWarning, ChipInferredWarning):
            warnings.simplefilter("ignore", category)
        try:
            with evstream.open_events(path, **options) as reader:
                events = reader.read()
                width, height = reader.sensor_size[:2]
        except evstream.EventFileError as err:
            assert str(path) in str(err)
            return None
    assert events.dtype == evstream.EVENT_DTYPE
    if len(events):
        assert events["x"].max() < width and events["y"].max() < height
        assert set(np.unique(events["p"])) <= {0, 1}
        assert np.all(np.diff(events["t"]) >= 0)
    return events


@pytest.mark.parametrize("source,keep,options", FILES, ids=[f[0].name for f in FILES])
def test_truncation_gives_a_prefix_and_a_warning(source, keep, options, shared, tmp_path):
    data = source.read_bytes()[:keep]
    path = tmp_path / source.name
    full = _read_damaged(path, data, options)
    assert full is not None and len(full)

    @FUZZ
    @given(cut=st.integers(0, len(data) - 1))
    def check(cut):
        events = _read_damaged(path, data[:cut], options)
        if events is not None:
            assert len(events) <= len(full)

    check()


@pytest.mark.parametrize("source,keep,options", FILES, ids=[f[0].name for f in FILES])
def test_flipped_bytes_never_crash(source, keep, options, shared, tmp_path):
    data = source.read_bytes()[:keep]
    path = tmp_path / source.name

    @FUZZ
    @given(flips=st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)), min_size=1, max_size=8))
    def check(flips):
        damaged = bytearray(data)
        for pos, mask in flips:
            damaged[pos] ^= mask
        _read_damaged(path, bytes(damaged), options)

    check()


HOSTILE_NUMBERS = [b"0", b"-1", b"-5", b"65536", b"2147483648", b"99999999999999999999999", b"", b"1e9", b"0x10"]


@pytest.mark.parametrize("source,keep,options", FILES, ids=[f[0].name for f in FILES])
def test_header_number_edits_never_crash(source, keep, options, shared, tmp_path):
    """Any number of the text header (sizes, versions, geometry) replaced by a hostile one."""
    data = source.read_bytes()[:keep]
    head = data[:4096]
    numbers = [m.span() for m in re.finditer(rb"\d+", head)]
    assert numbers
    path = tmp_path / source.name

    @FUZZ
    @given(index=st.integers(0, len(numbers) - 1), number=st.sampled_from(HOSTILE_NUMBERS))
    def check(index, number):
        start, end = numbers[index]
        _read_damaged(path, data[:start] + number + data[end:], options)

    check()


@pytest.mark.parametrize("source,keep,options", FILES, ids=[f[0].name for f in FILES])
def test_duplicated_removed_and_zeroed_chunks_never_crash(source, keep, options, shared, tmp_path):
    """Bytes duplicated in place, removed, or zero-filled: what lost or repeated disk blocks do."""
    data = source.read_bytes()[:keep]
    path = tmp_path / source.name

    @FUZZ
    @given(kind=st.sampled_from(["duplicate", "remove", "zero"]), start=st.integers(0, len(data) - 1),
           length=st.integers(1, 4096))
    def check(kind, start, length):
        chunk = data[start:start + length]
        if kind == "duplicate":
            damaged = data[:start] + chunk + data[start:]
        elif kind == "remove":
            damaged = data[:start] + data[start + length:]
        else:
            damaged = data[:start] + bytes(len(chunk)) + data[start + length:]
        _read_damaged(path, damaged, options)

    check()


def test_a_flip_that_makes_another_format_names_the_file(shared, tmp_path):
    """'#' ^ 6 is '%': the AEDAT 2.0 file now reads as DAT, whose reader takes no chip: an EventFileError."""
    source, keep, options = FILES[[f[0].name for f in FILES].index("MovingDarkBox_dvs128.aedat")]
    damaged = bytearray(source.read_bytes()[:keep])
    damaged[0] ^= 6
    assert _read_damaged(tmp_path / source.name, bytes(damaged), options) is None
