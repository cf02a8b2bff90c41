"""Queues and paced file replay: every event once, in order, on time; seek; stop."""

from __future__ import annotations

import threading
from pathlib import Path
import time

import numpy as np
import pytest

import evstream
from evstream.live.queues import DropOldestQueue, LatestSlot
from evstream.live.replay import FileReplaySource
from tests.conftest import RECORDINGS, load_reference

DAVIS = RECORDINGS / "aedat4/davis346_test_data_trimmed.aedat4"  # 0.17 s, 6,676 events
BUNDLED = Path(__file__).resolve().parents[2] / "recordings/gen1_road/test/sim_road_0002_td.dat"  # 2 s


def test_drop_oldest_queue_counts_drops_and_closes():
    q = DropOldestQueue(3)
    for k in range(5):
        q.put(k)
    assert q.dropped == 2 and [q.get(), q.get(), q.get()] == [2, 3, 4]
    assert q.get(timeout=0.01) is None
    q.close()
    assert q.get() is None and q.closed


def test_latest_slot_keeps_only_the_newest():
    slot = LatestSlot()
    assert slot.get() == (0, None)
    for k in range(3):
        slot.set(k)
    assert slot.get() == (3, 2)


def test_real_time_replay_of_a_bundled_recording_is_complete_and_on_time():
    ref = evstream.read_events(BUNDLED)
    with FileReplaySource(BUNDLED, batch_us=5000) as source:
        batches = list(source.batches(timeout=30))
    assert batches[-1].pass_end and len(batches[-1].events) == 0  # the end of the pass, marked
    assert not any(b.pass_end for b in batches[:-1])
    batches = batches[:-1]
    t0 = int(ref["t"][0])
    assert len(batches) == (int(ref["t"][-1]) - t0) // 5000 + 1
    schedule = np.array([(b.t_end_us - t0) / 1e6 for b in batches])
    walls = np.array([b.wall_time for b in batches])
    start = np.min(walls - schedule)  # the replay clock's origin, from its most punctual batch
    lateness = walls - start - schedule
    np.testing.assert_array_equal(evstream.events.concat_events([b.events for b in batches]), ref)
    assert source.dropped == 0
    assert np.median(lateness) < 1e-3  # paced to the event clock
    assert lateness[-1] < 0.03


def test_fast_replay_seek_and_stop(shared):
    ref = load_reference(DAVIS.with_name(DAVIS.name + ".ref.npy"))
    target = int(ref["t"][3000])
    source = FileReplaySource(DAVIS, speed=0.05, batch_us=1000)
    source.start()
    time.sleep(0.05)
    source.seek(target)
    got = next(b for b in source.batches(timeout=2) if len(b.events) and b.events["t"][0] >= target)
    source.stop()
    assert got.events["t"][0] == ref["t"][np.searchsorted(ref["t"], target)]
    assert not any(t.name.startswith("source-") and t.is_alive() for t in threading.enumerate())


def test_a_seek_back_while_paused_plays_on_from_its_target():
    """Pause / play re-anchor the replay clock at the position of the current pass, not at where the
    replay stood before a seek (it used to rush ahead to there)."""
    ref = evstream.read_events(BUNDLED)
    source = FileReplaySource(BUNDLED, speed=1.0, batch_us=1000)
    source.start()
    try:
        time.sleep(0.8)  # ~0.8 s into the recording
        source.set_paused(True)
        while source.queue.get(0) is not None:  # what was played before the seek
            pass
        target = int(ref["t"][0]) + 100_000
        source.seek(target)
        time.sleep(0.1)
        source.set_paused(False)
        time.sleep(0.3)
        got = [b for b in iter(lambda: source.queue.get(0), None) if len(b.events)]
    finally:
        source.stop()
    times = np.concatenate([b.events["t"] for b in got])
    assert times.min() >= target and times.max() < target + 600_000  # played on from the target, in real time
