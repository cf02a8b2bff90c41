"""AEDAT 4.0: exact decodes of real DV recordings, streaming, seeking, bad input, writer and peers."""

from __future__ import annotations

import struct
import warnings

import lz4.frame
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evstream.events import EventFileError, TruncatedFileWarning, empty_events
from evstream.io import detect_format, open_events, read_events, write_events
from evstream.io import flatbuffers_lite as fb
from evstream.io.aedat4 import Aedat4Reader, Aedat4Writer
from evstream.io.aedat4_codec import _unpack_events
from evstream.io.corruption import CorruptDataWarning
from tests.conftest import RECORDINGS, load_reference, synthetic_events

FILES = {
    "davis346_aestream.aedat4": (346, 260),
    "dvxplorer_tonic_sample.aedat4": (320, 240),
    "davis346_test_data_trimmed.aedat4": (346, 260),
}
DAVIS = "davis346_aestream.aedat4"


AEDAT4 = RECORDINGS / "aedat4"


def packet_headers(path):
    """(header offset, stream id, size) of every packet, parsed by hand from the file's bytes."""
    data = path.read_bytes()
    (header_len,) = struct.unpack_from("<i", data, 14)
    buf = data[18:18 + header_len]
    table_pos = fb.scalar(buf, fb.root_table(buf), 1, "q", -1)
    end = table_pos if table_pos > 0 else len(data)
    pos, out = 18 + header_len, []
    while pos + 8 <= end:
        stream, size = struct.unpack_from("<ii", data, pos)
        out.append((pos, stream, size))
        pos += 8 + size
    return out


def without_table(src, dst):
    """Copy of an AEDAT 4 file with its data table removed and dataTablePosition = -1."""
    data = bytearray(src.read_bytes())
    (header_len,) = struct.unpack_from("<i", data, 14)
    buf = bytes(data[18:18 + header_len])
    pos = fb.field_position(buf, fb.root_table(buf), 1)
    table_pos = struct.unpack_from("<q", buf, pos)[0]
    struct.pack_into("<q", data, 18 + pos, -1)
    dst.write_bytes(bytes(data[:table_pos]))
    return dst


# --- real recordings ---------------------------------------------------------------------
@pytest.mark.parametrize("name", FILES)
def test_decodes_reference_exactly(shared, name):
    path = AEDAT4 / name
    assert detect_format(path) == "aedat4"
    with open_events(path) as reader:
        assert isinstance(reader, Aedat4Reader)
        assert reader.sensor_size == (*FILES[name], 2)
        assert reader.compression == "lz4"
        events = reader.read()
    np.testing.assert_array_equal(events, load_reference(path.with_name(name + ".ref.npy")))


def test_streams_listed_and_non_event_stream_rejected(shared):
    path = AEDAT4 / DAVIS
    with open_events(path) as reader:
        assert [(s.id, s.type) for s in reader.streams] == [(0, "EVTS"), (1, "FRME"), (2, "IMUS"), (3, "TRIG")]
        assert reader.stream_id == 0
    with pytest.raises(EventFileError, match="no event stream with id 1"):
        Aedat4Reader(path, stream_id=1)


@pytest.mark.parametrize("name", FILES)
def test_chunks_and_windows_concatenate_to_full_read(shared, name):
    path = AEDAT4 / name
    full = read_events(path)
    with open_events(path) as reader:
        for n in (777, 10_000, len(full) // 3, 1 << 21):
            parts = list(reader.chunks(n))
            assert all(len(p) == n for p in parts[:-1])
            np.testing.assert_array_equal(np.concatenate(parts), full)
        for window_us in (1_000, 33_333, 10_000_000):
            parts = list(reader.time_windows(window_us))
            np.testing.assert_array_equal(np.concatenate(parts), full)
            starts = full["t"][0] + window_us * np.arange(len(parts))
            assert all(np.all((p["t"] >= s) & (p["t"] < s + window_us)) for p, s in zip(parts, starts))


def seek_times(t):
    return [int(t[0]) - 5, int(t[0]), int(t[len(t) // 3]), int(t[len(t) // 2]) + 1, int(t[-1]), int(t[-1]) + 1]


@pytest.mark.parametrize("table", [True, False])
@pytest.mark.parametrize("name", FILES)
def test_seek_lands_on_first_event_at_or_after_t(shared, tmp_path, name, table):
    """With the data table, without it, and with the trimmed file's untrustworthy table (zero counts/times)."""
    path = AEDAT4 / name
    if not table:
        path = without_table(path, tmp_path / "notable.aedat4")
    ref = load_reference(AEDAT4 / (name + ".ref.npy"))
    with open_events(path) as reader:
        assert (reader.data_table() is not None) is table
        for t in seek_times(ref["t"]):
            reader.seek(t)
            np.testing.assert_array_equal(reader.read(), ref[np.searchsorted(ref["t"], t):])
        reader.rewind()
        assert len(reader.read()) == len(ref)


def test_seek_uses_data_table_to_skip_packets(shared, tmp_path):
    """A corrupt event packet before the seek point is never read when the data table is present."""
    src = AEDAT4 / DAVIS
    ref = load_reference(src.with_name(DAVIS + ".ref.npy"))
    first = next(p for p in packet_headers(src) if p[1] == 0)
    data = bytearray(src.read_bytes())
    data[first[0] + 8:first[0] + 12] = b"\0\0\0\0"  # destroy the LZ4 frame magic
    path = tmp_path / "corrupt_first.aedat4"
    path.write_bytes(bytes(data))
    t = int(ref["t"][len(ref) // 2])
    with open_events(path) as reader:
        reader.seek(t)
        np.testing.assert_array_equal(reader.read(), ref[np.searchsorted(ref["t"], t):])
        reader.rewind()
        with pytest.raises(EventFileError, match="corrupt packet") as err:
            reader.read()
    assert err.value.offset == first[0]


# --- bad input ---------------------------------------------------------------------------
def test_wrong_magic(tmp_path):
    path = tmp_path / "bad.aedat4"
    path.write_bytes(b"#!AER-DAT4.1\r\n" + bytes(100))
    with pytest.raises(EventFileError, match="not an AEDAT 4.0 file") as err:
        Aedat4Reader(path)
    assert err.value.offset == 0


def test_header_length_past_end(tmp_path):
    path = tmp_path / "bad.aedat4"
    path.write_bytes(b"#!AER-DAT4.0\r\n" + struct.pack("<i", 5000) + bytes(100))
    with pytest.raises(EventFileError, match="IOHeader length 5000") as err:
        open_events(path)
    assert err.value.offset == 14


def event_packet_headers(path):
    return [p for p in packet_headers(path) if p[1] == 0]


def test_corrupt_packet_names_its_offset(shared, tmp_path):
    src = AEDAT4 / DAVIS
    victim = event_packet_headers(src)[3]
    data = bytearray(src.read_bytes())
    data[victim[0] + 40:victim[0] + 200] = bytes(160)
    path = tmp_path / "corrupt.aedat4"
    path.write_bytes(bytes(data))
    with pytest.raises(EventFileError, match="corrupt packet") as err:
        read_events(path)
    assert err.value.offset == victim[0]
    assert str(path) in str(err.value)


def test_packet_running_past_the_data_is_an_error(shared, tmp_path):
    src = AEDAT4 / DAVIS
    victim = event_packet_headers(src)[2]
    data = bytearray(src.read_bytes())
    struct.pack_into("<i", data, victim[0] + 4, 1 << 30)
    path = tmp_path / "oversized.aedat4"
    path.write_bytes(bytes(data))
    with pytest.raises(EventFileError, match="runs past the end") as err:
        read_events(path)
    assert err.value.offset == victim[0]


def test_bad_flatbuffer_offsets(tmp_path):
    path = tmp_path / "plain.aedat4"
    write_events(path, synthetic_events(100, 64, 48), (64, 48, 2), compression="none", packet_events=40)
    second = event_packet_headers(path)[1]
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, second[0] + 8 + 4 + 24, 1 << 28)  # the event vector's length
    path.write_bytes(bytes(data))
    with pytest.raises(EventFileError, match="bad event packet FlatBuffer") as err:
        read_events(path)
    assert err.value.offset == second[0]


@pytest.mark.parametrize("inside", ["packet", "header"])
def test_truncated_file_keeps_complete_packets(shared, tmp_path, inside):
    src = AEDAT4 / DAVIS
    ref = load_reference(src.with_name(DAVIS + ".ref.npy"))
    headers = packet_headers(src)
    victim = [p for p in headers if p[1] == 0][5]
    cut = victim[0] + (victim[2] // 2 if inside == "packet" else 5)
    path = tmp_path / "cut.aedat4"
    path.write_bytes(src.read_bytes()[:cut])
    with open_events(path) as reader:
        with pytest.warns(TruncatedFileWarning, match=f"byte offset {victim[0]}"):
            events = reader.read()
    complete = [p for p in headers if p[1] == 0 and p[0] < victim[0]]
    with Aedat4Reader(src) as intact:
        table = intact.data_table()
    expected = int(table["count"][np.isin(table["offset"], [p[0] + 8 for p in complete])].sum())
    assert len(events) == expected > 0
    np.testing.assert_array_equal(events, ref[:expected])
    with pytest.raises(EventFileError, match="file ends inside") as err:
        read_events(path, strict=True)
    assert err.value.offset == victim[0]


_POSITIONS = st.one_of(st.integers(0, 4_000), st.integers(0, 430_000))  # header region or anywhere


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=_POSITIONS, flips=st.lists(st.tuples(_POSITIONS, st.integers(1, 255)), max_size=4))
def test_fuzz_never_crashes(shared, tmp_path, cut, flips):
    """Random cuts and byte flips: events (with a warning when cut) or an EventFileError, nothing else."""
    src = AEDAT4 / "davis346_test_data_trimmed.aedat4"
    data = bytearray(src.read_bytes()[:cut])
    for pos, xor in flips:
        if pos < len(data):
            data[pos] ^= xor
    path = tmp_path / "fuzz.aedat4"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedFileWarning)
        try:
            events = read_events(path, format="aedat4")
        except EventFileError:
            return
    assert events["p"].max(initial=0) <= 1


# --- whole-file read: table-sized output, threads, fused checks -----------------------------
def test_unpack_kernel_matches_numpy():
    """The decode kernel against a NumPy twin: columns, polarity byte, the doubt flag; empty and unaligned input."""
    rng = np.random.default_rng(11)
    n = 1000
    words = np.empty(2 * n, np.int64)
    words[0::2] = np.sort(rng.integers(0, 1 << 40, n))
    x, y, pol = rng.integers(0, 64, n), rng.integers(0, 48, n), rng.integers(0, 256, n)
    words[1::2] = x | y << 16 | pol << 32 | rng.integers(0, 1 << 24, n) << 40  # garbage in the padding bytes
    unaligned = np.frombuffer(b"\0" + words.tobytes(), np.int64, offset=1)

    def twin(words, width, height):
        t, packed = words[0::2], words[1::2]
        ex, ey = packed & 0xFFFF, (packed >> 16) & 0xFFFF
        doubt = bool(np.any((ex >= width) | (ey >= height)) or np.any(np.diff(t) < 0))
        return ex, ey, t, ((packed >> 32) & 0xFF) != 0, doubt

    for w, width, height in [(words, 64, 48), (unaligned, 64, 48), (words, 63, 48), (words, 64, 47),
                             (words[::-1].copy(), 1 << 16, 1 << 16), (words[:0], 64, 48)]:
        out = empty_events(len(w) // 2)
        doubt = _unpack_events(w, width, height, out)
        ex, ey, t, p, expected_doubt = twin(w, width, height)
        assert doubt == expected_doubt
        for name, column in (("x", ex), ("y", ey), ("t", t), ("p", p)):
            np.testing.assert_array_equal(out[name], column.astype(np.int64))


def written(tmp_path, n=20_000, packet_events=700, compression="lz4", name="w.aedat4"):
    events = synthetic_events(n, 64, 48, seed=12)
    path = tmp_path / name
    write_events(path, events, (64, 48, 2), compression=compression, packet_events=packet_events)
    return path, events


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_read_is_the_stream_for_any_thread_count(tmp_path, threads):
    path, events = written(tmp_path)
    with Aedat4Reader(path, threads=threads) as reader:
        np.testing.assert_array_equal(reader.read(), events)
        np.testing.assert_array_equal(np.concatenate(list(reader)), events)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        Aedat4Reader(path, threads=0)


def event_vector(data, header_pos):
    """Absolute byte position and length of the event structs of an uncompressed packet."""
    buf = bytes(data[header_pos + 12:header_pos + 8 + struct.unpack_from("<i", data, header_pos + 4)[0]])
    start, n = fb.vector(buf, fb.root_table(buf, b"EVTS"), 0, 16)
    return header_pos + 12 + start, n


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("damage", ["x", "y", "time_in_packet", "time_across_packets"])
def test_read_checks_name_the_packet(tmp_path, damage, threads):
    path, events = written(tmp_path, compression="none")
    headers = event_packet_headers(path)
    data = bytearray(path.read_bytes())
    victim = headers[len(headers) // 2][0]
    vector, n = event_vector(data, victim)
    bad = 0 if damage == "time_across_packets" else n // 2
    if damage in ("x", "y"):
        struct.pack_into("<h", data, vector + 16 * bad + (8 if damage == "x" else 10), 64 if damage == "x" else -1)
    else:
        struct.pack_into("<q", data, vector + 16 * bad, 0)
    path.write_bytes(bytes(data))
    message = "outside the 64x48 sensor" if damage in ("x", "y") else "time goes backwards"
    with Aedat4Reader(path, threads=threads) as reader:
        with pytest.raises(EventFileError, match=f"{message}.*event {bad} of the block") as err:
            reader.read()
    assert err.value.offset == victim


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_read_reports_the_first_corrupt_packet(tmp_path, threads):
    """Runs decoded in parallel each stop at their own bad packet; the earliest one is raised."""
    path, _ = written(tmp_path)
    headers = event_packet_headers(path)
    data = bytearray(path.read_bytes())
    for k in (len(headers) - 2, len(headers) // 3):
        data[headers[k][0] + 8:headers[k][0] + 12] = bytes(4)
    path.write_bytes(bytes(data))
    with pytest.raises(EventFileError, match="corrupt packet") as err:
        read_events(path, threads=threads)
    assert err.value.offset == headers[len(headers) // 3][0]


def test_read_falls_back_when_the_table_counts_are_wrong(tmp_path):
    path, events = written(tmp_path)
    with Aedat4Reader(path) as reader:
        reader.data_table()["count"][[3, 4]] += [1, -1]  # the cached table now disagrees with two packets
        np.testing.assert_array_equal(reader.read(), events)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 40_000), st.integers(1, 255)), min_size=1, max_size=4),
       threads=st.sampled_from([1, 3]))
def test_fuzz_whole_file_read(tmp_path, flips, threads):
    """Byte flips in a file with a valid data table (the table-sized path): events or EventFileError."""
    src, events = written(tmp_path, n=3000, packet_events=250, name="src.aedat4")
    data = bytearray(src.read_bytes())
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    path = tmp_path / "fuzz.aedat4"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedFileWarning)
        warnings.simplefilter("ignore", CorruptDataWarning)
        try:
            out = read_events(path, format="aedat4", threads=threads)
        except EventFileError:
            return
    assert out["p"].max(initial=0) <= 1 and np.all(np.diff(out["t"]) >= 0)
    assert np.all(out["x"] < 64) and np.all(out["y"] < 48)


# --- writer ------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["lz4", "zstd", "none", "lz4_high", "zstd_high"])
def test_writer_round_trip(tmp_path, compression):
    events = synthetic_events(25_000, 346, 260, seed=3)
    path = tmp_path / "out.aedat4"
    with Aedat4Writer(path, (346, 260, 2), compression=compression, packet_events=4096) as writer:
        for part in np.array_split(events, [10, 5000, 5001, 20000]):
            writer.write(part)
    with open_events(path) as reader:
        assert reader.compression == compression
        assert reader.sensor_size == (346, 260, 2)
        np.testing.assert_array_equal(reader.read(), events)
        table = reader.data_table()
    assert table["count"].tolist() == [4096] * 6 + [25_000 - 6 * 4096]
    assert table["t_start"][0] == events["t"][0] and table["t_end"][-1] == events["t"][-1]


def test_writer_empty_file(tmp_path):
    path = tmp_path / "empty.aedat4"
    write_events(path, synthetic_events(0), (128, 128, 2))
    with open_events(path) as reader:
        assert reader.sensor_size == (128, 128, 2)
        assert len(reader.read()) == 0


def test_writer_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match="compression must be one of"):
        Aedat4Writer(tmp_path / "x.aedat4", (10, 10, 2), compression="gzip")
    with pytest.raises(ValueError, match="int16 coordinates"):
        Aedat4Writer(tmp_path / "x.aedat4", (40_000, 10, 2))


def test_file_cut_inside_its_data_table_still_reads_and_seeks(shared, tmp_path):
    src = AEDAT4 / DAVIS
    ref = load_reference(src.with_name(DAVIS + ".ref.npy"))
    path = tmp_path / "cut_table.aedat4"
    path.write_bytes(src.read_bytes()[:-300])
    with open_events(path) as reader:
        with pytest.raises(EventFileError, match="bad data table"):
            reader.data_table()
        t = int(ref["t"][len(ref) // 2])
        reader.seek(t)
        np.testing.assert_array_equal(reader.read(), ref[np.searchsorted(ref["t"], t):])
        reader.rewind()
        np.testing.assert_array_equal(reader.read(), ref)


def test_written_file_seeks(tmp_path):
    events = synthetic_events(30_000, 64, 48, seed=4)
    path = tmp_path / "seek.aedat4"
    write_events(path, events, (64, 48, 2), packet_events=1000)
    with open_events(path) as reader:
        for t in seek_times(events["t"]):
            reader.seek(t)
            np.testing.assert_array_equal(reader.read(), events[np.searchsorted(events["t"], t):])


# --- peers -------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
def test_dv_processing_reads_our_file(tmp_path, compression):
    dv = pytest.importorskip("dv_processing")
    events = synthetic_events(20_000, 346, 260, seed=5)
    path = tmp_path / "ours.aedat4"
    write_events(path, events, (346, 260, 2), compression=compression, packet_events=3000, source="evcam")
    recording_ = dv.io.MonoCameraRecording(str(path))
    assert recording_.getEventResolution() == (346, 260)
    assert recording_.getCameraName() == "evcam"
    batches = []
    while (batch := recording_.getNextEventBatch()) is not None:
        batches.append(batch.numpy())
    theirs = np.concatenate(batches)
    for ours, their in (("t", "timestamp"), ("x", "x"), ("y", "y"), ("p", "polarity")):
        np.testing.assert_array_equal(theirs[their].astype(np.int64), events[ours].astype(np.int64))
    start, end = int(events["t"][7000]), int(events["t"][12000])
    window = recording_.getEventsTimeRange(start, end).numpy()  # uses our data table
    np.testing.assert_array_equal(window["timestamp"], events["t"][(events["t"] >= start) & (events["t"] < end)])


@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
def test_aedat_package_reads_our_file(tmp_path, compression):
    aedat = pytest.importorskip("aedat")
    events = synthetic_events(20_000, 320, 240, seed=6)
    path = tmp_path / "ours.aedat4"
    write_events(path, events, (320, 240, 2), compression=compression, packet_events=3000)
    decoder = aedat.Decoder(path)
    assert decoder.id_to_stream() == {0: {"type": "events", "width": 320, "height": 240}}
    theirs = np.concatenate([packet["events"] for packet in decoder if "events" in packet])
    for name in ("t", "x", "y", "p"):
        np.testing.assert_array_equal(theirs[name].astype(np.int64), events[name].astype(np.int64))


@pytest.mark.parametrize("compression", ["LZ4", "ZSTD", "NONE"])
def test_reads_dv_processing_files(tmp_path, compression):
    dv = pytest.importorskip("dv_processing")
    events = synthetic_events(15_000, 240, 180, seed=7)
    path = tmp_path / "theirs.aedat4"
    config = dv.io.MonoCameraWriter.EventOnlyConfig("dvcam", (240, 180))
    config.compression = getattr(dv.CompressionType, compression)
    writer = dv.io.MonoCameraWriter(str(path), config)
    for part in np.array_split(events, 4):
        store = dv.EventStore()
        for e in part:
            store.push_back(int(e["t"]), int(e["x"]), int(e["y"]), bool(e["p"]))
        writer.writeEvents(store)
    del writer
    with open_events(path) as reader:
        assert reader.sensor_size == (240, 180, 2)
        assert reader.compression == compression.lower()
        np.testing.assert_array_equal(reader.read(), events)
        reader.seek(int(events["t"][9000]))
        np.testing.assert_array_equal(reader.read(), events[9000:])


def test_picks_first_event_stream_or_stream_id(tmp_path):
    """A file with two event streams (ids 4 and 7, different sizes) interleaved with a trigger stream."""
    a, b = synthetic_events(300, 64, 48, seed=8), synthetic_events(200, 32, 16, seed=9)
    info = ('<dv version="2.0"><node name="outInfo" path="/outInfo/">'
            '<node name="2" path="/outInfo/2/"><attr key="typeIdentifier" type="string">TRIG</attr></node>'
            '<node name="4" path="/outInfo/4/"><attr key="typeIdentifier" type="string">EVTS</attr>'
            '<node name="info" path="/outInfo/4/info/"><attr key="sizeX" type="int">64</attr>'
            '<attr key="sizeY" type="int">48</attr></node></node>'
            '<node name="7" path="/outInfo/7/"><attr key="typeIdentifier" type="string">EVTS</attr>'
            '<node name="info" path="/outInfo/7/info/"><attr key="sizeX" type="int">32</attr>'
            '<attr key="sizeY" type="int">16</attr></node></node></node></dv>').encode()
    header = fb.build(fb.Table([fb.Scalar("i", 1), fb.Scalar("q", -1), fb.String(info)]), b"IOHE")
    out = bytearray(b"#!AER-DAT4.0\r\n" + struct.pack("<i", len(header)) + header)

    def packet(stream, events):
        words = np.zeros((len(events), 2), np.int64)
        words[:, 0] = events["t"]
        words[:, 1] = events["x"].astype(np.int64) | events["y"].astype(np.int64) << 16 | events["p"].astype(
            np.int64) << 32
        data = lz4.frame.compress(bytes(fb.build(fb.Table([fb.StructVector(words, 16, 8)]), b"EVTS", True)))
        out.extend(struct.pack("<ii", stream, len(data)) + data)

    for k in range(0, 300, 100):
        packet(4, a[k:k + 100])
        out.extend(struct.pack("<ii", 2, 3) + b"xyz")
        packet(7, b[k * 2 // 3:(k + 100) * 2 // 3])
    path = tmp_path / "two.aedat4"
    path.write_bytes(bytes(out))
    with open_events(path) as reader:
        assert (reader.stream_id, reader.sensor_size) == (4, (64, 48, 2))
        np.testing.assert_array_equal(reader.read(), a)
    with open_events(path, stream_id=7) as reader:
        assert reader.sensor_size == (32, 16, 2)
        np.testing.assert_array_equal(reader.read(), b)


def test_flatbuffer_reader_bounds_checks():
    buf = fb.build(fb.Table([fb.Scalar("q", 5), fb.String(b"hi")]), b"TEST")
    root = fb.root_table(buf, b"TEST")
    assert fb.scalar(buf, root, 0, "q", 0) == 5 and fb.string(buf, root, 1) == b"hi"
    assert fb.scalar(buf, root, 9, "i", -3) == -3
    with pytest.raises(fb.FlatBufferError, match="file identifier"):
        fb.root_table(buf, b"NOPE")
    with pytest.raises(fb.FlatBufferError):
        fb.string(buf[:-4], root, 1)


@pytest.mark.parametrize("name", FILES)
def test_vectorised_data_table_matches_row_by_row_parse(shared, name):
    """NumPy table parse against a per-row FlatBuffer twin (the trimmed file leaves fields at their defaults)."""
    with Aedat4Reader(AEDAT4 / name) as reader:
        table = reader.data_table()
        reader._file.seek(reader._table_pos)
        buf = reader._file.read()
    buf = lz4.frame.decompress(buf)[4:]
    rows = [(fb.scalar(buf, e, 0, "q", 0), *(fb.struct_field(buf, e, 1, "ii") or (-1, 0)), fb.scalar(buf, e, 2, "q", 0),
             fb.scalar(buf, e, 3, "q", 0), fb.scalar(buf, e, 4, "q", 0))
            for e in fb.table_vector(buf, fb.root_table(buf, b"FTAB"), 0)]
    assert [tuple(int(v) for v in row) for row in table] == rows


def test_data_table_matches_packets_and_reference(shared):
    path = AEDAT4 / DAVIS
    ref = load_reference(path.with_name(DAVIS + ".ref.npy"))
    headers = packet_headers(path)
    with open_events(path) as reader:
        table = reader.data_table()
    assert table["offset"].tolist() == [pos + 8 for pos, _, _ in headers]
    assert table["stream"].tolist() == [stream for _, stream, _ in headers]
    assert table["size"].tolist() == [size for _, _, size in headers]
    events = table[table["stream"] == 0]
    assert events["count"].sum() == len(ref) == 117_667
    ends = np.cumsum(events["count"])
    np.testing.assert_array_equal(events["t_start"], ref["t"][ends - events["count"]])
    np.testing.assert_array_equal(events["t_end"], ref["t"][ends - 1])
