"""Every real recording replays with each bundled model, its input fitted by the stated policy.

The gesture and N-MNIST models (400 and 330 ms windows) run every recording to its end; the detector and the depth
net, an order of magnitude dearer per window, run the first part of each here and every
recording to its end in ``benchmarks/replay_recordings.py``.
"""

from __future__ import annotations

import json

import pytest

from evstream.cli import main
from tests.conftest import RECORDINGS

EVENT_FILES = sorted(p for p in RECORDINGS.glob("*/*") if p.suffix in (".aedat", ".aedat4", ".dat", ".raw", ".bin"))
INPUT = {"gesture": "128x128", "detection": "304x240", "depth": "346x260", "nmnist": "34x34"}


@pytest.mark.slow
@pytest.mark.filterwarnings("default::evstream.io.ChipInferredWarning")  # the jAER DVS128 file has no AEChip line
@pytest.mark.parametrize("task, seconds", [("gesture", None), ("nmnist", None), ("detection", 0.6), ("depth", 0.3)])
def test_every_real_recording_replays_with_each_model(shared, task, seconds, tmp_path, capsys, one_torch_thread):
    assert len(EVENT_FILES) >= 12
    limit = ["--seconds", str(seconds)] if seconds else []
    for path in EVENT_FILES:
        status = main(["replay", str(path), "--headless", "--no-video", "--task", task, "--out", str(tmp_path),
                       *limit])
        captured = capsys.readouterr()
        out = captured.out.splitlines()
        assert status == 0, (path, out)
        if path.name == "MovingDarkBox_dvs128.aedat":  # read without --chip: what was inferred is said
            assert "chip DVS128 inferred" in captured.err
        summary = json.loads(out[-1])
        assert summary["ended"] in ("end of stream", f"{seconds or 0:g} s of event time") and summary["error"] is None
        width, height = summary["sensor"].split("x")
        policy = "the sensor's own" if summary["sensor"] == INPUT[task] else f"from {width}x{height} by crop"
        assert policy in out[0] and policy in summary["model"], out[0]
        info = json.loads(tmp_path.joinpath(f"{path.stem}.json").read_text())
        assert info == summary
        if summary["ended"] == "end of stream":  # every event windowed, the last partial window too
            assert main(["info", str(path), "--json"]) == 0
            assert json.loads(capsys.readouterr().out)["events"] == summary["events"] + summary["off_sensor_events"]
