"""EVT 2.0 specifics: word types, wrap-around, block state, truncation, writer read back by peers."""

from __future__ import annotations

import numpy as np
import pytest

import evstream
from evstream.io import raw_common, record_file
from evstream.io.evt2 import Evt2Reader
from tests.conftest import RECORDINGS, load_reference, synthetic_events

SAMPLE = RECORDINGS / "evt2/evt2_sample_gen3.raw"
HEADER = b"% evt 2.0\n% format EVT2;height=480;width=640\n% end\n"
M = (1 << 28) - 1


def cd(p, t_low, x, y):
    return p << 28 | t_low << 22 | x << 11 | y


def high(v):
    return 0x8 << 28 | v


def raw_file(tmp_path, words, header=HEADER, tail=b""):
    path = tmp_path / "words.raw"
    path.write_bytes(header + np.array(words, dtype="<u4").tobytes() + tail)
    return path


def as_tuples(events):
    return [tuple(int(v) for v in e) for e in events[["x", "y", "t", "p"]]]


def test_reference_through_tiny_slices_and_blocks(shared, monkeypatch):
    """Decoder state (time high) carries across word slices and full output blocks."""
    monkeypatch.setattr(record_file, "READ_BYTES", 4 * 4099)
    monkeypatch.setattr(raw_common, "BLOCK_EVENTS", 3001)
    with Evt2Reader(SAMPLE) as reader:
        blocks = list(reader)
    assert max(len(b) for b in blocks) == 3001
    np.testing.assert_array_equal(np.concatenate(blocks), load_reference(SAMPLE.with_name(SAMPLE.name + ".ref.npy")))


def test_word_types_and_events_before_first_time_high(tmp_path):
    words = [cd(1, 3, 10, 20),  # no time high yet: skipped (as Metavision and evlib)
             high(5), cd(0, 1, 11, 21), 0xA << 28 | 5, 0xE << 28 | 7, 0xF << 28 | 9, cd(1, 63, 12, 22)]
    events = evstream.read_events(raw_file(tmp_path, words))
    assert as_tuples(events) == [(11, 21, 5 << 6 | 1, 0), (12, 22, 5 << 6 | 63, 1)]


def test_time_high_wrap_is_unwrapped_like_evlib(tmp_path):
    # a drop of half the 28-bit range or more is a wrap; a smaller drop is time going backwards
    words = [high(M), cd(1, 3, 10, 20), high(0), cd(0, 1, 11, 21), high(M // 2 + 2), cd(1, 2, 12, 22),
             high(1), cd(1, 0, 13, 23)]
    events = evstream.read_events(raw_file(tmp_path, words))
    assert as_tuples(events) == [(10, 20, M << 6 | 3, 1), (11, 21, 1 << 34 | 1, 0),
                                 (12, 22, 1 << 34 | (M // 2 + 2) << 6 | 2, 1), (13, 23, 2 << 34 | 1 << 6, 1)]
    path = raw_file(tmp_path, [high(100_000), cd(1, 0, 1, 1), high(1000), cd(1, 0, 2, 2)])
    offset = len(HEADER) + 12
    with pytest.raises(evstream.EventFileError, match=f"offset {offset}: time goes backwards"):
        evstream.read_events(path)


def test_unknown_word_type_and_bad_coordinates_name_the_offset(tmp_path):
    base = len(HEADER)
    with pytest.raises(evstream.EventFileError, match=f"offset {base + 8}: unknown word type 0x5"):
        evstream.read_events(raw_file(tmp_path, [high(1), cd(1, 0, 1, 1), 0x5 << 28 | 7]))
    with pytest.raises(evstream.EventFileError, match=f"offset {base + 4}: event x outside the 640x480 sensor"):
        evstream.read_events(raw_file(tmp_path, [high(1), cd(1, 0, 640, 1)]))
    with pytest.raises(evstream.EventFileError, match=f"offset {base + 4}: event y outside the 640x480 sensor"):
        evstream.read_events(raw_file(tmp_path, [high(1), cd(1, 0, 1, 480)]))


def test_trailing_partial_word_warns_and_strict_raises(tmp_path):
    words = [high(2), cd(1, 0, 1, 1), cd(0, 5, 2, 2)]
    path = raw_file(tmp_path, words, tail=b"\x01\x02\x03")
    offset = len(HEADER) + 12
    with pytest.warns(evstream.TruncatedFileWarning, match=f"offset {offset}: file ends 3 bytes into a 4-byte word"):
        events = evstream.read_events(path)
    assert as_tuples(events) == [(1, 1, 128, 1), (2, 2, 133, 0)]
    with pytest.raises(evstream.EventFileError, match=f"words.raw at byte offset {offset}"):
        evstream.read_events(path, strict=True)


def test_header_checks(tmp_path):
    evt3 = raw_file(tmp_path, [], header=b"% evt 3.0\n% geometry 640x480\n")
    with pytest.raises(evstream.EventFileError, match="header says 'evt3', not 'evt2'"):
        Evt2Reader(evt3)
    bare = raw_file(tmp_path, [high(1), cd(1, 0, 1, 1)], header=b"% evt 2.0\n")
    with pytest.raises(evstream.EventFileError, match="no sensor geometry; pass sensor_size"):
        Evt2Reader(bare)
    assert len(evstream.read_events(bare, sensor_size=(2, 2))) == 1
    assert len(evstream.read_events(raw_file(tmp_path, []))) == 0


def test_gen3_geometry_from_the_plugin_name(shared):
    with Evt2Reader(SAMPLE) as reader:
        assert reader.sensor_size == (640, 480, 2)


def test_writer_round_trip_and_peers_read_it(tmp_path):
    expelliarmus = pytest.importorskip("expelliarmus")
    events = synthetic_events(200_000, 640, 480, rate_hz=2e6)
    path = tmp_path / "out.raw"
    with evstream.open_writer(path, (640, 480, 2), format="evt2") as writer:
        for part in np.array_split(events, 5):
            writer.write(part)
    assert evstream.io.detect_format(path) == "evt2"
    with evstream.open_events(path) as reader:
        assert reader.sensor_size == (640, 480, 2)
        np.testing.assert_array_equal(reader.read(), events)
    peer = expelliarmus.Wizard(encoding="evt2").read(path)
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(peer[name].astype(np.int64), events[name].astype(np.int64))


def test_times_beyond_the_34_bit_clock_round_trip(tmp_path):
    """Peers cannot check this: expelliarmus does not unwrap, evlib counts a wrap at every time high after one."""
    events = synthetic_events(3000, 640, 480)
    events["t"] = np.random.default_rng(1).integers(0, 5 << 34, len(events))
    events["t"][:1000] += 3 << 34  # no event for several wraps, then the rest
    events.sort(order="t", kind="stable")
    path = tmp_path / "long.raw"
    with evstream.open_writer(path, (640, 480, 2), format="evt2") as writer:
        for part in np.array_split(events, 3):
            writer.write(part)
    np.testing.assert_array_equal(evstream.read_events(path), events)


def test_writer_rejects_what_evt2_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="11-bit coordinates"):
        evstream.open_writer(tmp_path / "big.raw", (4096, 480, 2), format="evt2")
    events = synthetic_events(10, 640, 480)
    events["t"] -= 100
    with pytest.raises(ValueError, match="stores times in"):
        evstream.write_events(tmp_path / "neg.raw", events, (640, 480, 2), format="evt2")
