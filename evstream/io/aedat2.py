"""jAER AEDAT 2.0 files: DVS128 (the CIFAR10-DVS layout) and DAVIS240/346 chips.

After ``#`` header lines come big-endian ``(u32 address, u32 timestamp)`` words. The chip named
by the header's ``# AEChip:`` line (else the ``chip=`` option) fixes the address layout:

* DVS128: ``x = 127 - ((a & 0xFE) >> 1)``, ``y = (a & 0x7F00) >> 8``, ``p = 1 - (a & 1)``
  (raw bit 0 = 0 is ON); words with bit 15 set are special events and dropped.
* DAVIS: DVS words have bit 31 = 0 and bit 10 = 0; ``x = W - 1 - ((a >> 12) & 0x3FF)``,
  ``y = (a >> 22) & 0x1FF``, ``p = (a >> 11) & 1``. APS and IMU samples (bit 31 = 1) are not
  events; external-input events (bit 31 = 0, bit 10 = 1) are dropped.

Timestamps are 32-bit: a step back of more than 2^31 µs between kept events adds 2^32 µs (the
rule of :mod:`evstream.io.dat`, whose bounded block reader of 8-byte words is reused here).
"""

from __future__ import annotations

import os

import numpy as np

from evstream._jit import kernel
from evstream.events import EventFileError, empty_events
from evstream.io.aedat_text import header_value, parse_hash_header, sensor_of
from evstream.io.dat import WORD_PAIR, check_polarity, check_times_u32, check_whole, report_partial_word, word_slices
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.record_file import decode_into, gather_blocks, opened_for_reader, record_count
from evstream.io.writer import EventWriter

CHIP_CLASSES = {
    (128, 128): "ch.unizh.ini.jaer.chip.retina.DVS128",
    (240, 180): "eu.seebetter.ini.chips.davis.DAVIS240C",
    (346, 260): "eu.seebetter.ini.chips.davis.Davis346B",
}
"""jAER chip class the writer names for each sensor size."""

_FAMILIES = ("dvs128", "davis")
_HEADER_PEEK = 1 << 20


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
def _decode_aedat2(words, davis, width, state, out):
    """Decode big-endian (address, time) word pairs into ``out``; returns the events written.

    ``state`` = (time high part, last raw time) carries the 32-bit unwrapping across blocks.
    """
    high = state[0]
    last = state[1]
    n = 0
    for i in range(len(words) // 2):
        a = _bswap32(words[2 * i])
        if davis:
            if (a >> 31) != 0 or (a >> 10) & 1:
                continue
            x = width - 1 - np.int64((a >> 12) & 0x3FF)
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
        raw = np.int64(_bswap32(words[2 * i + 1]))
        if raw < last - (1 << 31):
            high += 1 << 32
        last = raw
        out[n].t = high + raw
        n += 1
    state[0] = high
    state[1] = last
    return n


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
    """

    format = "aedat2"

    def __init__(self, path, *, strict: bool = False, chip: str | None = None):
        super().__init__(path, strict=strict)
        with opened_for_reader(self.path) as self._file:
            self._size = os.fstat(self._file.fileno()).st_size
            self._read_header(chip)

    def _read_header(self, chip: str | None) -> None:
        head = self._file.read(_HEADER_PEEK)
        self.header_lines, self._data_offset = parse_hash_header(head, self.path)
        if not self.header_lines or not self.header_lines[0].startswith("!AER-DAT2"):
            raise EventFileError(self.path, f"not an AEDAT 2.0 file: first line {head[:16]!r} is not '#!AER-DAT2.0'", 0)
        named = header_value(self.header_lines, "AEChip") or None  # an empty line names no chip either
        if named is None and chip is None:
            raise EventFileError(self.path, "the header names no chip (no '# AEChip:' line): pass chip='DVS128', "
                                 "chip='DAVIS240C' or chip='DAVIS346'")
        self.chip = named or chip
        family, (width, height) = chip_sensor(self.chip, self.path)
        self._davis = family == "davis"
        self.sensor_size = (width, height, 2)

    def close(self) -> None:
        self._file.close()

    def _decoder(self):
        """The slice decoder of :func:`~evstream.io.record_file.gather_blocks` (fresh 32-bit unwrapping state)."""
        state = np.zeros(2, dtype=np.int64)
        davis, width = self._davis, self.sensor_size[0]
        return lambda records, offset, out: _decode_aedat2(records.reshape(-1), davis, width, state, out)

    def _blocks(self):
        yield from gather_blocks(word_slices(self), self._decoder(), BLOCK_EVENTS)
        report_partial_word(self)

    def read(self) -> np.ndarray:
        """All events from the current position; without a seek, decoded straight into one array."""
        if self._seek_us is not None:
            return super().read()
        events = empty_events(record_count(self._data_offset, self._size, WORD_PAIR))
        n = decode_into(word_slices(self), self._decoder(), events)
        report_partial_word(self)
        return check_whole(self, events[:n], self._data_offset)


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
