"""Prophesee DAT: reference decodes, bounded-block streaming, bad input, 32-bit wrap, writer and peer read."""

from __future__ import annotations

import numpy as np
import pytest

import evstream
import evstream.io.dat as dat
import evstream.io.record_file as record_file
from evstream import EVENT_DTYPE, EventFileError, TruncatedFileWarning
from evstream.io.corruption import CorruptDataWarning
from tests.conftest import RECORDINGS, VECTORS, load_reference, synthetic_events

NCARS = RECORDINGS / "dat/ncars_sample_tonic.dat"
GEN4 = RECORDINGS / "dat/imx636_faery_gen4.dat"
GEN1 = VECTORS / "gen1/gen1_like/train/sample_td.dat"


def _dat_bytes(times, words, header=b"% Version 2\n% Width 304\n% Height 240\n", kind=0x00) -> bytes:
    records = np.empty((len(times), 2), dtype="<u4")
    records[:, 0], records[:, 1] = times, words
    return header + bytes([kind, 8]) + records.tobytes()


@pytest.mark.parametrize(("path", "ref", "size"), [
    (NCARS, NCARS.with_name(NCARS.name + ".ref.npy"), (304, 240, 2)),  # no geometry: ATIS default
    (GEN4, GEN4.with_name(GEN4.name + ".ref.npy"), (1280, 720, 2)),  # type 0x0C written by faery
    (GEN1, VECTORS / "gen1/expected_td.npy", (304, 240, 2)),
])
def test_reference_decodes(shared, path, ref, size):
    with evstream.open_events(path) as reader:
        assert reader.format == "dat" and reader.sensor_size == size
        events = reader.read()
    assert events.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(events, load_reference(ref))


def test_sensor_size_option_overrides_default(shared):
    with evstream.open_events(NCARS, sensor_size=(120, 100)) as reader:
        assert reader.sensor_size == (120, 100, 2)
    with pytest.raises(EventFileError, match="outside the 50x30 sensor"):
        evstream.read_events(NCARS, sensor_size=(50, 30, 2))


def test_streaming_across_small_blocks(shared, monkeypatch):
    monkeypatch.setattr(dat, "BLOCK_EVENTS", 300)
    monkeypatch.setattr(record_file, "READ_BYTES", 8 * 100)
    ref = load_reference(NCARS.with_name(NCARS.name + ".ref.npy"))
    with evstream.open_events(NCARS) as reader:
        np.testing.assert_array_equal(reader.read(), ref)
        for n in (1, 299, 1000):
            chunks = list(reader.chunks(n))
            assert [len(c) for c in chunks[:-1]] == [n] * (len(chunks) - 1)
            np.testing.assert_array_equal(np.concatenate(chunks), ref)
        for window_us in (997, 20_000):
            windows = list(reader.time_windows(window_us))
            assert len(windows) == (ref["t"][-1] - ref["t"][0]) // window_us + 1
            np.testing.assert_array_equal(np.concatenate(windows), ref)
        for target in (-1, 152, 153, 50_000, int(ref["t"][-1]), int(ref["t"][-1]) + 1):
            reader.seek(target)
            np.testing.assert_array_equal(reader.read(), ref[np.searchsorted(ref["t"], target):])


def test_truncated_record_warns_with_offset_and_strict_raises(shared, tmp_path):
    data = NCARS.read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[:-3])
    ref = load_reference(NCARS.with_name(NCARS.name + ".ref.npy"))
    with pytest.warns(TruncatedFileWarning, match=f"offset {len(data) - 8}: file ends 5 bytes into"):
        np.testing.assert_array_equal(evstream.read_events(cut), ref[:-1])
    with pytest.raises(EventFileError, match=f"cut.dat at byte offset {len(data) - 8}"):
        evstream.read_events(cut, strict=True)


def test_bad_type_size_and_polarity(tmp_path):
    header = b"% Version 2\n"
    for kind, size, match in ((0x05, 8, "at byte offset 12: unsupported DAT event type 0x05"),
                              (0x00, 16, "at byte offset 13: DAT event size 16, expected 8")):
        path = tmp_path / f"bad{kind}_{size}.dat"
        path.write_bytes(header + bytes([kind, size]) + bytes(16))
        with pytest.raises(EventFileError, match=match):
            evstream.open_events(path)
    path = tmp_path / "p.dat"
    path.write_bytes(_dat_bytes([1, 2, 3], [5 | 7 << 14, 6 | 1 << 28, 2 << 28], header=header))
    with pytest.raises(EventFileError, match=f"offset {14 + 16}: polarity 2 is not 0 or 1"):
        evstream.read_events(path)


def test_hand_made_records_and_32_bit_wrap(tmp_path, monkeypatch):
    monkeypatch.setattr(dat, "BLOCK_EVENTS", 2)  # the wrap state must survive block and read boundaries
    monkeypatch.setattr(record_file, "READ_BYTES", 8 * 2)
    times = [4_294_967_000, 4_294_967_295, 5, 5, 2_000_000_000, 4_294_967_290, 10]
    words = [3 | 4 << 14 | 1 << 28, 303 | 239 << 14, 0, 1 << 28, 7, 8 << 14, 9 | 1 << 28]
    path = tmp_path / "wrap.dat"
    path.write_bytes(_dat_bytes(times, words))
    with pytest.warns(CorruptDataWarning, match=f"offset {len(_dat_bytes([], [])) + 8 * 6}: the 32-bit time wraps"):
        events = evstream.read_events(path)  # the second wrap comes after a jump of 2.3e9 us: doubtful
    wrap = 1 << 32
    np.testing.assert_array_equal(events["t"], [4_294_967_000, 4_294_967_295, wrap + 5, wrap + 5,
                                                wrap + 2_000_000_000, wrap + 4_294_967_290, 2 * wrap + 10])
    np.testing.assert_array_equal(events["x"], [3, 303, 0, 0, 7, 0, 9])
    np.testing.assert_array_equal(events["y"], [4, 239, 0, 0, 0, 8, 0])
    np.testing.assert_array_equal(events["p"], [1, 0, 0, 1, 0, 0, 1])


def test_writer_round_trip_and_expelliarmus_reads_it(tmp_path):
    expelliarmus = pytest.importorskip("expelliarmus")
    events = synthetic_events(30_000, 304, 240, seed=3)
    path = tmp_path / "sample_td.dat"
    with evstream.open_writer(path, (304, 240, 2)) as writer:
        for part in np.array_split(events, 3):
            writer.write(part)
    head = path.read_bytes()[:120]
    assert head.startswith(b"% Data file containing Event2D events.\n% Version 2\n% Width 304\n% Height 240\n\x00\x08")
    assert evstream.io.detect_format(path) == "dat"
    np.testing.assert_array_equal(evstream.read_events(path), events)
    peer = expelliarmus.Wizard(encoding="dat").read(path)
    assert len(peer) == len(events)
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(peer[name].astype(np.int64), events[name].astype(np.int64))


def test_writer_wraps_long_recordings_and_reader_unwraps(tmp_path, monkeypatch):
    monkeypatch.setattr(dat, "BLOCK_EVENTS", 64)
    monkeypatch.setattr(record_file, "READ_BYTES", 8 * 64)
    events = synthetic_events(1000, 304, 240, seed=4)
    events["t"] = np.linspace(0, 3 * (1 << 32), len(events)).astype(np.int64)
    path = tmp_path / "long.dat"
    evstream.write_events(path, events, (304, 240, 2))
    np.testing.assert_array_equal(evstream.read_events(path), events)


def test_writer_rejects_what_dat_cannot_store(tmp_path):
    events = synthetic_events(10, 304, 240)
    bad_p = events.copy()
    bad_p["p"][3] = 2
    with pytest.raises(ValueError, match="polarity must be 0 or 1"):
        evstream.write_events(tmp_path / "a.dat", bad_p, (304, 240, 2))
    late = events.copy()
    late["t"] += 1 << 32
    with pytest.raises(ValueError, match="32-bit timestamps"):
        evstream.write_events(tmp_path / "b.dat", late, (304, 240, 2))
    with pytest.raises(ValueError, match="14-bit coordinates"):
        evstream.open_writer(tmp_path / "c.dat", (20_000, 10, 2))


def test_time_going_back_less_than_half_the_range_is_an_error(tmp_path):
    path = tmp_path / "back.dat"
    path.write_bytes(_dat_bytes([10, 20, 15], [1, 2, 3]))
    match = "time goes backwards: event 2 .* t=15 us after t=20 us"
    with pytest.raises(EventFileError, match=match):
        evstream.read_events(path)  # whole-file path
    with evstream.open_events(path) as reader, pytest.raises(EventFileError, match=match):
        list(reader.chunks(2))  # block path
