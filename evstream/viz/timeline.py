"""The view's clock and history, shared by the Qt window and the headless video.

Times are shown relative to the recording start (the source's first event time when known,
else the start of the current window sequence). A new window sequence (a loop's turn, a seek
back) starts the plots afresh. The decaying event image advances by the event time elapsed
between results, so a forward gap (skipped empty windows) fades it as much as it should.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evstream.live.pipeline import PipelineStats, WindowResult

SPAN_S = 30.0
"""Event time the plots show (the most recent), in seconds."""
WIDTHS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
"""Widths of the plots' time axis, per decade."""


@dataclass(frozen=True)
class Series:
    """One plotted line: the :class:`Timeline` field it reads, its legend name and colour."""

    field: str
    name: str
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class PlotSpec:
    """One plot of the view (the window and the video draw the same ones)."""

    title: str
    unit: str  # the y axis label; with ``si`` a k / M prefix is put in front when the values need it
    series: tuple[Series, ...]
    si: bool = False
    model_only: bool = False  # shown only when a model runs
    min_top: float = 1.0  # the smallest y range shown (counts: a few whole numbers, not 0.2 steps)


PLOTS = (
    PlotSpec("event rate", "events/s", (Series("events_per_s", "events/s", (255, 200, 40)),), si=True),
    PlotSpec("latency", "ms", (Series("latency_ms", "latency", (90, 220, 255)),)),
    PlotSpec("drops", "count", (Series("source_drops", "source batches", (255, 95, 95)),
                                Series("dropped_windows", "late windows", (255, 170, 60))), min_top=5.0),
    PlotSpec("firing rate", "% neurons", (Series("firing_pct", "firing", (80, 230, 120)),), model_only=True),
)
FIELDS = ("t_s", "events_per_s", "latency_ms", "source_drops", "dropped_windows", "firing_pct")


def si_prefix(top: float) -> tuple[float, str]:
    """(factor, prefix) that bring values up to ``top`` into a readable range: (1e-6, "M") for millions."""
    if top >= 1e6:
        return 1e-6, "M"
    if top >= 1e3:
        return 1e-3, "k"
    return 1.0, ""


def y_top(values: list[np.ndarray], minimum: float = 1.0) -> float:
    """A plot's y range top for these values: 20 % head room above the largest, at least ``minimum``."""
    peak = max((float(np.nanmax(v)) for v in values if len(v) and np.isfinite(v).any()), default=0.0)
    return max(peak * 1.2, minimum)


class Timeline:
    """Relative time and the plotted history of the current window sequence.

    Args:
        origin_us: the recording's first event time (None: each sequence starts at its first window).
        capacity: most samples kept (older ones are dropped in blocks).
    """

    def __init__(self, origin_us: int | None = None, capacity: int = 4096):
        self.fixed_origin = origin_us
        self.origin_us = origin_us
        self.capacity = int(capacity)
        self.sequence: int | None = None
        self.last_end_us: int | None = None
        self.window_us = 0
        self._data = np.zeros((len(FIELDS), self.capacity), np.float64)
        self._n = 0

    def add(self, result: WindowResult, stats: PipelineStats | None) -> tuple[bool, float]:
        """Record one result; returns (whether it starts a new sequence, event time in µs elapsed since
        the previous result, for the image's decay)."""
        new = result.sequence != self.sequence
        if new:
            self.sequence, self._n = result.sequence, 0
            self.origin_us = self.fixed_origin if self.fixed_origin is not None else result.t_start_us
            elapsed = result.t_end_us - result.t_start_us
        else:
            elapsed = max(result.t_end_us - self.last_end_us, 0)
        self.last_end_us = result.t_end_us
        if not result.partial:
            self.window_us = result.t_end_us - result.t_start_us
        if self._n == self.capacity:
            keep = self.capacity * 3 // 4
            self._data[:, :keep] = self._data[:, self._n - keep:self._n]
            self._n = keep
        firing = getattr(result.output, "firing_rate", None)
        self._data[:, self._n] = (
            self.relative_s(result.t_end_us),
            stats.events_per_s if stats is not None else np.nan,
            result.latency_ms,
            stats.source_drops if stats is not None else np.nan,
            stats.dropped_windows if stats is not None else np.nan,
            100.0 * firing if firing is not None else np.nan)
        self._n += 1
        return new, float(elapsed)

    def relative_s(self, t_us: int | None) -> float:
        """Seconds since the recording start (or the sequence start when that is unknown)."""
        if t_us is None or self.origin_us is None:
            return 0.0
        return (t_us - self.origin_us) / 1e6

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, name: str) -> np.ndarray:
        """The recorded values of one field of :data:`FIELDS` (a view, oldest first)."""
        return self._data[FIELDS.index(name), :self._n]

    def x_range(self) -> tuple[float, float]:
        """The plots' time axis: wide enough for the history (at most :data:`SPAN_S`), rounded up to
        :data:`WIDTHS` so the history fills at least ~3/4 of it, and moving in steps of a tenth of its
        width (the axis re-renders only at a step, not at every window)."""
        if not self._n:
            return 0.0, 1.0
        t = self["t_s"]
        first, last = float(t[0]) - self.window_us / 1e6, float(t[-1])  # from the first window's start
        length = min(max(last - first, 1e-3), SPAN_S)
        decade = 10.0 ** math.floor(math.log10(length))
        width = next(w * decade for w in WIDTHS if w * decade >= length * (1 - 1e-9))
        step = width / 10
        end = math.ceil(last / step - 1e-9) * step
        return max(end - width, math.floor(first / step + 1e-9) * step), end  # no time before the history
