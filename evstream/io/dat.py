"""Prophesee DAT files (Event2D: Gen1 ``_td.dat``, N-CARS; also the 8-byte "CD" type 0x0C).

Layout: a ``%`` text header, two bytes (event type, event size = 8), then little-endian
records ``u32 t`` (µs), ``u32 w`` with x = bits 0-13, y = bits 14-27, p = bits 28-31 (0 or 1).
A ``% T0`` line (faery writes one) is added to every time, as faery reads it.

The writer follows Prophesee's own DAT writer: ``% Data file containing CD events.``, ``% Version 2``,
``% Date``, ``% Height``, ``% Width``, then event type 0x0C (CD) and size 8, which Metavision, faery
(it refuses type 0x00 Event2D) and expelliarmus read.

Timestamps are 32-bit and wrap after about 71.6 minutes: the reader adds 2^32 µs each time the
raw time drops by more than 2^31 µs, so recordings of any length come out monotonic. The writer
stores times modulo 2^32 under the same rule (first time below 2^32, steps below 2^31). A real
wrap steps from just below 2^32 µs to just above 0; one reached by a jump of 16.8 s or more, or
spanning that much, is what a corrupt timestamp byte does (every later event 71.6 minutes late):
it is reported with a :class:`~evstream.io.corruption.CorruptDataWarning` (shared with AEDAT 2.0).

The reading of 8-byte records and the 32-bit time helpers here are shared with AEDAT 2.0
(:mod:`evstream.io.aedat2`), whose words have the same shape.
"""

from __future__ import annotations

import datetime
import os

import numpy as np

from evstream._jit import kernel
from evstream._parallel import run_parts, split
from evstream.events import EventFileError, check_sensor_size, empty_events
from evstream.io.corruption import report_corruption
from evstream.io.prophesee_header import parse_header
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.record_file import (gather_blocks, opened_for_reader, read_at, record_count, record_slices,
                                     report_partial_record)
from evstream.io.writer import EventWriter

EVENT_TYPES = {0x00: "Event2D", 0x0C: "CD"}
"""DAT event types read here; both use the same 8-byte record."""
CD_TYPE = 0x0C
"""The event type the writer writes (Metavision's CD)."""

ATIS_SIZE = (304, 240)
"""Geometry assumed when the header has none (N-CARS and Gen1 come from the ATIS 304x240)."""

_HEADER_PEEK = 1 << 16
_WRAP = 1 << 32
_HALF = 1 << 31
WRAP_STEP = 1 << 24
"""A 32-bit time wrap reached or crossed by a step this large (16.8 s) looks like corruption."""
WORD_PAIR = np.dtype((np.uint32, 2))
"""An 8-byte record as two native uint32 words (DAT and AEDAT 2.0)."""


@kernel
def _decode_dat(words, width, height, state, out):
    """Decode ``len(words) // 2`` records into ``out``; returns the first record whose polarity
    is not 0/1, or -1.

    ``state`` = (time high part, last raw time, last time, doubt, last step big, doubtful wrap)
    carries across blocks; doubt becomes 1 when an event lies outside ``width`` x ``height`` or
    goes back in time, so that a whole read runs the reader's checks (and their error) only then.
    The doubtful wrap is the index in ``words`` of this call's first wrap by or across a step of
    :data:`WRAP_STEP` or more, else -1.
    """
    high = state[0]
    last = state[1]
    previous = state[2]
    doubt = state[3]
    big = -1 if state[4] else -2  # index of the last record reached by a step of WRAP_STEP or more
    doubtful = -1
    for i in range(len(words) // 2):
        raw = np.int64(words[2 * i])
        w = words[2 * i + 1]
        if np.uint64(raw - last) >= WRAP_STEP:  # one test for the rare cases: a wrap, a big step, a step back
            if raw < last - _HALF:
                high += _WRAP
                if doubtful < 0 and (raw + _WRAP - last >= WRAP_STEP or big == i - 1):
                    doubtful = i
            elif raw - last >= WRAP_STEP:
                big = i
        last = raw
        p = w >> 28
        if p > 1:
            state[0], state[1], state[2], state[3] = high, last, previous, doubt
            state[4], state[5] = big == i, doubtful
            return i
        x = w & 0x3FFF
        y = (w >> 14) & 0x3FFF
        t = high + raw
        if x >= width or y >= height or t < previous:
            doubt = 1
        previous = t
        out[i].t = t
        out[i].x = x
        out[i].y = y
        out[i].p = p
    state[0], state[1], state[2], state[3] = high, last, previous, doubt
    state[4], state[5] = big == len(words) // 2 - 1, doubtful
    return -1


@kernel
def _encode_dat(events, out):
    """Write the records of ``events`` into ``out`` (uint32 pairs: time modulo 2^32, packed word)."""
    for i in range(len(events)):
        out[2 * i] = events[i].t & 0xFFFFFFFF
        out[2 * i + 1] = np.uint32(events[i].x) | np.uint32(events[i].y) << 14 | np.uint32(events[i].p) << 28


class DatReader(EventReader):
    """Streams a DAT file in blocks read into one reused buffer (memory bounded by the block).

    Options: ``sensor_size=(W, H[, 2])`` overrides the header's geometry (N-CARS headers have none;
    the default then is the ATIS 304x240); ``threads`` decoding a large file's parts in :meth:`read`
    (default: one per CPU; pass 1 inside already parallel code such as data-loader workers).
    """

    format = "dat"

    def __init__(self, path, *, strict: bool = False, sensor_size=None, threads: int | None = None):
        super().__init__(path, strict=strict, threads=threads)
        with opened_for_reader(self.path) as self._file:
            self._size = os.fstat(self._file.fileno()).st_size
            self._read_header(sensor_size)

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
            width, height, _ = check_sensor_size((*tuple(sensor_size)[:2], 2))
        else:
            try:
                geometry = header.geometry()
            except ValueError as err:
                raise EventFileError(self.path, f"unreadable geometry in the header: {err}", 0) from None
            width, height = geometry or ATIS_SIZE
            if geometry is None:
                self._size_assumed = True
                self.notes.append(f"no % Width / % Height in the header: the ATIS {width}x{height} is assumed "
                                  "(pass --sensor-size W H for another sensor)")
        self.sensor_size = (width, height, 2)
        self.header = header
        self._t0 = header.t0(self.path)
        self._data_offset = offset + 2

    def close(self) -> None:
        self._file.close()

    def _decoder(self, state: np.ndarray):
        """The slice decoder of :func:`~evstream.io.record_file.gather_blocks`, carrying ``state`` (see
        ``_decode_dat``) from slice to slice."""
        width, height = self.sensor_size[:2]
        reported = False

        def decode(records: np.ndarray, offset: int, out: np.ndarray) -> int:
            nonlocal reported
            bad = _decode_dat(records.reshape(-1), width, height, state, out)
            if state[5] >= 0 and not reported and (bad < 0 or state[5] < bad):
                reported = True
                report_doubtful_wrap(self.path, offset + 8 * int(state[5]), int(records[state[5], 0]), self.strict)
            if bad >= 0:
                raise EventFileError(self.path, f"polarity {records[bad, 1] >> 28} is not 0 or 1", offset + 8 * bad)
            return len(records)

        return decode

    def _blocks(self):
        for block, offset in gather_blocks(word_slices(self), self._decoder(_decoder_state()), BLOCK_EVENTS):
            if self._t0:
                block["t"] += self._t0
            yield block, offset
        report_partial_word(self)

    def read(self) -> np.ndarray:
        """All events from the current position; without a seek, decoded straight into one array,
        parts of a large file in parallel threads (the reader's checks run only when the decoder
        saw an event they would reject)."""
        if self._seek_us is not None:
            return super().read()
        events = empty_events(record_count(self._data_offset, self._size, WORD_PAIR))
        parts = split(len(events), self._threads)
        results = run_parts(lambda part: self._decode_part(events, *part), parts)
        for result in results:
            if isinstance(result, Exception):
                raise result
        failed = next((k for k, (_, error) in enumerate(results) if error is not None), len(results))
        doubtful = [start + int(state[5]) for (start, _), (state, _) in zip(parts[:failed + 1], results)
                    if state[5] >= 0]
        if doubtful:  # reported before an error after it, as a decode in one piece would
            record = min(doubtful)
            report_doubtful_wrap(self.path, self._data_offset + 8 * record, self._raw_time(record), self.strict)
        if failed < len(results):
            raise results[failed][1]
        results = [state for state, _ in results]
        high = 0  # the parts counted their wraps from zero: add those of the parts before
        for (start, stop), state in zip(parts, results, strict=True):
            if high:
                events["t"][start:stop] += high
            high += int(state[0])
        report_partial_word(self)
        if self._t0:
            events["t"] += self._t0
        doubt = any(state[3] for state in results) or any(
            events["t"][start] < events["t"][start - 1] for start, _ in parts[1:])
        return check_whole(self, events, self._data_offset) if doubt else events

    def _decode_part(self, events: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, EventFileError | None]:
        """Decode records ``start`` to ``stop`` into ``events[start:stop]``; returns the decoder state,
        its time high part counted from zero and its doubtful wrap the first of the part's, relative
        to ``start``, and the error of the part's first bad polarity, where decoding stopped."""
        state = _decoder_state()
        if start:  # the wrap rule needs the previous time, and the step that reached it
            before = np.empty((min(start, 2), 2), np.uint32)
            read_at(self._file, self.path, before, self._data_offset + 8 * (start - len(before)), self._size)
            state[1] = before[-1, 0]
            state[4] = len(before) == 2 and int(before[1, 0]) - int(before[0, 0]) >= WRAP_STEP
        width, height = self.sensor_size[:2]
        first_doubtful = -1
        for records, count, offset in record_slices(self._file, self.path, self._data_offset, self._size, WORD_PAIR,
                                                    start, stop):
            at = (offset - self._data_offset) // 8
            bad = _decode_dat(records.reshape(-1), width, height, state, events[at:at + count])
            if state[5] >= 0 and first_doubtful < 0:
                first_doubtful = at - start + int(state[5])
            if bad >= 0:
                state[5] = first_doubtful
                return state, EventFileError(self.path, f"polarity {records[bad, 1] >> 28} is not 0 or 1",
                                             offset + 8 * bad)
        state[5] = first_doubtful
        return state, None

    def _raw_time(self, record: int) -> int:
        """The raw 32-bit time of a record, read from the file."""
        value = np.empty(1, np.uint32)
        read_at(self._file, self.path, value, self._data_offset + 8 * record, self._size)
        return int(value[0])


def _decoder_state() -> np.ndarray:
    return np.array([0, 0, np.iinfo(np.int64).min, 0, 0, -1], dtype=np.int64)


def report_doubtful_wrap(path, offset: int, raw: int, strict: bool) -> None:
    """Report a 32-bit time wrap that does not come from near the top of the range (see the module docstring)."""
    report_corruption(path, offset, f"the 32-bit time wraps here (raw time {raw} us) by or across a step of "
                      f"{WRAP_STEP / 1e6:.1f} s or more, not from near 2^32 us: probably a corrupt timestamp, which "
                      "makes every later event 2^32 us (71.6 min) late", strict)


def word_slices(reader: EventReader):
    """The 8-byte records of a DAT or AEDAT 2.0 reader's file as native uint32 pairs, a cache-sized
    slice at a time (:func:`~evstream.io.record_file.record_slices`)."""
    return record_slices(reader._file, reader.path, reader._data_offset, reader._size, WORD_PAIR)


def report_partial_word(reader: EventReader) -> None:
    """Report a DAT or AEDAT 2.0 file that ends inside an 8-byte record (a warning, or an error when strict)."""
    report_partial_record(reader.path, reader._data_offset, reader._size, WORD_PAIR, reader.strict)


def check_whole(reader: EventReader, events: np.ndarray, offset: int) -> np.ndarray:
    """Apply the reader's block checks to a whole decode (``read`` fast paths); returns ``events``."""
    if len(events):
        reader._check(events, offset, np.iinfo(np.int64).min)
    return events


def check_polarity(events: np.ndarray, path) -> None:
    """Raise ValueError unless every polarity is 0 or 1 (what the file formats can store)."""
    p = events["p"]
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"{path}: polarity must be 0 or 1, got values in [{p.min()}, {p.max()}]")


def check_times_u32(t: np.ndarray, previous: int | None, path) -> None:
    """Check that times stored modulo 2^32 (32-bit µs formats) read back exactly by the wrap rule.

    ``previous`` is the last time already written (None at the file's start).
    """
    first_step = t[0] if previous is None else t[0] - previous
    limit = _WRAP if previous is None else _HALF
    if t[0] < 0 or first_step >= limit or (len(t) > 1 and np.max(np.diff(t)) >= _HALF):
        raise ValueError(f"{path}: 32-bit timestamps need times >= 0, a first time below 2^32 us "
                         "and steps below 2^31 us")


class DatWriter(EventWriter):
    """Writes a DAT v2 CD file with Prophesee's header (see the module docstring; faery and expelliarmus read it).

    ``date`` goes in the ``% Date`` line (default: now); a fixed one makes the bytes reproducible.
    """

    format = "dat"

    def __init__(self, path, sensor_size, *, date: datetime.datetime | None = None):
        super().__init__(path, sensor_size)
        width, height = self.sensor_size[:2]
        if width > 0x4000 or height > 0x4000:
            raise ValueError(f"{self.path}: DAT stores 14-bit coordinates, sensor {width}x{height} is too large")
        self._previous: int | None = None
        self._file = open(self.path, "wb")
        date = (date or datetime.datetime.now()).strftime("%Y-%m-%d %H:%M:%S")
        header = (f"% Data file containing CD events.\n% Version 2\n% Date {date}\n"
                  f"% Height {height}\n% Width {width}\n")
        self._file.write(header.encode("ascii") + bytes([CD_TYPE, 8]))

    def _write(self, events: np.ndarray) -> None:
        check_polarity(events, self.path)
        check_times_u32(events["t"], self._previous, self.path)
        words = np.empty(2 * len(events), dtype=np.uint32)
        _encode_dat(events, words)
        self._file.write(words.data)
        self._previous = int(events["t"][-1])

    def _finish(self) -> None:
        self._file.close()
