"""Smoke test of `evstream demo` in a real X window (Xvfb): it runs, and its screenshot shows events."""

from __future__ import annotations

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
def test_demo_window_screenshot(xvfb_display, tmp_path):
    shot = tmp_path / "demo.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"} | {"DISPLAY": xvfb_display}
    run = subprocess.run([sys.executable, "-m", "evstream.cli", "demo", "--seconds", "1.5", "--screenshot", str(shot)],
                         env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if "Could not load the Qt platform plugin" in run.stderr:
        pytest.skip("Qt's xcb plugin lacks system libraries (libxcb-icccm4, libxcb-keysyms1, libxcb-cursor0)")
    assert run.returncode == 0, run.stderr
    assert "screenshot saved" in run.stdout
    image = cv2.imread(str(shot))[..., ::-1]
    assert image.shape[0] >= 600 and image.shape[1] >= 1000
    on = (image[..., 0] > 200) & (image[..., 1] > 150) & (image[..., 2] < 100)  # the warm ON colour
    off = (image[..., 0] < 100) & (image[..., 2] > 200)  # the cool OFF colour
    assert on.sum() > 200 and off.sum() > 200
