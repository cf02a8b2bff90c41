"""Smoke test of `evstream demo` in a real X window (Xvfb): it runs, and its screenshot shows events."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest


@pytest.fixture
def xvfb_display():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb)")
    for number in range(90, 110):
        if not os.path.exists(f"/tmp/.X11-unix/X{number}") and not os.path.exists(f"/tmp/.X{number}-lock"):
            break
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(f"/tmp/.X11-unix/X{number}"):
            break
        time.sleep(0.05)
    yield f":{number}"
    server.terminate()
    server.wait(10)


@pytest.mark.slow
def test_demo_window_plays_on_through_its_loop(xvfb_display, tmp_path):
    """README command 1 in a real X window: screenshots before and after the recording's loop differ
    (the demo never freezes at its end), and both show events; the run ends with its summary."""
    shot = tmp_path / "demo.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"} | {"DISPLAY": xvfb_display}
    run = subprocess.run([sys.executable, "-m", "evstream.cli", "demo", "--seconds", "3.4", "--screenshot", str(shot),
                          "--screenshot-at", "1.0,3.2"], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    if "cannot start its window system plugin" in run.stdout:
        pytest.skip("Qt's xcb plugin lacks system libraries (libxcb-icccm4, libxcb-keysyms1, libxcb-cursor0)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("screenshot saved") == 2
    summary = json.loads(run.stdout.splitlines()[-1])
    assert summary["ended"] == "3.4 s of event time" and summary["passes"] >= 1  # the 2 s recording looped
    images = [cv2.imread(str(tmp_path / f"demo_{k}.png"))[..., ::-1] for k in (1, 2)]
    for image in images:
        assert image.shape[0] >= 600 and image.shape[1] >= 1000
        on = (image[..., 0] > 200) & (image[..., 1] > 150) & (image[..., 2] < 100)  # the warm ON colour
        off = (image[..., 0] < 100) & (image[..., 2] > 200)  # the cool OFF colour
        assert on.sum() > 200 and off.sum() > 200
    assert np.abs(images[0].astype(int) - images[1].astype(int)).mean() > 2  # the picture moved on
