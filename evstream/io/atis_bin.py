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
from evstream.events import check_sensor_size
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.record_file import gather_blocks, opened_for_reader, record_slices, report_partial_record
from evstream.io.writer import EventWriter

RECORD_DTYPE = np.dtype([("x", "u1"), ("y", "u1"), ("p_t_high", "u1"), ("t_mid", "u1"), ("t_low", "u1")])
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13
DATASETS = {"nmnist": (34, 34), "ncaltech101": (240, 180)}
"""Sensor of each ATIS data set: N-MNIST's, and the bound of N-Caltech101's per-file sizes."""
_OVERFLOW_FREE = (1 << 23) // OVERFLOW_US - 1  # markers needed before t: max(0, (t >> 13) - this)


@kernel
def _decode(records, state, out):
    """Decode records into ``out``, skipping overflow markers; ``state[0]`` counts markers seen.
    Returns the number of events written."""
    overflows = state[0]
    n = 0
    for i in range(records.shape[0]):
        y = records[i]["y"]
        if y == OVERFLOW_Y:
            overflows += 1
            continue
        high = np.int64(records[i]["p_t_high"])
        out[n]["x"] = records[i]["x"]
        out[n]["y"] = y
        out[n]["p"] = high >> 7
        out[n]["t"] = (((high & 127) << 16) | (np.int64(records[i]["t_mid"]) << 8) | np.int64(records[i]["t_low"])
                       ) + overflows * OVERFLOW_US
        n += 1
    state[0] = overflows
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


class AtisBinReader(EventReader):
    """Reader of ATIS ``.bin`` files (N-MNIST, N-Caltech101).

    Args:
        path: the file.
        dataset: ``"nmnist"`` (34x34) or ``"ncaltech101"`` (the file's extent, within 240x180):
            the sensor of the data set the file comes from (see :data:`DATASETS`).
        sensor_size: ``(W, H, 2)``, for other files. With neither, ``(max x + 1, max y + 1, 2)``
            of the file's events.
        strict: raise instead of warning when the file ends inside a record.
    """

    format = "atis_bin"

    def __init__(self, path, *, dataset: str | None = None, sensor_size=None, strict: bool = False):
        super().__init__(path, strict=strict)
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
        extent = np.full(2, -1, dtype=np.int64)
        for records, _, _ in record_slices(self._file, self.path, 0, self._size, RECORD_DTYPE):
            _extent(records, extent)
        return int(max(extent[0], 0)) + 1, int(max(extent[1], 0)) + 1, 2

    def _blocks(self) -> Iterator[tuple[np.ndarray, int]]:
        state = np.zeros(1, dtype=np.int64)
        slices = record_slices(self._file, self.path, 0, self._size, RECORD_DTYPE)
        yield from gather_blocks(slices, lambda records, offset, out: _decode(records, state, out), BLOCK_EVENTS)
        report_partial_record(self.path, 0, self._size, RECORD_DTYPE, self.strict)


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
