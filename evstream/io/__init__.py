"""Event file I/O: every format's reader and writer, with one streaming interface.

``open_events(path)`` detects the format from the file's bytes and returns an
:class:`EventReader`; ``read_events(path)`` reads everything; ``open_writer(path)`` writes.
"""

from __future__ import annotations

import inspect
import os

import numpy as np

from evstream.events import EventFileError
from evstream.io.aedat2 import ChipInferredWarning
from evstream.io.corruption import CorruptDataWarning
from evstream.io.reader import EventReader
from evstream.io.registry import READERS, WRITERS, detect_format, reader_class, writer_class, writer_format_for
from evstream.io.writer import EventWriter

__all__ = ["ChipInferredWarning", "CorruptDataWarning", "EventReader", "EventWriter", "READERS", "WRITERS",
           "detect_format", "open_events", "read_events", "open_writer", "write_events"]


def open_events(path: os.PathLike | str, *, format: str | None = None, **options) -> EventReader:
    """Open an event file for streaming; ``format`` overrides detection.

    Options go to the format's reader: ``strict`` (raise on a file cut short), ``chip`` (AEDAT 2.0
    without an ``# AEChip:`` line), ``camera`` (MVSEC/DSEC), ``dataset`` (ATIS .bin: ``"nmnist"``
    or ``"ncaltech101"``), ``threads`` (whole-file decodes) or ``sensor_size`` (files without
    geometry: headerless DAT and RAW, ATIS .bin, npz, AEDAT 3.1). An option the format's reader
    does not take is a ValueError naming the file, the format and the options it does take (an
    EventFileError when the format was detected: the file is not what the options expect).
    """
    detected = format is None
    format = format or detect_format(path)
    cls = reader_class(format)
    accepted = [name for name in inspect.signature(cls).parameters if name != "path"]
    unknown = [name for name in options if name not in accepted]
    if unknown:
        reason = f"{format} files take no {', '.join(unknown)} option (they take: {', '.join(accepted) or 'none'})"
        raise EventFileError(path, reason) if detected else ValueError(f"{path}: {reason}")
    return cls(path, **options)


def read_events(path: os.PathLike | str, *, format: str | None = None, **options) -> np.ndarray:
    """Every event of a file, in file order, as an ``EVENT_DTYPE`` array."""
    with open_events(path, format=format, **options) as reader:
        return reader.read()


def open_writer(path: os.PathLike | str, sensor_size, *, format: str | None = None, **options) -> EventWriter:
    """Open a file for writing; the format comes from the suffix unless given."""
    return writer_class(format or writer_format_for(path))(path, sensor_size, **options)


def write_events(path: os.PathLike | str, events: np.ndarray, sensor_size, *, format: str | None = None,
                 **options) -> None:
    """Write one array of events to a file."""
    with open_writer(path, sensor_size, format=format, **options) as writer:
        writer.write(events)
