"""TA-SNN frame stacks and clip samplers (models.md §2.3, BICLab/TA-SNN ``events_timeslices.py``).

A stack is T frames of ``dt_us`` microseconds from ``start_time``: frame k counts the events of
each polarity in ``[start + k dt, start + (k + 1) dt)`` on a grid downsampled by integer division
of the coordinates (``x // ds``, ``y // ds``). Optional binarisation (TA-SNN's ``is_spike``) or
division by the stack's maximum (``interval_scaling``). Layout is ours, ``[T, 2, H', W']``; TA-SNN's
code stores ``[T, 2, X, Y]``, the transpose. TA-SNN re-anchors frames at the first event inside
the window; here they are anchored at ``start_time`` itself (the same when an event sits there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evstream._jit import inline_kernel, kernel
from evstream.events import check_sensor_size
from evstream.ops._events import contiguous_events
from evstream.ops.frames import for_each_binned_event, frame_buffer, raise_for_status, search_times


@inline_kernel
def _count_cell(grid, k, e):
    """Add 1 to the event's cell of frame ``k``; ``grid`` = (flat frames, x_cells, y_cells, cells per polarity)."""
    flat, x_cells, y_cells, cells_per_polarity = grid
    flat[(k * 2 + np.int64(e.p)) * cells_per_polarity + y_cells[e.y] + x_cells[e.x]] += 1


@kernel
def _count_downsampled(events, bounds, x_cells, y_cells, out):
    """Add 1 to cell ``y_cells[y] + x_cells[x]`` of ``out[k, p]`` for the events ``events[bounds[k]:bounds[k + 1]]``.

    ``x_cells``/``y_cells`` map sensor coordinates to the flat cell's column and row offset (``x // ds``
    and ``(y // ds) W'`` as tables, no division per event). Returns a counting-kernel status.
    """
    grid = (out.reshape(-1), x_cells, y_cells, out.shape[2] * out.shape[3])
    return for_each_binned_event(events, bounds, x_cells.shape[0], y_cells.shape[0], _count_cell, grid)


def downsampled_size(sensor_size, ds: int) -> tuple[int, int]:
    """``(H', W')`` of the grid for coordinates divided by ``ds`` (ceiling, so every pixel has a cell)."""
    width, height, _ = check_sensor_size(sensor_size)
    if not int(ds) >= 1:
        raise ValueError(f"ds must be an integer >= 1, got {ds}")
    return -(-height // int(ds)), -(-width // int(ds))


def to_tasnn_frames(events: np.ndarray, sensor_size, n_frames: int, dt_us: int, ds: int = 1, start_time=None,
                    binarize: bool = False, normalize: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """A TA-SNN stack of ``n_frames`` per-polarity count frames of ``dt_us`` µs.

    Args:
        events: time-sorted events.
        sensor_size: ``(W, H, 2)``.
        n_frames: T; dt_us: frame length in µs; ds: spatial downsampling factor.
        start_time: window start in µs (default: the first event's t).
        binarize: 1 where a frame has any event (``is_spike``); normalize: divide by the stack's max.
        out: optional reused ``[T, 2, H', W']`` float32 buffer.

    Shape:
        ``[T, 2, ceil(H / ds), ceil(W / ds)]``.

    Returns:
        float32 stack (an all-zero stack stays zero under ``normalize``).
    """
    if binarize and normalize:
        raise ValueError("to_tasnn_frames: choose binarize or normalize, not both")
    if not int(n_frames) > 0 or not int(dt_us) > 0:
        raise ValueError(f"to_tasnn_frames: n_frames and dt_us must be > 0, got {n_frames}, {dt_us}")
    width, height, _ = check_sensor_size(sensor_size)
    grid = downsampled_size(sensor_size, ds)
    events = contiguous_events(events, convert=True)
    frames = frame_buffer((int(n_frames), 2, *grid), np.float32, out, "to_tasnn_frames")
    if len(events):
        t0 = int(events["t"][0]) if start_time is None else int(start_time)
        bounds = search_times(events, t0 + np.arange(int(n_frames) + 1, dtype=np.int64) * int(dt_us))
        x_cells, y_cells = np.arange(width) // int(ds), np.arange(height) // int(ds) * grid[1]
        raise_for_status(_count_downsampled(events, bounds, x_cells, y_cells, frames), "to_tasnn_frames")
    if binarize:
        np.minimum(frames, 1, out=frames)
    elif normalize and frames.max() > 0:
        frames /= frames.max()
    return frames


def tasnn_clip_starts(t_first: int, t_last: int, n_clips: int, window_us: int) -> np.ndarray:
    """Start times of TA-SNN's test-time voting clips: ``n_clips`` windows spread over the recording.

    When the clips are longer in total than the recording they overlap by
    ``(n_clips * window - duration) // n_clips``, else they are separated by
    ``(duration - n_clips * window) // n_clips``; a clip running past ``t_last`` is moved back to end
    there (so with ``window > duration`` it starts before ``t_first``, as in TA-SNN).

    Returns:
        int64 ``[n_clips]`` absolute start times (µs).
    """
    if not int(n_clips) > 0 or not int(window_us) > 0:
        raise ValueError(f"tasnn_clip_starts: n_clips and window_us must be > 0, got {n_clips}, {window_us}")
    duration = int(t_last) - int(t_first)
    excess = int(n_clips) * int(window_us) - duration
    stride = window_us - excess // n_clips if excess > 0 else window_us + (-excess) // n_clips
    starts = np.arange(n_clips, dtype=np.int64) * stride
    return np.where(starts + window_us > duration, duration - window_us, starts) + int(t_first)


def tasnn_random_start(t_first: int, t_last: int, window_us: int, rng: np.random.Generator) -> int:
    """TA-SNN's training augmentation (``is_train_Enhanced``): a start uniform in ``[t_first, t_last - window)``.

    Recordings shorter than the window start at ``t_first``.
    """
    high = int(t_last) - int(window_us)
    return int(rng.integers(int(t_first), high)) if high > int(t_first) else int(t_first)


def to_tasnn_clips(events: np.ndarray, sensor_size, n_frames: int, dt_us: int, n_clips: int, ds: int = 1,
                   binarize: bool = False, normalize: bool = False) -> np.ndarray:
    """The ``n_clips`` stacks TA-SNN votes over at test time (:func:`tasnn_clip_starts` windows).

    Shape:
        ``[n_clips, T, 2, H', W']`` float32 (zeros for empty events).
    """
    clips = np.zeros((int(n_clips), int(n_frames), 2, *downsampled_size(sensor_size, ds)), np.float32)
    if len(events):
        events = contiguous_events(events, convert=True)
        starts = tasnn_clip_starts(events["t"][0], events["t"][-1], n_clips, n_frames * dt_us)
        for clip, start in zip(clips, starts, strict=True):
            to_tasnn_frames(events, sensor_size, n_frames, dt_us, ds, start, binarize, normalize, out=clip)
    return clips


@dataclass(frozen=True)
class ToTASNNFrames:
    """Transform calling :func:`to_tasnn_frames` from the first event."""

    sensor_size: tuple[int, int, int]
    n_frames: int
    dt_us: int
    ds: int = 1
    binarize: bool = False
    normalize: bool = False

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_tasnn_frames(events, self.sensor_size, self.n_frames, self.dt_us, self.ds,
                               binarize=self.binarize, normalize=self.normalize)


@dataclass(frozen=True)
class ToTASNNClips:
    """Transform calling :func:`to_tasnn_clips` (test-time voting input)."""

    sensor_size: tuple[int, int, int]
    n_frames: int
    dt_us: int
    n_clips: int
    ds: int = 1
    binarize: bool = False
    normalize: bool = False

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_tasnn_clips(events, self.sensor_size, self.n_frames, self.dt_us, self.n_clips, self.ds,
                              self.binarize, self.normalize)
