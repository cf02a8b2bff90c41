"""ATIS .bin (N-MNIST, N-Caltech101): exact decodes, overflow markers as tonic reads them, truncation, writer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import tonic.io

from evstream.events import EVENT_DTYPE, EventFileError, TruncatedFileWarning
from evstream.io import detect_format, open_events, read_events, write_events
from evstream.io.atis_bin import RECORD_DTYPE, AtisBinReader, AtisBinWriter
from tests.conftest import RECORDINGS, load_reference, synthetic_events

FILES = {"nmnist": ("nmnist_sample_tonic.bin", (34, 34, 2)),
         "ncaltech101": ("ncaltech101_Faces_easy_image_0001.bin", (151, 173, 2))}
TONIC_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


def tonic_decode(path) -> np.ndarray:
    """The peer decode (tonic.io.read_mnist_file) as EVENT_DTYPE."""
    ref = tonic.io.read_mnist_file(str(path), dtype=TONIC_DTYPE)
    out = np.empty(len(ref), dtype=EVENT_DTYPE)
    for name in "xytp":
        out[name] = ref[name]
    return out


def records(rows) -> bytes:
    """Raw .bin bytes from (x, y, p, t) rows, packed by hand: x, y, then p in bit 23 and t in bits 22..0."""
    out = bytearray()
    for x, y, p, t in rows:
        out += bytes([x, y]) + ((p << 23) | t).to_bytes(3, "big")
    return bytes(out)


@pytest.fixture(scope="module", params=list(FILES))
def sample(request, shared):
    name, size = FILES[request.param]
    path = RECORDINGS / "atis_bin" / name
    return path, load_reference(path.with_name(name + ".ref.npy")), size


def test_decodes_reference_and_infers_geometry(sample):
    path, ref, size = sample
    assert detect_format(path) == "atis_bin"
    with open_events(path) as reader:
        assert reader.format == "atis_bin" and reader.sensor_size == size
        np.testing.assert_array_equal(reader.read(), ref)
    with AtisBinReader(path, sensor_size=(240, 180, 2)) as reader:
        assert reader.sensor_size == (240, 180, 2)
        np.testing.assert_array_equal(reader.read(), ref)


def test_streams_and_seeks(sample):
    path, ref, _ = sample
    with AtisBinReader(path) as reader:
        np.testing.assert_array_equal(np.concatenate(list(reader.chunks(1000))), ref)
        np.testing.assert_array_equal(np.concatenate(list(reader.time_windows(10_000))), ref)
        for target in (-5, int(ref["t"][0]), int(ref["t"][len(ref) // 2]) + 1, int(ref["t"][-1]), 10**9):
            reader.seek(target)
            np.testing.assert_array_equal(reader.read(), ref[np.searchsorted(ref["t"], target):])


def test_writer_reproduces_files_byte_for_byte(sample, tmp_path):
    path, ref, size = sample
    out = tmp_path / "copy.bin"
    with AtisBinWriter(out, size) as writer:
        for part in np.array_split(ref, 5):
            writer.write(part)
    assert out.read_bytes() == path.read_bytes()


def test_overflow_markers_match_tonic(tmp_path):
    path = tmp_path / "overflow.bin"
    path.write_bytes(records([(1, 2, 1, 100), (0, 240, 0, 0), (3, 4, 0, 50), (5, 6, 1, 8_000),
                              (9, 240, 1, 77), (0, 240, 0, 0), (7, 8, 0, 5)]))
    ours = read_events(path)
    np.testing.assert_array_equal(ours, tonic_decode(path))
    np.testing.assert_array_equal(ours["t"], [100, 50 + 8192, 8_000 + 8192, 5 + 3 * 8192])
    with AtisBinReader(path) as reader:
        assert reader.sensor_size == (8, 9, 2)  # markers are not events


def test_writer_round_trips_long_times_readable_by_tonic(tmp_path):
    events = synthetic_events(20_000, width=34, height=34, seed=4, rate_hz=500)  # ~40 s: beyond 2**23 us
    events["t"][:3] = [0, 8_388_607, 8_388_608]
    events["t"] = np.sort(events["t"])
    path = tmp_path / "long.bin"
    write_events(path, events, (34, 34, 2))
    assert (path.stat().st_size // 5 - len(events)) == (int(events["t"][-1]) >> 13) - 1023  # markers written
    np.testing.assert_array_equal(read_events(path, sensor_size=(34, 34, 2)), events)
    np.testing.assert_array_equal(tonic_decode(path), events)


def test_truncated_file_warns_or_raises(sample, tmp_path):
    path, ref, size = sample
    cut = tmp_path / "cut.bin"
    data = path.read_bytes()
    cut.write_bytes(data[:5 * 1000 + 3])
    with pytest.warns(TruncatedFileWarning, match="offset 5000"):
        events = read_events(cut, format="atis_bin")
    np.testing.assert_array_equal(events, ref[:1000])
    with pytest.raises(EventFileError, match="offset 5000"):
        read_events(cut, format="atis_bin", sensor_size=size, strict=True)


def test_sensor_smaller_than_the_recording_is_an_error(shared):
    with pytest.raises(EventFileError, match="outside the 10x10 sensor"):
        read_events(RECORDINGS / "atis_bin" / FILES["nmnist"][0], sensor_size=(10, 10, 2))


def test_bad_input(tmp_path):
    path = tmp_path / "wrap.bin"
    path.write_bytes(records([(1, 1, 0, 8_000_000), (1, 1, 0, 10)]))  # 23-bit wrap without a marker
    with pytest.raises(EventFileError, match="time goes backwards"):
        read_events(path)
    with pytest.raises(EventFileError, match="(?i)no such file"):
        AtisBinReader(tmp_path / "missing.bin")
    with pytest.raises(ValueError, match="up to 256x240"):
        AtisBinWriter(tmp_path / "big.bin", (346, 260, 2))
    with pytest.raises(ValueError, match="negative"), AtisBinWriter(tmp_path / "neg.bin", (34, 34, 2)) as writer:
        writer.write(np.array([(1, 1, -5, 1)], dtype=EVENT_DTYPE))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.bin"
    AtisBinWriter(path, (34, 34, 2)).close()
    assert path.stat().st_size == 0 and RECORD_DTYPE.itemsize == 5
    assert len(read_events(path, format="atis_bin")) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 21_625), flips=st.lists(st.tuples(st.integers(0, 21_624), st.integers(0, 7)), max_size=5))
def test_damaged_files_give_events_or_clear_errors(shared, tmp_path, cut, flips):
    """Truncations and bit flips in N-MNIST: events equal to tonic's decode of the same bytes
    (with a TruncatedFileWarning for a partial record), or an EventFileError; never a crash."""
    data = bytearray((RECORDINGS / "atis_bin" / FILES["nmnist"][0]).read_bytes())
    for where, bit in flips:
        data[where] ^= 1 << bit
    path = tmp_path / "damaged.bin"
    path.write_bytes(bytes(data[:cut]))
    whole = tmp_path / "whole_records.bin"
    whole.write_bytes(bytes(data[:cut - cut % 5]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            events = read_events(path, format="atis_bin")
        except EventFileError as err:
            assert "time goes backwards" in str(err)
            return
    assert [type(w.message) for w in caught] == ([TruncatedFileWarning] if cut % 5 else [])
    np.testing.assert_array_equal(events, tonic_decode(whole))
