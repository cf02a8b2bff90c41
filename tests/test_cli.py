"""The evstream command line: info (text and JSON), convert (formats, time range, crop), errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import evstream
from evstream.cli import main
from tests.conftest import RECORDINGS, load_reference

EVT3 = RECORDINGS / "evt3/pedestrians_gen41.raw"


def test_info_json(capsys, shared):
    assert main(["info", str(EVT3), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ref = load_reference(EVT3.with_name(EVT3.name + ".ref.npy"))
    assert {k: info[k] for k in ("format", "width", "height", "events", "t_start", "t_end")} == {
        "format": "evt3", "width": 1280, "height": 720, "events": 5000,
        "t_start": int(ref["t"][0]), "t_end": int(ref["t"][-1])}


@pytest.mark.parametrize("suffix,fmt", [(".h5", None), (".dat", None), (".aedat4", None), (".raw", "evt2"),
                                        (".raw", "evt3"), (".npz", None)])
def test_convert_round_trips_with_time_range_and_crop(tmp_path, shared, suffix, fmt):
    ref = load_reference(EVT3.with_name(EVT3.name + ".ref.npy"))
    start, end = int(ref["t"][1000]), int(ref["t"][4000])
    out = tmp_path / f"cut{suffix}"
    args = ["convert", str(EVT3), str(out), "--start", str(start), "--end", str(end), "--crop", "100", "50", "900",
            "600", "--quiet"]
    assert main(args + (["--format", fmt] if fmt else [])) == 0
    keep = ref[(ref["t"] >= start) & (ref["t"] < end) & (ref["x"] >= 100) & (ref["x"] < 1000) & (ref["y"] >= 50)
               & (ref["y"] < 650)].copy()
    keep["x"] -= 100
    keep["y"] -= 50
    with evstream.open_events(out) as reader:
        assert reader.sensor_size == (900, 600, 2)
        np.testing.assert_array_equal(reader.read(), keep)


def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "x.bin2"
    bad.write_bytes(b"\x00garbage" * 10)
    assert main(["info", str(bad)]) == 2
    assert "unknown event file format" in capsys.readouterr().err
    assert main(["convert", str(bad), str(tmp_path / "y.xyz")]) == 2
