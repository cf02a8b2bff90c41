"""numpy .npz event files: round trips, the structured-array variant, geometry and bad files."""

from __future__ import annotations

import numpy as np
import pytest

from evstream.events import EVENT_DTYPE, EventFileError
from evstream.io import detect_format, open_events, read_events, write_events
from evstream.io.npz import NpzReader, NpzWriter
from tests.conftest import synthetic_events


@pytest.fixture(scope="module")
def events():
    return synthetic_events(50_000, width=128, height=96, seed=5)


@pytest.mark.parametrize("compressed", [False, True])
def test_round_trip(tmp_path, events, compressed):
    path = tmp_path / "rec.npz"
    with NpzWriter(path, (128, 96, 2), compressed=compressed) as writer:
        for part in np.array_split(events, 3):
            writer.write(part)
    assert detect_format(path) == "npz"
    with np.load(path) as npz:
        assert sorted(npz.files) == ["p", "sensor_size", "t", "x", "y"]
        assert npz["sensor_size"].tolist() == [128, 96, 2] and npz["t"].dtype == np.int64
    with open_events(path) as reader:
        assert reader.format == "npz" and reader.sensor_size == (128, 96, 2)
        np.testing.assert_array_equal(reader.read(), events)


def test_streams_and_seeks(tmp_path, events):
    path = tmp_path / "rec.npz"
    write_events(path, events, (128, 96, 2))
    with NpzReader(path) as reader:
        np.testing.assert_array_equal(np.concatenate(list(reader.chunks(7_777))), events)
        np.testing.assert_array_equal(np.concatenate(list(reader.time_windows(3_000))), events)
        for target in (-1, int(events["t"][123]), int(events["t"][-1]) + 1):
            reader.seek(target)
            np.testing.assert_array_equal(reader.read(), events[np.searchsorted(events["t"], target):])


def test_structured_events_array_and_signed_polarity(tmp_path, events):
    path = tmp_path / "tonic_style.npz"
    tonic_like = np.zeros(len(events), dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i2")])
    for name in "xyt":
        tonic_like[name] = events[name]
    tonic_like["p"] = events["p"].astype(np.int16) * 2 - 1  # -1 / +1
    np.savez(path, events=tonic_like)
    with NpzReader(path) as reader:
        assert reader.sensor_size == (int(events["x"].max()) + 1, int(events["y"].max()) + 1, 2)
        np.testing.assert_array_equal(reader.read(), events)
    bool_p = tmp_path / "bool.npz"
    np.savez(bool_p, x=events["x"], y=events["y"], t=events["t"], p=events["p"].astype(bool))
    np.testing.assert_array_equal(read_events(bool_p, sensor_size=(128, 96, 2)), events)


def test_empty(tmp_path):
    path = tmp_path / "empty.npz"
    NpzWriter(path, (10, 10, 2)).close()
    with NpzReader(path) as reader:
        assert reader.sensor_size == (10, 10, 2)
        assert reader.read().dtype == EVENT_DTYPE and len(reader.read()) == 0


@pytest.mark.parametrize("arrays, match", [
    ({"a": np.zeros(3)}, "expected x, y, t, p"),
    ({"x": np.zeros(3, int), "y": np.zeros(3, int), "t": np.zeros(2, int), "p": np.zeros(3, int)}, "different lengths"),
    ({"x": np.zeros(3, int), "y": np.zeros(3, int), "t": np.zeros(3), "p": np.zeros(3, int)}, "'t' has dtype float64"),
    ({"x": -np.ones(3, int), "y": np.zeros(3, int), "t": np.zeros(3, int), "p": np.zeros(3, int)}, "outside 0..65535"),
    ({"events": np.zeros(3, dtype=[("x", "u2"), ("t", "i8")])}, "expected fields"),
])
def test_bad_layouts(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(EventFileError, match=match):
        read_events(path)


def test_corrupt_zip_and_out_of_range(tmp_path, events):
    path = tmp_path / "rec.npz"
    write_events(path, events, (128, 96, 2))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(EventFileError, match="cannot read as npz"):
        read_events(cut)
    with pytest.raises(EventFileError, match="outside the 100x96 sensor"):
        read_events(path, sensor_size=(100, 96, 2))
    npy = tmp_path / "plain.npz"
    with open(npy, "wb") as f:
        np.save(f, events)
    with pytest.raises(EventFileError, match="not an npz: it does not start as a zip"):
        read_events(npy, format="npz")
