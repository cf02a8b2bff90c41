"""The stream form of the stateful filters: one rule for time going backwards, its warning, the kernels' clock.

A filter called as a transform (``Denoise(...)(events)``) is stateless: every call starts from a
fresh state, as a per-sample dataset transform must (a reused instance gives what a fresh one
gives, whatever the DataLoader's worker order). Streaming use keeps state explicitly:
``f.stream()`` returns a stateful callable that filters batch after batch exactly as one call on
their concatenation. A stream that sees an event more than ``max_step_back_us`` older than the
newest one before it (a new recording, a loop's turn, a seek back, a camera restart) forgets its
history at that event, with one :class:`StreamResetWarning` per reset, and carries on.

The stream kernels check this in the loop they already run (:func:`filter_events`, the one loop of
every stateful filter), on a ``clock`` (int64[4], indexed by :data:`BASE`, :data:`LOWEST`,
:data:`TOLERANCE`, :data:`STOP`): an event below ``clock[LOWEST]`` stops the kernel, which writes
its index to ``clock[STOP]``; the caller warns, resets and runs on.
"""

from __future__ import annotations

import warnings

import numpy as np

from evstream._jit import inline_kernel

NEVER = 2**62
"""A ``max_step_back_us`` no stream of real times reaches."""
BASE, LOWEST, TOLERANCE, STOP = range(4)
"""The clock's entries: a time table's base time (:mod:`evstream.ops._time_table`); the lowest time the
next event may have (the newest so far less the tolerance); the tolerance ``max_step_back_us``; the
index where the last kernel stopped at a step back (-1: it ran to the end)."""
REBASE_AT = 2**30
"""Time relative to ``clock[BASE]`` at which :func:`filter_events` moves the base forward (a time table holds
int32 times relative to it)."""


@inline_kernel
def filter_events(events, width, height, clock, out, stream, keeps, record, table, params, rebase):
    """Copy to ``out`` the events that ``keeps`` keeps; return their number, or ``-(i + 1)`` at the first event
    ``i`` off the ``width x height`` sensor: the loop of every stateful filter, which gives only its rule.

    For each event on the sensor, with ``t`` its time relative to ``clock[BASE]``: ``keeps(table, params, x, y,
    t) -> bool`` decides, then (after the copy) ``record(table, params, x, y, t)`` notes the event. ``table`` is
    the per-pixel array the rule reads and writes, ``params`` its constants. When ``t`` exceeds
    :data:`REBASE_AT`, ``rebase(table, clock, t)`` first moves the base forward by ``t`` and returns it (a time
    table's :func:`~evstream.ops._time_table.rebase`). ``record`` and ``rebase`` may be None (a rule without
    history: the times are then not even read). ``stream`` (a constant: the one-array kernel and the stream
    kernel are two foldings of this loop) also stops at an event below ``clock[LOWEST]``, a step back, writing
    its index to ``clock[STOP]``, and raises ``clock[LOWEST]`` as times grow.

    Measured choices: the base stays in a local (reading ``clock[BASE]`` per event, which numba cannot prove
    unchanged by the table writes, made the filters ~3x slower); the rebase stays out of the rule (a branch
    there costs two reference counts per event); the table is not packed into a tuple with ``params`` (~5 %);
    ``keeps`` is a plain :data:`~evstream._jit.kernel`, which LLVM inlines (numba's own inlining of it cost up
    to 8 %). numba's cache checks only the calling kernel's file: after editing this loop, delete the cached
    filter kernels (``evstream/ops/__pycache__/*.nb*``).
    """
    n = 0
    base = clock[BASE]
    lowest = clock[LOWEST]
    tolerance = clock[TOLERANCE]
    clock[STOP] = -1
    for i in range(events.shape[0]):
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        if stream and events[i].t < lowest:  # a step back: the caller resets and goes on from event i
            clock[STOP] = i
            break
        if x >= width or y >= height:
            n = -(i + 1)
            break
        if stream:
            lowest = max(lowest, events[i].t - tolerance)
        t = events[i].t - base
        if rebase is not None and t > REBASE_AT:
            base, t = rebase(table, clock, t), 0
        if keeps(table, params, x, y, t):
            o = out[n]  # field by field: numba copies a whole record byte by byte
            o.x, o.y, o.t, o.p = events[i].x, events[i].y, events[i].t, events[i].p
            n += 1
        if record is not None:
            record(table, params, x, y, t)
    clock[LOWEST] = lowest
    return n


class StreamResetWarning(UserWarning):
    """A filter stream saw time go backwards and reset its history (one warning per reset)."""


def check_step_back(max_step_back_us: int) -> int:
    """Validate a stream's tolerance for events older than the newest one so far (us, ``>= 0``)."""
    value = int(max_step_back_us)
    if not 0 <= value < NEVER:
        raise ValueError(f"max_step_back_us must be in [0, 2**62), got {max_step_back_us}")
    return value


def new_clock(max_step_back_us: int = NEVER) -> np.ndarray:
    """The clock of a stream that has seen no event yet."""
    return np.array([0, np.iinfo(np.int64).min, max_step_back_us, -1], dtype=np.int64)


def restart(clock: np.ndarray) -> None:
    """Back to a clock that has seen no event (the tolerance stays)."""
    clock[BASE], clock[LOWEST], clock[STOP] = 0, np.iinfo(np.int64).min, -1


def warn_reset(name: str, clock: np.ndarray, t_us: int, index: int) -> None:
    """Warn that the stream ``name`` resets at event ``index`` of a batch (time ``t_us``, after the newest time
    the stopped ``clock`` holds)."""
    newest = int(clock[LOWEST] + clock[TOLERANCE])
    warnings.warn(StreamResetWarning(
        f"{name} stream: time went back from {newest} us to {t_us} us at event {index} of the batch; "
        "its history is reset there"), stacklevel=3)
