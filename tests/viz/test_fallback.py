"""A display Qt cannot use: evstream falls back to headless with a message saying what to install, never an abort."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_a_display_qt_cannot_open_falls_back_to_headless(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env |= {"DISPLAY": ":54321", "QT_QPA_PLATFORM": "xcb"}  # no X server there: Qt would abort the process
    run = subprocess.run([sys.executable, "-m", "evstream.cli", "demo", "--seconds", "0.3", "--no-video",
                          "--out", str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Qt could not connect to display :54321 (is an X server running there?)" in run.stdout
    assert "writing the view to" in run.stdout
    summary = json.loads(run.stdout.splitlines()[-1])
    assert summary["windows"] > 0 and summary["files"] == [str(tmp_path / "demo_road.json")]
