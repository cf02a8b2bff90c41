"""HDF5 event layouts of public datasets: MVSEC (``davis/<camera>/events``) and DSEC (``events/{x,y,t,p}``).

Both are read a slice of the HDF5 datasets at a time (memory bounded by ``BLOCK_EVENTS``),
and seeking costs O(log n) single-row reads: a binary search on MVSEC's time column, DSEC's
``ms_to_idx`` table narrowed by a binary search inside the millisecond. The small helpers
here (opening with the compression plugins, reads that turn HDF5 damage into EventFileError,
binary search, byte offsets for error messages) are shared with evstream's own HDF5 format.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import h5py
import hdf5plugin  # noqa: F401  (registers Blosc & co. with HDF5 before any dataset is read: DSEC)
import numpy as np

from evstream._jit import kernel
from evstream.events import EventFileError, check_sensor_size, empty_events
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.writer import EventWriter

CAMERAS = ("left", "right")
MVSEC_SIZE = (346, 260, 2)  # DAVIS m346B, both MVSEC cameras
DSEC_SIZE = (640, 480, 2)  # Prophesee Gen3.1, both DSEC event cameras
HDF5_DAMAGE = (OSError, RuntimeError, TypeError, KeyError)
"""What h5py raises on damaged storage or metadata (besides our own checks)."""
MVSEC_CHUNK_ROWS = 1 << 14  # rows per chunk of a written events dataset: 512 KiB, inside HDF5's chunk cache


def open_hdf5(path: os.PathLike | str, mode: str = "r") -> h5py.File:
    """An ``h5py.File`` (compression plugins registered); a file HDF5 cannot open is an EventFileError."""
    try:
        return h5py.File(path, mode)
    except HDF5_DAMAGE as err:
        raise EventFileError(path, f"cannot open as HDF5 ({err})" if mode == "r" else
                             f"cannot open HDF5 file for writing ({err})") from err


@contextmanager
def opened_hdf5(path: os.PathLike | str) -> Iterator[h5py.File]:
    """:func:`open_hdf5` for a reader: the file stays open after the ``with`` body (reading the layout)
    unless the body raises; it is then closed, and HDF5's own errors (unreadable metadata) become
    EventFileError ``damaged HDF5 file``.

    Example:
        >>> with opened_hdf5(self.path) as self._file:
        ...     self._events = get_dataset(self._file, "events", 1)
    """
    f = open_hdf5(path)
    try:
        yield f
    except Exception as err:
        f.close()
        if isinstance(err, HDF5_DAMAGE):
            raise EventFileError(path, f"damaged HDF5 file ({err})") from err
        raise


def get_dataset(f: h5py.File, key: str, ndim: int) -> h5py.Dataset:
    """The dataset ``key`` of ``ndim`` dimensions, or an EventFileError naming what is there instead."""
    node = f.get(key)
    if not isinstance(node, h5py.Dataset):
        raise EventFileError(f.filename, f"no HDF5 dataset {key!r} (top-level keys {list(f.keys())})")
    if node.ndim != ndim:
        raise EventFileError(f.filename, f"HDF5 dataset {key!r} has shape {node.shape}, expected {ndim} dimensions")
    return node


def row_offset(ds: h5py.Dataset, row: int) -> int | None:
    """Byte offset in the file of the storage holding ``row``: the row itself when the dataset is
    contiguous, the start of its (compressed) chunk when it is chunked; None when not stored or unknown."""
    try:
        if ds.chunks is None:
            base = ds.id.get_offset()
            return None if base is None else base + row * ds.dtype.itemsize * int(np.prod(ds.shape[1:]))
        if row >= ds.shape[0]:
            return None
        return ds.id.get_chunk_info_by_coord((row - row % ds.chunks[0],) + (0,) * (ds.ndim - 1)).byte_offset
    except HDF5_DAMAGE:
        return None


def read_rows(ds: h5py.Dataset, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
    """Rows ``[start, stop)`` of a dataset (into ``out`` when given); damaged storage is an EventFileError.

    HDF5 reads zeros past the end of a file, so a file that shrank since it was opened would give
    zero rows in silence: the size is compared after each read, and a shrink is an EventFileError.
    """
    try:
        if out is None:
            out = ds[start:stop]
        else:
            ds.read_direct(out, np.s_[start:stop])
        error = None
    except HDF5_DAMAGE as err:
        error = err
    f = ds.file
    size_before, size_now = f.id.get_filesize(), os.stat(f.filename).st_size
    if size_now < size_before:
        raise EventFileError(f.filename, f"file shrank from {size_before} to {size_now} bytes while being read",
                             row_offset(ds, start)) from error
    if error is not None:
        raise EventFileError(f.filename, f"cannot read rows {start}..{stop} of {ds.name} ({error})",
                             row_offset(ds, start)) from error
    return out


def bisect_rows(value_at: Callable[[int], int], target: int, lo: int, hi: int) -> int:
    """The first row in ``[lo, hi)`` whose value is at least ``target`` (``hi`` when none is), for
    values non-decreasing in the row; ``value_at(row)`` reads one row, so this costs O(log n) reads."""
    while lo < hi:
        mid = (lo + hi) // 2
        if value_at(mid) < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def _mvsec_to_events(rows, width, height, out):
    """MVSEC rows (x, y, t seconds, p ±1) into ``out``: t = rint(t * 1e6) µs, p = (p > 0).
    Returns the first row that is not an integer pixel inside the sensor at a time within
    ±9e12 s (NaN included), or -1."""
    for i in range(rows.shape[0]):
        x = rows[i, 0]
        y = rows[i, 1]
        t = rows[i, 2]
        if not (0 <= x < width and 0 <= y < height and x == np.floor(x) and y == np.floor(y) and abs(t) < 9e12):
            return i
        out[i]["x"] = np.uint16(x)
        out[i]["y"] = np.uint16(y)
        out[i]["t"] = np.int64(np.rint(t * 1e6))
        out[i]["p"] = 1 if rows[i, 3] > 0 else 0
    return -1


@kernel
def _events_to_mvsec(events, out):
    """Events into MVSEC rows (x, y, t seconds, p ±1)."""
    for i in range(events.shape[0]):
        out[i, 0] = events[i]["x"]
        out[i, 1] = events[i]["y"]
        out[i, 2] = np.float64(events[i]["t"]) / 1e6
        out[i, 3] = 1.0 if events[i]["p"] > 0 else -1.0


def _check_camera(camera: str) -> str:
    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")
    return camera


class _RowReader(EventReader):
    """A reader of rows of HDF5 datasets: a subclass yields blocks from a row (``_blocks_from_row``) and finds
    the first row at or after a time (``_start_row``, by binary search); reading and seeking follow."""

    def close(self) -> None:
        self._file.close()

    def _blocks(self) -> Iterator[tuple[np.ndarray, int]]:
        return self._blocks_from_row(0)

    def _blocks_from(self, t_us: int) -> Iterator[tuple[np.ndarray, int]]:
        return self._blocks_from_row(self._start_row(t_us))


class MvsecReader(_RowReader):
    """MVSEC ``*_data.hdf5``: ``davis/<camera>/events``, N x 4 float64 rows (x, y, t in seconds, p ±1).

    Time becomes ``round(t * 1e6)`` µs (exact for times below ~4.5e9 s, MVSEC's ROS times are ~1.5e9 s);
    p = 1 for a positive value, else 0.

    Args:
        path: the ``_data.hdf5`` file.
        camera: ``"left"`` or ``"right"``.
        sensor_size: ``(W, H, 2)``; MVSEC's DAVIS346 is 346x260.
    """

    format = "mvsec"

    def __init__(self, path, *, camera: str = "left", sensor_size=MVSEC_SIZE, strict: bool = False):
        super().__init__(path, strict=strict)
        self.camera = _check_camera(camera)
        self.sensor_size = check_sensor_size(sensor_size)
        with opened_hdf5(self.path) as self._file:
            self._events = get_dataset(self._file, f"davis/{camera}/events", 2)
            if self._events.shape[1] != 4 or self._events.dtype.kind not in "fiu":
                raise EventFileError(self.path, f"davis/{camera}/events has shape {self._events.shape} and dtype "
                                                f"{self._events.dtype}, expected N x 4 numbers (x, y, t, p)")

    def _time_us(self, row: int) -> int:
        t = np.float64(read_rows(self._events, row, row + 1)[0, 2])
        if not abs(t) < 9e12:
            raise EventFileError(self.path, f"davis/{self.camera}/events row {row} has time {t} s",
                                 row_offset(self._events, row))
        return int(np.rint(t * 1e6))

    def _blocks_from_row(self, start: int) -> Iterator[tuple[np.ndarray, int]]:
        n = self._events.shape[0]
        for a in range(start, n, BLOCK_EVENTS):
            rows = np.asarray(read_rows(self._events, a, a + BLOCK_EVENTS), dtype=np.float64)
            offset = row_offset(self._events, a)
            yield self._convert(rows, offset), offset

    def _convert(self, rows: np.ndarray, offset: int | None) -> np.ndarray:
        """Rows (x, y, t s, p) to events; a row that is not a pixel at a representable time is an error."""
        width, height = self.sensor_size[:2]
        events = empty_events(len(rows))
        bad = _mvsec_to_events(rows, width, height, events)
        if bad >= 0:
            x, y, t = rows[bad, :3]
            raise EventFileError(self.path, f"davis/{self.camera}/events row {bad} of the block read from here "
                                            f"(x={x}, y={y}, t={t}) is not a pixel of the {width}x{height} "
                                            "sensor at a time within int64 microseconds", offset)
        return events

    def _start_row(self, t_us: int) -> int:
        """First row at or after ``t_us``: a binary search on the time column."""
        return bisect_rows(self._time_us, t_us, 0, self._events.shape[0])


class DsecReader(_RowReader):
    """DSEC ``events.h5``: ``events/{x,y,t,p}`` columns, ``t`` µs relative to ``t_offset``, and ``ms_to_idx``.

    Times are absolute (``t + t_offset`` as int64). ``seek`` looks the millisecond up in
    ``ms_to_idx`` (first event at or after it) and refines inside it by binary search; without
    the table it searches the whole ``t`` column.

    Args:
        path: an ``events.h5`` (DSEC keeps each camera in its own ``events_<camera>/`` folder).
        camera: ``"left"`` or ``"right"``; informational only, kept as ``.camera``.
        sensor_size: ``(W, H, 2)``; DSEC's cameras are 640x480.
    """

    format = "dsec"

    def __init__(self, path, *, camera: str = "left", sensor_size=DSEC_SIZE, strict: bool = False):
        super().__init__(path, strict=strict)
        self.camera = _check_camera(camera)
        self.sensor_size = check_sensor_size(sensor_size)
        with opened_hdf5(self.path) as self._file:
            self._columns = {name: get_dataset(self._file, f"events/{name}", 1) for name in "xytp"}
            lengths = {name: ds.shape[0] for name, ds in self._columns.items()}
            if len(set(lengths.values())) != 1:
                raise EventFileError(self.path, f"events/x, y, t, p have different lengths {lengths}")
            self._n = lengths["t"]
            self._t_offset = int(self._file["t_offset"][()]) if "t_offset" in self._file else 0
            self._ms_to_idx = None
            if "ms_to_idx" in self._file:
                table = get_dataset(self._file, "ms_to_idx", 1)
                self._ms_to_idx = np.asarray(read_rows(table, 0, table.shape[0]), dtype=np.int64)

    def _rel_time(self, row: int) -> int:
        return int(read_rows(self._columns["t"], row, row + 1)[0])

    def _blocks_from_row(self, start: int) -> Iterator[tuple[np.ndarray, int]]:
        for a in range(start, self._n, BLOCK_EVENTS):
            b = min(a + BLOCK_EVENTS, self._n)
            offset = row_offset(self._columns["x"], a)
            x, y, t, p = (read_rows(self._columns[name], a, b) for name in "xytp")
            if (x.dtype.kind == "i" and x.min() < 0) or (y.dtype.kind == "i" and y.min() < 0):
                raise EventFileError(self.path, "negative coordinate in events/x or events/y", offset)
            events = empty_events(b - a)
            events["x"] = x
            events["y"] = y
            events["t"] = t
            events["t"] += self._t_offset
            events["p"] = p > 0
            yield events, offset

    def _start_row(self, t_us: int) -> int:
        """First row at or after absolute ``t_us``: ``ms_to_idx`` bounds, then binary search between them."""
        rel = t_us - self._t_offset
        lo, hi = 0, self._n
        table = self._ms_to_idx
        if rel > 0 and table is not None and len(table):
            ms = rel // 1000
            lo = int(table[min(ms, len(table) - 1)])
            hi = int(table[ms + 1]) if ms + 1 < len(table) else self._n
            if not 0 <= lo <= hi <= self._n:  # a damaged table: fall back to searching everything
                lo, hi = 0, self._n
        return bisect_rows(self._rel_time, rel, lo, hi)


class MvsecWriter(EventWriter):
    """Writes ``davis/<camera>/events`` in MVSEC's layout: N x 4 float64 rows (x, y, t seconds, p ±1).

    The dataset is chunked and resizable so batches append. ``mode="a"`` adds a camera to an
    existing file (e.g. the other camera); the ground-truth file is the caller's.
    """

    format = "mvsec"

    def __init__(self, path, sensor_size=MVSEC_SIZE, *, camera: str = "left", mode: str = "w"):
        super().__init__(path, sensor_size)
        if mode not in ("w", "a"):
            raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
        key = f"davis/{_check_camera(camera)}/events"
        self._file = open_hdf5(self.path, mode)
        if key in self._file:
            self._file.close()
            raise ValueError(f"{self.path}: {key} exists already")
        self._events = self._file.create_dataset(key, shape=(0, 4), maxshape=(None, 4), dtype=np.float64,
                                                 chunks=(MVSEC_CHUNK_ROWS, 4))

    def _write(self, events: np.ndarray) -> None:
        rows = np.empty((len(events), 4), dtype=np.float64)
        _events_to_mvsec(events, rows)
        n = self._events.shape[0]
        self._events.resize(n + len(rows), axis=0)
        self._events[n:] = rows

    def _finish(self) -> None:
        self._file.close()
