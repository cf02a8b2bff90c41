"""HATS: histograms of averaged time surfaces (Sironi et al. 2018), the same as tonic's ``ToAveragedTimesurface``.

The sensor is cut into ``cell_size`` squares (``ceil(W / cell_size) * ceil(H / cell_size)`` cells,
row-major). For each event, its local time surface sums, over the earlier events of the same cell
and polarity at most ``rho = surface_size // 2`` pixels away in x and y and not older than
``max(0, t - time_window)``, the decay of their age ``d`` at their relative position: ``exp(-d / tau)``
(``decay="exp"``) or ``1 - d / (3 tau)`` (``"lin"``), plus 1 at the centre for the event itself.
A cell's histogram is the mean of its events' surfaces. Shape: ``[cells, P, surface_size, surface_size]``.

The arithmetic is tonic's, value for value: times as float32, float32 sums in event order, the
exponentials from numpy's float32 ``exp`` (a table over the integer ages, which float32 times
always give). tonic's version subtracts coordinates in the events' own dtype, so on evstream's
uint16 ``x, y`` it loses every neighbour to the left or above; this kernel takes any event dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evstream._jit import kernel
from evstream.events import check_sensor_size
from evstream.ops._events import contiguous_events
from evstream.ops.frames import event_status, raise_for_status

_MAX_TABLE = 2**26
"""Most entries of the exponential table (256 MiB): ages beyond ``105 tau`` need none (their decay is 0)."""
_ZERO_AFTER_TAUS = 105
"""Ages above this many tau have a float32 ``exp(-age / tau)`` of exactly 0 (below ``exp(-103.98)``)."""


@kernel
def _group_by_cell(events, width, height, channels, cell_size, grid_width, starts, xs, ys, ts):
    """Sort the events by (cell, polarity) group, stably: group ``g``'s events are ``starts[g]:starts[g + 1]``
    of ``xs, ys`` (int64) and ``ts`` (float32, tonic's times). Returns a frames status (bad event, unsorted)."""
    count = events.shape[0]
    groups = np.empty(count, np.int64)
    previous_t = events[0].t if count else 0
    for i in range(count):
        e = events[i]
        status = event_status(e, previous_t, True, width, height)
        if status:
            return status
        previous_t = e.t
        group = ((np.int64(e.y) // cell_size) * grid_width + np.int64(e.x) // cell_size) * channels
        groups[i] = group + min(np.int64(e.p), channels - 1)
        starts[groups[i] + 1] += 1
    for g in range(1, starts.shape[0]):
        starts[g] += starts[g - 1]
    cursor = starts[:-1].copy()
    for i in range(count):
        k = cursor[groups[i]]
        cursor[groups[i]] += 1
        xs[k] = events[i].x
        ys[k] = events[i].y
        ts[k] = np.float32(events[i].t)
    return 0


@kernel
def _block_sum(values, start, count):
    """numpy's float32 sum of at most 128 values: in order below 8, else 8 running sums then the rest in order."""
    if count < 8:
        total = np.float32(0)
        for i in range(count):
            total += values[start + i]
        return total
    r = values[start:start + 8].copy()
    i = 8
    while i < count - count % 8:
        for j in range(8):
            r[j] += values[start + i + j]
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(i, count):
        total += values[start + i]
    return total


@kernel
def _pairwise_sum(values, start, count):
    """numpy's float32 ``sum`` of ``values[start:start + count]``: halves (rounded down to a multiple of 8)
    summed apart until a block holds at most 128 values (:func:`_block_sum`).

    numpy recurses; this walks the same tree with explicit stacks (a recursive numba function
    crashes when loaded from the cache).
    """
    node_start = np.empty(64, np.int64)
    node_count = np.empty(64, np.int64)
    node_stage = np.zeros(64, np.int64)  # 0: left half next, 1: right half next, 2: add the two
    sums = np.empty(64, np.float32)
    node_start[0], node_count[0], top, done = start, count, 0, 0
    while top >= 0:
        first, size = node_start[top], node_count[top]
        if size <= 128:
            sums[done] = _block_sum(values, first, size)
            done += 1
            top -= 1
            continue
        half = size // 2
        half -= half % 8
        stage = node_stage[top]
        node_stage[top] = stage + 1
        if stage == 2:
            done -= 1
            sums[done - 1] = sums[done - 1] + sums[done]
            node_stage[top] = 0
            top -= 1
        else:
            top += 1
            node_start[top] = first if stage == 0 else first + half
            node_count[top] = half if stage == 0 else size - half
            node_stage[top] = 0
    return sums[0]


@kernel
def _decay(age, linear, three_tau, decay_table):
    """tonic's float32 decay of an integer-valued float32 ``age``: the exp table, or ``-age / (3 tau) + 1``."""
    if linear:
        return -age / three_tau + np.float32(1)
    d = np.int64(age)
    return decay_table[d] if d < decay_table.shape[0] else np.float32(0)


@kernel
def _hats_kernel(starts, xs, ys, ts, rho, time_window, linear, three_tau, decay_table, hist):
    """Each group's mean local surface into ``hist[g]`` (``[groups, S, S]`` float32), tonic's arithmetic.

    ``decay_table[d]`` is ``exp(-d / tau)`` for integer ages ``d`` (0 beyond it); ``linear`` uses
    ``-d / three_tau + 1`` instead. Times are sorted, so a group's events in the time window are a
    run ``lo:k`` that only moves forward. tonic sums stacked ``[n, S, S]`` surfaces over the first
    axis: in order for ``S > 1``, numpy's pairwise order for ``S = 1`` (one value per layer).
    """
    size = hist.shape[1]
    surface = np.zeros((size, size), np.float32)
    largest = np.max(starts[1:] - starts[:-1]) if starts.shape[0] > 1 else 0
    layers = np.empty(largest + 1 if size == 1 else 0, np.float32)  # S = 1: the values numpy sums pairwise
    sums = np.empty(largest if size == 1 else 0, np.float32)
    zero = np.float32(0)
    for g in range(starts.shape[0] - 1):
        first, end = starts[g], starts[g + 1]
        lo = first
        cell = hist[g]
        for k in range(first, end):
            t = ts[k]
            t_start = t - time_window
            if not t_start > zero:  # tonic's max(0, t - time_window)
                t_start = zero
            while lo < k and ts[lo] < t_start:
                lo += 1
            if size == 1:
                m = 0
                for j in range(lo, k):
                    if xs[j] == xs[k] and ys[j] == ys[k]:
                        layers[m] = _decay(t - ts[j], linear, three_tau, decay_table)
                        m += 1
                layers[m] = 1
                sums[k - first] = _pairwise_sum(layers, 0, m + 1)
                continue
            surface[:] = zero
            for j in range(lo, k):
                dx = xs[j] - xs[k]
                dy = ys[j] - ys[k]
                if abs(dx) <= rho and abs(dy) <= rho:
                    surface[dy + rho, dx + rho] += _decay(t - ts[j], linear, three_tau, decay_table)
            surface[rho, rho] += np.float32(1)
            for r in range(size):
                for c in range(size):
                    cell[r, c] += surface[r, c]
        if end > first:
            count = np.float32(end - first)
            if size == 1:
                cell[0, 0] = _pairwise_sum(sums, 0, end - first)
            for r in range(size):
                for c in range(size):
                    cell[r, c] /= count


def _decay_table(ts: np.ndarray, time_window: np.float32, tau: float) -> np.ndarray:
    """``exp(-d / tau)`` in float32 for every integer age ``d`` a window can hold, up to where it is 0.

    The expression and dtypes are tonic's, so numpy's float32 ``exp`` gives tonic's values.
    """
    t_start = ts - time_window
    oldest = float(np.max(ts - np.where(t_start > 0, t_start, np.float32(0)))) if len(ts) else 0.0
    length = min(int(oldest) + 1, math.ceil(_ZERO_AFTER_TAUS * tau) + 1)
    if length > _MAX_TABLE:
        raise ValueError(f"to_averaged_time_surface: time_window and tau too long together (a table of {length} "
                         f"decays, more than {_MAX_TABLE})")
    return np.exp(-np.arange(length, dtype=np.float32) / tau).astype(np.float32)


def to_averaged_time_surface(events: np.ndarray, sensor_size, cell_size: int = 10, surface_size: int = 5,
                             time_window: float = 1e3, tau: float = 100, decay: str = "exp") -> np.ndarray:
    """HATS histograms (module docstring), tonic's ``to_averaged_timesurface_numpy``.

    Args:
        events: time-sorted events (EVENT_DTYPE or any x, y, t, p structured array).
        sensor_size: ``(W, H, P)``; ``P = 1`` merges polarities.
        cell_size: side of a cell in pixels.
        surface_size: odd side of a local surface, at most ``cell_size``.
        time_window: how far back past events count, in us (a Python number: float32 arithmetic, as tonic's).
        tau: decay time constant in us (> 0).
        decay: ``"exp"`` or ``"lin"``.

    Shape:
        ``[ceil(W / cell_size) * ceil(H / cell_size), P, surface_size, surface_size]`` float32.
    """
    width, height, polarities = check_sensor_size(sensor_size)
    cell_size, surface_size = int(cell_size), int(surface_size)
    if surface_size < 1 or surface_size % 2 == 0 or surface_size > cell_size:
        raise ValueError(f"to_averaged_time_surface: surface_size must be odd and at most cell_size ({cell_size}), "
                         f"got {surface_size}")
    if decay not in ("exp", "lin"):
        raise ValueError(f"to_averaged_time_surface: decay must be 'exp' or 'lin', got {decay!r}")
    if not tau > 0 or not time_window >= 0:
        raise ValueError(f"to_averaged_time_surface: tau must be > 0 and time_window >= 0, got tau={tau}, "
                         f"time_window={time_window}")
    events = contiguous_events(events, convert=True)
    grid_width = math.ceil(width / cell_size)
    cells = grid_width * math.ceil(height / cell_size)
    starts = np.zeros(cells * polarities + 1, np.int64)
    xs, ys = np.empty(len(events), np.int64), np.empty(len(events), np.int64)
    ts = np.empty(len(events), np.float32)
    status = _group_by_cell(events, width, height, polarities, cell_size, grid_width, starts, xs, ys, ts)
    raise_for_status(status, "to_averaged_time_surface")
    window = np.float32(time_window)
    table = _decay_table(ts, window, float(tau)) if decay == "exp" else np.zeros(0, np.float32)
    hist = np.zeros((cells * polarities, surface_size, surface_size), np.float32)
    _hats_kernel(starts, xs, ys, ts, surface_size // 2, window, decay == "lin", np.float32(3 * float(tau)), table,
                 hist)
    return hist.reshape(cells, polarities, surface_size, surface_size)


@dataclass(frozen=True)
class ToAveragedTimesurface:
    """Transform calling :func:`to_averaged_time_surface` (tonic's ``ToAveragedTimesurface`` arguments)."""

    sensor_size: tuple[int, int, int]
    surface_size: int = 5
    cell_size: int = 10
    time_window: float = 1e3
    tau: float = 100
    decay: str = "exp"

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_averaged_time_surface(events, self.sensor_size, self.cell_size, self.surface_size,
                                        self.time_window, self.tau, self.decay)
