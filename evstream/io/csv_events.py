"""CSV (and whitespace-separated text) event files: one event per line, columns named by a header.

What the ecosystem writes, all read here:

* faery: ``t,x@640,y@480,on`` then ``t,x,y,on`` rows (CRLF; ``@N`` gives the sensor width / height).
* Metavision's ``metavision_file_to_csv``: ``x,y,p,t`` rows, after a ``%geometry:W,H`` line in
  recent SDKs; such a headerless file is read in Metavision's order.
* evlib and the RPG event-camera data sets: ``# timestamp x y polarity`` then ``t x y p`` rows with
  times in seconds (``0.000010000000``) and polarity -1/1.

The column order comes from the header (names ``t``/``ts``/``timestamp``/``time``, ``x``, ``y``,
``p``/``pol``/``polarity``/``on``; other columns are skipped), possibly written as a ``#`` or ``%``
comment. A file without one is read as ``t,x,y,p`` (Metavision's ``x,y,p,t`` after ``%geometry``)
unless ``columns=`` says otherwise. Separators: comma, semicolon, tab or spaces, from the first
line. Times are integer microseconds, or seconds when the first row's time has a decimal point
(then rounded to the microsecond). Polarity 1 is ON; 0 and -1 are OFF. The sensor size comes from
``x@W``/``y@H`` or ``%geometry:W,H``, else ``sensor_size=`` (required then).

Lines are parsed by one numba kernel a block of bytes at a time (memory bounded by the block); a
bad line is an :class:`~evstream.EventFileError` naming its byte offset and its text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import numpy as np

from evstream._jit import kernel
from evstream.events import EventFileError, check_sensor_size, empty_events
from evstream.io.dat import check_polarity
from evstream.io.reader import EventReader, sensor_side
from evstream.io.writer import EventWriter

READ_BYTES = 1 << 22
"""Bytes parsed at a time (a block holds at most one event per line of them)."""
_HEAD_BYTES = 1 << 16
NAMES = {"t": "t", "ts": "t", "timestamp": "t", "time": "t", "t_us": "t", "timestamp_us": "t",
         "x": "x", "y": "y", "p": "p", "pol": "p", "polarity": "p", "on": "p"}
"""Header column names -> event field."""
DEFAULT_COLUMNS = ("t", "x", "y", "p")
METAVISION_COLUMNS = ("x", "y", "p", "t")
_ERRORS = {1: "not a number where one is expected", 2: "wrong number of fields", 3: "polarity is not 1, 0 or -1",
           4: "coordinate outside 0..65535", 5: "time with a decimal point in a file of integer microseconds",
           6: "number too long"}


@kernel
def _parse_lines(buf, sep, n_columns, fields, seconds, out):
    """Parse the complete lines of ``buf`` into ``out``; ``fields[c]`` is the event field of column
    ``c`` (0 t, 1 x, 2 y, 3 p, -1 skipped); ``sep`` a byte, or 32 for runs of spaces and tabs.

    Comment (``#``, ``%``) and blank lines are skipped. Returns (events, error code, byte of the
    bad line's start); error 0 when every line parsed.
    """
    n = 0
    pos = 0
    size = len(buf)
    while pos < size:
        line = pos
        while pos < size and (buf[pos] == 32 or buf[pos] == 9):
            pos += 1
        if pos >= size or buf[pos] == 10 or buf[pos] == 13 or buf[pos] == 35 or buf[pos] == 37:
            while pos < size and buf[pos] != 10:
                pos += 1
            pos += 1
            continue
        t = np.int64(0)
        x = np.int64(0)
        y = np.int64(0)
        p = np.int64(0)
        for c in range(n_columns):
            while pos < size and (buf[pos] == 32 or buf[pos] == 9):
                pos += 1
            negative = False
            if pos < size and (buf[pos] == 45 or buf[pos] == 43):
                negative = buf[pos] == 45
                pos += 1
            value = np.int64(0)
            digits = 0
            while pos < size and 48 <= buf[pos] <= 57:
                value = value * 10 + (buf[pos] - 48)
                digits += 1
                pos += 1
            if digits > 18:
                return n, 6, line
            if fields[c] == 0 and seconds:
                value *= 1_000_000
                if pos < size and buf[pos] == 46:  # fraction of a second, rounded to the microsecond
                    pos += 1
                    scale = np.int64(100_000)
                    while pos < size and 48 <= buf[pos] <= 57:
                        if scale > 0:
                            value += (buf[pos] - 48) * scale
                        elif scale == 0 and buf[pos] >= 53:
                            value += 1
                        scale = scale // 10 if scale > 0 else -1
                        digits += 1
                        pos += 1
            elif pos < size and buf[pos] == 46:
                return n, 5 if fields[c] == 0 else 1, line
            if digits == 0:
                return n, 1, line
            if negative:
                value = -value
            number_end = pos
            while pos < size and (buf[pos] == 32 or buf[pos] == 9):
                pos += 1
            end = pos >= size or buf[pos] == 10 or buf[pos] == 13
            if c == n_columns - 1:
                if not end:
                    return n, 2 if (sep == 32 or buf[pos] == sep) else 1, line
            elif end:
                return n, 2, line
            elif sep == 32:
                if pos == number_end:
                    return n, 1, line
            elif buf[pos] != sep:
                return n, 1, line
            else:
                pos += 1
            field = fields[c]
            if field == 0:
                t = value
            elif field == 1:
                x = value
            elif field == 2:
                y = value
            elif field == 3:
                p = value
        while pos < size and buf[pos] == 13:
            pos += 1
        if pos < size and buf[pos] != 10:
            return n, 2, line
        pos += 1
        if p != 0 and p != 1 and p != -1:
            return n, 3, line
        if x < 0 or x > 65535 or y < 0 or y > 65535:
            return n, 4, line
        out[n].t = t
        out[n].x = x
        out[n].y = y
        out[n].p = 1 if p == 1 else 0
        n += 1
    return n, 0, 0


def _split(line: str) -> tuple[list[str], str]:
    """Fields of a header or first row, and the separator (``" "`` for runs of spaces and tabs)."""
    for sep in (",", ";", "\t"):
        if sep in line:
            return [field.strip().strip('"').strip() for field in line.split(sep)], sep
    return line.split(), " "


class CsvReader(EventReader):
    """Streams a CSV or text event file (see the module docstring).

    Options: ``sensor_size=(W, H[, 2])`` when the file does not state it; ``columns`` (e.g.
    ``"x,y,p,t"``) for a file without a header.
    """

    format = "csv"

    def __init__(self, path, *, strict: bool = False, sensor_size=None, columns: str | None = None):
        super().__init__(path, strict=strict)
        try:
            with open(self.path, "rb") as f:
                head = f.read(_HEAD_BYTES)
                self._size = os.fstat(f.fileno()).st_size
        except OSError as err:
            raise EventFileError(self.path, f"cannot open: {err.strerror}") from None
        self._layout(head, sensor_size, columns)

    def _layout(self, head: bytes, sensor_size, columns: str | None) -> None:
        """Columns, separator, time unit, sensor size and the first data byte, from the file's first lines."""
        if b"\0" in head:
            raise EventFileError(self.path, "not a text file (it holds NUL bytes)", head.index(b"\0"))
        text = head.decode("latin-1")
        lines = text.splitlines(keepends=True)
        if len(head) == _HEAD_BYTES and lines:
            lines = lines[:-1]  # the last line may be cut by the peek
        geometry = None
        names = None
        start = 0
        first_row = None
        for line in lines:
            stripped = line.strip()
            if not stripped:
                start += len(line)
                continue
            if stripped[0] in "#%":
                found = re.search(r"geometry\s*[:=]?\s*(\d+)\s*[,x ]\s*(\d+)", stripped, re.IGNORECASE)
                if found:
                    geometry = found.groups()
                fields, _ = _split(stripped.lstrip("#%"))
                if names is None and fields and all(_base_name(f) in NAMES for f in fields):
                    names = fields
                start += len(line)
                continue
            if names is None and any(ch.isalpha() for ch in stripped):
                names = _split(stripped)[0]
                start += len(line)
                continue
            first_row = stripped
            break
        if names is not None and columns is not None:
            raise EventFileError(self.path, "the file has a header naming its columns: pass no columns option", 0)
        if names is None:
            names = (columns.split(",") if columns else
                     METAVISION_COLUMNS if geometry is not None else DEFAULT_COLUMNS)
        self._fields, stated = self._columns(names, columns is not None)
        if first_row is not None:
            row, self._sep = _split(first_row)
            t_text = row[self._fields.index(0)] if len(row) == len(self._fields) else ""
            self._seconds = "." in t_text
        else:
            self._sep, self._seconds = ",", False
        size = stated or geometry
        if sensor_size is not None:
            self.sensor_size = check_sensor_size((*tuple(sensor_size)[:2], 2))
        elif size is not None:
            try:
                self.sensor_size = (sensor_side(size[0], "width"), sensor_side(size[1], "height"), 2)
            except ValueError as err:
                raise EventFileError(self.path, f"unreadable sensor size: {err}", 0) from None
        else:
            raise EventFileError(self.path, "the file states no sensor size (no x@W, y@H or %geometry:W,H): "
                                 "pass sensor_size=(W, H) (--sensor-size W H)", 0)
        self._data_offset = start
        self.columns = ",".join("txyp"[f] if f >= 0 else "-" for f in self._fields)

    def _columns(self, names, from_option: bool) -> tuple[list[int], tuple[str, str] | None]:
        """Event field per column (-1: skipped) and the (width, height) that ``x@W``/``y@H`` state."""
        fields, sizes = [], {}
        for name in names:
            base = _base_name(name)
            field = NAMES.get(base)
            if from_option and field is None:
                raise EventFileError(self.path, f"columns: unknown column {name!r} (known: {', '.join(NAMES)})")
            if field is not None and "@" in name:
                sizes[field] = name.split("@", 1)[1].strip()
            fields.append("txyp".index(field) if field is not None else -1)
        missing = [f for f in "txyp" if "txyp".index(f) not in fields]
        repeated = {"txyp"[f] for f in fields if f >= 0 and fields.count(f) > 1}
        if missing or repeated:
            problem = (f"no {', '.join(missing)} column" if missing else f"column {', '.join(sorted(repeated))} twice")
            raise EventFileError(self.path, f"{problem} in {','.join(names)!r} (a header or columns= names t, x, y, p)",
                                 0)
        stated = (sizes["x"], sizes["y"]) if "x" in sizes and "y" in sizes else None
        return fields, stated

    def _blocks(self) -> Iterator[tuple[np.ndarray, int]]:
        sep = 32 if self._sep == " " else ord(self._sep)
        fields = np.array(self._fields, dtype=np.int64)
        with open(self.path, "rb") as f:
            f.seek(self._data_offset)
            offset = self._data_offset
            carry = b""
            while True:
                chunk = f.read(READ_BYTES)
                data = carry + chunk
                if not chunk:
                    if not data:
                        return
                    data += b"\n"  # the last line has no line end
                    cut = len(data)
                else:
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:
                        if len(data) > READ_BYTES:
                            raise EventFileError(self.path, f"a line longer than {READ_BYTES} bytes: not an event file",
                                                 offset)
                        carry = data
                        continue
                buf = np.frombuffer(data, np.uint8, cut)
                out = empty_events(int(np.count_nonzero(buf == 10)))
                n, error, at = _parse_lines(buf, sep, len(fields), fields, self._seconds, out)
                if error:
                    end = data.find(b"\n", at)
                    text = data[at:end if end >= 0 else len(data)].decode("latin-1").strip()
                    shown = text if len(text) <= 60 else text[:57] + "..."
                    raise EventFileError(self.path, f"{_ERRORS[error]} in line {shown!r} (columns {self.columns})",
                                         offset + at)
                yield out[:n], offset
                offset += cut
                carry = data[cut:]
                if not chunk:
                    return


def _base_name(name: str) -> str:
    """A header name without its ``@size`` and case."""
    return name.split("@", 1)[0].strip().lower()


class CsvWriter(EventWriter):
    """Writes a CSV event file: a header of column names (``x@W``/``y@H`` giving the sensor, as faery
    writes it), then one event per line; ``columns`` orders them (Metavision's ``"x,y,p,t"``)."""

    format = "csv"

    def __init__(self, path, sensor_size, columns: str = "t,x,y,p"):
        super().__init__(path, sensor_size)
        order = [name.strip().lower() for name in columns.split(",")]
        if sorted(order) != ["p", "t", "x", "y"]:
            raise ValueError(f"{self.path}: columns {columns!r} must name t, x, y and p once each")
        self._order = np.array(["txyp".index(name) for name in order], dtype=np.int64)
        width, height = self.sensor_size[:2]
        header = ",".join({"x": f"x@{width}", "y": f"y@{height}"}.get(name, name) for name in order)
        self._file = open(self.path, "wb")
        self._file.write(header.encode("ascii") + b"\n")

    def _write(self, events: np.ndarray) -> None:
        check_polarity(events, self.path)
        out = np.empty(len(events) * 40, np.uint8)  # a line is at most 20 (t) + 5 + 5 + 1 + 4 separators = 35 bytes
        n = _format_lines(events, self._order, out)
        self._file.write(out[:n].data)

    def _finish(self) -> None:
        self._file.close()


@kernel
def _format_lines(events, order, out):
    """Write one ``a,b,c,d\\n`` line per event into ``out`` (fields in ``order``: 0 t, 1 x, 2 y, 3 p);
    returns the bytes written."""
    m = 0
    digits = np.empty(20, np.uint8)
    for i in range(len(events)):
        for c in range(4):
            field = order[c]
            value = (events[i].t if field == 0 else np.int64(events[i].x) if field == 1
                     else np.int64(events[i].y) if field == 2 else np.int64(events[i].p))
            if value < 0:
                out[m] = 45
                m += 1
                value = -value
            k = 0
            while True:
                digits[k] = 48 + value % 10
                value //= 10
                k += 1
                if value == 0:
                    break
            while k > 0:
                k -= 1
                out[m] = digits[k]
                m += 1
            out[m] = 44 if c < 3 else 10
            m += 1
    return m
