"""Binary event files for the readers: opening one around its header parse, and blocks of
fixed-size records from a memory map (ATIS .bin)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np

from evstream.events import EventFileError, report_truncation
from evstream.io.reader import BLOCK_EVENTS


def record_blocks(path, data_offset: int, record_dtype: np.dtype, *, strict: bool,
                  block_records: int = BLOCK_EVENTS) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(records, byte_offset)`` views of a memory map, ``block_records`` at a time.

    A trailing partial record is reported once the complete ones are consumed
    (:func:`report_truncation`: a warning, or an error when ``strict``).
    """
    size = path.stat().st_size
    n = max(size - data_offset, 0) // record_dtype.itemsize
    if n:
        records = np.memmap(path, dtype=record_dtype, mode="r", offset=data_offset, shape=(n,))
        for start in range(0, n, block_records):
            yield records[start:start + block_records], data_offset + start * record_dtype.itemsize
        del records
    end = data_offset + n * record_dtype.itemsize
    if size > end:
        report_truncation(path, end, f"file ends {size - end} bytes into a {record_dtype.itemsize}-byte record",
                          strict)


@contextmanager
def opened_for_reader(path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading in binary; close it again only if the ``with`` body (the header parse) raises.

    On success the file stays open: the reader keeps it and closes it in ``close()``. A file that
    cannot be opened is an EventFileError ``cannot open: <reason>``.

    Example:
        >>> with opened_for_reader(self.path) as self._file:
        ...     self._read_header()
    """
    try:
        file = open(path, "rb")
    except OSError as err:
        raise EventFileError(path, f"cannot open: {err.strerror}") from err
    try:
        yield file
    except BaseException:
        file.close()
        raise
