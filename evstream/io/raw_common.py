"""What Prophesee RAW EVT 2.0 and EVT 3.0 share: the header, the word stream, the writer's file.

A RAW file is a ``%`` text header followed by little-endian words (32-bit in EVT 2.0, 16-bit in
EVT 3.0) whose top 4 bits give the word type. A format supplies one numba decoder
``decode(words, start, state, width, height, out) -> (n_events, next_word, error)`` that resumes
from ``state`` (an int64 array it updates), stops when ``out`` is full or the words run out,
and returns ``error > 0`` with ``next_word`` at the offending word instead of crashing. The
decoder checks what the base reader checks (coordinates inside the sensor, time never going
backwards), so errors name the exact word and :meth:`RawReader.read` needs no second pass. For
writing it supplies one numba encoder ``encode(events, state, out) -> n_words`` (see :class:`RawWriter`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import ClassVar

import numpy as np

from evstream._parallel import compact, run_parts, split
from evstream.events import EventFileError, check_sensor_size, empty_events
from evstream.io.dat import check_polarity
from evstream.io.prophesee_header import PropheseeHeader, parse_header
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.record_file import opened_for_reader, read_at, record_count, record_slices, report_partial_record
from evstream.io.registry import _prophesee_header_format
from evstream.io.writer import EventWriter

_RESUME_WORDS = 1 << 20
"""Most words read backwards for the decoder state at the start of a part of a parallel read."""

MAX_COORD = 1 << 11
"""RAW words hold 11-bit coordinates: sensors up to 2048 x 2048."""

ERR_UNKNOWN_TYPE, ERR_X, ERR_Y, ERR_TIME = 1, 2, 3, 4
"""Decoder error codes of both formats."""


def read_raw_header(file, path, encoding: str) -> PropheseeHeader:
    """Parse the ``%`` header of an open RAW file; reject a header that names another encoding."""
    file.seek(0)
    head = b""
    while True:  # read line by line: the data after the header may hold no newline for megabytes
        first = file.read(1)
        if first != b"%":
            break
        line = first + file.readline()
        head += line
        if not line.endswith(b"\n") or line[1:].strip().lower() == b"end":
            break
    header = parse_header(head, path)
    found = _prophesee_header_format(head)
    if found not in (None, "dat", encoding):  # None / "dat": no `% evt` or `% format` line, trust the caller
        raise EventFileError(path, f"header says {found.removeprefix('evt?')!r}, not {encoding!r}", 0)
    return header


class RawReader(EventReader):
    """Streams a RAW file through its format's numba decoder, a cache-sized slice of words at a time.

    Options: ``sensor_size=(W, H[, 2])`` for a header without geometry (it overrides the header's);
    ``threads`` decoding a large file's parts in :meth:`read` (default: one per CPU; pass 1 inside
    already parallel code such as data-loader workers).
    """

    word_dtype: ClassVar[np.dtype]
    initial_state: ClassVar[tuple[int, ...]]
    """Decoder state at the first word of the file."""
    max_events_per_word: ClassVar[int]
    wrap_shift: ClassVar[int]
    """A wrap count in the decoder state, shifted left by this, is microseconds."""
    carried_fields: ClassVar[tuple[int, ...]]
    """Decoder state entries a part must start from as its predecessor left them (all but the wrap
    count and the last time)."""
    _decode: ClassVar[Callable]
    """The format's numba decoder (see the module docstring), set as a staticmethod."""
    _resume: ClassVar[Callable]
    """The format's numba kernel ``(words, state, found) -> done`` setting in ``state`` what the words
    (those before a part, read backwards a chunk at a time; ``found`` is its scratch) say, a
    staticmethod."""

    def __init__(self, path, *, strict: bool = False, sensor_size=None, threads: int | None = None):
        super().__init__(path, strict=strict, threads=threads)
        with opened_for_reader(self.path) as self._file:
            self._size = os.fstat(self._file.fileno()).st_size
            self.header = read_raw_header(self._file, self.path, self.format)
            self.sensor_size = self._geometry(sensor_size)
        self._data_offset = self.header.data_offset

    def _geometry(self, sensor_size) -> tuple[int, int, int]:
        if sensor_size is not None:
            return check_sensor_size((*tuple(sensor_size)[:2], 2))
        try:
            geometry = self.header.geometry()
        except ValueError as err:
            raise EventFileError(self.path, f"unreadable geometry in the header: {err}", 0) from None
        if geometry is None:
            raise EventFileError(self.path, "the header gives no sensor geometry; pass sensor_size=(W, H)", 0)
        return (*geometry, 2)

    def _error_reason(self, error: int, word: int) -> str:
        """Why the decoder stopped with ``error`` at ``word``."""
        width, height = self.sensor_size[:2]
        reasons = {ERR_UNKNOWN_TYPE: f"unknown word type 0x{word >> (8 * self.word_dtype.itemsize - 4):X}",
                   ERR_X: f"event x outside the {width}x{height} sensor",
                   ERR_Y: f"event y outside the {width}x{height} sensor",
                   ERR_TIME: "time goes backwards at this event"}
        return f"{reasons[error]} (word 0x{word:0{2 * self.word_dtype.itemsize}X})"

    # --- streaming -------------------------------------------------------------------------------
    def close(self) -> None:
        self._file.close()

    def _blocks(self) -> Iterator[tuple[np.ndarray, int]]:
        yield from self._decoded(BLOCK_EVENTS)
        self._report_tail()

    def _report_tail(self) -> None:
        report_partial_record(self.path, self._data_offset, self._size, self.word_dtype, self.strict, "word")

    def read(self) -> np.ndarray:
        """All events from the current position; from the start, decoded into one array of one event
        per word (no concatenation unless EVT 3.0 vectors hold more), the parts of a large file in
        parallel threads.

        Each part starts from the state the words before it imply (its time wraps counted from
        zero, then added); a part that fails, that did not start from the state the part before
        ended in, or whose first event is earlier than the last of the part before, sends the read
        back to one piece, which raises the error where it lies.
        """
        if self._seek_us is not None:
            return super().read()
        n_words = record_count(self._data_offset, self._size, self.word_dtype)
        events = self._read_parts(split(n_words, self._threads), n_words)
        if events is None:
            events = self._read_parts([(0, n_words)], n_words)
        self._report_tail()
        return events

    def _read_parts(self, parts: list[tuple[int, int]], n_words: int) -> np.ndarray | None:
        """The events of words ``[start, stop)`` of every part, joined; None when the parts do not join."""
        events = empty_events(n_words + 12)

        def decode_part(part: tuple[int, int]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
            start, stop = part
            state = self._state_at(start)
            assumed = state.copy()
            slot = events[start:stop + (12 if stop == n_words else 0)]
            return [block for block, _ in self._decoded(None, start, stop, state, slot)], state, assumed

        results = run_parts(decode_part, parts)
        for result in results:
            if isinstance(result, Exception):
                if len(parts) == 1:
                    raise result
                return None
        fields = list(self.carried_fields)
        if any(not np.array_equal(before[fields], assumed[fields])
               for (_, before, _), (_, _, assumed) in zip(results[:-1], results[1:])):
            return None
        results = [(blocks, state) for blocks, state, _ in results]
        wrap = 0  # the parts counted their wraps from zero: add those of the parts before
        for blocks, state in results:
            if wrap:
                for block in blocks:
                    block["t"] += wrap << self.wrap_shift
            wrap += int(state[0])
        times = [(next(b for b in blocks if len(b))["t"][0], next(b for b in blocks[::-1] if len(b))["t"][-1])
                 for blocks, _ in results if sum(map(len, blocks))]
        if any(first < last for (_, last), (first, _) in zip(times[:-1], times[1:])):
            return None
        if all(len(blocks) == 1 for blocks, _ in results):
            return events[:compact(events, [start for start, _ in parts], [len(blocks[0]) for blocks, _ in results])]
        return np.concatenate([empty_events(), *(block for blocks, _ in results for block in blocks)])

    def _state_at(self, word: int) -> np.ndarray:
        """The decoder state before ``word`` (wraps counted from zero), from the words before it read
        backwards a chunk at a time until the format's ``_resume`` kernel has found all it needs or
        ``_RESUME_WORDS`` are read (what was not found keeps its first value: the read checks it
        against the state the part before ended in)."""
        state = np.array(self.initial_state, dtype=np.int64)
        found = np.zeros(8, dtype=np.int64)
        limit = max(word - _RESUME_WORDS, 0)
        while word > limit:
            first = max(word - (1 << 16), limit)
            words = np.empty(word - first, dtype=self.word_dtype)
            read_at(self._file, self.path, words, self._data_offset + first * self.word_dtype.itemsize, self._size)
            if self._resume(words, state, found):
                break
            word = first
        return state

    def _decoded(self, block_events: int | None, first: int = 0, stop: int | None = None,
                 state: np.ndarray | None = None, out: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, int]]:
        """Decode words ``first`` to ``stop`` (default: all) from ``state`` (default: the file's first),
        read a cache-sized slice at a time, into blocks of up to ``block_events``, the first one
        ``out`` when given.

        ``None`` means one block of one event per word (enough for EVT 2.0 and typical EVT 3.0);
        when vectors overflow it, the rest goes into a second block sized for their worst case,
        ``max_events_per_word``.
        """
        itemsize = self.word_dtype.itemsize
        stop = record_count(self._data_offset, self._size, self.word_dtype) if stop is None else stop
        width, height = self.sensor_size[:2]
        state = np.array(self.initial_state, dtype=np.int64) if state is None else state
        out = empty_events(block_events or stop - first + 12) if out is None else out
        filled, block_offset = 0, self._data_offset + first * itemsize
        done = first  # words decoded before the current slice
        for words, count, offset in record_slices(self._file, self.path, self._data_offset, self._size,
                                                  self.word_dtype, first, stop):
            start = 0
            while start < count:
                n, end, error = self._decode(words, start, state, width, height, out[filled:])
                filled += n
                if error:
                    reason = self._error_reason(error, int(words[end]))
                    raise EventFileError(self.path, reason, offset + end * itemsize)
                if end < count:  # the block is full
                    yield out[:filled], block_offset
                    left = stop - done - end
                    out = empty_events(block_events or left * self.max_events_per_word + 12)
                    filled, block_offset = 0, offset + end * itemsize
                start = end
            done += count
        if filled or block_events is None:
            yield out[:filled], block_offset


class RawWriter(EventWriter):
    """Writes the ``%`` header of a RAW file, then the words its format's encoder makes of each batch.

    ``max_time_us`` bounds the times a format can store without an unreasonable run of time-high
    words (the decoder's wrap count starts at zero, so the writer walks the clock up to each time).
    """

    max_time_us: ClassVar[int]
    word_dtype: ClassVar[np.dtype]
    initial_state: ClassVar[tuple[int, ...]]
    """Encoder state before the first batch."""
    max_words_per_event: ClassVar[int]
    time_high_bits: ClassVar[int]
    """The words' time wraps every ``2**time_high_bits`` us; the encoder adds at most 2 words per wrap."""
    _encode: ClassVar[Callable]
    """The format's numba encoder ``(events, state, out) -> words written``, set as a staticmethod."""

    def __init__(self, path, sensor_size):
        super().__init__(path, sensor_size)
        width, height = self.sensor_size[:2]
        if width > MAX_COORD or height > MAX_COORD:
            raise ValueError(f"{self.path}: RAW words hold 11-bit coordinates, sensor {width}x{height} is too large")
        self._state = np.array(self.initial_state, dtype=np.int64)
        self._file = open(self.path, "wb")
        self._file.write((f"% evt {self.format[3]}.0\n% format {self.format.upper()};height={height};width={width}\n"
                          f"% geometry {width}x{height}\n% end\n").encode("ascii"))

    def _write(self, events: np.ndarray) -> None:
        check_polarity(events, self.path)
        t = events["t"]
        if t[0] < 0 or t[-1] >= self.max_time_us:
            raise ValueError(f"{self.path}: {self.format.upper()} stores times in [0, {self.max_time_us}) us here, "
                             f"got [{t[0]}, {t[-1]}]; subtract an offset first")
        words = np.empty(self.max_words_per_event * len(events) + 2 * ((int(t[-1]) >> self.time_high_bits) + 1),
                         dtype=self.word_dtype)
        self._file.write(words[:self._encode(events, self._state, words)].data)

    def _finish(self) -> None:
        self._file.close()
