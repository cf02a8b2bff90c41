"""Video to events and the ``simulate`` subcommand."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from evstream import EventFileError, read_events
from evstream.sim import frames_to_events
from evstream.sim.commands import register
from evstream.sim.video import video_frames, video_to_events


@pytest.fixture()
def video(tmp_path):
    path = tmp_path / "square.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for k in range(10):
        frame = np.full((48, 64, 3), 60, np.uint8)
        cv2.rectangle(frame, (5 + 4 * k, 10), (20 + 4 * k, 30), (220, 220, 220), -1)
        writer.write(frame)
    writer.release()
    return path


def test_video_to_events_matches_the_emulator(video, tmp_path):
    out = tmp_path / "square.h5"
    n = video_to_events(video, out, seed=3, progress=False)
    events = read_events(out)
    assert len(events) == n > 100
    frames, size, count = video_frames(video)
    assert size == (64, 48, 2) and count == 10
    times, grays = zip(*frames, strict=True)
    assert times[:3] == (0, 40_000, 80_000)
    np.testing.assert_array_equal(events, frames_to_events(grays, times, "clean", seed=3))
    assert np.mean((events["y"] >= 6) & (events["y"] <= 34)) > 0.9  # the square's rows, give or take JPEG blocks


def test_unreadable_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(EventFileError):
        video_to_events(bad, tmp_path / "out.h5", progress=False)


def _cli(argv):
    parser = argparse.ArgumentParser(prog="evstream")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_simulate_commands(tmp_path, video):
    assert _cli(["simulate", "road", "--out", str(tmp_path / "gen1"), "--seconds", "0.5",
                 "--sequences", "1", "0", "0", "--seed", "4"]) == 0
    assert len(read_events(tmp_path / "gen1/train/sim_road_0000_td.dat")) > 0
    assert (tmp_path / "gen1/train/sim_road_0000_bbox.npy").is_file()
    assert _cli(["simulate", "video", str(video), "--out", str(tmp_path / "v.dat")]) == 0
    assert len(read_events(tmp_path / "v.dat")) > 0
    with pytest.raises(SystemExit):
        _cli(["simulate", "fog", "--out", str(tmp_path)])


def test_evstream_cli_runs_simulate(tmp_path, monkeypatch):
    from evstream import cli

    if "evstream.sim.commands" not in cli._COMMAND_MODULES:
        monkeypatch.setattr(cli, "_COMMAND_MODULES", [*cli._COMMAND_MODULES, "evstream.sim.commands"])
    assert cli.main(["simulate", "depth", "--out", str(tmp_path), "--name", "tiny", "--seconds", "0.2",
                     "--fps", "50"]) == 0
    assert len(read_events(tmp_path / "tiny_data.hdf5")) > 0
    assert (tmp_path / "tiny_gt.hdf5").is_file()
