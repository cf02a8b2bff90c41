"""The ``%`` text header shared by Prophesee DAT and RAW (EVT 2.0 / 3.0) files."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from evstream.events import EventFileError
from evstream.io.reader import sensor_side

# Sensor geometry of the Prophesee HAL plugins, for RAW headers that do not state it.
_PLUGIN_GEOMETRY = (
    ("gen41", (1280, 720)), ("imx636", (1280, 720)), ("gen4", (1280, 720)),
    ("gen31", (640, 480)), ("gen3", (640, 480)), ("imx8", (320, 320)), ("genx320", (320, 320)),
    ("gen2", (304, 240)), ("atis", (304, 240)),
)


@dataclass
class PropheseeHeader:
    """A parsed header: ``fields`` maps lowercase keys to values; ``data_offset`` is where bytes begin."""

    fields: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    data_offset: int = 0

    def geometry(self) -> tuple[int, int] | None:
        """(width, height) from ``% Width``/``% Height``, ``% geometry WxH``, ``% format ...;width=..``
        or the HAL plugin name; None when the header does not tell.

        Raises ValueError naming the line when a stated size is not a whole number in
        1..:data:`~evstream.io.reader.MAX_SENSOR_SIDE`.
        """
        f = self.fields
        if "width" in f and "height" in f:
            return sensor_side(f["width"], "% Width"), sensor_side(f["height"], "% Height")
        if "geometry" in f:
            m = re.fullmatch(r"\s*(\S+)\s*x\s*(\S+)\s*", f["geometry"])
            if m:
                return sensor_side(m.group(1), "% geometry width"), sensor_side(m.group(2), "% geometry height")
        if "format" in f:
            opts = dict(kv.split("=", 1) for kv in f["format"].split(";")[1:] if "=" in kv)
            if "width" in opts and "height" in opts:
                return sensor_side(opts["width"], "% format width"), sensor_side(opts["height"], "% format height")
        plugin = f.get("plugin_name", "") + " " + f.get("sensor_generation", "")
        for key, size in _PLUGIN_GEOMETRY:
            if key in plugin.lower():
                return size
        return None


def parse_header(buf: bytes, path) -> PropheseeHeader:
    """Parse the leading ``%`` lines of ``buf`` (the start of the file).

    The header ends at the first byte that does not start a ``%`` line, or after ``% end``.
    """
    header = PropheseeHeader()
    pos = 0
    while pos < len(buf) and buf[pos:pos + 1] == b"%":
        end = buf.find(b"\n", pos)
        if end < 0:
            raise EventFileError(path, "header line without an end of line (file cut inside its header?)", pos)
        line = buf[pos + 1:end].decode("latin-1").strip()
        pos = end + 1
        header.lines.append(line)
        if line.lower() == "end":
            break
        key, _, value = line.partition(" ")
        if key:
            header.fields.setdefault(key.lower(), value.strip())
    header.data_offset = pos
    return header
