"""Hot pixels: find pixels that fire far above the others, and drop their events.

A pixel is hot when its event count is both (a) an outlier among the active pixels and (b) far
above its own neighbourhood: a real edge also lights the pixels next to it, a faulty pixel fires
alone. (a): counts go through the Anscombe transform ``2 * sqrt(c + 3/8)`` (Poisson counts become
roughly normal with unit variance, so low counts raise no false alarms) and must exceed
``median + n_sigma * sigma``, ``sigma`` the larger of 1 and the scaled median absolute deviation
(robust to the hot pixels themselves). (b): the count must exceed ``contrast * (m + 1)``, ``m`` the
mean count of the 8 neighbours. With ``hot_pixel_frequency``, tonic's rule instead: above that
rate in Hz over the recording.

:class:`HotPixelFilter` learns from the first ``learn_us`` microseconds of each array it is called on
(those events pass unchanged), then drops the hot pixels' events: a stateless transform. Its
``stream()`` learns once, from the first ``learn_us`` of the stream; batch after batch it returns
what :func:`hot_pixel_filter` returns on the concatenation, and learns again where time goes back
(:mod:`evstream.ops.streams`).
"""

from __future__ import annotations

import numpy as np

from evstream._jit import kernel
from evstream.events import check_sensor_size
from evstream.ops._events import compacted, contiguous_events, copy_into, raise_if_off_sensor
from evstream.ops.streams import (LOWEST, NEVER, STOP, TOLERANCE, check_step_back, filter_events, new_clock, restart,
                                  warn_reset)

_MAD_TO_SIGMA = 1.4826
"""Scale of the median absolute deviation to a normal standard deviation."""


@kernel
def _count_kernel(events, counts):
    """Add each event to ``counts[y, x]``; return -(i + 1) for the first event off the sensor, else 0."""
    height, width = counts.shape
    for i in range(events.shape[0]):
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        if x >= width or y >= height:
            return -(i + 1)
        counts[y, x] += 1
    return 0


@kernel
def _learn_kernel(events, counts, learn_end, clock):
    """Count events into ``counts[y, x]`` up to the first at or after ``learn_end``; returns its index (the
    length when none). A step back below ``clock[LOWEST]`` ends it there too (its index in ``clock[STOP]``);
    the first event off the sensor gives ``-(i + 1)``."""
    height, width = counts.shape
    lowest = clock[LOWEST]
    tolerance = clock[TOLERANCE]
    clock[STOP] = -1
    end = events.shape[0]
    for i in range(events.shape[0]):
        t = events[i].t
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        if t < lowest:
            clock[STOP] = end = i
            break
        if t >= learn_end:
            end = i
            break
        if x >= width or y >= height:
            end = -(i + 1)
            break
        lowest = max(lowest, t - tolerance)
        counts[y, x] += 1
    clock[LOWEST] = lowest
    return end


@kernel
def _not_masked(mask, params, x, y, t):
    """:func:`~evstream.ops.streams.filter_events`' rule for dropping pixels: keep the events off ``mask``."""
    return not mask[y, x]


@kernel
def _drop_array(events, mask, clock, out):
    """Copy the events whose pixel is not in ``mask`` to ``out``; return their number (-(i + 1) if off the sensor)."""
    return filter_events(events, mask.shape[1], mask.shape[0], clock, out, False, _not_masked, None, mask, None,
                         None)


@kernel
def _drop_stream(events, mask, clock, out):
    """:func:`_drop_array` on a stream's batch: also stops at a step back below ``clock[LOWEST]`` (its index in
    ``clock[STOP]``)."""
    return filter_events(events, mask.shape[1], mask.shape[0], clock, out, True, _not_masked, None, mask, None,
                         None)


def pixel_counts(events: np.ndarray, sensor_size) -> np.ndarray:
    """Events per pixel. Shape: ``[N] -> [H, W]`` int64."""
    events = contiguous_events(events)
    width, height, _ = check_sensor_size(sensor_size)
    counts = np.zeros((height, width), dtype=np.int64)
    raise_if_off_sensor(_count_kernel(events, counts), events, width, height)
    return counts


def hot_pixel_mask(counts: np.ndarray, n_sigma: float = 5.0, contrast: float = 50.0, duration_us: float | None = None,
                   hot_pixel_frequency: float | None = None) -> np.ndarray:
    """The hot pixels of a count image.

    Args:
        counts: ``[H, W]`` events per pixel.
        n_sigma: outlier threshold in robust standard deviations.
        contrast: how many times its neighbours' mean count (+1) a hot pixel must fire.
        duration_us: time the counts cover (needed with ``hot_pixel_frequency``).
        hot_pixel_frequency: if given, tonic's rule instead: a pixel above this rate (Hz) is hot.

    Returns:
        ``[H, W]`` bool mask, True on hot pixels.
    """
    if hot_pixel_frequency is not None:
        if duration_us is None:
            raise ValueError("hot_pixel_frequency needs duration_us")
        return counts > hot_pixel_frequency * duration_us * 1e-6
    stable = 2.0 * np.sqrt(counts + 0.375)
    active = stable[counts > 0]
    if active.size == 0:
        return np.zeros(counts.shape, dtype=bool)
    median = np.median(active)
    sigma = max(_MAD_TO_SIGMA * np.median(np.abs(active - median)), 1.0)
    padded = np.pad(counts.astype(np.float64), 1)
    height, width = counts.shape
    neighbours = sum(padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)) - counts
    return (stable > median + n_sigma * sigma) & (counts > contrast * (neighbours / 8.0 + 1.0))


def find_hot_pixels(events: np.ndarray, sensor_size, n_sigma: float = 5.0, contrast: float = 50.0,
                    hot_pixel_frequency: float | None = None) -> np.ndarray:
    """Hot pixels of a recording. Shape: ``[N] -> [H, W]`` bool.

    With ``hot_pixel_frequency`` the pixels are tonic's ``identify_hot_pixel`` ones (rate over
    ``t[-1] - t[0]``); otherwise the count outliers (see the module docstring).
    """
    events = contiguous_events(events)
    duration = float(events["t"][-1] - events["t"][0]) if len(events) else 0.0
    return hot_pixel_mask(pixel_counts(events, sensor_size), n_sigma, contrast, duration, hot_pixel_frequency)


def drop_pixels(events: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Drop the events of the pixels where ``mask[y, x]`` is True. Returns a new array in input order."""
    events = contiguous_events(events)
    mask = np.ascontiguousarray(mask, dtype=bool)
    out = np.empty_like(events)
    n = _drop_array(events, mask, new_clock(), out)
    raise_if_off_sensor(n, events, mask.shape[1], mask.shape[0])
    return compacted(out, n)


class HotPixelFilter:
    """Hot-pixel removal: learn for ``learn_us`` from the first event, then drop hot pixels.

    Each call learns from its own array (a dataset transform: a reused instance equals a fresh
    one); :meth:`stream` learns once for a whole stream.

    Args:
        sensor_size: ``(W, H, P)``.
        learn_us: learning time in microseconds; its events pass unchanged.
        n_sigma, contrast: outlier thresholds (see :func:`hot_pixel_mask`).
        hot_pixel_frequency: use tonic's rate rule (Hz over ``learn_us``) instead.
        mask: a known ``[H, W]`` hot-pixel mask: no learning, drop from the first event.
    """

    def __init__(self, sensor_size, learn_us: int = 1_000_000, n_sigma: float = 5.0, contrast: float = 50.0,
                 hot_pixel_frequency: float | None = None, mask: np.ndarray | None = None):
        self.sensor_size = check_sensor_size(sensor_size)
        if learn_us <= 0:
            raise ValueError(f"learn_us must be > 0, got {learn_us}")
        self.learn_us, self.n_sigma, self.contrast = int(learn_us), float(n_sigma), float(contrast)
        self.hot_pixel_frequency = hot_pixel_frequency
        self.mask = None if mask is None else np.ascontiguousarray(mask, dtype=bool)
        if self.mask is not None and self.mask.shape != (self.sensor_size[1], self.sensor_size[0]):
            raise ValueError(f"mask must have shape (H, W) = {self.sensor_size[1::-1]}, got {self.mask.shape}")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Filter one time-sorted array from a fresh state. Shape: ``[N] -> [M <= N]`` EVENT_DTYPE."""
        return HotPixelStream(self, None)(events)

    def stream(self, max_step_back_us: int = 0) -> HotPixelStream:
        """The stateful form: learns from the first ``learn_us`` of the stream, then drops.

        Args:
            max_step_back_us: events up to this much older than the newest so far pass as they
                come; an older one starts the learning again
                (:class:`~evstream.ops.streams.StreamResetWarning`).
        """
        return HotPixelStream(self, check_step_back(max_step_back_us))

    def __repr__(self) -> str:
        return (f"HotPixelFilter(sensor_size={self.sensor_size}, learn_us={self.learn_us}, n_sigma={self.n_sigma:g}, "
                f"contrast={self.contrast:g}, hot_pixel_frequency={self.hot_pixel_frequency})")


class HotPixelStream:
    """A :class:`HotPixelFilter`'s stream form: ``stream(batch) -> kept``; :attr:`mask` once learned.

    Args:
        transform: the filter.
        max_step_back_us: see :meth:`HotPixelFilter.stream`; None for the one-array call (no check).
    """

    def __init__(self, transform: HotPixelFilter, max_step_back_us: int | None = 0):
        self.transform = transform
        self.max_step_back_us = max_step_back_us
        self._clock = new_clock(NEVER if max_step_back_us is None else max_step_back_us)
        # nothing to reset with a given mask: its stream never stops at a step back
        self._drop = _drop_array if max_step_back_us is None or transform.mask is not None else _drop_stream
        self.reset()

    def reset(self) -> None:
        """Start learning again (or keep the given mask)."""
        self.mask = self.transform.mask
        width, height, _ = self.transform.sensor_size
        self._counts = np.zeros((height, width), dtype=np.int64)
        self._learn_end = None
        restart(self._clock)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Filter the next batch (time-sorted). Shape: ``[N] -> [M <= N]`` EVENT_DTYPE."""
        events = contiguous_events(events)
        width, height, _ = self.transform.sensor_size
        out = np.empty_like(events)
        kept = start = 0
        while start < len(events):
            if self.mask is None:  # learning: the events pass
                if self._learn_end is None:
                    self._learn_end = int(events["t"][start]) + self.transform.learn_us
                end = _learn_kernel(events[start:], self._counts, self._learn_end, self._clock)
                raise_if_off_sensor(end - start if end < 0 else end, events, width, height)
                copy_into(out, kept, events[start:start + end])
                kept, start = kept + end, start + end
                if self._clock[STOP] < 0 and start < len(events):  # an event at the end of learning
                    self.mask = hot_pixel_mask(self._counts, self.transform.n_sigma, self.transform.contrast,
                                               self.transform.learn_us, self.transform.hot_pixel_frequency)
            else:
                n = self._drop(events[start:], self.mask, self._clock, out[kept:])
                raise_if_off_sensor(n - start if n < 0 else n, events, width, height)
                kept += n
                start = len(events) if self._clock[STOP] < 0 else start + int(self._clock[STOP])
            if self._clock[STOP] >= 0:
                warn_reset("HotPixelFilter", self._clock, int(events["t"][start]), start)
                self.reset()
        return compacted(out, kept)

    def __repr__(self) -> str:
        return f"{self.transform!r}.stream(max_step_back_us={self.max_step_back_us})"


def hot_pixel_filter(events: np.ndarray, sensor_size, learn_us: int = 1_000_000, n_sigma: float = 5.0,
                     contrast: float = 50.0, hot_pixel_frequency: float | None = None) -> np.ndarray:
    """Learn hot pixels on the first ``learn_us`` of time-sorted events, drop their later events.

    Returns:
        The kept events, a new array in input order (the learning events all pass).
    """
    return HotPixelFilter(sensor_size, learn_us, n_sigma, contrast, hot_pixel_frequency)(events)
