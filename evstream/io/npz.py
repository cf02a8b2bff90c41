"""numpy ``.npz`` event files: arrays ``x, y, t, p`` and ``sensor_size``, or one structured ``events`` array.

An npz is a zip of whole ``.npy`` arrays: it can be neither read nor written a piece at a
time, so the reader loads the file once and the writer keeps every batch until close. Use
evstream's HDF5 format for recordings that should stream.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

import numpy as np

from evstream.events import EventFileError, check_sensor_size, empty_events, make_events
from evstream.io.reader import BLOCK_EVENTS, EventReader, sensor_side
from evstream.io.writer import EventWriter

_U16_MAX = np.iinfo(np.uint16).max
_ZIP_MAGIC = b"PK\x03\x04"


def _to_events(path, x, y, t, p) -> np.ndarray:
    """Validated columns to an event array: integer coordinates in uint16 range, integer
    microseconds, polarity taken as ``p > 0`` (bool, 0/1 and -1/+1 all map to 0/1)."""
    columns = {"x": x, "y": y, "t": t, "p": p}
    for name, column in columns.items():
        if column.ndim != 1:
            raise EventFileError(path, f"array {name!r} has shape {column.shape}, expected one dimension")
        if column.dtype.kind not in ("iub" if name == "p" else "iu"):
            raise EventFileError(path, f"array {name!r} has dtype {column.dtype}, expected integers"
                                       + (" (microseconds)" if name == "t" else ""))
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) != 1:
        raise EventFileError(path, f"arrays x, y, t, p have different lengths {lengths}")
    for name in ("x", "y"):
        column = columns[name]
        if len(column) and (column.min() < 0 or column.max() > _U16_MAX):
            raise EventFileError(path, f"array {name!r} holds coordinates outside 0..{_U16_MAX}")
    if t.dtype == np.uint64 and len(t) and t.max() > np.iinfo(np.int64).max:
        raise EventFileError(path, "array 't' holds times beyond int64 microseconds")
    return make_events(x, y, t, p > 0)


def _load(path) -> tuple[np.ndarray, tuple | None]:
    """The events of an npz file and its stored ``sensor_size`` (None when absent)."""
    try:
        with open(path, "rb") as f:  # our handle, so it is closed even when the zip is bad
            if f.read(4) != _ZIP_MAGIC:
                raise EventFileError(path, "not an npz: it does not start as a zip file", 0)
            f.seek(0)
            with np.load(f, allow_pickle=False) as npz:
                names = set(npz.files)
                if "events" in names:
                    events = npz["events"]
                    if not {"x", "y", "t", "p"} <= set(events.dtype.names or ()):
                        raise EventFileError(path, f"array 'events' has dtype {events.dtype}, "
                                                   "expected fields x, y, t, p")
                    columns = [events[name] for name in "xytp"]
                elif {"x", "y", "t", "p"} <= names:
                    columns = [npz[name] for name in "xytp"]
                else:
                    raise EventFileError(path, f"npz holds arrays {sorted(names)}; expected x, y, t, p or a structured "
                                               "array 'events'")
                stored = tuple(npz["sensor_size"].tolist()) if "sensor_size" in names else None
    except EventFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise EventFileError(path, f"cannot read as npz ({err})") from err
    return _to_events(path, *columns), stored


class NpzReader(EventReader):
    """Reader of ``.npz`` event files (loads the whole file: npz cannot stream).

    Args:
        path: the file.
        sensor_size: ``(W, H, 2)``; defaults to the file's ``sensor_size`` array, else
            ``(max x + 1, max y + 1, 2)``.
    """

    format = "npz"

    def __init__(self, path, *, sensor_size=None, strict: bool = False):
        super().__init__(path, strict=strict)
        self._events, stored = _load(self.path)
        if sensor_size is None and stored is not None:
            try:
                if len(stored) != 3:
                    raise ValueError(f"sensor_size array {stored} does not hold (W, H, P)")
                sensor_size = (sensor_side(stored[0], "sensor_size width"),
                               sensor_side(stored[1], "sensor_size height"), sensor_side(stored[2], "sensor_size P"))
            except (TypeError, ValueError) as err:
                raise EventFileError(self.path, str(err)) from None
        if sensor_size is None:
            events = self._events
            sensor_size = (int(events["x"].max()) + 1, int(events["y"].max()) + 1, 2) if len(events) else (1, 1, 2)
        try:
            self.sensor_size = check_sensor_size(sensor_size)
        except ValueError as err:
            raise EventFileError(self.path, str(err)) from err

    def _blocks(self) -> Iterator[tuple[np.ndarray, None]]:
        for a in range(0, len(self._events), BLOCK_EVENTS):
            yield self._events[a:a + BLOCK_EVENTS], None


class NpzWriter(EventWriter):
    """Writes ``x, y, t, p`` and ``sensor_size`` arrays on close; batches are kept in memory until then.

    Args:
        compressed: deflate the arrays (``np.savez_compressed``): smaller, several times slower.
    """

    format = "npz"

    def __init__(self, path, sensor_size, *, compressed: bool = False):
        super().__init__(path, sensor_size)
        self._save = np.savez_compressed if compressed else np.savez
        self._batches: list[np.ndarray] = []

    def _write(self, events: np.ndarray) -> None:
        self._batches.append(events.copy())  # the caller may reuse its buffer

    def _finish(self) -> None:
        events = np.concatenate(self._batches) if self._batches else empty_events()
        self._batches = []
        with open(self.path, "wb") as f:  # a file object: np.savez would append ".npz" to a bare path
            self._save(f, x=events["x"], y=events["y"], t=events["t"], p=events["p"],
                       sensor_size=np.asarray(self.sensor_size, dtype=np.int64))
