"""jAER AEDAT 2.0 files: DVS128 (the CIFAR10-DVS layout) and DAVIS240/346 chips.

After ``#`` header lines, big-endian ``(u32 address, u32 timestamp)`` words. The chip named by
the header's ``# AEChip:`` line fixes the address layout (the ``chip=`` option otherwise):

* DVS128: ``x = 127 - ((a & 0xFE) >> 1)``, ``y = (a & 0x7F00) >> 8``, ``p = 1 - (a & 1)``;
  words with bit 15 set are special events and dropped.
* DAVIS: DVS words have bit 31 = 0 and bit 10 = 0; ``x = W - 1 - ((a >> 12) & 0x3FF)``,
  ``y = (a >> 22) & 0x1FF``, ``p = (a >> 11) & 1``. APS and IMU samples (bit 31 = 1) are not
  events; external-input events (bit 31 = 0, bit 10 = 1) are dropped.

Timestamps are 32-bit and wrap every 2^32 µs; a step back of more than 2^31 µs is unwrapped.
"""

from __future__ import annotations

import numpy as np

from evstream._jit import kernel
from evstream.events import EventFileError, empty_events
from evstream.io.reader import EventReader
from evstream.io.record_file import record_blocks
from evstream.io.writer import EventWriter

WORD_DTYPE = np.dtype([("a", "<u4"), ("t", "<u4")])  # big-endian on disk: swapped inside the kernels

CHIPS = {"DVS128": (128, 128), "DAVIS240": (240, 180), "DAVIS346": (346, 260), "DAVIS640": (640, 480)}
"""Chip family -> (width, height)."""

_JAER_CLASS_TO_CHIP = (("dvs128", "DVS128"), ("davis240", "DAVIS240"), ("davis346", "DAVIS346"),
                       ("davis640", "DAVIS640"))


def chip_family(name: str) -> str:
    """Map a jAER chip class (``eu.seebetter.ini.chips.davis.Davis346red``) or a short name to a family."""
    key = name.rsplit(".", 1)[-1].lower().replace("_", "")
    for prefix, family in _JAER_CLASS_TO_CHIP:
        if key.startswith(prefix):
            return family
    raise ValueError(f"unsupported AEDAT 2.0 chip {name!r}; supported: {', '.join(CHIPS)}")


def parse_text_header(head: bytes) -> tuple[list[str], int]:
    """The ``#`` header lines of an AEDAT 2.0/3.1 file and the offset of the first data byte."""
    lines, pos = [], 0
    while pos < len(head) and head[pos:pos + 1] == b"#":
        end = head.find(b"\n", pos)
        end = len(head) - 1 if end < 0 else end
        lines.append(head[pos:end + 1].decode("latin-1").rstrip("\r\n"))
        pos = end + 1
    return lines, pos


@kernel
def _bswap(v):
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24)


@kernel
def _decode(words, davis, width, out, state):
    """Decode address/timestamp words; returns the number of events written to ``out``.
    ``state`` = [previous raw timestamp, wrap offset] carries across blocks."""
    prev = state[0]
    wrap = state[1]
    n = 0
    for i in range(words.shape[0]):
        a = _bswap(words[i]["a"])
        t = np.int64(_bswap(words[i]["t"]))
        if t < prev - 2147483648:
            wrap += 4294967296
        prev = t
        if davis:
            if (a >> 31) != 0 or (a >> 10) & 1:
                continue
            out[n]["x"] = width - 1 - ((a >> 12) & 0x3FF)
            out[n]["y"] = (a >> 22) & 0x1FF
            out[n]["p"] = (a >> 11) & 1
        else:
            if a & 0x8000:
                continue
            out[n]["x"] = 127 - ((a & 0xFE) >> 1)
            out[n]["y"] = (a & 0x7F00) >> 8
            out[n]["p"] = 1 - (a & 1)
        out[n]["t"] = t + wrap
        n += 1
    state[0] = prev
    state[1] = wrap
    return n


@kernel
def _encode(events, davis, width, out):
    for i in range(events.shape[0]):
        x = np.uint32(events[i]["x"])
        y = np.uint32(events[i]["y"])
        p = np.uint32(events[i]["p"])
        if davis:
            a = (y << 22) | ((np.uint32(width) - 1 - x) << 12) | (p << 11)
        else:
            a = (y << 8) | ((np.uint32(127) - x) << 1) | (1 - p)
        out[i]["a"] = _bswap(a)
        out[i]["t"] = _bswap(np.uint32(events[i]["t"] & 0xFFFFFFFF))


class Aedat2Reader(EventReader):
    """Reader of jAER AEDAT 2.0 files.

    Args:
        path: the ``.aedat`` file.
        strict: raise instead of warning on a file cut inside a word.
        chip: chip family or jAER class for files whose header has no ``# AEChip:`` line
            (``"DVS128"`` for CIFAR10-DVS).
    """

    format = "aedat2"

    def __init__(self, path, *, strict: bool = False, chip: str | None = None):
        super().__init__(path, strict=strict)
        with open(self.path, "rb") as f:
            head = f.read(1 << 20)
        self.header_lines, self._data_offset = parse_text_header(head)
        if not self.header_lines or not self.header_lines[0].startswith("#!AER-DAT2"):
            first = self.header_lines[0] if self.header_lines else head[:16]
            raise EventFileError(self.path, f"not an AEDAT 2.0 file (first line {first!r})", 0)
        named = [line.split(":", 1)[1].strip() for line in self.header_lines if line.startswith("# AEChip:")]
        source = named[0] if named else chip
        if source is None:
            raise EventFileError(self.path, "the header names no chip (no '# AEChip:' line): pass chip='DVS128' "
                                 f"or one of {', '.join(CHIPS)}")
        try:
            self.chip = chip_family(source)
        except ValueError as err:
            raise EventFileError(self.path, str(err)) from None
        self.sensor_size = (*CHIPS[self.chip], 2)

    def _blocks(self):
        state = np.array([-(1 << 62), 0], dtype=np.int64)
        davis = self.chip != "DVS128"
        for words, offset in record_blocks(self.path, self._data_offset, WORD_DTYPE, strict=self.strict):
            out = empty_events(len(words))
            n = _decode(words, davis, self.sensor_size[0], out, state)
            yield out[:n], offset


class Aedat2Writer(EventWriter):
    """Writer of jAER AEDAT 2.0 files for a DVS128 or DAVIS chip (chosen from the sensor size)."""

    format = "aedat2"

    def __init__(self, path, sensor_size, *, chip: str | None = None):
        super().__init__(path, sensor_size)
        by_size = {size: family for family, size in CHIPS.items()}
        self.chip = chip_family(chip) if chip else by_size.get(tuple(self.sensor_size[:2]))
        if self.chip is None or CHIPS[self.chip] != tuple(self.sensor_size[:2]):
            raise ValueError(f"{self.path}: no AEDAT 2.0 chip of size {self.sensor_size[:2]}; chips: {CHIPS}")
        jaer_class = {"DVS128": "ch.unizh.ini.jaer.chip.retina.DVS128"}.get(
            self.chip, f"eu.seebetter.ini.chips.davis.{self.chip}")
        header = ("#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                  "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
                  f"# Timestamps tick is 1 us\r\n# AEChip: {jaer_class}\r\n")
        self._file = open(self.path, "wb")
        self._file.write(header.encode())

    def _write(self, events):
        out = np.empty(len(events), dtype=WORD_DTYPE)
        _encode(events, self.chip != "DVS128", self.sensor_size[0], out)
        self._file.write(out.tobytes())

    def _finish(self):
        self._file.close()
