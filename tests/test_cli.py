"""The evstream command line: info (text and JSON), convert (formats, time range, crop, safety), errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import evstream
from evstream.cli import build_parser, main
from tests.conftest import RECORDINGS, load_reference

EVT3 = RECORDINGS / "evt3/pedestrians_gen41.raw"
ATIS = RECORDINGS / "atis_bin/nmnist_sample_tonic.bin"
AEDAT4 = RECORDINGS / "aedat4/davis346_aestream.aedat4"
DVS128 = RECORDINGS / "aedat2/MovingDarkBox_dvs128.aedat"


def one_line_error(capsys, command: str) -> str:
    """The single stderr line of a failed command, checked to be ``evstream <command>: error: ...``."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"evstream {command}: error: "), err
    return lines[0]


def test_info_json(capsys, shared):
    assert main(["info", str(EVT3), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ref = load_reference(EVT3.with_name(EVT3.name + ".ref.npy"))
    assert {k: info[k] for k in ("format", "width", "height", "events", "t_start", "t_end")} == {
        "format": "evt3", "width": 1280, "height": 720, "events": 5000,
        "t_start": int(ref["t"][0]), "t_end": int(ref["t"][-1])}


def test_info_json_of_a_single_event_has_null_rate(tmp_path, capsys):
    path = tmp_path / "one.npz"
    event = np.array([(3, 4, 1, 100)], dtype=evstream.EVENT_DTYPE)
    evstream.write_events(path, event, (8, 8, 2))
    assert main(["info", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    info = json.loads(out, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
    assert info["rate_ev_per_s"] is None and info["events"] == 1 and info["duration_s"] == 0.0


@pytest.mark.parametrize("suffix,fmt", [(".h5", None), (".dat", None), (".aedat4", None), (".raw", "evt2"),
                                        (".raw", "evt3"), (".npz", None)])
def test_convert_round_trips_with_time_range_and_crop(tmp_path, shared, umask_022, suffix, fmt):
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
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file left
    assert out.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "x.bin2"
    bad.write_bytes(b"\x00garbage" * 10)
    assert main(["info", str(bad)]) == 2
    assert "unknown event file format" in one_line_error(capsys, "info")
    assert main(["convert", str(bad), str(tmp_path / "y.xyz")]) == 2
    assert "cannot tell the output format from the suffix '.xyz'" in one_line_error(capsys, "convert")
    assert main(["info", str(tmp_path / "missing.raw")]) == 2
    assert one_line_error(capsys, "info").endswith("missing.raw: cannot open: No such file or directory")
    assert main(["info", str(tmp_path)]) == 2
    assert "cannot open: Is a directory" in one_line_error(capsys, "info")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin2"]


def test_version_and_description(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"evstream {evstream.__version__}\n"
    parser = build_parser()
    assert parser.description.startswith("Event-camera streams for spiking neural networks")
    assert "one subcommand per job" not in parser.format_help()  # not the module docstring


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


@pytest.mark.parametrize("command", ["info", "convert", "train", "eval"])
def test_every_argument_has_help(command):
    parser = _subparsers(build_parser())[command]
    undocumented = [a.dest for a in parser._actions if not a.help or not a.help.strip()]
    assert undocumented == []
    assert parser.description  # its own --help says what the command does


def test_sensor_size_for_files_without_geometry(capsys, shared):
    assert main(["info", str(ATIS), "--json"]) == 0
    scanned = json.loads(capsys.readouterr().out)
    assert (scanned["width"], scanned["height"]) == (34, 34)  # the extent of the events
    assert main(["info", str(ATIS), "--json", "--sensor-size", "40", "36"]) == 0
    given = json.loads(capsys.readouterr().out)
    assert (given["width"], given["height"], given["events"]) == (40, 36, scanned["events"])
    assert main(["info", str(ATIS), "--sensor-size", "20", "20"]) == 2  # events fall outside it
    assert "outside" in one_line_error(capsys, "info")
    assert main(["info", str(ATIS), "--sensor-size", "0", "20"]) == 2
    assert one_line_error(capsys, "info") == ("evstream info: error: --sensor-size 0 20: width and height must be "
                                              "> 0")
    assert main(["info", str(AEDAT4), "--sensor-size", "40", "36"]) == 2
    assert one_line_error(capsys, "info") == (f"evstream info: error: {AEDAT4}: aedat4 files take no sensor_size "
                                              "option (they take: stream_id, strict, threads)")
    assert main(["info", str(EVT3), "--chip", "DVS128"]) == 2
    assert "evt3 files take no chip option" in one_line_error(capsys, "info")


@pytest.mark.filterwarnings("always::evstream.io.ChipInferredWarning")
def test_info_prints_what_the_reader_inferred(capsys, shared):
    note = ("chip DVS128 inferred: the header has no '# AEChip:' line and every address fits the DVS128 layout "
            "(16 bits)")
    assert main(["info", str(DVS128)]) == 0
    out, err = capsys.readouterr()
    assert "\n  sensor      128 x 128\n" in out
    assert out.splitlines()[-1] == f"  note        {note}"
    assert err == f"evstream info: warning: {DVS128}: {note} (choose with chip=, or --chip on the command line)\n"
    assert main(["info", str(DVS128), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == [note]
    assert main(["info", str(DVS128), "--chip", "DVS128"]) == 0  # named, not inferred: no note, no warning
    out, err = capsys.readouterr()
    assert "note" not in out and err == ""


def atis_file(tmp_path, x_max: int) -> str:
    """An ATIS .bin file of three events whose largest x is ``x_max`` (y up to 9)."""
    path = tmp_path / f"atis_{x_max}.bin"
    events = np.array([(0, 0, 10, 1), (x_max, 9, 20, 0), (5, 5, 30, 1)], dtype=evstream.EVENT_DTYPE)
    evstream.write_events(path, events, (256, 240, 2))
    return str(path)


def test_dataset_gives_an_atis_file_its_sensor(tmp_path, capsys):
    small = atis_file(tmp_path, 9)
    for extra, size in [([], [10, 10]), (["--dataset", "nmnist"], [34, 34]), (["--dataset", "ncaltech101"], [10, 10])]:
        assert main(["info", small, "--json", *extra]) == 0
        info = json.loads(capsys.readouterr().out)
        assert ([info["width"], info["height"]], info["events"]) == (size, 3), extra
    wide = atis_file(tmp_path, 250)  # beyond N-Caltech101's 240x180 bound
    assert main(["info", wide, "--dataset", "ncaltech101"]) == 2
    assert "outside the 240x10 sensor" in one_line_error(capsys, "info")
    out = tmp_path / "n.h5"
    assert main(["convert", small, str(out), "--dataset", "nmnist", "--quiet"]) == 0
    with evstream.open_events(out) as reader:
        assert reader.sensor_size == (34, 34, 2) and len(reader.read()) == 3
    assert main(["info", small, "--dataset", "nmnist", "--sensor-size", "34", "34"]) == 2
    assert one_line_error(capsys, "info") == ("evstream info: error: --dataset and --sensor-size both give the sensor: "
                                              "pass one of them")
    assert main(["info", str(out), "--dataset", "nmnist"]) == 2
    assert one_line_error(capsys, "info").endswith("h5 files take no dataset option (they take: strict)")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["info", small, "--dataset", "mnist"])


def test_threads_reach_the_reader(tmp_path, capsys, monkeypatch):
    import evstream.io.info

    opened = []

    def open_events(path, **options):
        opened.append(evstream.open_events(path, **options))
        return opened[-1]

    monkeypatch.setattr(evstream.io.info, "open_events", open_events)
    small = atis_file(tmp_path, 9)
    assert main(["info", small, "--json", "--threads", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 3 and opened[-1]._threads == 3
    monkeypatch.setenv("EVSTREAM_THREADS", "2")
    assert main(["info", small]) == 0 and opened[-1]._threads == 2  # without --threads: the default
    capsys.readouterr()
    out = tmp_path / "t.npz"
    assert main(["convert", small, str(out), "--threads", "1", "--quiet"]) == 0
    np.testing.assert_array_equal(evstream.read_events(out), evstream.read_events(small))
    capsys.readouterr()
    assert main(["info", small, "--threads", "0"]) == 2
    assert one_line_error(capsys, "info") == "evstream info: error: --threads 0: must be at least 1"
    assert main(["info", str(out), "--threads", "2"]) == 2
    assert one_line_error(capsys, "info").endswith("npz files take no threads option (they take: sensor_size, strict)")


def test_convert_sensor_size_reaches_the_reader(tmp_path, capsys, shared):
    out = tmp_path / "n.h5"
    assert main(["convert", str(ATIS), str(out), "--sensor-size", "40", "36", "--quiet"]) == 0
    with evstream.open_events(out) as reader:
        assert reader.sensor_size == (40, 36, 2)
        np.testing.assert_array_equal(reader.read(), evstream.read_events(ATIS))


def test_convert_refuses_to_write_over_its_input(tmp_path, capsys, shared):
    src = tmp_path / "f.raw"
    src.write_bytes(EVT3.read_bytes())
    before = src.read_bytes()
    (tmp_path / "link.raw").symlink_to(src)
    os.link(src, tmp_path / "hard.raw")
    sub = tmp_path / "sub"
    sub.mkdir()
    for output in (src, tmp_path / "link.raw", tmp_path / "hard.raw", sub / ".." / "f.raw"):
        for force in ([], ["--force"]):
            assert main(["convert", str(src), str(output), "--quiet", *force]) == 2
            assert "the output is the input file" in one_line_error(capsys, "convert")
            assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.raw", "hard.raw", "link.raw", "sub"]


def test_convert_keeps_an_existing_output_unless_force(tmp_path, capsys, shared):
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    assert main(["convert", str(EVT3), str(out), "--quiet"]) == 2
    assert one_line_error(capsys, "convert") == (f"evstream convert: error: {out}: the output exists; pass --force "
                                                 "(overwrite=True) to replace it")
    assert out.read_bytes() == b"precious"
    assert main(["convert", str(EVT3), str(out), "--quiet", "--force"]) == 0
    assert capsys.readouterr().out == f"wrote 5,000 events to {out}\n"
    np.testing.assert_array_equal(evstream.read_events(out), load_reference(EVT3.with_name(EVT3.name + ".ref.npy")))
    assert main(["convert", str(EVT3), str(tmp_path), "--quiet"]) == 2
    assert "the output is a folder" in one_line_error(capsys, "convert")
    assert main(["convert", str(EVT3), str(tmp_path / "nowhere" / "x.h5"), "--quiet"]) == 2
    assert "does not exist" in one_line_error(capsys, "convert")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_failed_convert_leaves_no_output_and_no_temporary_file(tmp_path, capsys, shared):
    truncated = tmp_path / "cut.raw"
    truncated.write_bytes(EVT3.read_bytes()[:-1])  # ends inside a 16-bit word
    assert main(["convert", str(truncated), str(tmp_path / "out.h5"), "--strict", "--quiet"]) == 2
    assert one_line_error(capsys, "convert").endswith(f"{truncated} at byte offset 36918: file ends 1 bytes into a "
                                                      "2-byte word")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.raw"]
    old = tmp_path / "old.dat"
    old.write_bytes(b"previous version")  # a failed --force keeps the old file
    assert main(["convert", str(truncated), str(old), "--strict", "--quiet", "--force"]) == 2
    capsys.readouterr()
    assert old.read_bytes() == b"previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.raw", "old.dat"]


def test_interrupted_convert_exits_130_and_leaves_nothing(tmp_path, capsys, monkeypatch, shared):
    import evstream.io.convert as convert_module

    real_iter_range = convert_module.iter_range

    def interrupted_after_one_block(reader, start_us=None, end_us=None):
        blocks = real_iter_range(reader, start_us, end_us)
        yield next(blocks)
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_module, "iter_range", interrupted_after_one_block)
    out = tmp_path / "out.aedat4"
    assert main(["convert", str(EVT3), str(out), "--quiet"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "evstream convert: interrupted\n" and captured.out == ""
    assert list(tmp_path.iterdir()) == []


def _run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m evstream.cli ARGS`` with its stdout a pipe closed before it writes (``| head -0``)."""
    proc = subprocess.Popen([sys.executable, "-m", "evstream.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    return subprocess.CompletedProcess(proc.args, proc.wait(timeout=120), b"", err)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_closed_pipe_ends_quietly(json_flag, shared):
    done = _run_into_closed_pipe("info", str(EVT3), *json_flag)
    assert done.stderr == b"" and done.returncode == 1  # Python's documented exit status for EPIPE
