"""The emulator against the pixel model's formulas: counts, interpolated stamps, mismatch, refractory, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evstream import EVENT_DTYPE
from evstream.sim import EventEmulator, SensorParams, frames_to_events, sensor_params

EXACT = SensorParams(threshold_sigma=0.0)


def _ramp_events(start, stop, params=EXACT, span_us=10_000):
    start = np.atleast_2d(np.asarray(start, dtype=np.float64))
    stop = np.broadcast_to(np.asarray(stop, dtype=np.float64), start.shape)
    return frames_to_events([start, stop], [0, span_us], params)


@pytest.mark.parametrize("k", [1, 2, 5, 9])
@pytest.mark.parametrize("sign", [1, -1])
def test_ramp_of_k_thresholds_gives_k_interpolated_events(k, sign):
    delta = sign * (k + 0.4) * 0.2
    events = _ramp_events(220.0, 220.0 * math.exp(delta))
    assert len(events) == k
    expected = [round(10_000 * j * 0.2 / abs(delta)) for j in range(1, k + 1)]
    np.testing.assert_array_equal(events["t"], expected)
    assert set(events["p"]) == {1 if sign > 0 else 0}
    assert set(events["x"]) == {0} and set(events["y"]) == {0}


def test_reference_carries_over_between_frames():
    # 0.3 thresholds-worth of residual after the first interval: the next crossing needs only 0.7 more
    levels = [0.0, 1.3 * 0.2, 2.1 * 0.2]
    events = frames_to_events([np.full((1, 1), 100.0 * math.exp(v)) for v in levels], [0, 1000, 2000], EXACT)
    np.testing.assert_array_equal(events["t"], [round(1000 * 0.2 / 0.26), 1000 + round(1000 * 0.14 / 0.16)])


def test_lin_log_below_floor():
    # 5 -> 10 DN lies on the linear segment: level = v * ln(20) / 20
    delta = 5 * math.log(20) / 20
    events = _ramp_events(5.0, 10.0)
    assert len(events) == int(delta / 0.2)
    np.testing.assert_array_equal(events["t"], [round(10_000 * j * 0.2 / delta) for j in range(1, len(events) + 1)])


def test_many_pixels_sorted_and_counted():
    k = np.arange(12).reshape(3, 4)
    events = _ramp_events(np.full((3, 4), 50.0), 50.0 * np.exp((k + 0.5) * 0.2))
    assert events.dtype == EVENT_DTYPE
    assert len(events) == k.sum()
    assert np.all(np.diff(events["t"]) >= 0)
    counts = np.zeros((3, 4), int)
    np.add.at(counts, (events["y"], events["x"]), 1)
    np.testing.assert_array_equal(counts, k)


def test_static_scene_without_noise_emits_nothing():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    events = frames_to_events([frame] * 20, np.arange(20) * 5000, "clean", seed=1)
    assert len(events) == 0


def test_threshold_mismatch_has_configured_spread():
    emulator = EventEmulator((300, 200, 2), SensorParams(threshold_sigma=0.05), seed=4)
    for thresholds in (emulator.on_thresholds, emulator.off_thresholds):
        assert thresholds.shape == (200, 300)
        assert abs(thresholds.mean() - 0.2) < 0.002
        assert abs(thresholds.std() - 0.05) < 0.002
    assert np.corrcoef(emulator.on_thresholds.ravel(), emulator.off_thresholds.ravel())[0, 1] < 0.02
    # each pixel fires floor(delta / its own threshold) times on a uniform ramp
    emulator.step(np.full((200, 300), 30.0), 0)
    events = emulator.step(np.full((200, 300), 30.0 * math.exp(1.0123)), 10_000)
    counts = np.zeros((200, 300), int)
    np.add.at(counts, (events["y"], events["x"]), 1)
    np.testing.assert_array_equal(counts, np.floor(1.0123 / emulator.on_thresholds))


def test_mismatch_is_fixed_per_seed():
    a = EventEmulator((50, 40, 2), "clean", seed=9).on_thresholds
    np.testing.assert_array_equal(a, EventEmulator((50, 40, 2), "clean", seed=9).on_thresholds)
    assert not np.array_equal(a, EventEmulator((50, 40, 2), "clean", seed=10).on_thresholds)


def test_refractory_period_holds():
    params = SensorParams(threshold_sigma=0.0, refractory_us=2500)
    # 10.5 thresholds in 10 ms: crossings every ~952 us, every third one survives 2.5 ms of refractory
    events = _ramp_events(np.full((2, 3), 40.0), 40.0 * math.exp(10.5 * 0.2), params)
    for pixel in range(6):
        t = events["t"][(events["y"] * 3 + events["x"]) == pixel]
        assert len(t) == 4
        assert np.all(np.diff(t) >= 2500)
    plain = _ramp_events(np.full((2, 3), 40.0), 40.0 * math.exp(10.5 * 0.2))
    assert len(plain) == 6 * 10


def test_noise_rates_on_static_scene():
    params = SensorParams(threshold_sigma=0.03, leak_rate_hz=2.0, shot_noise_rate_hz=5.0)
    frame = np.full((100, 100), 128, np.uint8)
    events = frames_to_events([frame] * 101, np.arange(101) * 10_000, params, seed=2)  # 1 s
    expected = (2.0 + 5.0) * 100 * 100
    assert abs(len(events) - expected) < 0.05 * expected
    assert np.all(np.diff(events["t"]) >= 0)
    on_fraction = events["p"].mean()
    assert abs(on_fraction - (2.0 + 2.5) / 7.0) < 0.03  # leak events are ON, shot noise is half ON


def test_low_pass_delays_and_keeps_events():
    step = [np.full((4, 4), 20.0)] + [np.full((4, 4), 200.0)] * 40
    times = np.arange(41) * 1000
    sharp = frames_to_events(step, times, EXACT)
    slow = frames_to_events(step, times, sensor_params(EXACT, cutoff_hz=50.0))
    assert len(sharp) == 16 * int(math.log(10) / 0.2)
    assert len(slow) == len(sharp)
    assert np.all(sharp["t"] <= 1000)
    # first-order low-pass: after n frames the level has moved (1 - (1 - eps)^n) of the step,
    # eps = 2 pi fc dt (I + 20) / 275 (v2e's intensity-dependent cutoff)
    eps = 2 * math.pi * 50.0 * 1e-3 * 220 / 275
    delta = math.log(10)
    for n in (1, 2, 5, 10):
        fired = np.count_nonzero(slow["t"] <= n * 1000)
        assert fired == 16 * int((1 - (1 - eps) ** n) * delta / 0.2)


def test_uint8_and_float_frames_agree():
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (6, 30, 40), dtype=np.uint8)
    times = np.arange(6) * 3333
    a = frames_to_events(frames, times, "clean", seed=1)
    b = frames_to_events(frames.astype(np.float32), times, "clean", seed=1)
    a, b = (e[np.lexsort((e["t"], e["p"], e["x"], e["y"]))] for e in (a, b))
    for name in ("x", "y", "p"):
        np.testing.assert_array_equal(a[name], b[name])
    assert np.abs(a["t"] - b["t"]).max() <= 1  # the table and the inline log may differ by an ulp
    assert len(a) > 1000


def test_streaming_equals_batch_and_is_deterministic():
    rng = np.random.default_rng(6)
    frames = rng.uniform(0, 255, (8, 20, 30))
    times = np.arange(8) * 2000
    emulator = EventEmulator((30, 20, 2), "noisy", seed=7)
    streamed = np.concatenate([emulator.step(f, t) for f, t in zip(frames, times, strict=True)])
    np.testing.assert_array_equal(streamed, frames_to_events(frames, times, "noisy", seed=7))


def test_bad_arguments():
    emulator = EventEmulator((4, 3, 2))
    with pytest.raises(ValueError, match="frame shape"):
        emulator.step(np.zeros((4, 3)), 0)
    emulator.step(np.zeros((3, 4)), 10)
    with pytest.raises(ValueError, match="increase"):
        emulator.step(np.zeros((3, 4)), 10)
    with pytest.raises(ValueError, match="unknown sensor preset"):
        sensor_params("blurry")
    with pytest.raises(ValueError, match="positive"):
        SensorParams(on_threshold=0.0)
    with pytest.raises(ValueError, match=">= 0"):
        SensorParams(refractory_us=-1)
    assert len(frames_to_events([], [])) == 0


def _slow_twin(frames, times, emulator):
    """Plain-Python pixel model (no leak, no shot noise): the formulas the kernels implement."""
    p = emulator.params
    on, off = emulator.on_thresholds.ravel(), emulator.off_thresholds.ravel()
    width = frames[0].shape[1]

    def lin_log(v):
        return v * math.log(p.log_floor) / p.log_floor if v <= p.log_floor else math.log(v)

    lp = [lin_log(float(v)) for v in frames[0].ravel()]
    ref = list(lp)
    last = [-(1 << 62)] * len(lp)
    out = []
    for frame, t0, t1 in zip(frames[1:], times[:-1], times[1:], strict=True):
        for i, v in enumerate(frame.ravel()):
            level = lin_log(float(v))
            if p.cutoff_hz > 0:
                eps = min(1.0, 2 * math.pi * p.cutoff_hz * (t1 - t0) * 1e-6 / 275.0 * (float(v) + 20.0))
                level = lp[i] + eps * (level - lp[i])
            d0, d1 = lp[i] - ref[i], level - ref[i]
            lp[i] = level
            if d1 >= on[i]:
                theta, polarity = on[i], 1
            elif d1 <= -off[i]:
                theta, polarity = -off[i], 0
            else:
                continue
            count = int(d1 / theta)
            ref[i] += count * theta
            for j in range(1, count + 1):
                t = t0 + int((j * theta - d0) / (d1 - d0) * (t1 - t0) + 0.5)
                if t - last[i] >= p.refractory_us:
                    last[i] = t
                    out.append((i % width, i // width, t, polarity))
    return np.array(out, dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])


@pytest.mark.parametrize("params", [SensorParams(threshold_sigma=0.05),
                                    SensorParams(threshold_sigma=0.04, refractory_us=3000, cutoff_hz=80.0)])
def test_kernels_match_slow_twin(params):
    rng = np.random.default_rng(11)
    frames = [rng.uniform(0, 255, (12, 17)) for _ in range(7)]
    times = [0, 2000, 5000, 9000, 10_000, 16_000, 20_000]
    emulator = EventEmulator((17, 12, 2), params, seed=3)
    fast = np.concatenate([emulator.step(f, t) for f, t in zip(frames, times, strict=True)])
    slow = _slow_twin(frames, times, EventEmulator((17, 12, 2), params, seed=3))
    assert len(fast) == len(slow) > 300
    assert np.all(np.diff(fast["t"]) >= 0)
    fast, slow = (e[np.lexsort((e["t"], e["p"], e["x"], e["y"]))] for e in (fast, slow))
    for name in ("x", "y", "p"):
        np.testing.assert_array_equal(fast[name], slow[name])
    assert np.abs(fast["t"] - slow["t"]).max() <= 1


def test_long_gap_between_frames_is_sorted():
    k = np.arange(6).reshape(2, 3)
    events = _ramp_events(np.full((2, 3), 50.0), 50.0 * np.exp((k + 0.5) * 0.2), span_us=5_000_000)
    assert len(events) == k.sum() and np.all(np.diff(events["t"]) >= 0)
    assert events["t"].max() <= 5_000_000
