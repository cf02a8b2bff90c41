"""ATIS ``.bin`` files of N-MNIST and N-Caltech101: headerless 40-bit records.

Each 5-byte record is ``x`` (8 bits), ``y`` (8 bits), then 24 big-endian bits: ``p`` (bit 23)
and ``t`` (bits 22..0, µs). A record with ``y == 240`` is a time-overflow marker, not an
event: it adds ``2**13`` µs to the time of every later record. That is the datasets' own
reader (Orchard's ``Read_Ndataset.m``) and tonic's ``read_mnist_file``, so we follow it even
though the time field is 23 bits wide; the published samples (<= 0.3 s) never reach it.
The writer uses the same markers, so any time fits: an event at ``t >= 2**23`` is preceded
by ``(t >> 13) - 1023`` markers in total and stores ``t`` minus ``2**13`` per marker.

The geometry is not stored: pass ``dataset="nmnist"`` (34x34) or ``"ncaltech101"`` (each file
its own ``max x + 1`` by ``max y + 1``, within 240x180), or ``sensor_size``; events outside it are
an error naming them. Otherwise the size is ``(max x + 1, max y + 1, 2)`` from a scan of the file
(tonic's convention), which one corrupt byte can stretch.

Being headerless, a ``.bin`` file is recognised by its records (:func:`atis_records_problem`:
rows up to 240), whatever the file's length (a file cut inside a record is still ATIS, its
complete records read with a warning).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from evstream._jit import kernel
from evstream._parallel import compact, run_parts, split
from evstream.events import check_sensor_size, empty_events
from evstream.io.dat import check_whole
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.record_file import (decode_into, gather_blocks, opened_for_reader, record_count, record_slices,
                                     report_partial_record)
from evstream.io.writer import EventWriter

RECORD_DTYPE = np.dtype([("x", "u1"), ("y", "u1"), ("p_t_high", "u1"), ("t_mid", "u1"), ("t_low", "u1")])
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13
DATASETS = {"nmnist": (34, 34), "ncaltech101": (240, 180)}
"""Sensor of each ATIS data set: N-MNIST's, and the bound of N-Caltech101's per-file sizes."""
_OVERFLOW_FREE = (1 << 23) // OVERFLOW_US - 1  # markers needed before t: max(0, (t >> 13) - this)


@kernel
def _decode(records, width, height, state, out):
    """Decode records into ``out``, skipping overflow markers. Returns the number of events written.

    ``state`` = (markers seen, last time, doubt) carries across calls; doubt becomes 1 when an
    event lies outside ``width`` x ``height`` or goes back in time, so that a whole read runs the
    reader's checks (and their error) only then.
    """
    overflows, previous, doubt = state[0], state[1], state[2]
    n = 0
    for i in range(records.shape[0]):
        y = records[i]["y"]
        if y == OVERFLOW_Y:
            overflows += 1
            continue
        high = np.int64(records[i]["p_t_high"])
        x = records[i]["x"]
        t = (((high & 127) << 16) | (np.int64(records[i]["t_mid"]) << 8) | np.int64(records[i]["t_low"])
             ) + overflows * OVERFLOW_US
        if x >= width or y >= height or t < previous:
            doubt = 1
        previous = t
        out[n]["x"] = x
        out[n]["y"] = y
        out[n]["p"] = high >> 7
        out[n]["t"] = t
        n += 1
    state[0], state[1], state[2] = overflows, previous, doubt
    return n


@kernel
def _extent(records, out):
    """Largest x and y of the events (markers excluded) into ``out`` (start it at -1)."""
    for i in range(records.shape[0]):
        y = np.int64(records[i]["y"])
        if y != OVERFLOW_Y:
            out[0] = max(out[0], np.int64(records[i]["x"]))
            out[1] = max(out[1], y)


@kernel
def _encode(events, overflows, out):
    """Encode time-sorted, non-negative events into ``out`` with the overflow markers they need,
    starting after ``overflows`` markers; returns the marker count after the last event."""
    n = 0
    for i in range(events.shape[0]):
        t = events[i]["t"]
        while overflows < (t >> 13) - _OVERFLOW_FREE:
            out[n]["x"] = 0
            out[n]["y"] = OVERFLOW_Y
            out[n]["p_t_high"] = 0
            out[n]["t_mid"] = 0
            out[n]["t_low"] = 0
            overflows += 1
            n += 1
        stored = t - overflows * OVERFLOW_US
        out[n]["x"] = events[i]["x"]
        out[n]["y"] = events[i]["y"]
        out[n]["p_t_high"] = (np.int64(events[i]["p"]) << 7) | (stored >> 16)
        out[n]["t_mid"] = (stored >> 8) & 255
        out[n]["t_low"] = stored & 255
        n += 1
    return overflows


def atis_records_problem(head: bytes) -> str | None:
    """Why the complete records in ``head`` (a file's first bytes) are not ATIS TD records, or None.

    Records are ATIS when no row exceeds 240 (the overflow marker): the structure, not the file
    length, so a cut file is recognised (random bytes break the rule within a few dozen records;
    times are checked as the file is read, which names the offending event).
    """
    y = np.frombuffer(head, RECORD_DTYPE, count=len(head) // RECORD_DTYPE.itemsize)["y"]
    above = np.flatnonzero(y > OVERFLOW_Y)
    return f"record {above[0]} has row {y[above[0]]}, above {OVERFLOW_Y}" if len(above) else None


def _fresh_state() -> np.ndarray:
    """``_decode``'s state before the first record: no marker, no time yet, no doubt."""
    return np.array([0, np.iinfo(np.int64).min, 0], dtype=np.int64)


class AtisBinReader(EventReader):
    """Reader of ATIS ``.bin`` files (N-MNIST, N-Caltech101).

    Args:
        path: the file.
        dataset: ``"nmnist"`` (34x34) or ``"ncaltech101"`` (the file's extent, within 240x180):
            the sensor of the data set the file comes from (see :data:`DATASETS`).
        sensor_size: ``(W, H, 2)``, for other files. With neither, ``(max x + 1, max y + 1, 2)``
            of the file's events.
        strict: raise instead of warning when the file ends inside a record.
        threads: threads decoding (and scanning) a large file's parts in :meth:`read` (default:
            one per CPU; pass 1 inside already parallel code such as data-loader workers).
    """

    format = "atis_bin"

    def __init__(self, path, *, dataset: str | None = None, sensor_size=None, strict: bool = False,
                 threads: int | None = None):
        super().__init__(path, strict=strict, threads=threads)
        if dataset is not None and dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
        if dataset is not None and sensor_size is not None:
            raise ValueError("pass dataset= or sensor_size=, not both")
        with opened_for_reader(self.path) as self._file:
            self._size = os.fstat(self._file.fileno()).st_size
            if sensor_size is not None:
                self.sensor_size = check_sensor_size(sensor_size)
            elif dataset == "nmnist":
                self.sensor_size = (*DATASETS[dataset], 2)
            else:
                width, height, _ = self._scan_extent()
                if dataset == "ncaltech101":  # an event beyond the bound is reported when read
                    width, height = min(width, DATASETS[dataset][0]), min(height, DATASETS[dataset][1])
                self.sensor_size = (width, height, 2)

    def close(self) -> None:
        self._file.close()

    def _scan_extent(self) -> tuple[int, int, int]:
        """``(max x + 1, max y + 1, 2)`` of the events, parts of a large file scanned in parallel."""

        def scan(part: tuple[int, int]) -> np.ndarray:
            extent = np.full(2, -1, dtype=np.int64)
            for records, _, _ in record_slices(self._file, self.path, 0, self._size, RECORD_DTYPE, *part):
                _extent(records, extent)
            return extent

        extents = run_parts(scan, split(record_count(0, self._size, RECORD_DTYPE), self._threads))
        for extent in extents:
            if isinstance(extent, Exception):
                raise extent
        width, height = np.max(extents, axis=0)
        return int(max(width, 0)) + 1, int(max(height, 0)) + 1, 2

    def _decoder(self, state: np.ndarray):
        """The slice decoder of :func:`~evstream.io.record_file.gather_blocks` (``state`` as ``_decode`` keeps it)."""
        width, height = self.sensor_size[:2]
        return lambda records, offset, out: _decode(records, width, height, state, out)

    def _blocks(self) -> Iterator[tuple[np.ndarray, int]]:
        slices = record_slices(self._file, self.path, 0, self._size, RECORD_DTYPE)
        yield from gather_blocks(slices, self._decoder(_fresh_state()), BLOCK_EVENTS)
        report_partial_record(self.path, 0, self._size, RECORD_DTYPE, self.strict)

    def read(self) -> np.ndarray:
        """All events from the current position; without a seek, decoded straight into one array,
        parts of a large file in parallel threads (the reader's checks run only when the decoder
        saw an event they would reject)."""
        if self._seek_us is not None:
            return super().read()
        events = empty_events(record_count(0, self._size, RECORD_DTYPE))
        parts = split(len(events), self._threads)

        def decode_part(part: tuple[int, int]) -> tuple[int, np.ndarray]:
            state = _fresh_state()
            slices = record_slices(self._file, self.path, 0, self._size, RECORD_DTYPE, *part)
            return decode_into(slices, self._decoder(state), events[part[0]:]), state

        results = run_parts(decode_part, parts)
        for result in results:
            if isinstance(result, Exception):
                raise result
        markers = 0  # the parts counted their overflow markers from zero: add those of the parts before
        for (start, _), (count, state) in zip(parts, results, strict=True):
            if markers:
                events["t"][start:start + count] += markers * OVERFLOW_US
            markers += int(state[0])
        counts = [count for count, _ in results]
        n = compact(events, [start for start, _ in parts], counts)
        report_partial_record(self.path, 0, self._size, RECORD_DTYPE, self.strict)
        firsts = np.cumsum([0, *counts])[:-1]
        doubt = any(state[2] for _, state in results) or any(
            first < n and counts[k - 1] and events["t"][first] < events["t"][first - 1]
            for k, first in enumerate(firsts) if k)
        return check_whole(self, events[:n], 0) if doubt else events[:n]


class AtisBinWriter(EventWriter):
    """Writes ATIS ``.bin`` records (overflow markers inserted for times at or beyond 2**23 µs).

    The format holds coordinates below 256 and rows below 240 (y = 240 marks an overflow).
    """

    format = "atis_bin"

    def __init__(self, path, sensor_size):
        super().__init__(path, sensor_size)
        width, height = self.sensor_size[:2]
        if width > 256 or height > OVERFLOW_Y:
            raise ValueError(f"{self.path}: ATIS .bin holds sensors up to 256x{OVERFLOW_Y}, got {width}x{height}")
        self._file = open(self.path, "wb")
        self._overflows = 0

    def _write(self, events: np.ndarray) -> None:
        if events["t"][0] < 0:
            raise ValueError(f"{self.path}: ATIS .bin cannot store negative times (t={events['t'][0]} us)")
        markers = max(int(events["t"][-1] >> 13) - _OVERFLOW_FREE, self._overflows) - self._overflows
        out = np.empty(len(events) + markers, dtype=RECORD_DTYPE)
        self._overflows = _encode(events, self._overflows, out)
        out.tofile(self._file)

    def _finish(self) -> None:
        self._file.close()
