"""Hostile files made from the shared real recordings by hand: each ends in an EventFileError naming
the file and the problem, or in events plus a warning, never in another exception or silent garbage."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

import evstream
import evstream.io.aedat4 as aedat4
import evstream.io.aedat4_codec as aedat4_codec
from evstream import EventFileError
from evstream.io.corruption import CorruptDataWarning
from tests.conftest import RECORDINGS

DAT = RECORDINGS / "dat/imx636_faery_gen4.dat"
EVT2 = RECORDINGS / "evt2/evt2_sample_gen3.raw"
EVT3 = RECORDINGS / "evt3/pedestrians_gen41.raw"
AEDAT4 = RECORDINGS / "aedat4/davis346_aestream.aedat4"
DAVIS240 = RECORDINGS / "aedat2/IMU_translBoxes_davis240c.aedat"
HUGE = b"99999999999999999999999"


def _mutant(tmp_path, source, old: bytes, new: bytes, name: str | None = None):
    """A copy of ``source`` with its first ``old`` replaced by ``new``."""
    data = source.read_bytes()
    assert old in data
    path = tmp_path / (name or source.name)
    path.write_bytes(data.replace(old, new, 1))
    return path


def _raises(path, reason: str, **options):
    with pytest.raises(EventFileError, match=re.escape(str(path)) + ".*: " + reason):
        evstream.read_events(path, **options)


@pytest.mark.parametrize(("source", "old", "new", "reason"), [
    (DAT, b"% Width 1280", b"% Width " + HUGE, r"% Width '99999999999999999999999' is not a sensor size"),
    (DAT, b"% Height 720", b"% Height 0", r"% Height '0' is not a sensor size"),
    (EVT2, b"% evt 2.0", b"% evt 2.0\n% geometry " + HUGE + b"x720", r"% geometry width '9{23}' is not a sensor size"),
    (EVT3, b"% evt 3.0", b"% evt 3.0\n% format EVT3;height=720;width=-5", r"% format width '-5' is not a sensor size"),
    (AEDAT4, b'"sizeX" type="int">346<', b'"sizeX" type="int">-05<', r"info node: sizeX of stream 0 '-05' is not a"),
    (AEDAT4, b'"sizeY" type="int">260<', b'"sizeY" type="int">000<', r"info node: sizeY of stream 0 '000' is not a"),
], ids=["dat-huge-width", "dat-zero-height", "evt2-huge-geometry", "evt3-negative-width", "aedat4-negative-sizeX",
        "aedat4-zero-sizeY"])
def test_header_sizes_out_of_range_name_their_field(shared, tmp_path, source, old, new, reason):
    """Numbers above 2^64 once reached numba (TypingError in a fresh process, OverflowError when warm)."""
    _raises(_mutant(tmp_path, source, old, new), reason)


def test_hdf5_and_npz_sizes_out_of_range_name_their_field(shared, tmp_path):
    events = evstream.read_events(EVT3)
    h5 = tmp_path / "pedestrians.h5"
    evstream.write_events(h5, events, (1280, 720, 2))
    with h5py.File(h5, "r+") as f:
        f.attrs["width"] = np.uint64(2**64 - 1)
    _raises(h5, r"bad width/height attributes \(width attribute '18446744073709551615' is not a sensor size")
    npz = tmp_path / "pedestrians.npz"
    evstream.write_events(npz, events, (1280, 720, 2))
    data = dict(np.load(npz))
    data["sensor_size"] = np.array([1280, -720, 2])
    buffer = io.BytesIO()
    np.savez(buffer, **data)
    npz.write_bytes(buffer.getvalue())
    _raises(npz, r"sensor_size height '-720' is not a sensor size")


def test_empty_aechip_line_is_no_chip(shared, tmp_path):
    """It raised AttributeError in aedat_text.sensor_of; now the chip is inferred from the addresses."""
    path = _mutant(tmp_path, DAVIS240, b"# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C", b"# AEChip: ")
    with pytest.warns(evstream.io.ChipInferredWarning, match="chip DAVIS240C inferred"):
        np.testing.assert_array_equal(evstream.read_events(path), evstream.read_events(DAVIS240))
    np.testing.assert_array_equal(evstream.read_events(path, chip="DAVIS240C"), evstream.read_events(DAVIS240))



BOMB_CHILD = """
import sys
import evstream

try:
    evstream.read_events(sys.argv[1])
except evstream.EventFileError as err:
    print(err)
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM")))
"""


def _first_packet(raw: bytes) -> int:
    """Byte offset of an AEDAT 4 file's first packet (after the magic, the length and the IOHeader)."""
    return 14 + 4 + int.from_bytes(raw[14:18], "little")


def _with_packet(tmp_path, source, data: bytes, name: str):
    """A copy of ``source`` with a packet of stream 0 holding ``data`` before its first packet; the
    IOHeader's data table position moves with it (the table's own offsets no longer match, so it is
    not trusted: packets are walked from the start)."""
    raw = source.read_bytes()
    start = _first_packet(raw)
    packet = (0).to_bytes(4, "little") + len(data).to_bytes(4, "little") + data
    with aedat4.Aedat4Reader(source) as reader:
        table_pos = reader._table_pos
    header = raw[:start]
    assert header.count(table_pos.to_bytes(8, "little")) == 1
    header = header.replace(table_pos.to_bytes(8, "little"), (table_pos + len(packet)).to_bytes(8, "little"))
    path = tmp_path / name
    path.write_bytes(header + packet + raw[start:])
    return path, start


def test_lz4_bomb_is_an_error_within_bounded_memory(shared, tmp_path):
    """An LZ4 packet of 4 MB inflating to 1 GiB of zeros, its size not in its frame header: the reader
    stops at its bound (64x, at most 128 MiB) and the process peaks under 300 MB (it took 628 MB for
    a 1.5 MB file before)."""
    import lz4.frame

    compressor = lz4.frame.LZ4FrameCompressor()  # begin() without a source size: none in the header
    zeros = bytes(1 << 20)
    bomb = compressor.begin() + b"".join(compressor.compress(zeros) for _ in range(1024)) + compressor.flush()
    path, offset = _with_packet(tmp_path, AEDAT4, bomb, "bomb.aedat4")
    out = subprocess.run([sys.executable, "-c", BOMB_CHILD, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    message, peak_mb = out.stdout.splitlines()
    assert aedat4_codec.inflate_limit(len(bomb)) == aedat4_codec.MAX_INFLATED == 128 << 20
    assert message == (f"{path} at byte offset {offset}: corrupt packet: lz4 frame inflates beyond the "
                       f"{128 << 20}-byte bound")
    assert int(peak_mb) < 300, f"peak RSS {peak_mb} MB"


def test_bombs_stating_their_size_and_zstd_bombs_are_errors(shared, tmp_path):
    import lz4.frame
    import zstandard

    zeros = bytes(64 << 20)
    stated = lz4.frame.compress(zeros)  # states 64 MiB in its frame header: refused before inflating
    path, offset = _with_packet(tmp_path, AEDAT4, stated, "stated.aedat4")
    _raises(path, rf"corrupt packet: lz4 frame states {64 << 20} bytes, beyond the "
                  rf"{aedat4_codec.inflate_limit(len(stated))}-byte bound")
    events = evstream.read_events(AEDAT4)
    for store_size in (True, False):
        plain = tmp_path / "zstd.aedat4"
        evstream.write_events(plain, events, (346, 260, 2), compression="zstd")
        np.testing.assert_array_equal(evstream.read_events(plain), events)
        bomb = zstandard.ZstdCompressor(write_content_size=store_size).compress(zeros)
        path, offset = _with_packet(tmp_path, plain, bomb, f"zstd_bomb_{store_size}.aedat4")
        reason = "states 67108864 bytes, beyond the" if store_size else "is incomplete or inflates beyond the"
        _raises(path, rf"corrupt packet: zstd frame {reason} {aedat4_codec.inflate_limit(len(bomb))}-byte bound")


NMNIST = RECORDINGS / "atis_bin/nmnist_sample_tonic.bin"
FACES = RECORDINGS / "atis_bin/ncaltech101_Faces_easy_image_0001.bin"


def test_atis_file_cut_inside_a_record_is_detected_and_keeps_its_complete_events(shared, tmp_path):
    """Detection once required the size to be a multiple of 5: a cut file was 'unknown event file format'."""
    path = tmp_path / NMNIST.name
    path.write_bytes(NMNIST.read_bytes()[:10_003])
    assert evstream.io.detect_format(path) == "atis_bin"
    with pytest.warns(evstream.TruncatedFileWarning, match="offset 10000: file ends 3 bytes into a 5-byte record"):
        events = evstream.read_events(path)
    ref = evstream.read_events(NMNIST)
    np.testing.assert_array_equal(events, ref[:len(events)])
    assert len(events) == 2000  # the 2000 complete records are events (no overflow marker)


def test_bin_file_that_is_not_atis_is_named_as_such(shared, tmp_path):
    path = tmp_path / "gen4.bin"
    path.write_bytes(DAT.read_bytes()[200:300_000])
    with pytest.raises(EventFileError, match=r"gen4.bin at byte offset 0: unknown event file format: a .bin file, "
                                             r"but not ATIS records \(record \d+ has row \d+, above 240\)"):
        evstream.read_events(path)


def test_atis_dataset_sensor_reports_events_outside_it(shared, tmp_path):
    """One flipped row byte stretched N-MNIST to 34x68 (the size came from the largest row)."""
    data = bytearray(NMNIST.read_bytes())
    data[5 * 100 + 1] = 67  # record 100 (an event) gets row 67
    path = tmp_path / NMNIST.name
    path.write_bytes(bytes(data))
    with evstream.open_events(path) as reader:
        assert reader.sensor_size == (34, 68, 2)  # tonic's convention, kept when no data set is named
    with evstream.open_events(path, dataset="nmnist") as reader:
        assert reader.sensor_size == (34, 34, 2)
        with pytest.raises(EventFileError, match=r"offset 0: event \(\d+, 67\) at t=\d+ us is outside the 34x34"):
            reader.read()
    np.testing.assert_array_equal(evstream.read_events(NMNIST, dataset="nmnist"), evstream.read_events(NMNIST))
    with evstream.open_events(FACES, dataset="ncaltech101") as reader:
        assert reader.sensor_size == (151, 173, 2)  # per file, within 240x180
    data = bytearray(FACES.read_bytes())
    data[5 * 1000] = 250  # record 1000 gets column 250
    path = tmp_path / FACES.name
    path.write_bytes(bytes(data))
    with evstream.open_events(path, dataset="ncaltech101") as reader:
        assert reader.sensor_size == (240, 173, 2)
        with pytest.raises(EventFileError, match=r"event \(250, \d+\) at t=\d+ us is outside the 240x173 sensor"):
            reader.read()
    with pytest.raises(ValueError, match="dataset must be one of"):
        evstream.open_events(NMNIST, dataset="mnist")


NCARS = RECORDINGS / "dat/ncars_sample_tonic.dat"


def _data_start(source) -> int:
    """Where the records of a shared DAT or AEDAT 2.0 recording start (after the event type and size bytes)."""
    with evstream.open_events(source) as reader:
        return reader._data_offset


def test_corrupt_dat_timestamp_byte_warns_of_a_doubtful_wrap(shared, tmp_path):
    """The 32-bit wrap rule made every event after a corrupt top byte 2^32 us late, in silence."""
    data = bytearray(NCARS.read_bytes())
    record = _data_start(NCARS) + 8 * 1000
    data[record + 3] = 0x9A  # the top byte of record 1000's time: a jump of ~43 min, then a "wrap"
    path = tmp_path / NCARS.name
    path.write_bytes(bytes(data))
    with pytest.warns(CorruptDataWarning, match=rf"ncars_sample_tonic.dat at byte offset {record + 8}: the 32-bit "
                                                r"time wraps here \(raw time \d+ us\) by or across a step of 16.8 s"):
        events = evstream.read_events(path)
    ref = evstream.read_events(NCARS)
    np.testing.assert_array_equal(events[:1000], ref[:1000])
    np.testing.assert_array_equal(events["t"][1001:], ref["t"][1001:] + 2**32)  # what the warning says
    with pytest.raises(EventFileError, match="the 32-bit time wraps here"):
        evstream.read_events(path, strict=True)


@pytest.mark.parametrize("change", [51, -13], ids=["51-byte-duplicate", "13-bytes-deleted"])
def test_aedat2_words_that_lose_alignment_are_resynchronised(shared, tmp_path, change):
    """A 51-byte duplicate once made ~84 k words look like APS/IMU samples: 69,884 events vanished
    with only a 'file ends 3 bytes into a record' warning."""
    raw = DAVIS240.read_bytes()
    start = _data_start(DAVIS240)
    at = start + 8 * 98_304 + 13  # inside a record
    record = at - 5  # the record the damage begins in
    if change > 0:  # the bytes before ``at`` once more: the copy of ``record`` ending them is whole
        data = raw[:at] + raw[at - change:at] + raw[at:]
        resume = record + change
    else:  # the first record after the gap, where it has moved to
        data = raw[:at] + raw[at - change:]
        resume = start + -(-(at - change - start) // 8) * 8 + change
    path = tmp_path / DAVIS240.name
    path.write_bytes(data)
    with pytest.warns(CorruptDataWarning, match=rf"offset {record}: the words lost their alignment here \(implausible "
                                                rf"times\): decoding resumed after skipping {resume - record} bytes"
                      ) as caught:
        events = evstream.read_events(path)
    assert [type(w.message) for w in caught] == [CorruptDataWarning]  # and no cut record at the end
    ref = evstream.read_events(DAVIS240)
    if change > 0:
        np.testing.assert_array_equal(events, ref)
    else:  # the events of the 3 records holding deleted bytes are gone, and only those
        gap = len(ref) - len(events)
        split = int(np.flatnonzero(events != ref[:len(events)])[0])
        assert 0 < gap <= 3
        np.testing.assert_array_equal(events[:split], ref[:split])
        np.testing.assert_array_equal(events[split:], ref[split + gap:])


def test_aedat4_mid_file_deletion_names_the_corrupt_bytes(shared, tmp_path):
    """It was reported as 'file ends inside a packet of stream 278532903', a stream that does not exist."""
    raw = AEDAT4.read_bytes()
    cut = len(raw) // 2
    path = tmp_path / AEDAT4.name
    path.write_bytes(raw[:cut] + raw[cut + 1000:])
    with pytest.warns(CorruptDataWarning, match=r"offset \d+: corrupt or missing bytes: a packet header here names "
                                                r"stream -?\d+, which the file's header does not list \(streams "
                                                r"\[0, 1, 2, 3\]\); the rest is not read"):
        events = evstream.read_events(path)
    ref = evstream.read_events(AEDAT4)
    assert 0 < len(events) < len(ref)
    np.testing.assert_array_equal(events, ref[:len(events)])
    with pytest.raises(EventFileError, match="corrupt or missing bytes"):
        evstream.read_events(path, strict=True)
