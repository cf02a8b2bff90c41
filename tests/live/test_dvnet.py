"""A dv-processing NetworkWriter in a child process streams 5 M events/s on loopback; the dvnet
source receives every event, in order."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("dv_processing")
from evstream.live.dv_sources import DvNetworkSource  # noqa: E402
from evstream.live.source import SourceError  # noqa: E402

PACKETS, PER_PACKET = 500, 5000  # 2.5 M events, one packet per ms: 5 M events/s for 0.5 s
WRITER = f"""
import os, sys, time
import dv_processing as dv
writer = dv.io.NetworkWriter("127.0.0.1", int(sys.argv[1]), dv.io.Stream.EventStream(0, "events", "test", (346, 260)))
stores = []
for k in range({PACKETS}):
    store = dv.EventStore()
    for i in range({PER_PACKET}):
        n = k * {PER_PACKET} + i
        store.push_back(1_000_000 + n // 5, n % 346, (n // 346) % 260, bool(n & 1))
    stores.append(store)
print("ready", flush=True)
while writer.getClientCount() == 0:
    time.sleep(0.001)
time.sleep(0.2)
start = time.monotonic()
for k, store in enumerate(stores):
    delay = start + k * 0.001 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    writer.writeEvents(store)
while writer.getQueuedPacketCount() > 0:
    time.sleep(0.01)
time.sleep(1.0)
os._exit(0)
"""


@pytest.mark.slow
def test_dvnet_source_receives_every_event_at_5m_per_s():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        source = None
        for _ in range(100):
            try:
                source = DvNetworkSource("127.0.0.1", port)
                break
            except SourceError:
                time.sleep(0.05)
        assert source is not None and source.sensor_size == (346, 260, 2)
        received = []
        total = PACKETS * PER_PACKET
        with source:
            try:
                for batch in source.batches(timeout=20):
                    received.append(batch.events)
                    if sum(map(len, received)) >= total:
                        break
            except SourceError:
                pass  # the writer process exits once everything is sent
        events = np.concatenate(received)
        n = np.arange(total)
        assert len(events) == total and source.dropped == 0
        np.testing.assert_array_equal(events["t"], 1_000_000 + n // 5)
        np.testing.assert_array_equal(events["x"], n % 346)
        np.testing.assert_array_equal(events["p"], n & 1)
    finally:
        child.wait(30)
        child.stdout.close()
