"""EVT 3.0 specifics: vectors, time words and wrap-around, block state, truncation, writer read back by evlib."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evstream
from evstream.io import raw_common, record_file
from evstream.io.evt3 import Evt3Reader
from tests.conftest import RECORDINGS, load_reference, synthetic_events

SAMPLE = RECORDINGS / "evt3/evt3_sample_gen41.raw"
HEADER = b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n"


def w(kind, value):
    return kind << 12 | value


Y, X, BASE, V12, V8, LOW, HIGH = 0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x8
ON = 1 << 11


def raw_file(tmp_path, words, header=HEADER, tail=b"", name="words.raw"):
    path = tmp_path / name
    path.write_bytes(header + np.array(words, dtype="<u2").tobytes() + tail)
    return path


def as_tuples(events):
    return [tuple(int(v) for v in e) for e in events[["x", "y", "t", "p"]]]


def evlib_tuples(path):
    evlib = pytest.importorskip("evlib")
    df = evlib.load_events(str(path), sort=False).collect()
    return list(zip(df["x"].to_list(), df["y"].to_list(), df["t"].dt.total_microseconds().to_list(),
                    [int(p > 0) for p in df["polarity"].to_list()]))


def test_reference_through_tiny_slices_and_blocks(shared, monkeypatch):
    """Decoder state (time, row, vector base) carries across word slices and full output blocks."""
    monkeypatch.setattr(record_file, "READ_BYTES", 2 * 4099)
    monkeypatch.setattr(raw_common, "BLOCK_EVENTS", 3001)
    with Evt3Reader(SAMPLE) as reader:
        blocks = list(reader)
    assert max(len(b) for b in blocks) <= 3001
    np.testing.assert_array_equal(np.concatenate(blocks), load_reference(SAMPLE.with_name(SAMPLE.name + ".ref.npy")))


# Word streams whose decodes are written out by hand, and which evlib decodes the same way.
CASES = {
    "vectors": ([w(HIGH, 1), w(LOW, 1), w(Y, 5), w(BASE, 100 | ON), w(V12, 0b1000_0000_0101), w(V8, 0b1000_0001),
                 w(V12, 1), w(Y, 6 | ON), w(V12, 2)],  # bit 11 of EVT_ADDR_Y (system type) is not part of y
                [(100, 5, 4097, 1), (102, 5, 4097, 1), (111, 5, 4097, 1), (112, 5, 4097, 1), (119, 5, 4097, 1),
                 (120, 5, 4097, 1), (133, 6, 4097, 1)]),
    "skipped_word_types": ([w(HIGH, 1), w(LOW, 1), w(Y, 5), w(X, 10), w(0xE, 5), w(0xF, 1), w(0x7, 1), w(0xA, 1),
                            w(X, 11 | ON)],
                           [(10, 5, 4097, 0), (11, 5, 4097, 1)]),
    "events_before_time_or_row": ([w(Y, 5), w(X, 10), w(HIGH, 3), w(LOW, 7), w(X, 11)], [(11, 5, 12295, 0)]),
    "row_after_time": ([w(HIGH, 1), w(LOW, 1), w(X, 10), w(Y, 5), w(X, 11)], [(11, 5, 4097, 0)]),
    "time_low_without_high": ([w(LOW, 7), w(Y, 5), w(X, 10), w(HIGH, 1), w(X, 11)], [(10, 5, 7, 0), (11, 5, 4103, 0)]),
    "time_high_keeps_low": ([w(HIGH, 1), w(LOW, 100), w(Y, 5), w(X, 10), w(HIGH, 2), w(X, 11)],
                            [(10, 5, 4196, 0), (11, 5, 8292, 0)]),
    "time_low_backwards_is_not_a_wrap": ([w(HIGH, 1), w(LOW, 811), w(LOW, 800), w(Y, 5), w(X, 10)],
                                         [(10, 5, 4896, 0)]),
    "wrap": ([w(HIGH, 4000), w(LOW, 1), w(Y, 5), w(X, 10), w(HIGH, 4095), w(X, 11), w(HIGH, 0), w(LOW, 2), w(X, 12),
              w(HIGH, 1), w(X, 13), w(HIGH, 4094), w(X, 14), w(HIGH, 5), w(X, 15)],
             [(10, 5, 4000 << 12 | 1, 0), (11, 5, 4095 << 12 | 1, 0), (12, 5, 1 << 24 | 2, 0),
              (13, 5, 1 << 24 | 1 << 12 | 2, 0), (14, 5, 1 << 24 | 4094 << 12 | 2, 0),
              (15, 5, 2 << 24 | 5 << 12 | 2, 0)]),
}


@pytest.mark.parametrize("name", CASES)
def test_hand_decoded_word_streams_agree_with_evlib(tmp_path, name):
    words, expected = CASES[name]
    path = raw_file(tmp_path, words)
    assert as_tuples(evstream.read_events(path)) == expected
    assert evlib_tuples(path) == expected


def test_vectors_before_a_base_are_skipped(tmp_path):
    """evlib would place them at base 0; the column is unknown, so they are dropped (the base still advances)."""
    path = raw_file(tmp_path, [w(HIGH, 1), w(LOW, 1), w(Y, 5), w(V12, 3), w(BASE, 100), w(V12, 3)])
    assert as_tuples(evstream.read_events(path)) == [(100, 5, 4097, 0), (101, 5, 4097, 0)]


def test_small_time_high_drop_is_time_going_backwards(tmp_path):
    # 4095 -> 11 (a drop of 4084) is not a wrap for evlib either
    path = raw_file(tmp_path, [w(HIGH, 4095), w(LOW, 1), w(Y, 5), w(X, 10), w(HIGH, 11), w(X, 11)])
    with pytest.raises(evstream.EventFileError, match=f"offset {len(HEADER) + 10}: time goes backwards"):
        evstream.read_events(path)


def test_unknown_word_type_and_bad_coordinates_name_the_offset(tmp_path):
    base = len(HEADER)
    start = [w(HIGH, 1), w(LOW, 1), w(Y, 5)]
    with pytest.raises(evstream.EventFileError, match=f"offset {base + 6}: unknown word type 0x9"):
        evstream.read_events(raw_file(tmp_path, start + [w(0x9, 1)]))
    with pytest.raises(evstream.EventFileError, match=f"offset {base + 8}: event x outside the 1280x720 sensor"):
        evstream.read_events(raw_file(tmp_path, start + [w(BASE, 1275), w(V12, 1 << 5)]))
    with pytest.raises(evstream.EventFileError, match=f"offset {base + 8}: event y outside the 1280x720 sensor"):
        evstream.read_events(raw_file(tmp_path, start + [w(Y, 720), w(X, 1)]))


def test_trailing_partial_word_warns_and_strict_raises(tmp_path):
    path = raw_file(tmp_path, [w(HIGH, 1), w(LOW, 1), w(Y, 5), w(X, 10)], tail=b"\x07")
    with pytest.warns(evstream.TruncatedFileWarning, match=f"offset {len(HEADER) + 8}: file ends 1 bytes"):
        assert as_tuples(evstream.read_events(path)) == [(10, 5, 4097, 0)]
    with pytest.raises(evstream.EventFileError, match="words.raw at byte offset"):
        evstream.read_events(path, strict=True)


def test_header_checks(tmp_path):
    with pytest.raises(evstream.EventFileError, match="header says 'evt2', not 'evt3'"):
        Evt3Reader(raw_file(tmp_path, [], header=b"% evt 2.0\n% geometry 640x480\n"))


def test_gen41_geometry_from_the_plugin_name(shared):
    with Evt3Reader(SAMPLE) as reader:
        assert reader.sensor_size == (1280, 720, 2)


def runs(n, rng):
    """Events with runs sharing time, row and polarity (what the writer vectorises) among singles."""
    events = synthetic_events(n, 1280, 720, seed=3, rate_hz=5e5)
    run_starts = rng.choice(n - 30, n // 40, replace=False)
    for s in run_starts:
        length = rng.integers(3, 30)
        events["t"][s:s + length] = events["t"][s]
        events["y"][s:s + length] = events["y"][s]
        events["p"][s:s + length] = events["p"][s]
        events["x"][s:s + length] = np.sort(rng.choice(60, length, replace=False)) + rng.integers(0, 1200)
    events.sort(order="t", kind="stable")
    return events


def test_writer_vectorises_round_trips_and_evlib_reads_it(tmp_path):
    events = runs(100_000, np.random.default_rng(0))
    path = tmp_path / "out.raw"
    with evstream.open_writer(path, (1280, 720, 2), format="evt3") as writer:
        for part in np.array_split(events, 4):
            writer.write(part)
    assert evstream.io.detect_format(path) == "evt3"
    with Evt3Reader(path) as reader:
        assert reader.sensor_size == (1280, 720, 2)
        np.testing.assert_array_equal(reader.read(), events)
        words = np.fromfile(path, dtype="<u2", offset=reader.header.data_offset)
    kinds = set(np.unique(words >> 12).tolist())
    assert {Y, X, BASE, V12, V8, LOW, HIGH} == kinds
    column_words = np.isin(words >> 12, [X, BASE, V12, V8]).sum()
    assert column_words < 0.8 * len(events)  # vectors: fewer column words than events
    assert evlib_tuples(path) == as_tuples(events)


def test_full_rows_of_vectors_decode_beyond_one_event_per_word(tmp_path):
    """Twelve events per word: read() outgrows its one-event-per-word array and still returns every event."""
    x, y = np.meshgrid(np.arange(1280), np.arange(40))
    events = evstream.make_events(x.ravel(), y.ravel(), 1000 + 7 * y.ravel(), (y.ravel() % 2))
    path = tmp_path / "rows.raw"
    evstream.write_events(path, events, (1280, 720, 2), format="evt3")
    assert path.stat().st_size < 2 * len(events) / 10
    np.testing.assert_array_equal(evstream.read_events(path), events)
    assert evlib_tuples(path) == as_tuples(events)


def test_times_beyond_the_24_bit_clock_round_trip_and_evlib_agrees(tmp_path):
    events = runs(5000, np.random.default_rng(1))
    events["t"] = np.sort(np.random.default_rng(2).integers(0, 6 << 24, len(events)))
    events["t"][:1000] += 40 << 24  # no event for 40 wraps, then the rest
    events.sort(order="t", kind="stable")
    path = tmp_path / "long.raw"
    with evstream.open_writer(path, (1280, 720, 2), format="evt3") as writer:
        for part in np.array_split(events, 3):
            writer.write(part)
    np.testing.assert_array_equal(evstream.read_events(path), events)
    assert evlib_tuples(path) == as_tuples(events)


def test_writer_rejects_what_evt3_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="11-bit coordinates"):
        evstream.open_writer(tmp_path / "big.raw", (1280, 4096, 2), format="evt3")
    events = synthetic_events(10, 1280, 720)
    events["t"] += 1 << 40
    with pytest.raises(ValueError, match="stores times in"):
        evstream.write_events(tmp_path / "late.raw", events, (1280, 720, 2), format="evt3")


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 40_000), flips=st.lists(st.tuples(st.integers(0, 39_999), st.integers(1, 255)), max_size=8))
def test_cut_and_flipped_files_give_events_or_a_file_error(shared, tmp_path_factory, cut, flips):
    data = bytearray(SAMPLE.read_bytes()[:cut])
    for at, xor in flips:
        if at < len(data):
            data[at] ^= xor
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.raw"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with Evt3Reader(path, sensor_size=(1280, 720)) as reader:
                assert reader.read().dtype == evstream.EVENT_DTYPE
                assert sum(len(block) for block in reader.chunks(1000)) >= 0
        except evstream.EventFileError:
            pass
    assert all(issubclass(w.category, evstream.TruncatedFileWarning) for w in caught)
