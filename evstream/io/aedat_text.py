"""The ``#`` text header of AEDAT 2.0 and 3.1 files, and the sensor a chip or source name means.

Both formats open with lines starting with ``#`` (jAER and cAER end them with CRLF); AEDAT 3.1
closes the header with ``#!END-HEADER``, AEDAT 2.0 simply starts its binary words after the
last ``#`` line.
"""

from __future__ import annotations

import re

from evstream.events import EventFileError

_SENSORS = (
    # (pattern on the lowercased alphanumerics of a name, family, (W, H))
    (re.compile(r"dvs128"), "dvs128", (128, 128)),
    (re.compile(r"davis240"), "davis", (240, 180)),
    (re.compile(r"davis346"), "davis", (346, 260)),
    (re.compile(r"dvxplorer"), "dvxplorer", (640, 480)),
)


def parse_hash_header(buf, path, end_line: str | None = None) -> tuple[list[str], int]:
    """The ``#`` lines at the start of ``buf`` (bytes or an mmap) without ``#`` and line ending.

    Stops at the first byte that does not start a ``#`` line or right after the line equal to
    ``end_line`` (compared without its ``#``). Returns ``(lines, data_offset)``.
    """
    lines: list[str] = []
    pos = 0
    size = len(buf)
    while pos < size and buf[pos:pos + 1] == b"#":
        end = buf.find(b"\n", pos)
        if end < 0:
            raise EventFileError(path, "header line without an end of line (file cut inside its header?)", pos)
        line = bytes(buf[pos + 1:end]).decode("latin-1").rstrip("\r")
        lines.append(line)
        pos = end + 1
        if end_line is not None and line == end_line:
            break
    return lines, pos


def header_value(lines: list[str], key: str) -> str | None:
    """The value of the first ``key: value`` line (``key`` compared case-insensitively), or None."""
    key = key.lower()
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == key:
            return value.strip()
    return None


def sensor_of(name: str) -> tuple[str, tuple[int, int]] | None:
    """``(family, (W, H))`` of a jAER chip class or cAER source name, e.g. ``"Davis346red"``.

    The family (``"dvs128"``, ``"davis"``, ``"dvxplorer"``) selects an AEDAT 2.0 address layout.
    None when the name is not a sensor evstream knows.
    """
    key = re.sub(r"[^0-9a-z]", "", name.lower())
    for pattern, family, size in _SENSORS:
        if pattern.search(key):
            return family, size
    return None
