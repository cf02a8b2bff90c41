"""Prophesee RAW EVT 3.0: 16-bit little-endian words, word type in bits 12-15.

* EVT_ADDR_Y (0x0): row y (bits 0-10; bit 11, the system type, is ignored).
* EVT_ADDR_X (0x2): one event at column x (bits 0-10), polarity bit 11.
* VECT_BASE_X (0x3): base column (bits 0-10) and polarity (bit 11) of the vectors that follow.
* VECT_12 (0x4) / VECT_8 (0x5): a 12- / 8-bit mask, one event at ``base + bit`` per set bit
  (lowest bit first); the base then advances by 12 / 8.
* EVT_TIME_LOW (0x6) / EVT_TIME_HIGH (0x8): the lower / upper 12 bits of a 24-bit time.
* CONTINUED_4 (0x7), EXT_TRIGGER (0xA), OTHERS (0xE), CONTINUED_12 (0xF): skipped.
* Any other type is an :class:`~evstream.EventFileError` naming its byte offset.

The 24-bit clock wraps every 2^24 us (about 16.8 s). A wrap is a time high dropping by at least
4085 (from the top of its range to near zero), the rule evlib follows; a time low stepping
backwards is not a wrap (the sample ``evt3_sample_gen41.raw`` has one, 811 -> 800). As in
evlib, event words are skipped while their time (no time word yet) or row is unknown, which
only happens at the start of a stream cut mid-way; vectors before any VECT_BASE_X are skipped
too (evlib puts them at column 0).
"""

from __future__ import annotations

import numpy as np

from evstream._jit import kernel
from evstream.io.raw_common import ERR_TIME, ERR_UNKNOWN_TYPE, ERR_X, ERR_Y, RawReader, RawWriter

_LOOP_DROP = (1 << 12) - 11
_ADDR_Y, _ADDR_X, _VECT_BASE_X, _VECT_12, _VECT_8, _TIME_LOW, _TIME_HIGH = (
    0x0, 0x2 << 12, 0x3 << 12, 0x4 << 12, 0x5 << 12, 0x6 << 12, 0x8 << 12)


@kernel
def _decode_evt3(words, start, state, width, height, out):
    """Decode ``words[start:]`` into ``out`` (stops with 12 slots left); ``state`` holds (wrap offset,
    time high, time low, time seen, y, base x, polarity, last t), y and base x -1 until seen."""
    wrap, high, low, timed, y, base_x, pol, last_t = (state[0], state[1], state[2], state[3], state[4], state[5],
                                                      state[6], state[7])
    t = wrap + (high << 12) + low
    ready = timed != 0 and y >= 0
    n = 0
    error = 0
    stop = len(words)
    # One for loop, one exit per case and no max(): numba compiles this shape 3-4x faster.
    for i in range(start, len(words)):
        w = np.int64(words[i])
        kind = w >> 12
        if kind == 0x2:
            if ready:
                x = w & 0x7FF
                if n == len(out) or x >= width or y >= height or t < last_t:
                    error = 0 if n == len(out) else ERR_X if x >= width else ERR_Y if y >= height else ERR_TIME
                    stop = i
                    break
                out[n].x = x
                out[n].y = y
                out[n].t = t
                out[n].p = (w >> 11) & 1
                last_t = t
                n += 1
        elif kind == 0x0:
            y = w & 0x7FF
            ready = timed != 0
        elif kind == 0x6:
            low = w & 0xFFF
            t = wrap + (high << 12) + low
            timed = 1
            ready = y >= 0
        elif kind == 0x4 or kind == 0x5:
            bits = 12 if kind == 0x4 else 8
            if ready and base_x >= 0:
                mask = w & ((1 << bits) - 1)
                if n + 12 > len(out) or (mask != 0 and (y >= height or t < last_t)):
                    error = 0 if n + 12 > len(out) else ERR_Y if y >= height else ERR_TIME
                    stop = i
                    break
                if mask != 0:
                    last_t = t
                for b in range(bits):
                    if (mask >> b) & 1:
                        if base_x + b >= width:
                            error = ERR_X
                            break
                        out[n].x = base_x + b
                        out[n].y = y
                        out[n].t = t
                        out[n].p = pol
                        n += 1
                if error:
                    stop = i
                    break
            if base_x >= 0:
                base_x += bits
        elif kind == 0x3:
            base_x = w & 0x7FF
            pol = (w >> 11) & 1
        elif kind == 0x8:
            raw = w & 0xFFF
            if high - raw >= _LOOP_DROP:
                wrap += 1 << 24
            high = raw
            t = wrap + (high << 12) + low
            timed = 1
            ready = y >= 0
        elif kind != 0x7 and kind != 0xA and kind != 0xE and kind != 0xF:
            error = ERR_UNKNOWN_TYPE
            stop = i
            break
    state[0], state[1], state[2], state[3] = wrap, high, low, timed
    state[4], state[5], state[6], state[7] = y, base_x, pol, last_t
    return n, stop, error


@kernel
def _resume_evt3(words, state, found):
    """Set in ``state`` what ``words`` (the words before a part) say of the time high and low, the
    row and the vector base (advanced by the vectors after it); ``found`` flags each (and holds
    the advance). True when all four are found."""
    for i in range(len(words) - 1, -1, -1):
        w = np.int64(words[i])
        kind = w >> 12
        if kind == 0x8 and not found[0]:
            state[1], state[3], found[0] = w & 0xFFF, 1, 1
        elif kind == 0x6 and not found[1]:
            state[2], state[3], found[1] = w & 0xFFF, 1, 1
        elif kind == 0x0 and not found[2]:
            state[4], found[2] = w & 0x7FF, 1
        elif (kind == 0x4 or kind == 0x5) and not found[3]:
            found[4] += 12 if kind == 0x4 else 8
        elif kind == 0x3 and not found[3]:
            state[5], state[6], found[3] = (w & 0x7FF) + found[4], (w >> 11) & 1, 1
        if found[0] and found[1] and found[2] and found[3]:
            return True
    return False


@kernel
def _run_end(events, i, limit):
    """End of the run from ``i``: same time, row and polarity, x increasing and below ``limit``."""
    j = i + 1
    while (j < len(events) and events[j].t == events[i].t and events[j].y == events[i].y
           and events[j].p == events[i].p and events[j - 1].x < events[j].x < limit):
        j += 1
    return j


@kernel
def _encode_evt3(events, state, out):
    """Encode time-sorted ``events`` into ``out`` words; ``state`` = (time high, time low, y) written.

    Runs of three or more events sharing time, row and polarity with increasing x become
    VECT_BASE_X + VECT_12 / VECT_8 words, other events EVT_ADDR_X. Crossing a 2^24 us wrap writes
    time high 4095 then 0, so every reader sees the wrap.
    """
    high, low, y = state[0], state[1], state[2]
    m = 0
    i = 0
    while i < len(events):
        t = events[i].t
        if t >> 12 != high:
            period = max(high, 0) >> 12
            while period < t >> 24:
                out[m] = _TIME_HIGH | 0xFFF
                out[m + 1] = _TIME_HIGH
                m += 2
                period += 1
            high = t >> 12
            out[m] = _TIME_HIGH | (high & 0xFFF)
            m += 1
            low = -1
        if t & 0xFFF != low:
            low = t & 0xFFF
            out[m] = _TIME_LOW | low
            m += 1
        if events[i].y != y:
            y = events[i].y
            out[m] = _ADDR_Y | y
            m += 1
        polarity = np.int64(events[i].p) << 11
        base = np.int64(events[i].x)
        j = _run_end(events, i, base + 12)
        if j - i < 3:
            out[m] = _ADDR_X | polarity | base
            m += 1
            i += 1
            continue
        out[m] = _VECT_BASE_X | polarity | base
        m += 1
        while True:
            mask = 0
            for k in range(i, j):
                mask |= 1 << (np.int64(events[k].x) - base)
            out[m] = (_VECT_8 | mask) if mask < 0x100 else (_VECT_12 | mask)
            base += 8 if mask < 0x100 else 12
            m += 1
            i = j
            if not (i < len(events) and events[i].t == t and events[i].y == y and events[i].p == events[i - 1].p
                    and events[i - 1].x < events[i].x < base + 12):
                break
            j = _run_end(events, i, base + 12)
    state[0], state[1], state[2] = high, low, y
    return m


class Evt3Reader(RawReader):
    """Streams an EVT 3.0 RAW file (geometry from the header, else ``sensor_size=``)."""

    format = "evt3"
    word_dtype = np.dtype("<u2")
    initial_state = (0, 0, 0, 0, -1, -1, 0, np.iinfo(np.int64).min)
    max_events_per_word = 12
    wrap_shift = 0
    carried_fields = (1, 2, 3, 4, 5, 6)
    _decode = staticmethod(_decode_evt3)
    _resume = staticmethod(_resume_evt3)


class Evt3Writer(RawWriter):
    """Writes an EVT 3.0 RAW file with vectorised runs (evlib reads it identically, wraps included)."""

    format = "evt3"
    max_time_us = 1 << 40
    word_dtype = np.dtype("<u2")
    initial_state = (-1, -1, -1)
    max_words_per_event = 4
    time_high_bits = 24
    _encode = staticmethod(_encode_evt3)
