"""Global time surfaces (Lagorce et al. 2016, HOTS), the same as tonic's ``ToTimesurface``.

The events are sliced by time windows of ``dt`` (tonic's slicing, with ``overlap`` and
``include_incomplete``). After slice ``i`` every pixel holds ``exp(-(t_ref - t_last) / tau)``, with
``t_last`` the time of the pixel's latest event so far and ``t_ref = t_first + (i + 1) dt``
(tonic's reference time, also under overlap); pixels without events hold 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream._jit import kernel
from evstream.events import check_sensor_size
from evstream.ops._events import contiguous_events
from evstream.ops.frames import STATUS_UNSORTED, event_status, frame_buffer, frame_slices, raise_for_status


@kernel
def _time_surface_exponents(events, start, end, base, span, reference, tau, memory, out):
    """Store each event of ``events[start:end]`` in ``memory[p, y, x]``, then write ``-(reference - t_last) / tau``
    to ``out``, with ``t_last`` the pixel's latest event time (``-inf`` exponents where none came yet).

    ``memory`` is a ``[C, H, W]`` integer buffer holding ``t - base + 1`` (0: no event yet): uint32 when
    the times fit (half the cache footprint of float64 times); a ``t - base`` over ``span``
    (what the memory holds) can only come from unsorted events and is reported so (then some slice's
    last event, or an event before a smaller one, is over it). ``out`` is one ``[C, H, W]``
    surface. The caller takes ``np.exp`` of ``out`` (numpy's exp, the one tonic uses, so the values are
    tonic's) while it is still in cache. Returns the status of the first bad event (the caller raises).
    """
    last_channel = memory.shape[0] - 1
    height = memory.shape[1]
    width = memory.shape[2]
    flat_memory = memory.reshape(-1)
    part = events[start:end]  # indices from 0: no negative-index wraparound per event
    if part.shape[0] and part[part.shape[0] - 1].t - base > span:  # else a t over span is followed by a smaller t
        return STATUS_UNSORTED
    previous_t = base  # also catches a t below base, which the memory cannot hold
    for i in range(part.shape[0]):
        e = part[i]
        status = event_status(e, previous_t, True, width, height)
        if status:
            return status
        previous_t = e.t
        flat_memory[(min(e.p, last_channel) * height + e.y) * width + e.x] = e.t - base + 1
    exponents = out.reshape(-1)
    for k in range(flat_memory.shape[0]):
        stored = np.int64(flat_memory[k])
        exponents[k] = -np.inf if stored == 0 else -(reference - np.float64(base + stored - 1)) / tau
    return 0


def to_time_surface(events: np.ndarray, sensor_size, dt: float, tau: float, overlap: float = 0,
                    include_incomplete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Time surfaces every ``dt`` µs, tonic's ``to_timesurface_numpy``.

    Args:
        events: time-sorted events.
        sensor_size: ``(W, H, P)``; ``P = 1`` merges polarities.
        dt: slice length in µs (> 0); tau: decay time constant in µs (> 0).
        overlap, include_incomplete: tonic's time-window slicing.
        out: optional reused ``[F, P, H, W]`` float buffer.

    Shape:
        ``[F, P, H, W]``, F = number of time slices.

    Returns:
        float64 surfaces, equal to tonic's. Empty events give one zero surface.
    """
    width, height, polarities = check_sensor_size(sensor_size)
    if not dt > 0 or not tau > 0:
        raise ValueError(f"to_time_surface: dt and tau must be > 0, got dt={dt}, tau={tau}")
    events = contiguous_events(events, convert=True)
    starts, ends = frame_slices(events, time_window=dt, overlap=overlap, include_incomplete=include_incomplete)
    surfaces = frame_buffer((len(starts), polarities, height, width), np.float64, out, "to_time_surface",
                            zeroed=not len(events))
    if len(events):
        first_t = int(events["t"][starts[0]])
        reference_times = (np.arange(1, len(starts) + 1) * dt + first_t).astype(np.float64)
        span = int(events["t"][max(int(ends[-1]) - 1, 0)]) - first_t
        memory = np.zeros((polarities, height, width), np.uint32 if span < 2**32 - 1 else np.int64)
        for surface, start, end, reference in zip(surfaces, starts, ends, reference_times):
            status = _time_surface_exponents(events, start, end, first_t, span, reference, float(tau), memory,
                                             surface)
            raise_for_status(status, "to_time_surface")
            np.exp(surface, out=surface)
    return surfaces


@dataclass(frozen=True)
class ToTimesurface:
    """Transform calling :func:`to_time_surface` (tonic's ``ToTimesurface`` arguments)."""

    sensor_size: tuple[int, int, int]
    dt: float
    tau: float
    overlap: float = 0
    include_incomplete: bool = False

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_time_surface(events, self.sensor_size, self.dt, self.tau, self.overlap, self.include_incomplete)
