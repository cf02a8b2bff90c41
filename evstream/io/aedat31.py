"""AEDAT 3.1 files (cAER / DV 1.x; the DVS128 Gesture dataset).

After ``#`` header lines ending with ``#!END-HEADER``, packets: a 28-byte little-endian
header (``i16 eventType, i16 eventSource, i32 eventSize, i32 eventTSOffset,
i32 eventTSOverflow, i32 eventCapacity, i32 eventNumber, i32 eventValid``) and
``eventCapacity`` records of ``eventSize`` bytes. Polarity packets (type 1) hold
``(u32 data, i32 timestamp)`` records: bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x;
time = ``tsOverflow << 31 | timestamp``. Invalid records and other packet types are skipped.

A file cut short yields every complete record before the cut (including the complete
records of the cut packet) and warns with the offset.
"""

from __future__ import annotations

import numpy as np

from evstream._jit import kernel
from evstream.events import EventFileError, check_sensor_size, empty_events, report_truncation
from evstream.io.aedat2 import CHIPS, chip_family, parse_text_header
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.writer import EventWriter

PACKET_HEADER_BYTES = 28
POLARITY_EVENT = 1
RECORD_DTYPE = np.dtype([("data", "<u4"), ("ts", "<i4")])
PACKET_HEADER_DTYPE = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                                ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])


@kernel
def _i32(buf, pos):
    return np.int32(np.uint32(buf[pos]) | (np.uint32(buf[pos + 1]) << 8) | (np.uint32(buf[pos + 2]) << 16)
                    | (np.uint32(buf[pos + 3]) << 24))


@kernel
def _scan_packets(buf, start, table):
    """Fill ``table`` rows (offset, type, size, overflow, records, first time) for each packet.

    Returns (number of packets, end of the last complete packet, status): status 0 = clean end,
    1 = cut inside a packet header, 2 = cut inside packet data, 3 = impossible sizes,
    4 = table full (call again from the returned end).
    """
    pos = start
    n = 0
    size = buf.shape[0]
    while pos < size:
        if n == table.shape[0]:
            return n, pos, 4
        if pos + 28 > size:
            return n, pos, 1
        ev_type = np.int32(np.int16(np.uint16(buf[pos]) | (np.uint16(buf[pos + 1]) << 8)))
        ev_size = _i32(buf, pos + 4)
        capacity = _i32(buf, pos + 16)
        number = _i32(buf, pos + 20)
        if ev_size <= 0 or capacity < 0 or number < 0 or number > capacity:
            table[n, 0] = pos
            return n, pos, 3
        table[n, 0] = pos
        table[n, 1] = ev_type
        table[n, 2] = ev_size
        table[n, 3] = _i32(buf, pos + 12)
        table[n, 4] = number
        table[n, 5] = -1
        end = pos + 28 + np.int64(ev_size) * capacity
        if end > size:
            # keep the complete records of the cut packet
            table[n, 4] = min(number, (size - pos - 28) // ev_size)
            if ev_type == 1 and table[n, 4] > 0:
                table[n, 5] = (np.int64(table[n, 3]) << 31) | _i32(buf, pos + 32)
            return n + 1, pos, 2
        if ev_type == 1 and number > 0:
            table[n, 5] = (np.int64(table[n, 3]) << 31) | _i32(buf, pos + 32)
        pos = end
        n += 1
    return n, pos, 0


@kernel
def _decode(buf, table, out):
    """Decode the valid polarity records of the packets in ``table``; returns the count."""
    n = 0
    for k in range(table.shape[0]):
        if table[k, 1] != 1 or table[k, 2] != 8:
            continue
        base = table[k, 0] + 28
        overflow = np.int64(table[k, 3]) << 31
        for i in range(table[k, 4]):
            data = np.uint32(_i32(buf, base + 8 * i))
            if data & 1 == 0:
                continue
            out[n]["x"] = (data >> 17) & 0x7FFF
            out[n]["y"] = (data >> 2) & 0x7FFF
            out[n]["p"] = (data >> 1) & 1
            out[n]["t"] = overflow | _i32(buf, base + 8 * i + 4)
            n += 1
    return n


class Aedat31Reader(EventReader):
    """Reader of AEDAT 3.1 files (polarity events of the first source).

    Args:
        path: the ``.aedat`` file.
        strict: raise instead of warning on a file cut short.
        sensor_size: ``(W, H, 2)`` when the ``#Source`` line names no known chip.
    """

    format = "aedat31"

    def __init__(self, path, *, strict: bool = False, sensor_size=None):
        super().__init__(path, strict=strict)
        with open(self.path, "rb") as f:
            head = f.read(1 << 20)
        lines, self._data_offset = parse_text_header(head)
        if not lines or lines[0].strip() != "#!AER-DAT3.1":
            raise EventFileError(self.path, f"not an AEDAT 3.1 file: first line {head[:14]!r} is not '#!AER-DAT3.1'", 0)
        if lines[-1].strip() != "#!END-HEADER":
            raise EventFileError(self.path, "the header does not end with '#!END-HEADER'", self._data_offset)
        sources = [line.split(":", 1)[1].strip() for line in lines if line.startswith("#Source ")]
        if sensor_size is not None:
            self.sensor_size = check_sensor_size(sensor_size)
        else:
            try:
                self.sensor_size = (*CHIPS[chip_family(sources[0])], 2)
            except (IndexError, ValueError):
                raise EventFileError(self.path, f"unknown source {sources[:1]} in the header: pass sensor_size=") from None
        self._buf = np.memmap(self.path, dtype=np.uint8, mode="r") if self.path.stat().st_size else np.zeros(0, np.uint8)
        self._table = self._scan()

    def _scan(self) -> np.ndarray:
        parts, pos = [], self._data_offset
        while True:
            table = np.empty((1 << 16, 6), dtype=np.int64)
            n, pos, status = _scan_packets(self._buf, pos, table)
            parts.append(table[:n])
            if status != 4:
                break
        if status == 3:
            raise EventFileError(self.path, "corrupt packet header (impossible event size or count)", pos)
        if status in (1, 2):
            where = "header" if status == 1 else "event data"
            report_truncation(self.path, pos, f"file ends inside a packet {where}", self.strict)
        return np.concatenate(parts)

    def _blocks(self):
        return self._packet_blocks(0)

    def _blocks_from(self, t_us):
        polarity = np.flatnonzero(self._table[:, 5] >= 0)
        first = np.searchsorted(self._table[polarity, 5], t_us, side="left") - 1
        return self._packet_blocks(int(polarity[first]) if first >= 0 else 0)

    def _packet_blocks(self, start: int):
        table = self._table[start:]
        counts = np.where(table[:, 1] == POLARITY_EVENT, table[:, 4], 0)
        ends = np.cumsum(counts)
        k = 0
        while k < len(table):
            stop = max(int(np.searchsorted(ends, (ends[k - 1] if k else 0) + BLOCK_EVENTS, side="right")), k + 1)
            chunk = np.ascontiguousarray(table[k:stop])
            out = empty_events(int(counts[k:stop].sum()))
            n = _decode(self._buf, chunk, out)
            yield out[:n], int(chunk[0, 0])
            k = stop

    def close(self):
        self._buf = None


class Aedat31Writer(EventWriter):
    """Writer of AEDAT 3.1 polarity packets, as the DVS128 Gesture files are laid out.

    Args:
        path: the output file.
        sensor_size: ``(W, H, 2)``; the ``#Source 1:`` line names the chip of that size.
        packet_events: records per packet (packets never mix two ``tsOverflow`` values).
    """

    format = "aedat31"

    def __init__(self, path, sensor_size, *, packet_events: int = 4096):
        super().__init__(path, sensor_size)
        source = {size: family for family, size in CHIPS.items()}.get(tuple(self.sensor_size[:2]))
        if source is None:
            raise ValueError(f"{self.path}: no chip of size {self.sensor_size[:2]} for the '#Source' line")
        self._packet_events = int(packet_events)
        self._file = open(self.path, "wb")
        self._file.write(f"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: {source}\r\n#!END-HEADER\r\n".encode())

    def _write(self, events):
        if events["t"][0] < 0:
            raise ValueError(f"{self.path}: AEDAT 3.1 times must be non-negative")
        overflow = events["t"] >> 31
        cuts = np.flatnonzero(np.diff(overflow)) + 1
        for part in np.split(events, cuts):
            for start in range(0, len(part), self._packet_events):
                self._write_packet(part[start:start + self._packet_events])

    def _write_packet(self, events):
        n = len(events)
        header = np.zeros(1, dtype=PACKET_HEADER_DTYPE)
        header[0] = (POLARITY_EVENT, 1, 8, 4, int(events["t"][0] >> 31), n, n, n)
        records = np.empty(n, dtype=RECORD_DTYPE)
        records["data"] = ((events["x"].astype(np.uint32) << 17) | (events["y"].astype(np.uint32) << 2)
                           | (events["p"].astype(np.uint32) << 1) | 1)
        records["ts"] = (events["t"] & 0x7FFFFFFF).astype(np.int32)
        self._file.write(header.tobytes() + records.tobytes())

    def _finish(self):
        self._file.close()
