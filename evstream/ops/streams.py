"""The stream form of the stateful filters: one rule for time going backwards, its warning, the kernels' clock.

A filter called as a transform (``Denoise(...)(events)``) is stateless: every call starts from a
fresh state, as a per-sample dataset transform must (a reused instance gives what a fresh one
gives, whatever the DataLoader's worker order). Streaming use keeps state explicitly:
``f.stream()`` returns a stateful callable that filters batch after batch exactly as one call on
their concatenation. A stream that sees an event more than ``max_step_back_us`` older than the
newest one before it (a new recording, a loop's turn, a seek back, a camera restart) forgets its
history at that event, with one :class:`StreamResetWarning` per reset, and carries on.

The stream kernels check this in the loop they already run, on a ``clock`` (int64[4], indexed
by :data:`BASE`, :data:`LOWEST`, :data:`TOLERANCE`, :data:`STOP`): an event below ``clock[LOWEST]``
stops the kernel, which writes its index to ``clock[STOP]``; the caller warns, resets and runs on.
"""

from __future__ import annotations

import warnings

import numpy as np

NEVER = 2**62
"""A ``max_step_back_us`` no stream of real times reaches."""
BASE, LOWEST, TOLERANCE, STOP = range(4)
"""The clock's entries: a time table's base time (:mod:`evstream.ops._time_table`); the lowest time the
next event may have (the newest so far less the tolerance); the tolerance ``max_step_back_us``; the
index where the last kernel stopped at a step back (-1: it ran to the end)."""


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
