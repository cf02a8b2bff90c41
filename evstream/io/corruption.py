"""Data that decodes but looks corrupt: reported with :class:`CorruptDataWarning`, or as an error.

Some damage leaves a file readable yet wrong: a corrupt timestamp byte that the 32-bit wrap rule
turns into 71 minutes of delay, words that lost their alignment, a packet header that names no
stream. The readers check for the signs (see each format module) and report them here rather than
pass the garbage on in silence; ``strict`` readers raise instead.
"""

from __future__ import annotations

import os
import warnings

from evstream.events import EventFileError


class CorruptDataWarning(UserWarning):
    """Part of a file looks corrupt: the events decoded around ``offset`` may be wrong or missing."""

    def __init__(self, path: os.PathLike | str, offset: int, reason: str):
        self.path = str(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"{self.path} at byte offset {offset}: {reason}")


def report_corruption(path, offset: int, reason: str, strict: bool) -> None:
    """Raise :class:`EventFileError` when ``strict``, else warn with :class:`CorruptDataWarning`."""
    if strict:
        raise EventFileError(path, reason, offset)
    warnings.warn(CorruptDataWarning(path, offset, reason), stacklevel=3)
