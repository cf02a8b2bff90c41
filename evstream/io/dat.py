"""Prophesee DAT files (Event2D: Gen1 ``_td.dat``, N-CARS; also the 8-byte "CD" type 0x0C).

Layout: a ``%`` text header, two bytes (event type, event size = 8), then little-endian
records ``u32 t`` (µs), ``u32 w`` with x = bits 0-13, y = bits 14-27, p = bits 28-31 (0 or 1).

Timestamps are 32-bit and wrap after about 71.6 minutes: the reader adds 2^32 µs each time the
raw time drops by more than 2^31 µs, so recordings of any length come out monotonic. The writer
stores times modulo 2^32 under the same rule (first time below 2^32, steps below 2^31).
"""

from __future__ import annotations

import os

import numpy as np

from evstream._jit import kernel
from evstream.events import EventFileError, empty_events, report_truncation
from evstream.io.prophesee_header import parse_header
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.writer import EventWriter

EVENT_TYPES = {0x00: "Event2D", 0x0C: "CD"}
"""DAT event types read here; both use the same 8-byte record."""

ATIS_SIZE = (304, 240)
"""Geometry assumed when the header has none (N-CARS and Gen1 come from the ATIS 304x240)."""

_HEADER_PEEK = 1 << 16
_WRAP = 1 << 32
_HALF = 1 << 31


@kernel
def _decode_dat(words, state, out):
    """Decode ``len(words) // 2`` records into ``out``; ``state`` = (time high part, last raw time).

    Returns the index of the first record whose polarity is not 0/1, or -1.
    """
    high = state[0]
    last = state[1]
    for i in range(len(words) // 2):
        raw = np.int64(words[2 * i])
        w = words[2 * i + 1]
        if raw < last - _HALF:
            high += _WRAP
        last = raw
        p = w >> 28
        if p > 1:
            state[0] = high
            state[1] = last
            return i
        out[i].t = high + raw
        out[i].x = w & 0x3FFF
        out[i].y = (w >> 14) & 0x3FFF
        out[i].p = p
    state[0] = high
    state[1] = last
    return -1


class DatReader(EventReader):
    """Streams a DAT file in blocks read into one reused buffer (memory bounded by the block).

    Options: ``sensor_size=(W, H[, 2])`` overrides the header's geometry (N-CARS headers have none;
    the default then is the ATIS 304x240).
    """

    format = "dat"

    def __init__(self, path, *, strict: bool = False, sensor_size=None):
        super().__init__(path, strict=strict)
        try:
            self._file = open(self.path, "rb")
        except OSError as err:
            raise EventFileError(self.path, f"cannot open: {err.strerror}") from err
        try:
            self._read_header(sensor_size)
        except BaseException:
            self._file.close()
            raise

    def _read_header(self, sensor_size) -> None:
        head = self._file.read(_HEADER_PEEK)
        header = parse_header(head, self.path)
        offset = header.data_offset
        if len(head) < offset + 2:
            raise EventFileError(self.path, "no event type and size bytes after the header", offset)
        event_type, event_size = head[offset], head[offset + 1]
        if event_type not in EVENT_TYPES:
            raise EventFileError(self.path, f"unsupported DAT event type 0x{event_type:02X} "
                                 f"(readable: {', '.join(f'0x{k:02X} {v}' for k, v in EVENT_TYPES.items())})", offset)
        if event_size != 8:
            raise EventFileError(self.path, f"DAT event size {event_size}, expected 8", offset + 1)
        if sensor_size is not None:
            width, height = (int(v) for v in tuple(sensor_size)[:2])
        else:
            width, height = header.geometry() or ATIS_SIZE
        self.sensor_size = (width, height, 2)
        self.header = header
        self._data_offset = offset + 2

    def close(self) -> None:
        self._file.close()

    def _blocks(self):
        start = self._data_offset
        n_total, tail = divmod(os.fstat(self._file.fileno()).st_size - start, 8)
        words = np.empty(2 * min(BLOCK_EVENTS, n_total), dtype=np.uint32)
        state = np.zeros(2, dtype=np.int64)
        self._file.seek(start)
        for first in range(0, n_total, BLOCK_EVENTS):
            n = min(BLOCK_EVENTS, n_total - first)
            offset = start + 8 * first
            chunk = words[:2 * n]
            if self._file.readinto(chunk) != 8 * n:
                raise EventFileError(self.path, "file changed size while being read", offset)
            events = empty_events(n)
            bad = _decode_dat(chunk, state, events)
            if bad >= 0:
                raise EventFileError(self.path, f"event polarity {chunk[2 * bad + 1] >> 28} is not 0 or 1",
                                     offset + 8 * bad)
            yield events, offset
        if tail:
            report_truncation(self.path, start + 8 * n_total,
                              f"file ends {tail} bytes into an 8-byte event record", self.strict)


def check_polarity(events: np.ndarray, path) -> None:
    """Raise ValueError unless every polarity is 0 or 1 (what the file formats can store)."""
    p = events["p"]
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"{path}: polarity must be 0 or 1, got values in [{p.min()}, {p.max()}]")


def times_u32(t: np.ndarray, previous: int | None, path) -> np.ndarray:
    """Times as stored in a 32-bit µs format: modulo 2^32, readable back by the wrap rule.

    ``previous`` is the last time already written (None at the file's start).
    """
    first_step = t[0] if previous is None else t[0] - previous
    if t[0] < 0 or first_step >= (_WRAP if previous is None else _HALF) or \
            (len(t) > 1 and np.max(np.diff(t)) >= _HALF):
        raise ValueError(f"{path}: 32-bit timestamps need times >= 0, a first time below 2^32 us "
                         "and steps below 2^31 us")
    return (t & (_WRAP - 1)).astype(np.uint32)


class DatWriter(EventWriter):
    """Writes a DAT v2 Event2D file (header with ``% Width``/``% Height``; expelliarmus reads it)."""

    format = "dat"

    def __init__(self, path, sensor_size):
        super().__init__(path, sensor_size)
        width, height = self.sensor_size[:2]
        if width > 0x4000 or height > 0x4000:
            raise ValueError(f"{self.path}: DAT stores 14-bit coordinates, sensor {width}x{height} is too large")
        self._previous: int | None = None
        self._file = open(self.path, "wb")
        header = (f"% Data file containing Event2D events.\n% Version 2\n"
                  f"% Width {width}\n% Height {height}\n")
        self._file.write(header.encode("ascii") + bytes([0x00, 8]))

    def _write(self, events: np.ndarray) -> None:
        check_polarity(events, self.path)
        records = np.empty((len(events), 2), dtype="<u4")
        records[:, 0] = times_u32(events["t"], self._previous, self.path)
        records[:, 1] = (events["x"].astype(np.uint32) | events["y"].astype(np.uint32) << 14
                         | events["p"].astype(np.uint32) << 28)
        self._file.write(records.tobytes())
        self._previous = int(events["t"][-1])

    def _finish(self) -> None:
        self._file.close()
