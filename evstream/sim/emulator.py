"""Frames to events: the v2e / ESIM pixel model, one frame interval at a time.

Each pixel keeps a (low-passed) log intensity and a reference level. Between two frames the
log intensity is taken to change linearly, so the ``j``-th threshold crossing of an interval
``[t0, t1]`` is stamped ``t0 + (t1 - t0) * (j * theta - d0) / (d1 - d0)``, where ``d0`` and ``d1``
are the distances from the reference at the two frames; each crossing moves the reference by
one threshold. Thresholds differ per pixel (drawn once per emulator from its seed), the log
is linear below ``log_floor`` DN (lin-log, as v2e), and the sensor's refractory period, leak
events (a slow downward drift of the reference), shot noise and an intensity-dependent
photoreceptor low-pass are optional.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from evstream._jit import kernel
from evstream.events import check_sensor_size, empty_events

_NO_EVENT_US = np.iinfo(np.int64).min // 2
_COUNTING_SORT_SPAN_US = 1 << 20  # frame intervals up to ~1 s are sorted by a per-microsecond count table


@dataclass(frozen=True)
class SensorParams:
    """Pixel model of the emulator (v2e's parameter names and defaults).

    Args:
        on_threshold, off_threshold: mean contrast thresholds in log-intensity units.
        threshold_sigma: standard deviation of the per-pixel threshold mismatch (log units).
        min_threshold: floor of a mismatched threshold.
        refractory_us: a pixel drops crossings closer than this to its previous event (the
            reference still moves, as in v2e).
        log_floor: intensities (DN) below this are mapped linearly instead of logarithmically.
        cutoff_hz: photoreceptor low-pass cutoff at full intensity (255 DN); lower intensities
            are slower, as in v2e. 0 disables the filter.
        leak_rate_hz: mean rate of leak (ON) events per pixel of a static scene; 0 disables.
        shot_noise_rate_hz: rate of random shot-noise events per pixel; 0 disables.
    """

    on_threshold: float = 0.2
    off_threshold: float = 0.2
    threshold_sigma: float = 0.03
    min_threshold: float = 0.01
    refractory_us: int = 0
    log_floor: float = 20.0
    cutoff_hz: float = 0.0
    leak_rate_hz: float = 0.0
    shot_noise_rate_hz: float = 0.0

    def __post_init__(self):
        if min(self.on_threshold, self.off_threshold, self.min_threshold, self.log_floor) <= 0:
            raise ValueError(f"SensorParams: thresholds, min_threshold and log_floor must be positive: {self}")
        if min(self.threshold_sigma, self.refractory_us, self.cutoff_hz, self.leak_rate_hz,
               self.shot_noise_rate_hz) < 0:
            raise ValueError(f"SensorParams: sigma, refractory, cutoff and noise rates must be >= 0: {self}")


PRESETS = {
    "clean": SensorParams(threshold_sigma=0.02),
    "noisy": SensorParams(threshold_sigma=0.05, refractory_us=500, cutoff_hz=30.0, leak_rate_hz=0.1,
                          shot_noise_rate_hz=5.0),
}
"""Named sensors: ``clean`` (mismatch only) and ``noisy`` (v2e's noisy settings)."""


def sensor_params(params: SensorParams | str = "clean", **overrides) -> SensorParams:
    """A :class:`SensorParams` from a preset name or an instance, with fields overridden."""
    if isinstance(params, str):
        if params not in PRESETS:
            raise ValueError(f"unknown sensor preset {params!r}; known: {', '.join(PRESETS)}")
        params = PRESETS[params]
    if not isinstance(params, SensorParams):
        raise TypeError(f"params must be a SensorParams or a preset name, got {type(params).__name__}")
    return replace(params, **overrides) if overrides else params


@kernel
def _lin_log(value, log_floor):
    if value <= log_floor:
        return value * (math.log(log_floor) / log_floor)
    return math.log(value)


@kernel
def _advance(frame, lut, lp, ref, thr_on, thr_off, leak, dt_s, eps_per_dn, log_floor, active, d0s, d1s):
    """Move every pixel's filtered log intensity to the new frame and list the pixels that cross.

    ``lut`` maps uint8 values to levels (empty for float frames). Writes the crossing pixels'
    indices and their distances from the reference before/after into ``active, d0s, d1s``,
    moves their references past the crossings, and returns ``(n_active, n_crossings)``.
    """
    n_active = 0
    total = 0
    use_lut = lut.size > 0
    for i in range(frame.size):
        value = float(frame[i])
        level = lut[int(value)] if use_lut else _lin_log(value, log_floor)
        if eps_per_dn > 0.0:
            level = lp[i] + min(1.0, eps_per_dn * (value + 20.0)) * (level - lp[i])
        d0 = lp[i] - ref[i]
        lp[i] = level
        ref[i] -= leak[i] * dt_s
        d1 = level - ref[i]
        if d1 >= thr_on[i]:
            count = int(d1 / thr_on[i])
            ref[i] += count * thr_on[i]
        elif d1 <= -thr_off[i]:
            count = int(-d1 / thr_off[i])
            ref[i] -= count * thr_off[i]
        else:
            continue
        active[n_active] = i
        d0s[n_active] = d0
        d1s[n_active] = d1
        n_active += 1
        total += count
    return n_active, total


@kernel
def _emit(active, d0s, d1s, thr_on, thr_off, last_t, t0, t1, refractory_us, width, out_x, out_y, out_t, out_p):
    """Stamp the crossings of the listed pixels (``t0 + span * (j theta - d0) / (d1 - d0)``), in pixel order."""
    n = 0
    span = t1 - t0
    for k in range(active.size):
        i = active[k]
        d0 = d0s[k]
        d1 = d1s[k]
        if d1 > 0.0:
            theta = thr_on[i]
            polarity = 1
        else:
            theta = -thr_off[i]
            polarity = 0
        for j in range(1, int(d1 / theta) + 1):
            t = t0 + int((j * theta - d0) / (d1 - d0) * span + 0.5)
            if t - last_t[i] < refractory_us:
                continue
            last_t[i] = t
            out_x[n] = i % width
            out_y[n] = i // width
            out_t[n] = t
            out_p[n] = polarity
            n += 1
    return n


@kernel
def _time_sort(x, y, t, p, t0, span, out):
    """Counting sort by time over ``[t0, t0 + span]`` into the event array ``out`` (stable)."""
    start = np.zeros(span + 2, np.int64)
    for k in range(t.size):
        start[t[k] - t0 + 1] += 1
    for b in range(1, span + 2):
        start[b] += start[b - 1]
    for k in range(t.size):
        slot = start[t[k] - t0]
        start[t[k] - t0] += 1
        out[slot]["x"] = x[k]
        out[slot]["y"] = y[k]
        out[slot]["t"] = t[k]
        out[slot]["p"] = p[k]


def _lin_log_table(log_floor: float) -> np.ndarray:
    """The lin-log level of every uint8 value (the kernels' fast path for 8-bit frames)."""
    return np.array([_lin_log(float(value), float(log_floor)) for value in range(256)])


class EventEmulator:
    """A streaming frames-to-events converter: feed frames in time order, get event batches.

    The first frame only sets each pixel's reference; every later frame returns the events
    of the interval since the previous frame, time-sorted.

    Args:
        sensor_size: ``(W, H, P)`` of the frames.
        params: a :class:`SensorParams` or a preset name (``"clean"``, ``"noisy"``).
        seed: seeds the per-pixel thresholds, leak phases and shot noise.

    Example:
        >>> emu = EventEmulator((640, 480, 2), "noisy", seed=1)
        >>> for t_us, gray in frames:
        ...     events = emu.step(gray, t_us)
    """

    def __init__(self, sensor_size, params: SensorParams | str = "clean", *, seed: int = 0):
        self.sensor_size = check_sensor_size(sensor_size)
        self.params = sensor_params(params)
        self._rng = np.random.default_rng(seed)
        width, height = self.sensor_size[:2]
        p = self.params
        shape = (height * width,)
        self._thr_on = np.maximum(p.on_threshold + p.threshold_sigma * self._rng.standard_normal(shape),
                                  p.min_threshold)
        self._thr_off = np.maximum(p.off_threshold + p.threshold_sigma * self._rng.standard_normal(shape),
                                   p.min_threshold)
        self._leak = p.leak_rate_hz * self._thr_on
        self._lut = _lin_log_table(p.log_floor)
        self._lp = np.zeros(shape)
        self._ref = np.zeros(shape)
        self._active = np.empty(shape, np.int64)
        self._d0 = np.empty(shape)
        self._d1 = np.empty(shape)
        self._last_t = np.full(shape, _NO_EVENT_US, dtype=np.int64)
        self._t: int | None = None

    def __repr__(self) -> str:
        return f"EventEmulator(sensor_size={self.sensor_size}, params={self.params})"

    @property
    def on_thresholds(self) -> np.ndarray:
        """Per-pixel ON thresholds, ``[H, W]`` (a copy)."""
        return self._thr_on.reshape(self.sensor_size[1], self.sensor_size[0]).copy()

    @property
    def off_thresholds(self) -> np.ndarray:
        """Per-pixel OFF thresholds, ``[H, W]`` (a copy)."""
        return self._thr_off.reshape(self.sensor_size[1], self.sensor_size[0]).copy()

    def _pixels(self, frame) -> np.ndarray:
        frame = np.asarray(frame)
        width, height = self.sensor_size[:2]
        if frame.shape != (height, width):
            raise ValueError(f"EventEmulator: frame shape {frame.shape}, expected (H, W) = {(height, width)} "
                             "(convert colour frames to grey first)")
        if frame.dtype not in (np.uint8, np.float32, np.float64):
            frame = frame.astype(np.float32)
        return np.ascontiguousarray(frame).reshape(-1)

    def step(self, frame, t_us: int) -> np.ndarray:
        """Feed the grey frame (DN, 0..255 scale) seen at ``t_us``; return the events since the last frame.

        Shape:
            frame ``[H, W]``; returns ``[N]`` of EVENT_DTYPE, sorted by ``t``, all in ``[t_prev, t_us]``.
        """
        pixels = self._pixels(frame)
        t_us = int(t_us)
        p = self.params
        lut = self._lut if pixels.dtype == np.uint8 else self._lut[:0]
        if self._t is None:  # the first frame sets the levels: no filter, no leak, nothing crosses
            self._ref[:] = np.nan  # no pixel can cross
            _advance(pixels, lut, self._lp, self._ref, self._thr_on, self._thr_off, self._leak, 0.0, 0.0,
                     float(p.log_floor), self._active, self._d0, self._d1)
            self._ref[:] = self._lp
            if p.leak_rate_hz > 0:  # random leak phases, so a static scene does not leak all at once
                self._ref -= self._rng.uniform(0.0, 1.0, self._ref.shape) * self._thr_on
            self._t = t_us
            return empty_events()
        if t_us <= self._t:
            raise ValueError(f"EventEmulator: frame times must increase, got {t_us} after {self._t}")
        t0, self._t = self._t, t_us
        dt_s = (t_us - t0) * 1e-6
        eps_per_dn = 2 * math.pi * p.cutoff_hz * dt_s / 275.0 if p.cutoff_hz > 0 else 0.0
        n_active, total = _advance(pixels, lut, self._lp, self._ref, self._thr_on, self._thr_off, self._leak, dt_s,
                                   eps_per_dn, float(p.log_floor), self._active, self._d0, self._d1)
        x = np.empty(total, np.uint16)
        y = np.empty(total, np.uint16)
        t = np.empty(total, np.int64)
        pol = np.empty(total, np.int8)
        n = _emit(self._active[:n_active], self._d0, self._d1, self._thr_on, self._thr_off, self._last_t,
                  t0, t_us, int(p.refractory_us), self.sensor_size[0], x, y, t, pol)
        columns = (x[:n], y[:n], t[:n], pol[:n])
        if p.shot_noise_rate_hz > 0:
            columns = tuple(np.concatenate(pair) for pair in zip(columns, self._shot_noise(t0, t_us, dt_s)))
        events = empty_events(len(columns[0]))
        if t_us - t0 <= _COUNTING_SORT_SPAN_US:
            _time_sort(*columns, t0, t_us - t0, events)
        else:  # a long gap between frames: a comparison sort needs no per-microsecond table
            order = np.argsort(columns[2], kind="stable")
            events["x"], events["y"], events["t"], events["p"] = (c[order] for c in columns)
        return events

    def _shot_noise(self, t0: int, t1: int, dt_s: float) -> tuple[np.ndarray, ...]:
        """Columns x, y, t, p of random events, uniform over pixels, time and polarity.

        They neither move the references nor obey the refractory period (they model noise, not crossings).
        """
        width, height = self.sensor_size[:2]
        n = self._rng.poisson(self.params.shot_noise_rate_hz * width * height * dt_s)
        pixel = self._rng.integers(0, width * height, n)
        return ((pixel % width).astype(np.uint16), (pixel // width).astype(np.uint16),
                self._rng.integers(t0 + 1, t1 + 1, n), self._rng.integers(0, 2, n).astype(np.int8))


def frames_to_events(frames: Iterable, times_us, params: SensorParams | str = "clean", *,
                     seed: int = 0) -> np.ndarray:
    """All events of a sequence of grey frames taken at ``times_us`` (one emulator, one run).

    Shape:
        frames ``[T, H, W]`` (or any iterable of ``[H, W]``), times_us ``[T]``; returns ``[N]`` EVENT_DTYPE.
    """
    times = np.asarray(times_us, dtype=np.int64)
    emulator = None
    parts = []
    for frame, t_us in zip(frames, times, strict=True):
        if emulator is None:
            height, width = np.shape(frame)[:2]
            emulator = EventEmulator((width, height, 2), params, seed=seed)
        parts.append(emulator.step(frame, t_us))
    return np.concatenate(parts) if parts else empty_events()
