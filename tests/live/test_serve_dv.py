"""``evstream replay ... --serve-dv PORT``: the replayed stream is republished in the DV network format,
and a DV client receives the recording's events exactly."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import evstream
from evstream.events import concat_events
from evstream.live.dv_client import DvNetworkSource

ROAD = Path(__file__).resolve().parents[2] / "recordings/gen1_road/test/sim_road_0002_td.dat"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_replay_serves_the_recording_to_a_dv_client(tmp_path):
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "evstream.cli", "replay", str(ROAD), "--headless", "--no-video",
                              "--speed", "1", "--loop", "--serve-dv", str(port), "--out", str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # the server starts once the replay is set up
            try:
                source = DvNetworkSource("127.0.0.1", port, timeout_s=5.0)
                break
            except evstream.live.source.SourceError:
                assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
                time.sleep(0.2)
        assert source.sensor_size == (304, 240, 2)
        with source:
            parts, total = [], 0
            for batch in source.batches(timeout=10):
                parts.append(batch.events)
                total += len(batch.events)
                if total >= 60_000:
                    break
    finally:
        child.send_signal(2)
        child.communicate(timeout=30)
    got = concat_events(parts)
    ref = evstream.read_events(ROAD)
    start = int(np.flatnonzero((ref["t"] == got["t"][0]) & (ref["x"] == got["x"][0]) & (ref["y"] == got["y"][0]))[0])
    n = min(len(got), len(ref) - start)  # up to the loop's turn
    assert n > 10_000
    np.testing.assert_array_equal(got[:n], ref[start:start + n])
