"""Whole-file reads split across threads give exactly what a read in one piece gives: the same
events, warnings and errors, whatever lies at the part boundaries (time wraps, overflow markers,
lost alignment, errors)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import evstream
import evstream._parallel as parallel
import evstream.io.raw_common as raw_common
from evstream import EventFileError
from tests.conftest import RECORDINGS, VECTORS, synthetic_events

FILES = [
    (RECORDINGS / "dat/imx636_faery_gen4.dat", {}),
    (RECORDINGS / "dat/ncars_sample_tonic.dat", {}),
    (RECORDINGS / "evt2/evt2_sample_gen3.raw", {}),
    (RECORDINGS / "evt3/evt3_sample_gen41.raw", {}),
    (RECORDINGS / "evt3/pedestrians_gen41.raw", {}),
    (RECORDINGS / "aedat2/MovingDarkBox_dvs128.aedat", {"chip": "DVS128"}),
    (RECORDINGS / "aedat2/IMU_translBoxes_davis240c.aedat", {}),
    (VECTORS / "aedat31/dvs128_movingbox.aedat", {}),
    (VECTORS / "aedat31/truncated.aedat", {}),
    (RECORDINGS / "atis_bin/nmnist_sample_tonic.bin", {}),
    (RECORDINGS / "atis_bin/ncaltech101_Faces_easy_image_0001.bin", {}),
]


@pytest.fixture
def small_parts(monkeypatch):
    """Parts of a few thousand records, so that the shared recordings split into many."""
    monkeypatch.setattr(parallel, "MIN_PART_RECORDS", 2000)


def _read(path, **options):
    """(events or the error message, warning messages) of a whole-file read."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = evstream.read_events(path, **options)
        except EventFileError as err:
            result = str(err)
    return result, [str(w.message) for w in caught]


def _same(path, **options):
    one, one_warnings = _read(path, threads=1, **options)
    for threads in (2, 3, 7):
        many, many_warnings = _read(path, threads=threads, **options)
        if isinstance(one, str):
            assert many == one
        else:
            np.testing.assert_array_equal(many, one)
        assert many_warnings == one_warnings
    return one, one_warnings


@pytest.mark.parametrize("source,options", FILES, ids=[f[0].name for f in FILES])
def test_recordings_read_the_same_in_parts(shared, small_parts, source, options):
    events, caught = _same(source, **options)
    with warnings.catch_warnings(record=True) as streaming:
        warnings.simplefilter("always")
        with evstream.open_events(source, **options) as reader:
            streamed = np.concatenate(list(reader)) if len(events) else events
    np.testing.assert_array_equal(events, streamed)
    assert [str(w.message) for w in streaming] == caught


@pytest.mark.parametrize("fmt,size", [("dat", (304, 240)), ("evt2", (640, 480)), ("evt3", (1280, 720)),
                                      ("aedat2", (346, 260)), ("atis_bin", (34, 34)), ("aedat31", (128, 128))])
def test_time_wraps_and_markers_across_parts(small_parts, tmp_path, fmt, size):
    """Long recordings: DAT/AEDAT 2.0 32-bit wraps, EVT 2.0 34-bit and EVT 3.0 24-bit wraps, ATIS
    overflow markers, AEDAT 3.1 overflows; each part counts them from zero and is shifted after."""
    events = synthetic_events(30_000, *size, seed=11)
    span = {"dat": 3 << 32, "aedat2": 3 << 32, "evt2": 3 << 34, "evt3": 5 << 24, "atis_bin": 1 << 26,
            "aedat31": 3 << 31}[fmt]
    events["t"] = np.linspace(0, span, len(events)).astype(np.int64)
    path = tmp_path / ("long" + {"dat": ".dat", "evt2": ".raw", "evt3": ".raw", "atis_bin": ".bin"}.get(fmt, ".aedat"))
    evstream.write_events(path, events, (*size, 2), format=fmt)
    read, caught = _same(path)
    assert not isinstance(read, str), read
    np.testing.assert_array_equal(read, events)
    assert caught == []


def test_errors_and_doubtful_wraps_are_those_of_one_piece(small_parts, tmp_path):
    """Each part stands for what the file says there: the first error and warning in file order win."""
    events = synthetic_events(20_000, 304, 240, seed=12)
    path = tmp_path / "bad.dat"
    evstream.write_events(path, events, (304, 240, 2))
    data = bytearray(path.read_bytes())
    start = len(data) - 8 * len(events)
    data[start + 8 * 15_000 + 7] |= 0x20  # polarity 2 in part 7 of 10
    data[start + 8 * 5_000 + 3] = 0x9A  # a corrupt time byte in part 2: a doubtful wrap
    path.write_bytes(bytes(data))
    message, caught = _same(path)
    assert message == f"{path} at byte offset {start + 8 * 15_000}: polarity 2 is not 0 or 1"
    assert len(caught) == 1 and "the 32-bit time wraps here" in caught[0]
    for fmt, size in (("evt2", (640, 480)), ("evt3", (1280, 720))):
        path = tmp_path / f"bad_{fmt}.raw"
        evstream.write_events(path, events, (640, 480, 2), format=fmt)
        with evstream.open_events(path) as reader:
            start, size = reader._data_offset, reader.word_dtype.itemsize
        data = bytearray(path.read_bytes())
        word = (len(data) - start) // size * 2 // 3
        data[start + size * word + size - 1] = 0xC0  # an unknown word type, two thirds in
        path.write_bytes(bytes(data))
        message, _ = _same(path)
        assert message.startswith(f"{path} at byte offset {start + size * word}: unknown word type 0xC")


def test_aedat2_alignment_lost_at_a_part_boundary(shared, monkeypatch, tmp_path):
    """A part whose predecessor resynchronised across the boundary is decoded again after it."""
    raw = (RECORDINGS / "aedat2/IMU_translBoxes_davis240c.aedat").read_bytes()
    with evstream.open_events(RECORDINGS / "aedat2/IMU_translBoxes_davis240c.aedat") as reader:
        start = reader._data_offset
    records = (len(raw) - start) // 8
    monkeypatch.setattr(parallel, "MIN_PART_RECORDS", records // 4)
    at = start + 8 * (records // 2) - 13  # 13 bytes before the boundary of parts 2 and 3
    path = tmp_path / "dup.aedat"
    path.write_bytes(raw[:at] + raw[at - 51:at] + raw[at:])
    events, caught = _same(path)
    np.testing.assert_array_equal(events, evstream.read_events(RECORDINGS / "aedat2/IMU_translBoxes_davis240c.aedat"))
    assert len(caught) == 1 and "the words lost their alignment here" in caught[0]


@pytest.mark.parametrize("source", [RECORDINGS / "evt3/evt3_sample_gen41.raw",
                                    RECORDINGS / "evt2/evt2_sample_gen3.raw"], ids=["evt3", "evt2"])
def test_raw_parts_starting_from_a_wrong_state_fall_back_to_one_piece(shared, small_parts, monkeypatch, source):
    """With 4 words read back, most parts start from a state their predecessor did not end in."""
    monkeypatch.setattr(raw_common, "_RESUME_WORDS", 4)
    calls = []
    original = raw_common.RawReader._read_parts
    monkeypatch.setattr(raw_common.RawReader, "_read_parts", lambda self, parts, n: calls.append(len(parts)) or
                        original(self, parts, n))
    events, _ = _same(source)
    np.testing.assert_array_equal(events, evstream.read_events(source, threads=1))
    assert 1 in calls[1:] and max(calls) > 1  # parallel reads that went back to one piece
