"""jAER AEDAT 2.0: reference decodes, chips, dropped words, truncation, streaming and the writer."""

from __future__ import annotations

import re

import numpy as np
import pytest

import evstream
import evstream.io.aedat2 as aedat2
import evstream.io.record_file as record_file
from evstream import EVENT_DTYPE, EventFileError, TruncatedFileWarning
from evstream.io import ChipInferredWarning
from evstream.io.info import file_info
from tests.conftest import RECORDINGS, load_reference, synthetic_events

DVS128 = RECORDINGS / "aedat2/MovingDarkBox_dvs128.aedat"
DAVIS240 = RECORDINGS / "aedat2/IMU_translBoxes_davis240c.aedat"
HEADER_ONLY = RECORDINGS / "aedat2/header_only_davis346red_tonic.aedat"
HEADER = b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS346B\r\n"


def _ref(path):
    return load_reference(path.with_name(path.name + ".ref.npy"))


def _aedat2_bytes(addresses, times, header=HEADER) -> bytes:
    words = np.empty((len(addresses), 2), dtype=">u4")
    words[:, 0], words[:, 1] = addresses, times
    return header + words.tobytes()


@pytest.mark.parametrize(("path", "options", "size"), [
    (DVS128, {"chip": "DVS128"}, (128, 128, 2)),  # no AEChip line: the chip comes from the option
    (DAVIS240, {}, (240, 180, 2)),  # DVS words mixed with APS and IMU words
])
def test_reference_decodes(shared, path, options, size):
    with evstream.open_events(path, **options) as reader:
        assert reader.format == "aedat2" and reader.sensor_size == size
        events = reader.read()
    assert events.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(events, _ref(path))


def test_header_only_davis346red(shared):
    with evstream.open_events(HEADER_ONLY) as reader:
        assert reader.sensor_size == (346, 260, 2)
        assert reader.chip == "eu.seebetter.ini.chips.davis.Davis346red"
        assert len(reader.read()) == 0


def test_chip_is_inferred_when_not_named(shared):
    """Classic jAER DVS128 files (and CIFAR10-DVS's) have no AEChip line: they were refused without chip=."""
    ref = _ref(DVS128)
    note = "chip DVS128 inferred: the header has no '# AEChip:' line and every address fits the DVS128 layout"
    with pytest.warns(ChipInferredWarning, match="MovingDarkBox_dvs128.aedat: " + re.escape(note)):
        with evstream.open_events(DVS128) as reader:
            assert (reader.chip, reader.sensor_size) == ("DVS128", (128, 128, 2))
            assert reader.notes == [note + " (16 bits)"]
            np.testing.assert_array_equal(reader.read(), ref)
    with pytest.warns(ChipInferredWarning):
        info = file_info(DVS128)
    assert info["notes"] == [note + " (16 bits)"] and info["events"] == len(ref)
    with pytest.raises(EventFileError, match="unsupported AEDAT 2.0 chip 'DVS640'"):
        evstream.open_events(DVS128, chip="DVS640")
    np.testing.assert_array_equal(evstream.read_events(DVS128, chip="ch.unizh.ini.jaer.chip.retina.DVS128"), ref)


@pytest.mark.parametrize(("size", "chip"), [((240, 180), "DAVIS240C"), ((346, 260), "DAVIS346")])
def test_davis_chip_is_the_smallest_holding_every_dvs_word(tmp_path, size, chip):
    events = synthetic_events(3000, *size, seed=7)
    events["x"][:2], events["y"][:2] = (0, size[0] - 1), (size[1] - 1, 0)  # both corners of the sensor
    path = tmp_path / "nochip.aedat"
    evstream.write_events(path, events, (*size, 2), format="aedat2")
    data = path.read_bytes()
    line = data.index(b"# AEChip:")
    path.write_bytes(data[:line] + data[data.index(b"\n", line) + 1:])
    with pytest.warns(ChipInferredWarning, match=f"chip {chip} inferred: .* every DVS word lies on its "
                                                  f"{size[0]}x{size[1]} sensor"):
        np.testing.assert_array_equal(evstream.read_events(path), events)
    last_time = int(events["t"][-1])  # one more DVS word whose row, 300, lies on no DAVIS sensor
    path.write_bytes(path.read_bytes() + np.array([300 << 22, last_time], ">u4").tobytes())
    with pytest.raises(EventFileError, match=r"no '# AEChip:' line\) and none fits the addresses .*y up to 300"):
        evstream.open_events(path)


def test_davis_aps_imu_and_external_words_are_dropped(tmp_path):
    path = tmp_path / "words.aedat"
    dvs = [5 << 22 | (345 - 10) << 12 | 1 << 11, 259 << 22 | 345 << 12, 0]
    aps, imu, external = 1 << 31 | 7 << 22, 1 << 31 | 3 << 10, 1 << 10 | 5 << 22
    path.write_bytes(_aedat2_bytes([dvs[0], aps, imu, dvs[1], external, dvs[2]], [10, 11, 12, 13, 14, 15]))
    events = evstream.read_events(path)
    assert events.tolist() == [(10, 5, 10, 1), (0, 259, 13, 0), (345, 0, 15, 0)]


def test_dvs128_layout_and_special_events(tmp_path):
    header = b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"
    path = tmp_path / "dvs.aedat"
    # x = 127 - bits 1-7, y = bits 8-14, raw bit 0 = 0 is ON; bit 15 = special event
    path.write_bytes(_aedat2_bytes([3 << 8 | 5 << 1, 1 << 15 | 9, 127 << 8 | 127 << 1 | 1], [1, 2, 3], header))
    assert evstream.read_events(path).tolist() == [(122, 3, 1, 1), (0, 127, 3, 0)]


def test_coordinates_outside_the_chip_are_an_error(tmp_path):
    path = tmp_path / "outside.aedat"
    path.write_bytes(_aedat2_bytes([0, 300 << 22], [1, 2]))
    with pytest.raises(EventFileError, match="outside.aedat at byte offset .*outside the 346x260 sensor"):
        evstream.read_events(path)


def test_truncated_word_warns_and_strict_raises(shared, tmp_path):
    data = DVS128.read_bytes()
    cut = tmp_path / "cut.aedat"
    cut.write_bytes(data[:-5])
    with pytest.warns(TruncatedFileWarning, match=f"offset {len(data) - 8}: file ends 3 bytes into"):
        events = evstream.read_events(cut, chip="DVS128")
    np.testing.assert_array_equal(events, _ref(DVS128)[:-1])
    with pytest.raises(EventFileError, match=f"cut.aedat at byte offset {len(data) - 8}"):
        evstream.read_events(cut, chip="DVS128", strict=True)


def test_streaming_across_small_blocks(shared, monkeypatch):
    monkeypatch.setattr(aedat2, "BLOCK_EVENTS", 5000)  # blocks lose their APS/IMU words: uneven sizes
    monkeypatch.setattr(record_file, "READ_BYTES", 8 * 1000)
    ref = _ref(DAVIS240)
    with evstream.open_events(DAVIS240) as reader:
        for n in (1, 4999, 65536):
            np.testing.assert_array_equal(np.concatenate(list(reader.chunks(n))), ref)
        for window_us in (997, 50_000):
            windows = list(reader.time_windows(window_us))
            assert len(windows) == (ref["t"][-1] - ref["t"][0]) // window_us + 1
            np.testing.assert_array_equal(np.concatenate(windows), ref)
        for target in (0, int(ref["t"][1000]), int(ref["t"][1000]) + 1, int(ref["t"][-1]), int(ref["t"][-1]) + 1):
            reader.seek(target)
            np.testing.assert_array_equal(reader.read(), ref[np.searchsorted(ref["t"], target):])


@pytest.mark.parametrize(("size", "chip_line"), [
    ((128, 128), b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"),
    ((240, 180), b"# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n"),
    ((346, 260), b"# AEChip: eu.seebetter.ini.chips.davis.Davis346B\r\n"),
])
def test_writer_round_trip(tmp_path, monkeypatch, size, chip_line):
    monkeypatch.setattr(aedat2, "BLOCK_EVENTS", 700)
    monkeypatch.setattr(record_file, "READ_BYTES", 8 * 700)
    events = synthetic_events(5000, *size, seed=size[0])
    events["t"] += 4_294_000_000  # crosses 2^32: stored modulo 2^32, unwrapped on reading
    path = tmp_path / "out.aedat"
    with evstream.open_writer(path, (*size, 2), format="aedat2") as writer:
        for part in np.array_split(events, 4):
            writer.write(part)
    data = path.read_bytes()
    assert data.startswith(b"#!AER-DAT2.0\r\n") and chip_line in data[:400]
    assert evstream.io.detect_format(path) == "aedat2"
    with evstream.open_events(path) as reader:
        assert reader.sensor_size == (*size, 2)
        np.testing.assert_array_equal(reader.read(), events)


def test_writer_matches_the_reference_file(shared, tmp_path):
    """Our DVS128 words are byte-identical to the jAER recording's."""
    ref = _ref(DVS128)
    path = tmp_path / "copy.aedat"
    evstream.write_events(path, ref, (128, 128, 2), format="aedat2")
    original = DVS128.read_bytes()
    assert path.read_bytes()[-8 * len(ref):] == original[-8 * len(ref):]


def test_writer_rejects_unknown_sensor(tmp_path):
    with pytest.raises(ValueError, match="AEDAT 2.0 writes DVS128"):
        evstream.open_writer(tmp_path / "x.aedat", (640, 480, 2), format="aedat2")
