"""The headless video's frames and the shared clock: relative times, sequences, both drops, same colours."""

from __future__ import annotations

import numpy as np
import pytest

from evstream import make_events
from evstream.live.pipeline import PipelineStats, WindowResult
from evstream.outputs import Classification, DepthMap, Detections
from evstream.viz.captions import info_line
from evstream.viz.chart import nice_ticks
from evstream.viz.dashboard import Dashboard
from evstream.viz.render import ON_RGB, class_rgb, depth_rgb
from evstream.viz.timeline import Timeline

T0 = 1_633_953_691_076_000  # an absolute camera clock, as in real recordings
INFO = {"source": "replay:road.dat", "sensor": "160x120", "path": "/data/road.dat", "format": "dat",
        "t_start_us": T0, "t_end_us": T0 + 2_000_000, "duration_s": 2.0}


def _result(k, output=None, *, sequence=0, window_us=50_000, start=T0, events=None):
    t0 = start + k * window_us
    if events is None:
        events = make_events([40, 41], [50, 50], [t0, t0 + 1], [1, 1])
    return WindowResult(t0, t0 + window_us, events, output, 4.5, {}, sequence, False)


def test_timeline_relative_times_sequences_and_decay_steps():
    timeline = Timeline(T0)
    assert timeline.add(_result(0), None) == (True, 50_000.0)
    assert timeline.add(_result(3), None) == (False, 150_000.0)  # a forward gap: the image decays by it
    assert timeline.relative_s(T0 + 200_000) == pytest.approx(0.2)
    np.testing.assert_allclose(timeline["t_s"], [0.05, 0.2])
    assert timeline.x_range() == pytest.approx((0.0, 0.2))  # from the first window's start: filled
    new, _ = timeline.add(_result(0, sequence=1), None)  # a loop's turn
    assert new and len(timeline) == 1 and timeline["t_s"][0] == pytest.approx(0.05)
    live = Timeline(None)  # no known start: each sequence starts at its first window
    live.add(_result(4), None)
    assert live.relative_s(T0 + 250_000) == pytest.approx(0.05)


def test_timeline_keeps_the_recent_history():
    timeline = Timeline(0, capacity=500)
    for k in range(1000):
        timeline.add(WindowResult(k * 100_000, (k + 1) * 100_000, make_events([], [], [], []), None, 1.0, {}), None)
    assert 375 <= len(timeline) <= 500 and timeline["t_s"][-1] == pytest.approx(100.0)  # old samples dropped
    assert timeline.x_range() == pytest.approx((72.0, 102.0))  # the last 30 s, moving in 3 s steps


def test_time_axis_moves_in_steps_and_the_history_fills_most_of_it():
    timeline = Timeline(0)
    ranges = []
    for k in range(400):
        timeline.add(WindowResult(k * 50_000, (k + 1) * 50_000, make_events([], [], [], []), None, 1.0, {}), None)
        start, end = timeline.x_range()
        t = timeline["t_s"]
        assert start <= max(t[0] - 0.05, t[-1] - 30) + 1e-9 and end >= t[-1] - 1e-9  # the recent history is shown
        assert (t[-1] - max(start, t[0] - 0.05)) / (end - start) >= 0.65  # and fills most of the axis
        ranges.append((start, end))
    assert len(set(ranges[100:])) < 30  # 300 windows, few axis changes


def test_caption_shows_relative_time_both_drops_latency_and_the_info_line():
    stats = PipelineStats(source_drops=3, dropped_windows=680, events_per_s=2.5e6)
    stats.latencies_ms.extend([4.0, 6.0])
    dashboard = Dashboard((160, 120, 2), source_info=INFO, model_info="detection · SpikeYOLO rt")
    dashboard.frame(_result(4), stats)
    lines = dashboard.caption(_result(5), stats)
    assert lines[0] == info_line(INFO, "detection · SpikeYOLO rt")
    assert "replay:road.dat" in lines[0] and "dat" in lines[0] and "160 × 120" in lines[0] and "SpikeYOLO" in lines[0]
    assert lines[-1].startswith("t 0.300 s / 2.000 s")  # relative to the recording start, not 1633953691.3
    assert "3 source batches" in lines[-1] and "680 late windows" in lines[-1]
    assert "latency 4.5 ms" in lines[-1] and "2.50 M events/s" in lines[-1]


def test_frames_keep_one_size_and_show_events_and_boxes():
    boxes = Detections(np.array([[0.0, 0.0, 60.0, 40.0], [100.0, 80.0, 160.0, 120.0]]), np.array([0, 1]),
                       np.array([0.9, 0.8]), ("car", "pedestrian"))
    dashboard = Dashboard((160, 120, 2), source_info=INFO, model_info="m")
    frames = [dashboard.frame(_result(k, boxes if k % 2 else None), PipelineStats()) for k in range(4)]
    assert len({f.shape for f in frames}) == 1 and frames[0].shape[0] == 720 and frames[0].shape[1] % 2 == 0
    x, y, w, h = dashboard.layout.events
    scale = w / 160
    frame = frames[1]
    event = frame[y + int(50.5 * scale), x + int(40.5 * scale)]
    assert event.tolist() == ON_RGB.astype(np.uint8).tolist()
    assert frame[y + int(20 * scale), x + 1].tolist() == list(class_rgb(0))  # the left edge of the car box
    assert frame[y + int(100 * scale), x + w - 2].tolist() == list(class_rgb(1))  # the pedestrian's right edge


def test_depth_panel_colours_are_depth_rgb_and_the_bar_is_in_metres():
    depth = np.full((60, 80), 20.0, np.float32)
    depth[:, :40] = 2.0
    dashboard = Dashboard((160, 120, 2), source_info=INFO)
    frame = dashboard.frame(_result(0, DepthMap(depth, d_max=40.0, firing_rate=0.1)), PipelineStats())
    x, y, w, h = dashboard.layout.output
    assert w / h == pytest.approx(80 / 60, rel=0.02)  # the depth map's own aspect, not the sensor's
    expected_near = depth_rgb(np.array([[2.0]]), d_max=40.0)[0, 0].tolist()
    expected_far = depth_rgb(np.array([[20.0]]), d_max=40.0)[0, 0].tolist()
    assert frame[y + h // 2, x + w // 4].tolist() == expected_near
    assert frame[y + h // 2, x + 3 * w // 4].tolist() == expected_far


def test_class_panel_grows_a_history():
    names = ("clap", "wave", "roll")
    dashboard = Dashboard((128, 128, 2), source_info=INFO, model_info="gesture")
    for k in range(3):
        frame = dashboard.frame(_result(k, Classification(np.array([0.1, 0.8, 0.1]), names, 0.05)), PipelineStats())
    x, y, w, h = dashboard.layout.output
    panel = frame[y:y + h, x:x + w]
    assert (panel == class_rgb(1)).all(axis=-1).sum() > 1000  # the best bar and its history row
    assert len(dashboard.history) == 3


def test_nice_ticks():
    np.testing.assert_allclose(nice_ticks(0, 10), [0, 5, 10])  # step 2.5 rounds up to 5
    np.testing.assert_allclose(nice_ticks(0.25, 2.0), [0.5, 1.0, 1.5, 2.0])  # step 0.44 rounds up to 0.5
    np.testing.assert_allclose(nice_ticks(0, 1, 4), [0, 0.5, 1.0])
