"""AEDAT 3.1 (DVS128 Gesture layout): the vectors of ../shared/vectors/aedat31, seeking, the writer and peers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import evstream
import evstream.io.aedat31 as aedat31
from evstream import EVENT_DTYPE, EventFileError, TruncatedFileWarning
from tests.conftest import VECTORS, load_reference, synthetic_events

DIR = VECTORS / "aedat31"
MAIN = DIR / "dvs128_movingbox.aedat"
HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


@pytest.fixture(scope="module")
def expected(shared):
    return load_reference(DIR / "expected.npy")


def _packet(words, ev_type=1, size=8, overflow=0, capacity=None, number=None, valid=None, ts_offset=4) -> bytes:
    """A packet of ``len(words) * 4 // size`` records given as flat u32 words."""
    records = len(words) * 4 // max(size, 1)
    n = records if number is None else number
    header = np.array([(ev_type, 1, size, ts_offset, overflow, records if capacity is None else capacity, n,
                        n if valid is None else valid)], dtype=aedat31.PACKET_HEADER_DTYPE)
    return header.tobytes() + np.asarray(words, dtype="<u4").tobytes()


def _tonic_io():
    """tonic's ``io`` module, loaded alone (it only needs numpy; the tonic package imports for seconds)."""
    spec = importlib.util.find_spec("tonic")
    if spec is None:
        pytest.skip("tonic is not installed")
    io_spec = importlib.util.spec_from_file_location("tonic_io_only", Path(spec.origin).parent / "io.py")
    module = importlib.util.module_from_spec(io_spec)
    io_spec.loader.exec_module(module)
    return module


def _polarity(x, y, p, valid=1) -> int:
    return x << 17 | y << 2 | p << 1 | valid


def test_expected_decode_and_packet_index(expected):
    with evstream.open_events(MAIN) as reader:
        assert reader.format == "aedat31" and reader.sensor_size == (128, 128, 2)
        events = reader.read()
        table = reader._table
    assert events.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(events, expected)
    packets = [p for p in json.loads((DIR / "packets.json").read_text())["packets"] if p["type"] == 1]
    assert len(table) == len(packets) == 405
    np.testing.assert_array_equal(table[:, 0] - 28, [p["offset"] for p in packets])
    np.testing.assert_array_equal(table[:, 1], [p["number"] for p in packets])
    np.testing.assert_array_equal(table[:, 3], [p["overflow"] << 31 | p["last_ts"] for p in packets])


def test_truncated_keeps_complete_packets_and_warns(expected):
    path = DIR / "truncated.aedat"
    with pytest.warns(TruncatedFileWarning, match="truncated.aedat at byte offset 1993133: file ends inside"):
        events = evstream.read_events(path)
    assert len(events) == 248_396  # the cut packet's 2,047 complete records are not returned
    np.testing.assert_array_equal(events, expected[:248_396])
    with pytest.raises(EventFileError, match="truncated.aedat at byte offset 1993133"):
        evstream.read_events(path, strict=True)


def test_bad_header_is_rejected(shared):
    with pytest.raises(EventFileError, match=r"bad_header.aedat at byte offset 0: not an AEDAT 3.1 file.*'#!AER-DAT3"):
        evstream.open_events(DIR / "bad_header.aedat", format="aedat31")


def test_header_needs_its_end_line_and_a_known_source(tmp_path):
    path = tmp_path / "noend.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n" + _packet([_polarity(1, 2, 1), 5]))
    with pytest.raises(EventFileError, match="does not end with a '#!END-HEADER' line"):
        evstream.open_events(path, format="aedat31")
    path = tmp_path / "source.aedat"
    path.write_bytes(HEADER.replace(b"DVS128", b"Mystery") + _packet([_polarity(1, 2, 1), 5]))
    with pytest.raises(EventFileError, match="names no known sensor.*pass sensor_size="):
        evstream.open_events(path)
    with evstream.open_events(path, sensor_size=(4, 4)) as reader:
        assert reader.sensor_size == (4, 4, 2)
        assert reader.read().tolist() == [(1, 2, 5, 1)]


def test_hand_made_packets(tmp_path):
    """Valid bit, eventNumber below eventCapacity, overflow, and other packet types skipped by size."""
    path = tmp_path / "hand.aedat"
    special = _packet([1, 0x7FFFFFFF], ev_type=0)  # a valid TIMESTAMP_WRAP special event
    frame = _packet(list(range(6)), ev_type=2, size=12, number=1)  # 2 records of 12 bytes, 1 used
    path.write_bytes(HEADER + _packet([_polarity(3, 4, 1), 7, _polarity(9, 9, 0, valid=0), 8,
                                       _polarity(127, 0, 0), 9, _polarity(5, 5, 1), 10], number=3, valid=2)
                     + special + frame + _packet([_polarity(0, 127, 1), 0, _polarity(1, 1, 0), 2**31 - 1], overflow=1))
    assert evstream.read_events(path).tolist() == [(3, 4, 7, 1), (127, 0, 9, 0), (0, 127, 2**31, 1),
                                                   (1, 1, 2**32 - 1, 0)]


@pytest.mark.parametrize(("change", "reason"), [
    ({"size": 0}, "eventSize 0 is not positive"),
    ({"number": 3, "capacity": 2}, "impossible counts eventCapacity 2, eventNumber 3"),
    ({"size": 12}, "polarity packet with eventSize 12"),
    ({"overflow": -1}, "negative eventTSOverflow -1"),
])
def test_corrupt_packet_header_after_good_events(tmp_path, change, reason):
    path = tmp_path / "corrupt.aedat"
    good = _packet([_polarity(1, 1, 1), 5])
    path.write_bytes(HEADER + good + _packet([_polarity(2, 2, 1), 6, _polarity(2, 2, 1), 7], **change))
    with evstream.open_events(path) as reader:
        blocks = iter(reader)
        assert next(blocks).tolist() == [(1, 1, 5, 1)]
        with pytest.raises(EventFileError, match=f"offset {len(HEADER) + len(good)}: corrupt packet header: {reason}"):
            next(blocks)


def test_negative_timestamp_is_an_error(tmp_path):
    path = tmp_path / "negative.aedat"
    path.write_bytes(HEADER + _packet([_polarity(1, 1, 1), 5, _polarity(1, 1, 1), 2**32 - 3]))
    with pytest.raises(EventFileError, match=f"offset {len(HEADER) + 28 + 8}: polarity record with a negative"):
        evstream.read_events(path)


def test_streaming_and_seek_over_packet_blocks(expected, monkeypatch):
    monkeypatch.setattr(aedat31, "BLOCK_EVENTS", 20_000)
    t = expected["t"]
    with evstream.open_events(MAIN) as reader:
        for n in (977, 65536):
            np.testing.assert_array_equal(np.concatenate(list(reader.chunks(n))), expected)
        windows = list(reader.time_windows(50_000))
        assert len(windows) == (t[-1] - t[0]) // 50_000 + 1
        np.testing.assert_array_equal(np.concatenate(windows), expected)
        for target in (0, int(t[1000]), int(t[1000]) + 1, 2**31 - 1, 2**31, 2**31 + 1, int(t[-1]), int(t[-1]) + 1):
            reader.seek(target)
            np.testing.assert_array_equal(reader.read(), expected[np.searchsorted(t, target):])


def test_writer_round_trip_across_overflow_and_tonic_reads_it(tmp_path):
    tonic_io = _tonic_io()
    events = synthetic_events(20_000, 128, 128, seed=5)
    events["t"] += 2**31 - 10_000  # the 31-bit timestamp overflows mid-recording
    path = tmp_path / "user01_synthetic.aedat"
    with evstream.open_writer(path, (128, 128, 2), format="aedat31", packet_events=3000) as writer:
        for part in np.array_split(events, 3):
            writer.write(part)
    data = path.read_bytes()
    end = data.index(b"#!END-HEADER\r\n") + 14
    lines = data[:end].split(b"\r\n")
    assert lines[:3] == [b"#!AER-DAT3.1", b"#Format: RAW", b"#Source 1: DVS128"]
    assert lines[3].startswith(b"#Start-Time: ")
    assert evstream.io.detect_format(path) == "aedat31"
    np.testing.assert_array_equal(evstream.read_events(path), events)
    header = np.frombuffer(data, dtype=aedat31.PACKET_HEADER_DTYPE, count=1, offset=end)
    assert header.tolist() == [(1, 1, 8, 4, 0, 3000, 3000, 3000)]
    with evstream.open_events(path) as reader:
        table = reader._table  # packets start at each batch, every 3000 events and at the overflow
    starts = np.concatenate(([0], np.cumsum(table[:, 1])[:-1]))
    assert int(np.searchsorted(events["t"], 2**31)) in starts
    np.testing.assert_array_equal(table[:, 2], events["t"][starts] >> 31)
    # tonic's raw AEDAT 3.1 reader (packet capacities, no overflow): the same records
    version, start, _ = tonic_io.read_aedat_header_from_file(str(path))
    assert (version, start) == (3.1, end)
    raw = tonic_io.get_aer_events_from_file(str(path), version, start)
    assert len(raw) == len(events)
    np.testing.assert_array_equal(raw["address"] >> 17, events["x"])
    np.testing.assert_array_equal((raw["address"] >> 2) & 0x7FFF, events["y"])
    np.testing.assert_array_equal((raw["address"] >> 1) & 1, events["p"])
    np.testing.assert_array_equal(raw["timeStamp"], events["t"] & 0x7FFFFFFF)
