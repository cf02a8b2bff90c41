"""jAER AEDAT 2.0 files: DVS128 (the CIFAR10-DVS layout) and DAVIS240/346 chips.

After ``#`` header lines come big-endian ``(u32 address, u32 timestamp)`` words. The chip named
by the header's ``# AEChip:`` line (else the ``chip=`` option, else the one the addresses imply:
see :func:`infer_chip`) fixes the address layout:

* DVS128: ``x = 127 - ((a & 0xFE) >> 1)``, ``y = (a & 0x7F00) >> 8``, ``p = 1 - (a & 1)``
  (raw bit 0 = 0 is ON); words with bit 15 set are special events and dropped.
* DAVIS: DVS words have bit 31 = 0 and bit 10 = 0; ``x = W - 1 - ((a >> 12) & 0x3FF)``,
  ``y = (a >> 22) & 0x1FF``, ``p = (a >> 11) & 1``. APS and IMU samples (bit 31 = 1) are not
  events; external-input events (bit 31 = 0, bit 10 = 1) are dropped.

Timestamps are 32-bit: a step back of more than 2^31 µs adds 2^32 µs (the rule of
:mod:`evstream.io.dat`, with its check of doubtful wraps).

Words keep their alignment only while no byte is lost or duplicated: after such damage every
"time" is a mix of address and time bytes, most words look like APS/IMU samples and vanish. The
reader checks that each word's time steps on plausibly (every word of a jAER file is in time
order); where it does not, it looks for the byte position where the words make sense again,
resumes there and reports a :class:`~evstream.io.corruption.CorruptDataWarning` counting the
bytes skipped (see ``_decode_aedat2``).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from evstream._jit import kernel
from evstream._parallel import compact, run_parts, split
from evstream.events import EventFileError, empty_events, report_truncation
from evstream.io import record_file
from evstream.io.aedat_text import header_value, parse_hash_header, sensor_of
from evstream.io.corruption import report_corruption
from evstream.io.dat import (WORD_PAIR, WRAP_STEP, check_polarity, check_times_u32, check_whole, report_doubtful_wrap,
                             word_slices)
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.record_file import decode_into, gather_blocks, opened_for_reader, read_at, record_count
from evstream.io.writer import EventWriter

CHIP_CLASSES = {
    (128, 128): "ch.unizh.ini.jaer.chip.retina.DVS128",
    (240, 180): "eu.seebetter.ini.chips.davis.DAVIS240C",
    (346, 260): "eu.seebetter.ini.chips.davis.Davis346B",
}
"""jAER chip class the writer names for each sensor size."""

_FAMILIES = ("dvs128", "davis")
_HEADER_PEEK = 1 << 20
_WRAP = 1 << 32
_HALF = 1 << 31
_RESYNC_RECORDS = 4
_SEARCH_BYTES = 1 << 14
_LOOKAHEAD = _SEARCH_BYTES + 8 * _RESYNC_RECORDS
_BACK_TOLERANCE = 1 << 20


@kernel
def _bswap32(v):
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24)


@kernel
def _encode_aedat2(events, davis, width, out):
    """Write big-endian (address, time modulo 2^32) word pairs of ``events`` into ``out``."""
    for i in range(len(events)):
        x = np.uint32(events[i].x)
        y = np.uint32(events[i].y)
        p = np.uint32(events[i].p)
        if davis:
            a = y << 22 | (np.uint32(width - 1) - x) << 12 | p << 11
        else:
            a = y << 8 | (np.uint32(127) - x) << 1 | (np.uint32(1) - p)
        out[2 * i] = _bswap32(a)
        out[2 * i + 1] = _bswap32(np.uint32(events[i].t & 0xFFFFFFFF))


@kernel
def _be32(buf, pos):
    """The big-endian uint32 at byte ``pos`` of a uint8 buffer, as int64 (the rare unaligned reads)."""
    return (np.int64(buf[pos]) << 24) | (np.int64(buf[pos + 1]) << 16) | (np.int64(buf[pos + 2]) << 8) | np.int64(
        buf[pos + 3])


@kernel
def _step(last, raw):
    """Raw time step from ``last`` to ``raw``; a drop of more than 2^31 µs is a wrap, counted across it."""
    d = raw - last
    if d < -_HALF:
        d += _WRAP
    return d


@kernel
def _steady(buf, q, end, last, need):
    """True when the records from byte ``q`` (``_RESYNC_RECORDS`` of them, or as many as the buffer
    holds before ``end``, at least ``need``) each step forward by less than WRAP_STEP, the first from ``last``."""
    n = 0
    while n < _RESYNC_RECORDS and q + 8 <= end:
        raw = _be32(buf, q + 4)
        d = _step(last, raw)
        if d < 0 or d >= WRAP_STEP:
            return False
        last = raw
        q += 8
        n += 1
    return n >= need


@kernel
def _resume_at(buf, p, end, last, last_a):
    """Where the words make sense again after the record at byte ``p`` (see ``_decode_aedat2``), or -1."""
    q = p + 8  # a record starting inside this one would mix its damaged bytes into its address
    limit = min(p + _SEARCH_BYTES, end - 8)
    while q <= limit:
        if not (_be32(buf, q) == last_a and _be32(buf, q + 4) == last) and _steady(
                buf, q, end, last, min(_RESYNC_RECORDS, (end - q) // 8)):
            return q
        q += 1
    return -1


@kernel
def _decode_aedat2(words, buf, stop, end, davis, width, height, state, out):
    """Decode the records starting before byte ``stop`` of a window (``buf``, bytes up to ``end``;
    ``words``, the same bytes as native uint32) into ``out``.

    ``state`` = (time high part, last raw time, last step big, last address, last event time,
    doubt) carries across calls; doubt becomes 1 when an event lies outside ``width`` x ``height``
    or goes back in time, so that a whole read runs the reader's checks (and their error) only
    then. Returns (events written, position after the last record, position of this call's
    first resynchronisation or -1, bytes skipped in all, resynchronisations, position of its first
    doubtful wrap or -1). A resynchronisation to a position that is not a multiple of 8 ends the
    call there: the caller reads the next window from it, aligned again.

    Every word's time (APS, IMU and special words too) must step forward by less than WRAP_STEP,
    or back by less than ``_BACK_TOLERANCE``. Otherwise, unless the records after it step steadily
    on from there (a pause in the recording), the words lost their alignment (bytes deleted or
    duplicated): the first byte position past this record and within ``_SEARCH_BYTES`` where
    ``_RESYNC_RECORDS`` records step steadily on from the last good time, not repeating the last
    good record, is where decoding resumes; without one, the word is decoded as it stands (the
    reader's checks then judge it).
    """
    high, last, last_a, previous, doubt = state[0], state[1], state[3], state[4], state[5]
    big = -8 if state[2] else -16  # position of the last record reached by a step of WRAP_STEP or more
    n = 0
    p = 0
    resynced = -1
    skipped = 0
    resyncs = 0
    doubtful = -1
    while p < stop and p + 8 <= end:
        raw = np.int64(_bswap32(words[p // 4 + 1]))
        if np.uint64(raw - last + _BACK_TOLERANCE) >= np.uint64(WRAP_STEP + _BACK_TOLERANCE):  # the rare cases
            d = _step(last, raw)
            if (d < -_BACK_TOLERANCE or d >= WRAP_STEP) and not (d >= WRAP_STEP and _steady(buf, p + 8, end, raw, 0)):
                q = _resume_at(buf, p, end, last, last_a)
                if q >= 0:
                    resynced = p if resynced < 0 else resynced
                    skipped += q - p
                    resyncs += 1
                    p = q
                    if q % 8:
                        break
                    continue
            if raw < last - _HALF:
                high += _WRAP
                if doubtful < 0 and (d >= WRAP_STEP or big == p - 8):
                    doubtful = p
            if d >= WRAP_STEP:
                big = p
        last = raw
        a = np.int64(_bswap32(words[p // 4]))
        last_a = a
        p += 8
        if davis:
            if (a >> 31) != 0 or (a >> 10) & 1:
                continue
            x = width - 1 - ((a >> 12) & 0x3FF)
            if x < 0:
                x = 0xFFFF  # outside every sensor: the reader's coordinate check names it
            out[n].x = x
            out[n].y = (a >> 22) & 0x1FF
            out[n].p = (a >> 11) & 1
        else:
            if a & 0x8000:
                continue
            out[n].x = 127 - ((a & 0xFE) >> 1)
            out[n].y = (a & 0x7F00) >> 8
            out[n].p = 1 - (a & 1)
        t = high + raw
        if out[n].x >= width or out[n].y >= height or t < previous:
            doubt = 1
        previous = t
        out[n].t = t
        n += 1
    state[0], state[1], state[2], state[3], state[4], state[5] = high, last, big == p - 8, last_a, previous, doubt
    return n, p, resynced, skipped, resyncs, doubtful


@kernel
def _address_extent(words, extent):
    """Fold word pairs into ``extent`` = (largest address, largest DAVIS DVS x field, largest y field)."""
    for i in range(len(words) // 2):
        a = np.int64(_bswap32(words[2 * i]))
        extent[0] = max(extent[0], a)
        if (a >> 31) == 0 and (a >> 10) & 1 == 0:
            extent[1] = max(extent[1], (a >> 12) & 0x3FF)
            extent[2] = max(extent[2], (a >> 22) & 0x1FF)


class ChipInferredWarning(UserWarning):
    """An AEDAT 2.0 file names no chip: the reader chose one from its addresses (``reader.notes`` says which)."""


def infer_chip(reader: EventReader) -> tuple[str, str]:
    """``(chip, why)`` for an AEDAT 2.0 file whose header names no chip, from one pass over its words.

    DVS128 when every address fits the DVS128 layout (16 bits: 7-bit x and y, polarity, the
    special-event flag; every DAVIS event sets higher bits), else the smallest DAVIS whose sensor
    holds every DVS word's coordinates. EventFileError when no chip fits or there are no words.
    """
    extent = np.full(3, -1, np.int64)
    for records, _, _ in word_slices(reader):
        _address_extent(records.reshape(-1), extent)
    largest, x, y = (int(v) for v in extent)
    if largest < 0:
        raise EventFileError(reader.path, "the header names no chip (no '# AEChip:' line) and there are no words to "
                             "infer one from: pass chip='DVS128', 'DAVIS240C' or 'DAVIS346'")
    if largest < 1 << 16:
        return "DVS128", "every address fits the DVS128 layout (16 bits)"
    for chip, (width, height) in (("DAVIS240C", (240, 180)), ("DAVIS346", (346, 260))):
        if x < width and y < height:
            return chip, f"addresses use DAVIS bits and every DVS word lies on its {width}x{height} sensor"
    raise EventFileError(reader.path, f"the header names no chip (no '# AEChip:' line) and none fits the addresses "
                         f"(largest 0x{largest:08X}; DAVIS x field up to {x}, y up to {y}): pass chip=")


def chip_sensor(name: str, path) -> tuple[str, tuple[int, int]]:
    """``(family, (W, H))`` of an AEDAT 2.0 chip name; EventFileError when it is not supported."""
    found = sensor_of(name)
    if found is None or found[0] not in _FAMILIES:
        raise EventFileError(path, f"unsupported AEDAT 2.0 chip {name!r} (readable: DVS128, DAVIS240, DAVIS346)")
    return found


class Aedat2Reader(EventReader):
    """Streams a jAER AEDAT 2.0 file in bounded blocks.

    Args:
        path: the ``.aedat`` file.
        strict: raise instead of warning on a file cut inside a word.
        chip: ``"DVS128"``, ``"DAVIS240C"``, ``"DAVIS346"`` or a jAER class name, for files whose
            header has no ``# AEChip:`` line (CIFAR10-DVS, old jAER files). The header wins.
            Without either, the chip is inferred from the addresses (:func:`infer_chip`, one pass
            over the file when it opens), said in ``notes`` and a :class:`ChipInferredWarning`.
        threads: threads decoding a large file's parts in :meth:`read` (default: one per CPU;
            pass 1 inside already parallel code such as data-loader workers).
    """

    format = "aedat2"

    def __init__(self, path, *, strict: bool = False, chip: str | None = None, threads: int | None = None):
        super().__init__(path, strict=strict, threads=threads)
        with opened_for_reader(self.path) as self._file:
            self._size = os.fstat(self._file.fileno()).st_size
            self._read_header(chip)

    def _read_header(self, chip: str | None) -> None:
        head = self._file.read(_HEADER_PEEK)
        self.header_lines, self._data_offset = parse_hash_header(head, self.path)
        if not self.header_lines or not self.header_lines[0].startswith("!AER-DAT2"):
            raise EventFileError(self.path, f"not an AEDAT 2.0 file: first line {head[:16]!r} is not '#!AER-DAT2.0'", 0)
        named = header_value(self.header_lines, "AEChip") or None  # an empty line names no chip either
        self.chip = named or chip
        if self.chip is None:
            self.chip, why = infer_chip(self)
            self.notes.append(f"chip {self.chip} inferred: the header has no '# AEChip:' line and {why}")
            warnings.warn(ChipInferredWarning(f"{self.path}: {self.notes[-1]} (choose with chip=, or --chip on the command line)"), stacklevel=4)
        family, (width, height) = chip_sensor(self.chip, self.path)
        self._davis = family == "davis"
        self.sensor_size = (width, height, 2)

    def close(self) -> None:
        self._file.close()

    def _windows(self, cursor: list[int], limit: int | None = None):
        """``((buffer, stop, end), most events, byte offset)`` windows for :func:`gather_blocks`: the
        records starting in the next READ_BYTES from ``cursor[0]`` (which the decoder moves on) and
        before byte ``limit`` (default: the end), read with the lookahead a resynchronisation may need."""
        limit = self._size if limit is None else limit
        buffer = np.empty(0, np.uint8)
        while self._size - cursor[0] >= 8 and cursor[0] < limit:
            start = cursor[0]
            stop = min(record_file.READ_BYTES, limit - start)
            end = min(self._size - start, stop + _LOOKAHEAD)
            if end > len(buffer):
                buffer = np.empty(end, np.uint8)
            read_at(self._file, self.path, buffer[:end], start, self._size)
            yield (buffer, stop, end), stop // 8 + 1, start

    def _decoder(self, cursor: list[int], state: np.ndarray, log: _DamageLog):
        """The window decoder of :func:`gather_blocks`: ``state`` as ``_decode_aedat2`` keeps it,
        ``cursor`` moved past each window's records, alignment losses and doubtful wraps noted in ``log``."""
        davis, (width, height) = self._davis, self.sensor_size[:2]

        def decode(window, offset: int, out: np.ndarray) -> int:
            buffer, stop, end = window
            n, moved, resynced, skipped, resyncs, doubtful = _decode_aedat2(
                buffer[:end - end % 4].view(np.uint32), buffer, stop, end, davis, width, height, state, out)
            cursor[0] = offset + moved
            log.note(self, resynced if resynced < 0 else offset + resynced, skipped, resyncs,
                     doubtful if doubtful < 0 else offset + doubtful,
                     _be32(buffer, doubtful + 4) if doubtful >= 0 else 0)
            return n

        return decode

    def _blocks(self):
        cursor, log = [self._data_offset], _DamageLog(report=True)
        yield from gather_blocks(self._windows(cursor), self._decoder(cursor, _fresh_state(), log), BLOCK_EVENTS)
        log.report_end(self, cursor[0])

    def read(self) -> np.ndarray:
        """All events from the current position; without a seek, decoded straight into one array,
        parts of a large file in parallel threads (the reader's checks run only when the decoder
        saw an event they would reject).

        Each part starts from the state the two records before it give; a part whose predecessor
        ended elsewhere or in another state (a resynchronisation across the boundary) is decoded
        again after it, so the result is the one of a decode in one piece.
        """
        if self._seek_us is not None:
            return super().read()
        events = empty_events(record_count(self._data_offset, self._size, WORD_PAIR) + 1)
        parts = split(len(events) - 1, self._threads)
        starts = [start for start, _ in parts]
        results = run_parts(lambda part: self._decode_part(events, part[0], self._start_state(part[0]),
                                                           self._data_offset + 8 * part[1]), parts)
        for result in results:
            if isinstance(result, Exception):
                raise result
        offsets, high = [0], int(results[0][2][0])  # time offset of each part, wraps counted from zero
        for k in range(1, len(results)):
            _, cursor, state, _ = results[k - 1]
            if cursor != self._data_offset + 8 * starts[k] or not np.array_equal(
                    state[1:4], self._start_state(starts[k])[1:4]):  # decode the rest again, after part k - 1
                results[k:] = [self._decode_part(events, starts[k], state.copy(), self._size, cursor)]
                offsets.append(offsets[-1])
                break
            offsets.append(high)
            high += int(results[k][2][0])
        for start, offset, (count, _, _, _) in zip(starts, offsets, results):
            if offset:
                events["t"][start:start + count] += offset
        counts = [count for count, _, _, _ in results]
        n = compact(events, starts[:len(results)], counts)
        log = _DamageLog.merged([log for _, _, _, log in results])
        log.report_first(self)
        log.report_end(self, results[-1][1])
        firsts = np.cumsum([0, *counts])[:-1]
        doubt = any(state[5] for _, _, state, _ in results) or any(
            first < n and counts[k - 1] and events["t"][first] < events["t"][first - 1]
            for k, first in enumerate(firsts) if k)
        return check_whole(self, events[:n], self._data_offset) if doubt else events[:n]

    def _start_state(self, record: int) -> np.ndarray:
        """The decoder state before ``record`` (time high part counted from zero), from the two
        records before it as they stand in the file."""
        state = _fresh_state()
        if record:
            before = np.empty((min(record, 2), 2), ">u4")
            read_at(self._file, self.path, before, self._data_offset + 8 * (record - len(before)), self._size)
            state[1], state[3] = int(before[-1, 1]), int(before[-1, 0])
            reached_from = int(before[0, 1]) if len(before) == 2 else -1
            state[2] = _step(reached_from, state[1]) >= WRAP_STEP
        return state

    def _decode_part(self, events: np.ndarray, record: int, state: np.ndarray, limit: int, cursor: int | None = None):
        """Decode from ``cursor`` (default: ``record``'s position) the records starting before byte
        ``limit`` into ``events[record:]`` from ``state``; returns (events, cursor after them, state, log)."""
        at = [self._data_offset + 8 * record if cursor is None else cursor]
        log = _DamageLog(report=False)
        n = decode_into(self._windows(at, limit), self._decoder(at, state, log), events[record:])
        return n, at[0], state, log


def _fresh_state() -> np.ndarray:
    """``_decode_aedat2``'s state before the first record."""
    return np.array([0, -1, 0, -1, np.iinfo(np.int64).min, 0], dtype=np.int64)


class _DamageLog:
    """Alignment losses and doubtful wraps seen while decoding: reported as they come (streaming) or
    collected per part of a parallel read and reported once, the first in file order."""

    def __init__(self, report: bool):
        self.report = report
        self.skipped_first = self.resyncs = self.skipped = 0
        self.resync_at = self.wrap_at = -1
        self.wrap_raw = 0

    def note(self, reader, resync_at: int, skipped: int, resyncs: int, wrap_at: int, wrap_raw: int) -> None:
        if resyncs and self.resync_at < 0:
            self.resync_at, self.skipped_first = resync_at, skipped
            if self.report:
                self.report_resync(reader)
        self.resyncs += resyncs
        self.skipped += skipped
        if wrap_at >= 0 and self.wrap_at < 0:
            self.wrap_at, self.wrap_raw = wrap_at, wrap_raw
            if self.report:
                report_doubtful_wrap(reader.path, wrap_at, wrap_raw, reader.strict)

    def report_resync(self, reader) -> None:
        report_corruption(reader.path, self.resync_at, "the words lost their alignment here (implausible times): "
                          f"decoding resumed after skipping {self.skipped_first} bytes", reader.strict)

    def report_first(self, reader) -> None:
        """The first alignment loss and doubtful wrap, in file order (what streaming reports as it goes)."""
        for at in sorted(at for at in (self.resync_at, self.wrap_at) if at >= 0):
            if at == self.resync_at:
                self.report_resync(reader)
            else:
                report_doubtful_wrap(reader.path, self.wrap_at, self.wrap_raw, reader.strict)

    def report_end(self, reader, cursor: int) -> None:
        """After the last record: more alignment losses than the first, and a cut record."""
        if self.resyncs > 1:
            report_corruption(reader.path, cursor, f"the words lost their alignment {self.resyncs} times in all; "
                              f"{self.skipped} bytes were skipped to resynchronise", reader.strict)
        if cursor < reader._size:
            report_truncation(reader.path, cursor, f"file ends {reader._size - cursor} bytes into an 8-byte record",
                              reader.strict)

    @classmethod
    def merged(cls, logs: list[_DamageLog]) -> _DamageLog:
        """One log for the parts of a read, in file order."""
        merged = cls(report=False)
        for log in logs:
            if log.resync_at >= 0 and merged.resync_at < 0:
                merged.resync_at, merged.skipped_first = log.resync_at, log.skipped_first
            if log.wrap_at >= 0 and merged.wrap_at < 0:
                merged.wrap_at, merged.wrap_raw = log.wrap_at, log.wrap_raw
            merged.resyncs += log.resyncs
            merged.skipped += log.skipped
        return merged


class Aedat2Writer(EventWriter):
    """Writes a jAER AEDAT 2.0 file for a DVS128, DAVIS240C or DAVIS346 chip (from the sensor size).

    Times are stored as 32-bit µs, modulo 2^32 (see :func:`evstream.io.dat.check_times_u32`).
    """

    format = "aedat2"

    def __init__(self, path, sensor_size):
        super().__init__(path, sensor_size)
        size = tuple(self.sensor_size[:2])
        if size not in CHIP_CLASSES:
            raise ValueError(f"{self.path}: AEDAT 2.0 writes DVS128 128x128, DAVIS240 240x180 or DAVIS346 346x260, "
                             f"not {size[0]}x{size[1]}")
        self._davis = size != (128, 128)
        self._previous: int | None = None
        self._file = open(self.path, "wb")
        header = ("#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                  "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
                  f"# Timestamps tick is 1 us\r\n# AEChip: {CHIP_CLASSES[size]}\r\n")
        self._file.write(header.encode("ascii"))

    def _write(self, events: np.ndarray) -> None:
        check_polarity(events, self.path)
        check_times_u32(events["t"], self._previous, self.path)
        words = np.empty(2 * len(events), dtype=np.uint32)
        _encode_aedat2(events, self._davis, self.sensor_size[0], words)
        self._file.write(words.data)
        self._previous = int(events["t"][-1])

    def _finish(self) -> None:
        self._file.close()
