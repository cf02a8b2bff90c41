"""AEDAT 3.1 files (cAER / DV 1.x; the layout of the DVS128 Gesture dataset).

After ``#`` header lines (``#!AER-DAT3.1`` first, ``#!END-HEADER`` last) come packets: a 28-byte
little-endian header (``i16 eventType, i16 eventSource, i32 eventSize, i32 eventTSOffset,
i32 eventTSOverflow, i32 eventCapacity, i32 eventNumber, i32 eventValid``) and
``eventSize x eventCapacity`` bytes of records. Polarity packets (type 1) hold
``eventNumber`` used ``(u32 data, i32 timestamp)`` records: bit 0 valid, bit 1 polarity,
bits 2-16 y, bits 17-31 x; time = ``tsOverflow << 31 | timestamp``. Invalid records and other
packet types are skipped.

On opening, a kernel scans the packet headers into an index of the polarity packets (data
offset, record count, overflow, last record time), reading the file a bounded window at a time:
decoding walks that index a bounded block at a time (positioned reads of the packets' bytes, never
a memory map, so a file cut while it is read is an error, not SIGBUS), and ``seek`` skips the
packets that end before the target. A file cut short yields the valid events of every complete
packet and warns with the cut packet's offset: the records of a cut packet are dropped, since
its header's counts no longer describe the bytes present.
"""

from __future__ import annotations

import os
import time

import numpy as np

from evstream._jit import kernel
from evstream._parallel import compact, run_parts, split
from evstream.events import EventFileError, check_sensor_size, empty_events, report_truncation
from evstream.io.aedat_text import parse_hash_header, sensor_of
from evstream.io.dat import check_polarity, check_whole
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.record_file import READ_BYTES, decode_into, gather_blocks, opened_for_reader, read_at
from evstream.io.writer import EventWriter

PACKET_HEADER_DTYPE = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                                ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
"""The 28-byte packet header."""

POLARITY_EVENT = 1
SOURCES = {(128, 128): "DVS128", (240, 180): "DAVIS240C", (346, 260): "DAVIS346B"}
"""``#Source 1:`` name the writer uses for each sensor size."""

_HEADER_BYTES = 28
_HEADER_PEEK = 1 << 20
_TABLE_ROWS = 1 << 14
_SCAN_BYTES = 1 << 24
"""Bytes of the file the packet scan reads at once."""
_SPAN_READS = 2
"""A read of packet data spans at most this many times its records' bytes (the packets between them included)."""
# scan outcomes: _END clean end, _FULL index full or window scanned (resume), _CUT file ends inside
# a packet, _BAD_* impossible header values
_END, _FULL, _CUT, _BAD_SIZE, _BAD_COUNT, _BAD_POLARITY, _BAD_OVERFLOW = range(7)
_BAD_REASONS = {
    _BAD_SIZE: "eventSize {size} is not positive",
    _BAD_COUNT: "impossible counts eventCapacity {capacity}, eventNumber {number}, eventValid {valid}",
    _BAD_POLARITY: "polarity packet with eventSize {size} and eventTSOffset {ts_offset} (expected 8 and 4)",
    _BAD_OVERFLOW: "negative eventTSOverflow {ts_overflow}",
}


@kernel
def _u32(buf, pos):
    return (np.uint32(buf[pos]) | np.uint32(buf[pos + 1]) << 8 | np.uint32(buf[pos + 2]) << 16
            | np.uint32(buf[pos + 3]) << 24)


@kernel
def _i32(buf, pos):
    return np.int64(np.int32(_u32(buf, pos)))


@kernel
def _scan_packets(buf, base, file_size, table, status):
    """Index the polarity packets whose headers lie in ``buf`` (the file's bytes from ``base``) into ``table``.

    Starts at byte ``status[1]``; row: (data offset, eventNumber, tsOverflow, time of the last used
    record; only ``tsOverflow << 31`` when that record lies beyond ``buf``). Returns the rows
    written; ``status`` receives (outcome, byte offset of the packet where the scan stopped).
    """
    pos = status[1]
    n = 0
    outcome = _END
    while pos < file_size:
        at = pos - base
        if n == len(table) or at + _HEADER_BYTES > len(buf):
            outcome = _FULL if pos + _HEADER_BYTES <= file_size else _CUT
            break
        ev_type = _i32(buf, at) & 0xFFFF
        ev_size = _i32(buf, at + 4)
        ts_offset = _i32(buf, at + 8)
        overflow = _i32(buf, at + 12)
        capacity = _i32(buf, at + 16)
        number = _i32(buf, at + 20)
        valid = _i32(buf, at + 24)
        if ev_size <= 0:
            outcome = _BAD_SIZE
            break
        if capacity < 0 or number < 0 or number > capacity or valid < 0 or valid > number:
            outcome = _BAD_COUNT
            break
        if ev_type == POLARITY_EVENT and (ev_size != 8 or ts_offset != 4):
            outcome = _BAD_POLARITY
            break
        if overflow < 0:
            outcome = _BAD_OVERFLOW
            break
        end = pos + _HEADER_BYTES + ev_size * capacity
        if end > file_size:
            outcome = _CUT
            break
        if ev_type == POLARITY_EVENT:
            last = at + _HEADER_BYTES + 8 * number - 4
            table[n, 0] = pos + _HEADER_BYTES
            table[n, 1] = number
            table[n, 2] = overflow
            table[n, 3] = overflow << 31
            if number > 0 and last + 4 <= len(buf):  # else read by the caller
                table[n, 3] += _i32(buf, last)
            n += 1
        pos = end
    status[0] = outcome
    status[1] = pos
    return n


@kernel
def _decode_packets(words, table, width, height, state, out):
    """Decode the valid records of the indexed packets into ``out``; ``words`` are the bytes the
    table's offsets count in, as native uint32 (every record is 4-byte aligned there).

    ``state`` = (last time, doubt) carries across calls; doubt becomes 1 when an event lies
    outside ``width`` x ``height`` or goes back in time, so that a whole read runs the reader's
    checks (and their error) only then. Returns (events written, byte offset of a record with a
    negative timestamp or -1).
    """
    n = 0
    previous = state[0]
    doubt = state[1]
    for k in range(len(table)):
        base = table[k, 0] >> 2
        high = table[k, 2] << 31
        for i in range(table[k, 1]):
            data = words[base + 2 * i]
            if data & 1 == 0:
                continue
            ts = np.int64(np.int32(words[base + 2 * i + 1]))
            if ts < 0:
                state[0], state[1] = previous, doubt
                return n, 4 * (base + 2 * i)
            x = data >> 17
            y = (data >> 2) & 0x7FFF
            t = high + ts
            if x >= width or y >= height or t < previous:
                doubt = 1
            previous = t
            out[n].x = x
            out[n].y = y
            out[n].p = (data >> 1) & 1
            out[n].t = t
            n += 1
    state[0], state[1] = previous, doubt
    return n, -1


@kernel
def _encode_polarity(events, out):
    """Write the valid polarity records of ``events`` into ``out`` (uint32 pairs: data, 31-bit time)."""
    for i in range(len(events)):
        out[2 * i] = (np.uint32(events[i].x) << 17 | np.uint32(events[i].y) << 2
                      | np.uint32(events[i].p) << 1 | np.uint32(1))
        out[2 * i + 1] = events[i].t & 0x7FFFFFFF


def _fresh_state() -> np.ndarray:
    """``_decode_packets``' state before the first packet: no time yet, no doubt."""
    return np.array([np.iinfo(np.int64).min, 0], dtype=np.int64)


class Aedat31Reader(EventReader):
    """Streams the polarity events of an AEDAT 3.1 file.

    Args:
        path: the ``.aedat`` file.
        strict: raise instead of warning on a file cut short.
        sensor_size: ``(W, H[, 2])`` when the ``#Source`` line names no known sensor (overrides it).
        threads: threads decoding a large file's packets in :meth:`read` (default: one per CPU;
            pass 1 inside already parallel code such as data-loader workers).
    """

    format = "aedat31"

    def __init__(self, path, *, strict: bool = False, sensor_size=None, threads: int | None = None):
        super().__init__(path, strict=strict, threads=threads)
        with opened_for_reader(self.path) as self._file:
            self._size = os.fstat(self._file.fileno()).st_size
            self._read_header(sensor_size)
            self._index()

    def _read_header(self, sensor_size) -> None:
        head = self._file.read(_HEADER_PEEK)
        lines, self._data_offset = parse_hash_header(head, self.path, end_line="!END-HEADER")
        if not lines or lines[0].strip() != "!AER-DAT3.1":
            raise EventFileError(self.path, f"not an AEDAT 3.1 file: first line {head[:14]!r} "
                                 "is not '#!AER-DAT3.1'", 0)
        if lines[-1] != "!END-HEADER":
            raise EventFileError(self.path, "the header does not end with a '#!END-HEADER' line", self._data_offset)
        self.header_lines = lines
        sources = [line.partition(":")[2].strip() for line in lines if line.startswith("Source ")]
        if sensor_size is not None:
            self.sensor_size = check_sensor_size((*tuple(sensor_size)[:2], 2))
            return
        found = sensor_of(sources[0]) if sources else None
        if found is None:
            raise EventFileError(self.path, f"the header names no known sensor (sources {sources}): pass sensor_size=")
        self.sensor_size = (*found[1], 2)

    def _index(self) -> None:
        """Scan every packet header once, a bounded window of the file at a time: the polarity
        packet table and how the file ends."""
        parts = []
        status = np.zeros(2, dtype=np.int64)
        status[1] = self._data_offset
        window = np.empty(min(_SCAN_BYTES, max(self._size - self._data_offset, 0)), dtype=np.uint8)
        while True:
            start = int(status[1])
            buf = window[:min(len(window), self._size - start)]
            read_at(self._file, self.path, buf, start, self._size)
            table = np.empty((_TABLE_ROWS, 4), dtype=np.int64)
            table = table[:_scan_packets(buf, start, self._size, table, status)]
            lasts = table[:, 0] + 8 * table[:, 1] - 4
            for row in np.flatnonzero((table[:, 1] > 0) & (lasts + 4 > start + len(buf))):
                ts = np.empty(1, dtype="<i4")  # a last record beyond the window: one per window at most,
                read_at(self._file, self.path, ts, int(lasts[row]), self._size)  # plus packets larger than it
                table[row, 3] += int(ts[0])
            parts.append(table)
            if status[0] != _FULL:
                break
        self._table = np.concatenate(parts)
        self._ends = np.cumsum(self._table[:, 1])
        self._stop = (int(status[0]), int(status[1]))

    def _blocks(self):
        return self._packet_blocks(0)

    def _blocks_from(self, t_us):
        # a packet can be skipped when it and every packet before it end before t_us
        ends_before = np.maximum.accumulate(self._table[:, 3])
        return self._packet_blocks(int(np.searchsorted(ends_before, t_us, side="left")))

    def _record_runs(self, k: int, stop_row: int | None = None):
        """Runs of the polarity records of packets ``k`` to ``stop_row`` (default: the last), each read
        with one positioned read.

        Yields ``((rows, first byte, byte count), records, offset to name)``: ``rows`` are table rows
        (a packet larger than a read is split into parts) whose data offsets count from the run's
        first byte; errors name the first packet's header, or the first record of a packet's part.
        A run holds at most :data:`~evstream.io.record_file.READ_BYTES` of records and spans at most
        ``_SPAN_READS`` times that, so the packets of other types between polarity packets are read
        along only while they are small.
        """
        table, ends = self._table, self._ends
        stop_row = len(table) if stop_row is None else stop_row
        data_ends = table[:, 0] + 8 * table[:, 1]
        most = max(READ_BYTES // 8, 1)
        done = 0  # records of packet k already read
        while k < stop_row:
            first = int(table[k, 0]) + 8 * done
            name = first if done else first - _HEADER_BYTES
            stop = min(int(np.searchsorted(ends, (int(ends[k - 1]) if k else 0) + done + most, side="right")),
                       int(np.searchsorted(data_ends, first + 8 * _SPAN_READS * most, side="right")), stop_row)
            rows = table[k:max(stop, k + 1)].copy()
            rows[0, 0] = first
            rows[0, 1] -= done
            if stop > k:
                k, done = stop, 0
            else:  # more than a read left in packet k (at most a read's bytes fit the span): a part
                rows[0, 1] = most
                done += most
            size = int(rows[-1, 0] + 8 * rows[-1, 1]) - first
            rows[:, 0] -= first
            yield (rows, first, size), int(rows[:, 1].sum()), name

    def _decoder(self, state: np.ndarray):
        """The run decoder of :func:`~evstream.io.record_file.gather_blocks` (one reused read buffer,
        ``state`` as ``_decode_packets`` keeps it)."""
        buffer = np.empty(0, dtype=np.uint32)
        width, height = self.sensor_size[:2]

        def decode(run, offset: int, out: np.ndarray) -> int:
            nonlocal buffer
            rows, first, size = run
            if size > 4 * len(buffer):
                buffer = np.empty(size // 4 + 1, dtype=np.uint32)
            words = buffer[:size // 4]
            read_at(self._file, self.path, words, first, self._size)
            n, bad = _decode_packets(words, rows, width, height, state, out)
            if bad >= 0:
                raise EventFileError(self.path, "polarity record with a negative timestamp", first + bad)
            return n

        return decode

    def _packet_blocks(self, k: int):
        """Decoded blocks from packet ``k``."""
        yield from gather_blocks(self._record_runs(k), self._decoder(_fresh_state()), BLOCK_EVENTS)
        self._report_end()

    def read(self) -> np.ndarray:
        """All events from the current position; without a seek, decoded straight into one array,
        the packets of a large file in parallel threads (the reader's checks run only when the
        decoder saw an event they would reject)."""
        if self._seek_us is not None:
            return super().read()
        ends = self._ends
        events = empty_events(int(ends[-1]) if len(ends) else 0)
        rows = sorted({0, len(ends), *(int(np.searchsorted(ends, start, side="right"))
                                       for start, _ in split(len(events), self._threads)[1:])})
        parts = list(zip(rows[:-1], rows[1:])) or [(0, 0)]
        starts = [int(ends[first - 1]) if first else 0 for first, _ in parts]

        def decode_part(k: int) -> tuple[int, np.ndarray]:
            state = _fresh_state()
            return decode_into(self._record_runs(*parts[k]), self._decoder(state), events[starts[k]:]), state

        results = run_parts(decode_part, range(len(parts)))
        for result in results:
            if isinstance(result, Exception):
                raise result
        counts = [n for n, _ in results]
        n = compact(events, starts, counts)
        self._report_end()
        firsts = np.cumsum([0, *counts])[:-1]
        doubt = any(state[1] for _, state in results) or any(
            first < n and counts[k - 1] and events["t"][first] < events["t"][first - 1]
            for k, first in enumerate(firsts) if k)
        return check_whole(self, events[:n], self._data_offset) if doubt else events[:n]

    def _report_end(self) -> None:
        outcome, offset = self._stop
        if outcome == _CUT:
            report_truncation(self.path, offset, "file ends inside the packet starting here "
                              "(its records are dropped)", self.strict)
        elif outcome != _END:
            header = np.empty(1, dtype=PACKET_HEADER_DTYPE)
            read_at(self._file, self.path, header, offset, self._size)
            values = {name: int(header[0][name]) for name in PACKET_HEADER_DTYPE.names}
            raise EventFileError(self.path, "corrupt packet header: " + _BAD_REASONS[outcome].format(**values), offset)

    def close(self) -> None:
        self._file.close()


class Aedat31Writer(EventWriter):
    """Writes AEDAT 3.1 polarity packets as the DVS128 Gesture files lay them out.

    Args:
        path: the output file.
        sensor_size: ``(128, 128, 2)`` (DVS128), ``(240, 180, 2)`` or ``(346, 260, 2)``; names the
            ``#Source 1:`` sensor.
        packet_events: records per packet; a packet never mixes two ``tsOverflow`` values.
    """

    format = "aedat31"

    def __init__(self, path, sensor_size, *, packet_events: int = 4096):
        super().__init__(path, sensor_size)
        size = tuple(self.sensor_size[:2])
        if size not in SOURCES:
            raise ValueError(f"{self.path}: AEDAT 3.1 writes sensors {sorted(SOURCES)}, not {size}")
        if packet_events <= 0:
            raise ValueError(f"{self.path}: packet_events must be positive, got {packet_events}")
        self._packet_events = int(packet_events)
        self._file = open(self.path, "wb")
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        self._file.write((f"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: {SOURCES[size]}\r\n"
                          f"#Start-Time: {start} (TZ+0000)\r\n#!END-HEADER\r\n").encode("ascii"))

    def _write(self, events: np.ndarray) -> None:
        check_polarity(events, self.path)
        t = events["t"]
        if t[0] < 0:
            raise ValueError(f"{self.path}: AEDAT 3.1 times must be non-negative, got {t[0]}")
        records = np.empty(2 * len(events), dtype=np.uint32)
        _encode_polarity(events, records)
        overflow = t >> 31
        runs = np.concatenate(([0], np.flatnonzero(np.diff(overflow)) + 1, [len(t)]))
        header = np.zeros(1, dtype=PACKET_HEADER_DTYPE)
        for run_start, run_stop in zip(runs[:-1], runs[1:], strict=True):
            for first in range(run_start, run_stop, self._packet_events):
                n = min(self._packet_events, run_stop - first)
                header[0] = (POLARITY_EVENT, 1, 8, 4, overflow[first], n, n, n)
                self._file.write(header.tobytes())
                self._file.write(records[2 * first:2 * (first + n)].data)

    def _finish(self) -> None:
        self._file.close()
