"""Prophesee RAW EVT 2.0: 32-bit little-endian words, word type in bits 28-31.

* CD_OFF (0x0) / CD_ON (0x1): time low (bits 22-27, 6 bits), x (bits 11-21), y (bits 0-10);
  the event time is ``time_high << 6 | time_low``.
* EV_TIME_HIGH (0x8): the upper 28 bits of the time (bits 0-27).
* EXT_TRIGGER (0xA), OTHERS (0xE), CONTINUED (0xF): not CD events, skipped.
* Any other type is an :class:`~evstream.EventFileError` naming its byte offset.

The 34-bit clock wraps every 2^34 us (about 4.8 h): a time high that drops by half its range or
more (2^27, evlib's threshold) is a wrap, and times keep growing (expelliarmus does not unwrap;
evlib counts a wrap again at every time high after the first one). CD events before the first
time high have no time and are skipped, as Metavision and evlib do (a stream cut mid-way).
"""

from __future__ import annotations

import numpy as np

from evstream._jit import inline_kernel, kernel
from evstream.io.raw_common import ERR_TIME, ERR_UNKNOWN_TYPE, ERR_X, ERR_Y, RawReader, RawWriter

_HIGH_MASK = (1 << 28) - 1
_HALF = 1 << 27
_TIME_HIGH = 0x8 << 28


@inline_kernel
def next_time_high(raw, wrap, raw_high):
    """``(wrap, raw_high, high_us)`` after a TIME_HIGH word of 28-bit value ``raw`` (EVT 2.0 and 2.1): a
    step back of half the range or more is the 2^34 us counter wrapping."""
    if raw_high - raw >= _HALF:
        wrap += _HIGH_MASK + 1
    return wrap, raw, (wrap + raw) << 6


@inline_kernel
def write_time_high(out, m, current, high, word, shift):
    """Write at ``out[m]`` the TIME_HIGH words (EVT 2.0 and 2.1: type ``word``, the 28-bit value at bit ``shift``)
    that take the time high from ``current`` (-1: none yet) to ``high``; returns the index after them.

    Crossing a 2^34 us wrap writes time high 2^28 - 1 then 0, so every reader sees the wrap.
    """
    period = max(current, 0) >> 28
    while period < high >> 28:
        out[m] = word | (_HIGH_MASK << shift)
        out[m + 1] = word
        m += 2
        period += 1
    out[m] = word | ((high & _HIGH_MASK) << shift)
    return m + 1


@kernel
def _decode_evt2(words, start, state, width, height, out):
    """Decode ``words[start:]`` into ``out``; ``state`` = (wrap offset, last raw time high or -1, last t)."""
    wrap, raw_high, last_t = state[0], state[1], state[2]
    high_us = (wrap + raw_high) << 6
    n = 0
    error = 0
    stop = len(words)
    for i in range(start, len(words)):  # one for loop with one exit per case: what numba compiles fastest
        w = words[i]
        kind = w >> 28
        if kind <= 1:
            if raw_high >= 0:
                x = (w >> 11) & 0x7FF
                y = w & 0x7FF
                t = high_us | ((w >> 22) & 0x3F)
                if n == len(out) or x >= width or y >= height or t < last_t:
                    error = 0 if n == len(out) else ERR_X if x >= width else ERR_Y if y >= height else ERR_TIME
                    stop = i
                    break
                out[n].x = x
                out[n].y = y
                out[n].t = t
                out[n].p = kind
                last_t = t
                n += 1
        elif kind == 0x8:
            wrap, raw_high, high_us = next_time_high(np.int64(w & _HIGH_MASK), wrap, raw_high)
        elif kind != 0xA and kind != 0xE and kind != 0xF:
            error = ERR_UNKNOWN_TYPE
            stop = i
            break
    state[0], state[1], state[2] = wrap, raw_high, last_t
    return n, stop, error


@kernel
def _resume_evt2(words, state, found):
    """Set ``state``'s time high from the last TIME_HIGH of ``words`` (the words before a part);
    True when there is one (``found`` unused)."""
    for i in range(len(words) - 1, -1, -1):
        if words[i] >> 28 == 0x8:
            state[1] = words[i] & _HIGH_MASK
            return True
    return False


@kernel
def _encode_evt2(events, state, out):
    """Encode time-sorted ``events`` into ``out`` words; ``state`` = (last time high written, or -1)."""
    current = state[0]
    m = 0
    for i in range(len(events)):
        t = events[i].t
        high = t >> 6
        if high != current:
            m = write_time_high(out, m, current, high, _TIME_HIGH, 0)
            current = high
        out[m] = (np.int64(events[i].p) << 28) | ((t & 0x3F) << 22) | (np.int64(events[i].x) << 11) | events[i].y
        m += 1
    state[0] = current
    return m


class Evt2Reader(RawReader):
    """Streams an EVT 2.0 RAW file (geometry from the header, else ``sensor_size=``)."""

    format = "evt2"
    word_dtype = np.dtype("<u4")
    initial_state = (0, -1, np.iinfo(np.int64).min)
    max_events_per_word = 1
    wrap_shift = 6
    carried_fields = (1,)
    _decode = staticmethod(_decode_evt2)
    _resume = staticmethod(_resume_evt2)


class Evt2xWriter(RawWriter):
    """The clock of the EVT 2.0 and 2.1 writers: time high (28 bits, wrapping every 2^34 us) over 6 bits of time
    low; the encoder's state is the last time high written (:func:`write_time_high`), at most one per event."""

    max_time_us = 1 << 50
    initial_state = (-1,)
    max_words_per_event = 2
    time_high_bits = 34


class Evt2Writer(Evt2xWriter):
    """Writes an EVT 2.0 RAW file (expelliarmus and evlib read it identically below 2^34 us)."""

    format = "evt2"
    evt_version = "2.0"
    word_dtype = np.dtype("<u4")
    _encode = staticmethod(_encode_evt2)
