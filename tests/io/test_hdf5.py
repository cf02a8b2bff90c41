"""HDF5 readers and writers: MVSEC and DSEC layouts (shared vectors) and evstream's own recording format."""

from __future__ import annotations

import h5py
import hdf5plugin
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import evstream
from evstream.events import EVENT_DTYPE, EventFileError
from evstream.io import detect_format, open_events, read_events, write_events
from evstream.io.evstream_h5 import CHUNK_EVENTS, EvstreamH5Reader, EvstreamH5Writer
from evstream.io.hdf5_datasets import DsecReader, MvsecReader, MvsecWriter, bisect_rows
from tests.conftest import VECTORS, load_reference, synthetic_events

MVSEC = VECTORS / "mvsec" / "mvsec_like_data.hdf5"
DSEC = VECTORS / "dsec" / "events_left" / "events.h5"
DSEC_PLAIN = VECTORS / "dsec" / "events_left" / "events_plain.h5"


@pytest.fixture(scope="module")
def mvsec_expected(shared):
    return load_reference(VECTORS / "mvsec" / "expected_events.npy")


@pytest.fixture(scope="module")
def dsec_expected(shared):
    return load_reference(VECTORS / "dsec" / "expected_abs.npy")


def seek_targets(t: np.ndarray) -> list[int]:
    """Before the first event, on events (first of a run of equal times), between events, after the last."""
    t0, t1 = int(t[0]), int(t[-1])
    return [t0 - 10**9, t0, t0 + 1, int(t[len(t) // 3]), int(t[len(t) // 2]) + 1, (t0 + t1) // 2, t1, t1 + 1]


def assert_seeks(reader, ref: np.ndarray) -> None:
    for target in seek_targets(ref["t"]):
        reader.seek(target)
        got = reader.read()
        np.testing.assert_array_equal(got, ref[np.searchsorted(ref["t"], target, side="left"):])


def test_bisect_rows_finds_first_at_or_after():
    values = np.array([1, 3, 3, 3, 7, 9])
    for target, expected in [(0, 0), (1, 0), (2, 1), (3, 1), (4, 4), (9, 5), (10, 6)]:
        assert bisect_rows(lambda i: values[i], target, 0, len(values)) == expected


# --- MVSEC ---------------------------------------------------------------------------------------
def test_mvsec_reads_expected_events(mvsec_expected):
    assert detect_format(MVSEC) == "mvsec"
    with open_events(MVSEC, camera="left") as reader:
        assert reader.format == "mvsec" and reader.sensor_size == (346, 260, 2)
        np.testing.assert_array_equal(reader.read(), mvsec_expected)


def test_mvsec_streams_and_seeks(mvsec_expected):
    with MvsecReader(MVSEC) as reader:
        np.testing.assert_array_equal(np.concatenate(list(reader.chunks(10_000))), mvsec_expected)
        np.testing.assert_array_equal(np.concatenate(list(reader.time_windows(7_000))), mvsec_expected)
        assert_seeks(reader, mvsec_expected)


def test_mvsec_seek_reads_log_n_rows(mvsec_expected, monkeypatch):
    reads = []
    original = MvsecReader._time_us
    monkeypatch.setattr(MvsecReader, "_time_us", lambda self, row: reads.append(row) or original(self, row))
    with MvsecReader(MVSEC) as reader:
        reader.seek(int(mvsec_expected["t"][5000]))
        first = next(iter(reader))
    assert first[0] == mvsec_expected[np.searchsorted(mvsec_expected["t"], mvsec_expected["t"][5000])]
    assert len(reads) <= int(np.ceil(np.log2(len(mvsec_expected)))) + 1


def test_mvsec_bad_camera_and_layout(shared):
    with pytest.raises(ValueError, match="camera"):
        MvsecReader(MVSEC, camera="middle")
    with pytest.raises(EventFileError, match="davis/right/events"):
        MvsecReader(MVSEC, camera="right")
    with pytest.raises(EventFileError, match="davis/left/events"):
        MvsecReader(DSEC)


def test_mvsec_out_of_range_coordinates(shared):
    with MvsecReader(MVSEC, sensor_size=(200, 260, 2)) as reader, pytest.raises(EventFileError, match="200x260"):
        reader.read()


def test_mvsec_non_finite_time_is_an_error(tmp_path):
    path = tmp_path / "bad_data.hdf5"
    rows = np.array([[1, 2, 1.0, 1], [3, 4, np.nan, -1]], dtype=np.float64)
    with h5py.File(path, "w") as f:
        f["davis/left/events"] = rows
    with pytest.raises(EventFileError, match="row 1") as err:
        read_events(path)
    assert err.value.offset is not None and str(path) in str(err.value)


def test_mvsec_writer_reproduces_the_layout(tmp_path, mvsec_expected):
    path = tmp_path / "seq_data.hdf5"
    with MvsecWriter(path, (346, 260, 2)) as writer:
        for part in np.array_split(mvsec_expected, 7):
            writer.write(part)
    with h5py.File(path, "r") as ours, h5py.File(MVSEC, "r") as theirs:
        ds = ours["davis/left/events"]
        assert ds.dtype == np.float64 and ds.shape == (len(mvsec_expected), 4) and ds.maxshape == (None, 4)
        np.testing.assert_array_equal(ds[:], theirs["davis/left/events"][:])  # bit for bit
    np.testing.assert_array_equal(read_events(path), mvsec_expected)


def test_mvsec_writer_adds_a_camera(tmp_path):
    left, right = synthetic_events(1000, seed=1), synthetic_events(500, seed=2)
    path = tmp_path / "stereo_data.hdf5"
    write_events(path, left, (346, 260, 2), format="mvsec")
    write_events(path, right, (346, 260, 2), format="mvsec", camera="right", mode="a")
    np.testing.assert_array_equal(read_events(path, camera="left"), left)
    np.testing.assert_array_equal(read_events(path, camera="right"), right)
    with pytest.raises(ValueError, match="exists already"):
        MvsecWriter(path, (346, 260, 2), camera="right", mode="a")


# --- DSEC ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [DSEC, DSEC_PLAIN], ids=["blosc", "plain"])
def test_dsec_reads_expected_events(path, dsec_expected):
    assert detect_format(path) == "dsec"
    with open_events(path, camera="left", sensor_size=(346, 260, 2)) as reader:
        assert reader.format == "dsec" and reader.camera == "left"
        np.testing.assert_array_equal(reader.read(), dsec_expected)
    with DsecReader(path) as reader:
        assert reader.sensor_size == (640, 480, 2)
        np.testing.assert_array_equal(np.concatenate(list(reader.chunks(4096))), dsec_expected)
        np.testing.assert_array_equal(np.concatenate(list(reader.time_windows(1_000))), dsec_expected)
        assert_seeks(reader, dsec_expected)


def test_dsec_windows_match_dsec_eventslicer(dsec_expected):
    """The windows the vector README checked with DSEC's EventSlicer, via seek + time_windows."""
    t_offset = 1_633_953_690_973_450
    t = dsec_expected["t"]
    with DsecReader(DSEC) as reader:
        for start, end in [(2500, 2501), (3000, 53000), (12345, 67891), (50000, 100000), (100000, 132499)]:
            reader.seek(t_offset + start)
            window = next(reader.time_windows(end - start))
            lo, hi = np.searchsorted(t, [t_offset + start, t_offset + end])
            np.testing.assert_array_equal(window, dsec_expected[lo:hi])


def test_dsec_without_ms_to_idx_seeks_by_bisection(tmp_path, dsec_expected):
    path = tmp_path / "events.h5"
    with h5py.File(path, "w") as f:
        for name in "xyp":
            f[f"events/{name}"] = dsec_expected[name].astype(np.uint8 if name == "p" else np.uint16)
        t_offset = int(dsec_expected["t"][0]) - 7
        f["events/t"] = (dsec_expected["t"] - t_offset).astype(np.uint32)
        f["t_offset"] = np.int64(t_offset)
    with DsecReader(path) as reader:
        assert_seeks(reader, dsec_expected)


def test_dsec_wrong_layout_and_range(tmp_path, shared):
    with pytest.raises(EventFileError, match="events/x"):
        DsecReader(MVSEC)
    path = tmp_path / "uneven.h5"
    with h5py.File(path, "w") as f:
        f["events/x"] = np.zeros(3, np.uint16)
        f["events/y"] = np.zeros(3, np.uint16)
        f["events/t"] = np.zeros(2, np.uint32)
        f["events/p"] = np.zeros(3, np.uint8)
    with pytest.raises(EventFileError, match="different lengths"):
        DsecReader(path)
    with DsecReader(DSEC, sensor_size=(300, 260, 2)) as reader, pytest.raises(EventFileError, match="300x260"):
        reader.read()


def test_hdf5_without_event_layout(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 3))
    with pytest.raises(EventFileError, match="without a known event layout"):
        read_events(path)
    with pytest.raises(EventFileError, match="evstream_format"):
        EvstreamH5Reader(path)
    not_hdf5 = tmp_path / "junk.h5"
    not_hdf5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(EventFileError, match="HDF5"):
        MvsecReader(not_hdf5)


# --- evstream's own format -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """~3.5 chunks of events written in uneven batches, with a run of equal times across a chunk edge."""
    events = synthetic_events(3 * CHUNK_EVENTS + 12_345, width=640, height=480, seed=3)
    events["t"] += 1_600_000_000_000_000
    edge = slice(CHUNK_EVENTS - 50, CHUNK_EVENTS + 50)
    events["t"][edge] = events["t"][CHUNK_EVENTS - 50]
    path = tmp_path_factory.mktemp("h5") / "rec.h5"
    with evstream.open_writer(path, (640, 480, 2)) as writer:
        for part in np.array_split(events, [10, 1000, 70_000, 70_001, 150_000]):
            writer.write(part)
    return path, events


def test_evstream_h5_round_trip_and_layout(recording):
    path, events = recording
    assert detect_format(path) == "evstream_h5"
    with h5py.File(path, "r") as f:
        assert f.attrs["evstream_format"] == 1 and (f.attrs["width"], f.attrs["height"]) == (640, 480)
        ds = f["events"]
        assert ds.dtype == EVENT_DTYPE and ds.chunks == (CHUNK_EVENTS,)
        assert ds.id.get_create_plist().get_filter(0)[0] == hdf5plugin.BLOSC_ID and ds.fletcher32
        np.testing.assert_array_equal(f["index/chunk_t"][:], events["t"][::CHUNK_EVENTS])
    with open_events(path) as reader:
        assert reader.format == "evstream_h5" and reader.sensor_size == (640, 480, 2)
        np.testing.assert_array_equal(reader.read(), events)


def test_evstream_h5_streams_and_seeks(recording, monkeypatch):
    path, events = recording
    monkeypatch.setattr(EvstreamH5Reader, "_time_at", None)  # with the index, seeking reads no single rows
    with EvstreamH5Reader(path) as reader:
        np.testing.assert_array_equal(np.concatenate(list(reader.chunks(30_001))), events)
        np.testing.assert_array_equal(np.concatenate(list(reader.time_windows(20_000))), events)
        assert_seeks(reader, events)
        for target in (events["t"][CHUNK_EVENTS - 50], events["t"][2 * CHUNK_EVENTS]):  # equal times across edges
            reader.seek(int(target))
            np.testing.assert_array_equal(reader.read(), events[np.searchsorted(events["t"], target):])


@pytest.mark.parametrize("damage", ["deleted", "unsorted", "short"])
def test_evstream_h5_without_usable_index_still_seeks(recording, tmp_path, damage):
    path, events = recording
    copy = tmp_path / "no_index.h5"
    copy.write_bytes(path.read_bytes())
    with h5py.File(copy, "a") as f:
        index = f["index/chunk_t"]
        if damage == "deleted":
            del f["index"]
        elif damage == "unsorted":
            index[...] = index[:][::-1]
        else:
            index.attrs["events_per_chunk"] = CHUNK_EVENTS * 2
    with EvstreamH5Reader(copy) as reader:
        assert reader._chunk_t is None
        assert_seeks(reader, events)


def test_evstream_h5_empty_and_bad_files(tmp_path):
    empty = tmp_path / "empty.h5"
    EvstreamH5Writer(empty, (10, 10, 2)).close()
    assert len(read_events(empty)) == 0
    small = tmp_path / "small.h5"
    write_events(small, synthetic_events(100, width=64, height=64), (64, 64, 2))
    with h5py.File(small, "a") as f:
        f.attrs["width"] = 32
    with pytest.raises(EventFileError, match="32x64"):
        read_events(small)
    with h5py.File(small, "a") as f:
        f.attrs["evstream_format"] = 2
    with pytest.raises(EventFileError, match="version 1"):
        read_events(small)


def test_mvsec_seek_over_a_nan_time_is_an_error(tmp_path):
    path = tmp_path / "nan_data.hdf5"
    with h5py.File(path, "w") as f:
        f["davis/left/events"] = np.array([[1, 2, 1.0, 1], [3, 4, np.nan, -1], [5, 6, 3.0, 1]])
    with MvsecReader(path) as reader, pytest.raises(EventFileError, match="row 1 has time nan"):
        reader.seek(2_000_000)
        reader.read()


@pytest.fixture(scope="module")
def small_recording(tmp_path_factory):
    events = synthetic_events(CHUNK_EVENTS + 5000, width=64, height=64, seed=6)
    path = tmp_path_factory.mktemp("fuzz") / "small.h5"
    write_events(path, events, (64, 64, 2))
    return path.read_bytes(), events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=4))
def test_evstream_h5_damage_is_detected_never_silent(small_recording, tmp_path, flips):
    """Flipped bits anywhere: the events come back unchanged (unused bytes) or an EventFileError is raised;
    the chunks carry Fletcher-32 checksums, so damaged event data cannot decode silently."""
    data, events = small_recording
    damaged = bytearray(data)
    for where, bit in flips:
        damaged[int(where * len(damaged))] ^= 1 << bit
    path = tmp_path / "damaged.h5"
    path.write_bytes(bytes(damaged))
    try:
        got = read_events(path)
    except EventFileError:
        return
    np.testing.assert_array_equal(got, events)


@pytest.mark.parametrize("fmt", ["evstream_h5", "mvsec", "npz", "atis_bin"])
def test_writers_copy_batches_the_caller_reuses(tmp_path, fmt):
    """A streaming source refills one buffer: every writer must have taken its events by then."""
    events = synthetic_events(CHUNK_EVENTS + 3000, width=34, height=34, seed=7)
    path = tmp_path / "reused"
    buffer = np.empty(1000, dtype=EVENT_DTYPE)
    with evstream.open_writer(path, (34, 34, 2), format=fmt) as writer:
        for a in range(0, len(events), len(buffer)):
            part = events[a:a + len(buffer)]
            buffer[:len(part)] = part
            writer.write(buffer[:len(part)])
    options = {"sensor_size": (34, 34, 2)} if fmt in ("mvsec", "atis_bin") else {}
    np.testing.assert_array_equal(read_events(path, format=fmt, **options), events)
