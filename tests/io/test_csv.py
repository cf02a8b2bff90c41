"""CSV / text event files: files faery and evlib write, Metavision's column orders, writer read by faery, bad lines."""

from __future__ import annotations

import numpy as np
import pytest

import evstream
from evstream import EventFileError
from evstream.cli import main
from evstream.io import csv_events
from tests.conftest import synthetic_events


def faery_array(faery, events):
    theirs = np.zeros(len(events), dtype=faery.EVENTS_DTYPE)
    for name, field in (("x", "x"), ("y", "y"), ("t", "t"), ("p", "on")):
        theirs[field] = events[name]
    return theirs


def assert_same(theirs, events, names=(("x", "x"), ("y", "y"), ("t", "t"), ("p", "on"))):
    assert len(theirs) == len(events)
    for ours, field in names:
        np.testing.assert_array_equal(np.asarray(theirs[field]).astype(np.int64), events[ours].astype(np.int64))


def test_reads_the_csv_faery_writes(tmp_path):
    faery = pytest.importorskip("faery")
    events = synthetic_events(5_000, 640, 480, seed=11)
    path = tmp_path / "faery.csv"
    faery.events_stream_from_array(faery_array(faery, events), dimensions=(640, 480)).to_file(path)
    assert path.read_bytes().startswith(b"t,x@640,y@480,on\r\n")  # CRLF, the geometry in the header
    assert evstream.io.detect_format(path) == "csv"
    with evstream.open_events(path) as reader:
        assert reader.sensor_size == (640, 480, 2) and reader.columns == "t,x,y,p"
        np.testing.assert_array_equal(reader.read(), events)


@pytest.mark.parametrize("columns", ["t,x,y,p", "x,y,p,t"])
def test_faery_reads_what_evstream_writes(tmp_path, columns):
    faery = pytest.importorskip("faery")
    events = synthetic_events(5_000, 640, 480, seed=12)
    path = tmp_path / "ours.csv"
    with evstream.open_writer(path, (640, 480, 2), columns=columns) as writer:
        for part in np.array_split(events, 3):
            writer.write(part)
    header = {"t,x,y,p": b"t,x@640,y@480,p\n", "x,y,p,t": b"x@640,y@480,p,t\n"}[columns]
    assert path.read_bytes().startswith(header)
    np.testing.assert_array_equal(evstream.read_events(path), events)
    order = columns.split(",")
    properties = faery.CsvProperties.default()
    properties.t_index, properties.x_index, properties.y_index, properties.on_index = (
        order.index("t"), order.index("x"), order.index("y"), order.index("p"))
    theirs = faery.events_stream_from_file(path, csv_properties=properties, dimensions_fallback=(640, 480)).to_array()
    assert_same(theirs, events)


def test_reads_evlib_text_in_seconds(tmp_path):
    evlib = pytest.importorskip("evlib")
    events = synthetic_events(3_000, 346, 260, seed=13)
    path = tmp_path / "events.txt"
    polarity = np.where(events["p"] == 1, 1, -1).astype(np.int64)
    evlib.save_events_to_text(events["x"].astype(np.int64), events["y"].astype(np.int64), events["t"] / 1e6,
                              polarity, str(path))
    assert path.read_text().startswith("# timestamp x y polarity\n")
    frame = evlib.load_events(str(path), sort=False).collect()
    with pytest.raises(EventFileError, match="states no sensor size.*--sensor-size W H"):
        evstream.read_events(path)
    ours = evstream.read_events(path, sensor_size=(346, 260))
    np.testing.assert_array_equal(ours["t"], events["t"])  # decimal seconds parsed exactly
    # evlib truncates float(seconds) * 1e6: "0.000249000000" becomes 248 us (1 us early on ~1% of events)
    late = ours["t"] - frame["t"].dt.total_microseconds().to_numpy()
    assert set(np.unique(late)) <= {0, 1} and 0 < np.count_nonzero(late) < len(events) // 20
    np.testing.assert_array_equal(ours["x"], frame["x"].to_numpy())
    np.testing.assert_array_equal(ours["p"] == 1, frame["polarity"].to_numpy() > 0)


def test_metavision_orders_with_and_without_header(tmp_path):
    rows = [(5, 1, 2, 1), (9, 3, 4, 0), (9, 639, 479, 1)]  # (t, x, y, p)
    expected = [(x, y, t, p) for t, x, y, p in rows]
    xypt = "".join(f"{x},{y},{p},{t}\n" for t, x, y, p in rows)
    geometry = tmp_path / "mv.csv"  # metavision_file_to_csv: %geometry, then x,y,p,t rows
    geometry.write_text("%geometry:640,480\n" + xypt)
    header = tmp_path / "header.csv"
    header.write_text("x,y,p,t\n" + xypt)
    bare = tmp_path / "bare.csv"
    bare.write_text(xypt)
    tx = tmp_path / "txyp.csv"
    tx.write_text("".join(f"{t},{x},{y},{p}\n" for t, x, y, p in rows))
    for path, options in ((geometry, {}), (header, {"sensor_size": (640, 480)}),
                          (bare, {"sensor_size": (640, 480), "columns": "x,y,p,t"}),
                          (tx, {"sensor_size": (640, 480)})):
        events = evstream.read_events(path, **options)
        assert [tuple(int(v) for v in e) for e in events[["x", "y", "t", "p"]]] == expected, path.name


def test_lines_split_across_read_blocks(tmp_path, monkeypatch):
    events = synthetic_events(20_000, 1280, 720, seed=14)
    path = tmp_path / "big.csv"
    evstream.write_events(path, events, (1280, 720, 2))
    monkeypatch.setattr(csv_events, "READ_BYTES", 1000)  # many blocks, lines cut at their edges
    with evstream.open_events(path) as reader:
        blocks = list(reader)
    assert len(blocks) > 100
    np.testing.assert_array_equal(np.concatenate(blocks), events)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # no line end after the last line
    np.testing.assert_array_equal(evstream.read_events(path), events)


@pytest.mark.parametrize(("text", "message"), [
    ("t,x,y,p\n1,2,3,1\n2,2,3\n", r"wrong number of fields in line '2,2,3'"),
    ("t,x,y,p\n1,2,3,1\n2,2,3,1,7\n", "wrong number of fields in line '2,2,3,1,7'"),
    ("t,x,y,p\n1,2,3,2\n", "polarity is not 1, 0 or -1 in line '1,2,3,2'"),
    ("t,x,y,p\n1,2,3,1\n1,a,3,1\n", "not a number where one is expected in line '1,a,3,1'"),
    ("t,x,y,p\n1,2,3,1\n2.5,2,3,1\n", "time with a decimal point in a file of integer microseconds"),
    ("t,x,y,p\n1,99999,3,1\n", "coordinate outside 0..65535"),
    ("t,x,p\n1,2,1\n", "no y column in 't,x,p'"),
    ("t,x,y,p\n1,700,3,1\n", r"event \(700, 3\) at t=1 us is outside the 640x480 sensor"),
    ("t,x,y,p\n5,2,3,1\n4,2,3,1\n", "time goes backwards"),
])
def test_bad_lines_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(EventFileError, match=message) as err:
        evstream.read_events(path, sensor_size=(640, 480))
    assert "\n" not in str(err.value)
    if "line '" in message:
        assert f"byte offset {text.index(message.split(chr(39))[1])}:" in str(err.value)


def test_a_line_without_end_is_refused_in_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_events, "READ_BYTES", 1000)
    path = tmp_path / "long.csv"
    path.write_bytes(b"t,x,y,p\n1,2,3,1\n" + b"7" * 5000)
    with pytest.raises(EventFileError, match="a line longer than 1000 bytes"):
        evstream.read_events(path, sensor_size=(8, 8))


def test_columns_option_is_checked(tmp_path):
    path = tmp_path / "bare.csv"
    path.write_text("1,2,3,1\n")
    with pytest.raises(EventFileError, match="unknown column 'q'"):
        evstream.read_events(path, sensor_size=(8, 8), columns="t,x,y,q")
    header = tmp_path / "header.csv"
    header.write_text("t,x,y,p\n1,2,3,1\n")
    with pytest.raises(EventFileError, match="has a header naming its columns"):
        evstream.read_events(header, sensor_size=(8, 8), columns="x,y,p,t")
    with pytest.raises(ValueError, match="must name t, x, y and p once each"):
        evstream.open_writer(tmp_path / "w.csv", (8, 8, 2), columns="t,x,x,p")


def test_cli_convert_to_csv_and_back_and_info_with_columns(tmp_path, capsys):
    events = synthetic_events(2_000, 304, 240, seed=15)
    dat = tmp_path / "in.dat"
    evstream.write_events(dat, events, (304, 240, 2))
    out = tmp_path / "out.csv"
    assert main(["convert", str(dat), str(out), "--quiet"]) == 0
    back = tmp_path / "back.dat"
    assert main(["convert", str(out), str(back), "--quiet"]) == 0
    np.testing.assert_array_equal(evstream.read_events(back), events)
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(f"{e['x']},{e['y']},{e['p']},{e['t']}\n" for e in events[:50]))
    capsys.readouterr()
    assert main(["info", str(bare), "--columns", "x,y,p,t", "--sensor-size", "304", "240"]) == 0
    out_text = capsys.readouterr().out
    assert "format      csv" in out_text and "events      50\n" in out_text
    assert main(["info", str(bare)]) == 2
    assert "--sensor-size W H" in capsys.readouterr().err
