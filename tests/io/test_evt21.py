"""EVT 2.1: words built by hand from Prophesee's specification, evlib reading the same bytes, writer round trips.

faery 0.7.1 cannot be a peer here: its EVT 2.1 encoder and decoder are unimplemented (``to_file(...,
version="evt2.1")`` panics "not yet implemented"), so the vectors below come from the specification
and evlib (which reads EVT 2.1 but writes no RAW) checks both the vectors and evstream's files.
"""

from __future__ import annotations

import numpy as np
import pytest

import evstream
from evstream import EventFileError
from evstream.cli import main
from evstream.io import raw_common, record_file
from tests.conftest import synthetic_events

HEADER = b"% evt 2.1\n% format EVT21;height=480;width=640\n% geometry 640x480\n% end\n"
M = (1 << 28) - 1


def vector(p, t_low, x, y, mask):
    """EV_NEG (p=0) / EV_POS (p=1): type 60-63, time low 54-59, x 43-53, y 32-42, validity mask 0-31."""
    return p << 60 | t_low << 54 | x << 43 | y << 32 | mask


def high(v):
    """EV_TIME_HIGH: type 0x8, time high in bits 32-59."""
    return 0x8 << 60 | v << 32


def raw_file(tmp_path, words, header=HEADER, name="words.raw"):
    path = tmp_path / name
    path.write_bytes(header + np.array(words, dtype="<u8").tobytes())
    return path


def as_tuples(events):
    return [tuple(int(v) for v in e) for e in events[["x", "y", "t", "p"]]]


HAND_WORDS = [vector(1, 3, 0, 1, 0b1),  # before any time high: skipped (as EVT 2.0)
              high(5), vector(1, 7, 32, 20, 0b1011), 0xA << 60 | 3 << 54 | 1 << 44 | 1 << 32,  # EXT_TRIGGER
              vector(0, 9, 64, 21, 1 << 31 | 1), 0xE << 60 | 123, 0xF << 60 | 456,  # OTHERS, CONTINUED
              vector(1, 9, 96, 22, 0),  # empty mask: no event
              high(M), vector(0, 63, 608, 479, 1 << 31), high(0), vector(1, 1, 0, 0, 0b110)]
HAND_EVENTS = [(32, 20, 5 << 6 | 7, 1), (33, 20, 5 << 6 | 7, 1), (35, 20, 5 << 6 | 7, 1),
               (64, 21, 5 << 6 | 9, 0), (95, 21, 5 << 6 | 9, 0),
               (639, 479, M << 6 | 63, 0),
               (1, 0, 1 << 34 | 1, 1), (2, 0, 1 << 34 | 1, 1)]  # the 34-bit clock wrapped


def test_hand_built_words_from_the_specification(tmp_path):
    path = raw_file(tmp_path, HAND_WORDS)
    assert evstream.io.detect_format(path) == "evt21"
    with evstream.open_events(path) as reader:
        assert reader.format == "evt21" and reader.sensor_size == (640, 480, 2)
        assert as_tuples(reader.read()) == HAND_EVENTS


def test_evlib_reads_the_hand_built_words_the_same(tmp_path):
    evlib = pytest.importorskip("evlib")
    path = raw_file(tmp_path, HAND_WORDS)  # evlib too skips the vector before any time high, and unwraps
    frame = evlib.load_events(str(path), sort=False).collect()
    theirs = list(zip(frame["x"].to_list(), frame["y"].to_list(), frame["t"].dt.total_microseconds().to_list(),
                      [int(p > 0) for p in frame["polarity"].to_list()], strict=True))
    assert theirs == HAND_EVENTS


@pytest.mark.parametrize("block_events", [None, 40])
def test_writer_round_trip_vectorises_and_evlib_reads_it(tmp_path, monkeypatch, block_events):
    evlib = pytest.importorskip("evlib")
    if block_events:  # blocks and word slices far smaller than the file: state carries across them
        monkeypatch.setattr(raw_common, "BLOCK_EVENTS", block_events)
        monkeypatch.setattr(record_file, "READ_BYTES", 8 * 37)
    events = synthetic_events(20_000, 640, 480, seed=5)
    run = slice(1000, 1040)  # a dense row: 40 events at one time become 2 words (columns 64-95, 96-103)
    events["t"][run], events["y"][run], events["p"][run] = events["t"][run.start], 7, 1
    events["x"][run] = np.arange(64, 104)
    events = events[np.argsort(events["t"], kind="stable")]
    path = tmp_path / "out.raw"
    with evstream.open_writer(path, (640, 480, 2), format="evt21") as writer:
        for part in np.array_split(events, 3):
            writer.write(part)
    assert path.read_bytes().startswith(b"% evt 2.1\n% format EVT21;height=480;width=640\n")
    back = evstream.read_events(path)
    np.testing.assert_array_equal(back, events)
    words = np.frombuffer(path.read_bytes()[path.read_bytes().index(b"% end\n") + 6:], "<u8")
    assert int(np.sum(words >> np.uint64(60) <= 1)) < len(events) - 38  # the run took 2 words, not 40
    frame = evlib.load_events(str(path), sort=False).collect()
    np.testing.assert_array_equal(frame["x"].to_numpy(), events["x"])
    np.testing.assert_array_equal(frame["y"].to_numpy(), events["y"])
    np.testing.assert_array_equal(frame["t"].dt.total_microseconds().to_numpy(), events["t"])
    np.testing.assert_array_equal(frame["polarity"].to_numpy() > 0, events["p"] == 1)


def test_writer_crosses_the_34_bit_wrap(tmp_path):
    events = synthetic_events(200, 64, 48, seed=6)
    events["t"] = np.linspace((1 << 34) - 5000, (1 << 35) + 7000, len(events)).astype(np.int64)
    path = tmp_path / "long.raw"
    evstream.write_events(path, events, (64, 48, 2), format="evt21")
    np.testing.assert_array_equal(evstream.read_events(path), events)


@pytest.mark.parametrize(("words", "message", "word"), [
    ([high(1), 0x3 << 60], "unknown word type 0x3", 1),
    ([high(1), vector(1, 0, 608, 2, 1 << 31 | 1)], "event x outside the 620x480 sensor", 1),
    ([high(1), vector(1, 0, 0, 480, 1)], "event y outside the 620x480 sensor", 1),
    ([high(2), vector(1, 0, 0, 0, 1), high(1), vector(1, 0, 0, 0, 1)], "time goes backwards", 3),
])
def test_bad_words_are_one_line_errors_naming_the_offset(tmp_path, words, message, word):
    header = HEADER.replace(b"width=640", b"width=620").replace(b"640x480", b"620x480")
    path = raw_file(tmp_path, words, header)
    with pytest.raises(EventFileError, match=message) as err:
        evstream.read_events(path)
    assert "\n" not in str(err.value)
    assert f"byte offset {len(header) + 8 * word}:" in str(err.value)


def test_legacy_endianness_is_refused_by_name(tmp_path):
    header = b"% evt 2.1\n% format EVT21;endianness=legacy;height=480;width=640\n% end\n"
    with pytest.raises(EventFileError, match="endianness=legacy"):
        evstream.read_events(raw_file(tmp_path, [high(1)], header))


def test_cli_info_and_convert(tmp_path, capsys):
    src = raw_file(tmp_path, HAND_WORDS, name="hand.raw")
    assert main(["info", str(src)]) == 0
    out = capsys.readouterr().out
    assert "format      evt21" in out and "sensor      640 x 480" in out and "events      8\n" in out
    dst = tmp_path / "copy.raw"
    assert main(["convert", str(src), str(dst), "--format", "evt21", "--quiet"]) == 0
    assert as_tuples(evstream.read_events(dst)) == HAND_EVENTS
