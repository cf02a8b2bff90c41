"""Prophesee RAW EVT 2.1: 64-bit little-endian words, word type in bits 60-63.

* EV_NEG (0x0) / EV_POS (0x1): time low (bits 54-59, 6 bits), x (bits 43-53), y (bits 32-42) and
  a 32-bit validity mask (bits 0-31): one event at ``(x + i, y)`` for every set bit ``i``, lowest
  bit first; the event time is ``time_high << 6 | time_low``.
* EV_TIME_HIGH (0x8): the upper 28 bits of the time (bits 32-59).
* EXT_TRIGGER (0xA), OTHERS (0xE), CONTINUED (0xF): not CD events, skipped.
* Any other type is an :class:`~evstream.EventFileError` naming its byte offset.

The 34-bit clock wraps as in EVT 2.0 (:mod:`evstream.io.evt2`, same rule), and vectors before
the first time high are skipped. The writer packs each run of events with one time, polarity and
row and increasing x inside one 32-aligned column block into one word (x is the block's first
column, as sensors write it). Headers saying ``endianness=legacy`` (32-bit halves swapped) are
refused by name: no such file was at hand to check a decoder against.
"""

from __future__ import annotations

import numpy as np

from evstream._jit import kernel
from evstream.events import EventFileError
from evstream.io.evt2 import _HIGH_MASK, Evt2xWriter, next_time_high, write_time_high
from evstream.io.raw_common import ERR_TIME, ERR_UNKNOWN_TYPE, ERR_X, ERR_Y, RawReader

_TIME_HIGH = np.int64(-(1 << 63))
"""Type 0x8 in the top 4 bits of a word held as int64 (the encoder's words are int64, same bytes)."""
_VECTOR = 32


@kernel
def _decode_evt21(words, start, state, width, height, out):
    """Decode ``words[start:]`` into ``out`` (stops with fewer than 32 slots left); ``state`` =
    (wrap offset, last raw time high or -1, last t)."""
    wrap, raw_high, last_t = state[0], state[1], state[2]
    high_us = (wrap + raw_high) << 6
    n = 0
    error = 0
    stop = len(words)
    for i in range(start, len(words)):
        w = np.int64(words[i])
        kind = (w >> 60) & 0xF
        if kind <= 1:
            if raw_high >= 0:
                if len(out) - n < _VECTOR:
                    stop = i
                    break
                base = (w >> 43) & 0x7FF
                y = (w >> 32) & 0x7FF
                t = high_us | ((w >> 54) & 0x3F)
                mask = w & 0xFFFFFFFF
                if mask:
                    top = 31
                    while not (mask >> top) & 1:
                        top -= 1
                    if y >= height or t < last_t or base + top >= width:
                        error = ERR_Y if y >= height else ERR_TIME if t < last_t else ERR_X
                        stop = i
                        break
                    for bit in range(top + 1):
                        if (mask >> bit) & 1:
                            out[n].x = base + bit
                            out[n].y = y
                            out[n].t = t
                            out[n].p = kind
                            n += 1
                    last_t = t
        elif kind == 0x8:
            wrap, raw_high, high_us = next_time_high((w >> 32) & _HIGH_MASK, wrap, raw_high)
        elif kind != 0xA and kind != 0xE and kind != 0xF:
            error = ERR_UNKNOWN_TYPE
            stop = i
            break
    state[0], state[1], state[2] = wrap, raw_high, last_t
    return n, stop, error


@kernel
def _encode_evt21(events, state, out):
    """Encode time-sorted ``events`` into ``out`` int64 words; ``state`` = (last time high written, or -1)."""
    current = state[0]
    m = 0
    i = 0
    n = len(events)
    while i < n:
        t = events[i].t
        high = t >> 6
        if high != current:
            m = write_time_high(out, m, current, high, _TIME_HIGH, 32)
            current = high
        p, y, x = events[i].p, events[i].y, np.int64(events[i].x)
        base = x & ~(_VECTOR - 1)
        mask = np.int64(1) << (x - base)
        j = i + 1
        while (j < n and events[j].t == t and events[j].p == p and events[j].y == y
               and np.int64(events[j].x) & ~(_VECTOR - 1) == base and events[j].x > events[j - 1].x):
            mask |= np.int64(1) << (np.int64(events[j].x) - base)
            j += 1
        out[m] = (np.int64(p) << 60) | ((t & 0x3F) << 54) | (base << 43) | (np.int64(y) << 32) | mask
        m += 1
        i = j
    state[0] = current
    return m


class Evt21Reader(RawReader):
    """Streams an EVT 2.1 RAW file (geometry from the header, else ``sensor_size=``).

    A whole-file :meth:`read` joins the streamed blocks (one word holds up to 32 events, so the
    one-event-per-word layout of the parallel EVT 2.0 / 3.0 read does not fit it).
    """

    format = "evt21"
    word_dtype = np.dtype("<u8")
    initial_state = (0, -1, np.iinfo(np.int64).min)
    max_events_per_word = _VECTOR
    _decode = staticmethod(_decode_evt21)

    def __init__(self, path, *, strict: bool = False, sensor_size=None, threads: int | None = None):
        super().__init__(path, strict=strict, sensor_size=sensor_size, threads=threads)
        if "endianness=legacy" in self.header.fields.get("format", "").replace(" ", "").lower():
            self.close()
            raise EventFileError(self.path, "EVT 2.1 with endianness=legacy (swapped 32-bit halves) is not supported",
                                 0)

    def read(self) -> np.ndarray:
        """All events from the current position, the streamed blocks joined."""
        return super(RawReader, self).read()


class Evt21Writer(Evt2xWriter):
    """Writes an EVT 2.1 RAW file, vectorised (evlib reads it identically below 2^34 us)."""

    format = "evt21"
    evt_version = "2.1"
    word_dtype = np.dtype("<i8")
    _encode = staticmethod(_encode_evt21)
