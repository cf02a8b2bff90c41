"""AEDAT 4.0 (iniVation DV) reader and writer: the event stream of a DV recording.

Layout: ``#!AER-DAT4.0\\r\\n``, then what a DV network stream sends too (the IOHeader and the
packets, see :mod:`evstream.io.aedat4_codec`), then a FileDataTable listing every packet's data
offset, stream, element count and time span; the reader uses it to seek, and scans packet
headers when it is missing (-1, or lost because the file was cut). One event stream is read
(the first, or ``stream_id=``); frames, IMU and trigger packets are skipped without being
decompressed. Decompression is bounded (:func:`~evstream.io.aedat4_codec.inflate_limit`): a packet
or data table that would inflate beyond it is an :class:`~evstream.EventFileError`.

A whole-file :meth:`Aedat4Reader.read` sizes its output from the data table's element counts
and decodes every packet straight into its slice, packets in parallel threads (LZ4, ZSTD and
the numba kernel all release the GIL); streaming decodes packet after packet.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from evstream.events import EventFileError, empty_events, report_truncation
from evstream.io import flatbuffers_lite as fb
from evstream.io.aedat4_codec import (COMPRESSIONS, EVENT_BYTES, IO_HEADER_LENGTH, MAX_COORDINATE, PACKET_HEADER,
                                      compressor, decode_events, decompress, encode_event_packet, encode_io_header,
                                      event_stream, inflate_limit, info_node, packet_words, parse_io_header,
                                      size_prefixed)
from evstream.io.corruption import report_corruption
from evstream.io.reader import BLOCK_EVENTS, EventReader
from evstream.io.record_file import changed_size
from evstream.io.writer import EventWriter

MAGIC = b"#!AER-DAT4.0\r\n"
PACKET_EVENTS = 1 << 15
"""Events per packet the writer emits (512 KiB of structs before compression)."""

_DATA_START = len(MAGIC) + IO_HEADER_LENGTH.size
_T_MIN = np.iinfo(np.int64).min


class _Truncated(Exception):
    """The file ends inside a packet or its header: reported (warning or strict error), not fatal."""

    report = staticmethod(report_truncation)

    def __init__(self, offset: int, reason: str):
        super().__init__(reason)
        self.offset, self.reason = offset, reason


class _Corrupt(_Truncated):
    """A packet header that cannot be one (bytes lost or damaged): reported like a cut, as corruption."""

    report = staticmethod(report_corruption)


class Aedat4Reader(EventReader):
    """An AEDAT 4.0 file's event stream.

    Args:
        path: the ``.aedat4`` file.
        stream_id: which event stream to read (default: the first ``EVTS`` stream).
        strict: raise :class:`EventFileError` instead of warning when the file is cut short.
        threads: threads decoding packets in a whole-file :meth:`read` (default: one per CPU,
            at most 8; pass 1 inside already parallel code such as data-loader workers).

    Attributes:
        streams: every stream of the file (:class:`~evstream.io.aedat4_codec.StreamInfo`), events or not.
        stream_id: the event stream read.
        compression: the packets' compression (one of :data:`COMPRESSIONS`).

    Example:
        >>> with Aedat4Reader("recording.aedat4") as reader:  # doctest: +SKIP
        ...     reader.seek(reader.data_table()["t_start"][0] + 1_000_000)
        ...     for window in reader.time_windows(10_000):
        ...         ...
    """

    format = "aedat4"

    def __init__(self, path: os.PathLike | str, *, stream_id: int | None = None, strict: bool = False,
                 threads: int | None = None):
        super().__init__(path, strict=strict, threads=threads)
        try:
            self._file = open(self.path, "rb")
        except OSError as err:
            raise EventFileError(self.path, f"cannot open: {err.strerror}") from err
        try:
            self._read_header(stream_id)
        except BaseException:
            self._file.close()
            raise

    def close(self) -> None:
        self._file.close()

    # --- header ------------------------------------------------------------------------------
    def _read_header(self, stream_id: int | None) -> None:
        head = self._file.read(_DATA_START)
        if not head.startswith(MAGIC):
            raise EventFileError(self.path, f"not an AEDAT 4.0 file (starts with {head[:len(MAGIC)]!r})", 0)
        if len(head) < _DATA_START:
            raise EventFileError(self.path, "file ends before the IOHeader length", len(MAGIC))
        size = IO_HEADER_LENGTH.unpack_from(head, len(MAGIC))[0]
        self._file_size = os.fstat(self._file.fileno()).st_size
        if size <= 0 or _DATA_START + size > self._file_size:
            raise EventFileError(self.path, f"IOHeader length {size} does not fit the {self._file_size}-byte file",
                                 len(MAGIC))
        try:
            header = parse_io_header(self._file.read(size))
            self.stream_id, self.sensor_size = event_stream(header.streams, stream_id)
        except ValueError as err:
            raise EventFileError(self.path, str(err), _DATA_START) from None
        self.compression, self.streams = header.compression, header.streams
        table_pos = header.table_pos
        self._data_start = _DATA_START + size
        if table_pos >= 0 and table_pos < self._data_start:
            raise EventFileError(self.path, f"data table position {table_pos} lies inside the header", _DATA_START)
        self._has_table = 0 <= table_pos < self._file_size
        self._table_pos = table_pos
        self._data_end = table_pos if self._has_table else self._file_size
        self._table: np.ndarray | None = None

    # --- packets -----------------------------------------------------------------------------
    def _walk(self, pos: int):
        """``(header offset, stream, size)`` of every packet from ``pos`` to the end of the packet data.

        Raises :class:`EventFileError` for a malformed or overlong packet (with a data table),
        :class:`_Truncated` where the file ends inside a packet or its header and :class:`_Corrupt`
        at a header naming a stream the IOHeader does not list (what bytes lost or damaged
        before it look like: the "size" that follows is garbage too).
        """
        end = self._data_end
        listed = {s.id for s in self.streams}
        while pos < end:
            header = self._pread(pos, PACKET_HEADER.size)
            if len(header) < PACKET_HEADER.size:
                raise _Truncated(pos, "file ends inside a packet header")
            stream, size = PACKET_HEADER.unpack(header)
            if stream not in listed:
                raise _Corrupt(pos, f"corrupt or missing bytes: a packet header here names stream {stream}, which the "
                               f"file's header does not list (streams {sorted(listed)}); the rest is not read")
            if size < 0:
                raise EventFileError(self.path, f"packet of stream {stream} has negative size {size}", pos)
            if pos + PACKET_HEADER.size + size > end:
                if self._has_table:
                    raise EventFileError(self.path, f"packet of stream {stream} ({size} bytes) runs past the end "
                                         f"of the packet data at byte {end}", pos)
                raise _Truncated(pos, f"file ends inside a packet of stream {stream} ({size} bytes declared, "
                                 f"{end - pos - PACKET_HEADER.size} present)")
            yield pos, stream, size
            pos += PACKET_HEADER.size + size

    def _packets(self, pos: int):
        """``(header offset, compressed data)`` of the event stream's packets from ``pos`` on."""
        try:
            for offset, stream, size in self._walk(pos):
                if stream == self.stream_id:
                    yield offset, self._data(offset, size)
        except _Truncated as damage:
            damage.report(self.path, damage.offset, damage.reason, self.strict)

    def _data(self, offset: int, size: int) -> bytes:
        """The ``size`` data bytes of the packet whose header is at ``offset`` (thread-safe: pread)."""
        return self._pread(offset + PACKET_HEADER.size, size)

    def _pread(self, offset: int, size: int) -> bytes:
        """``size`` bytes from ``offset``, fewer only where the file ended there when opened: a read
        cut short by a file shrinking since is an EventFileError (:func:`changed_size`)."""
        data = os.pread(self._file.fileno(), size, offset)
        if len(data) < size and offset + size <= self._file_size:
            raise changed_size(self._file, self.path, offset, self._file_size, len(data), size)
        return data

    def _words(self, offset: int, data: bytes) -> np.ndarray:
        """A packet's event structs as int64 pairs, every size and offset checked."""
        try:
            return packet_words(data, self.compression)
        except ValueError as err:
            raise EventFileError(self.path, str(err), offset) from err

    def _decode(self, packets):
        """Group decoded packets into blocks of up to BLOCK_EVENTS (one packet never splits)."""
        out, filled, block_offset = empty_events(0), 0, 0
        for offset, data in packets:
            words = self._words(offset, data)
            n = len(words) // 2
            if filled + n > len(out):
                if filled:
                    yield out[:filled], block_offset
                out, filled, block_offset = empty_events(max(BLOCK_EVENTS, n)), 0, offset
            decode_events(words, self.sensor_size, out[filled:filled + n])
            filled += n
        if filled:
            yield out[:filled], block_offset

    def _blocks(self):
        return self._decode(self._packets(self._data_start))

    def _blocks_from(self, t_us: int):
        return self._decode(self._packets(self._seek_position(t_us)))

    def read(self) -> np.ndarray:
        """All events from the current position.

        From the start of a file whose data table matches its event packets, one array is sized
        from the table's counts and every packet decoded into its slice by ``threads`` threads;
        the reader's checks run only on packets the decoder flagged. Otherwise (after a seek, or
        without a usable table) blocks are streamed and concatenated.
        """
        if self._seek_us is None:
            packets = self._listed_packets()
            if packets is not None:
                events = self._read_listed(*packets)
                if events is not None:
                    return events
        return super().read()

    def _listed_packets(self) -> tuple[list[int], list[int], np.ndarray] | None:
        """Header offsets, sizes and element counts of every event packet when the packet headers
        run cleanly to the end of the data and the data table lists each packet with a positive
        count; None otherwise (the streaming path then reports any damage in file order)."""
        try:
            table = self.data_table()
            packets = [(pos, size) for pos, stream, size in self._walk(self._data_start) if stream == self.stream_id]
        except (EventFileError, _Truncated):
            return None
        if table is None:
            return None
        mine = table[table["stream"] == self.stream_id]
        offsets = [pos for pos, _ in packets]
        sizes = [size for _, size in packets]
        if (len(mine) != len(packets) or np.any(mine["count"] <= 0)
                or np.any(mine["count"] > [inflate_limit(size) // EVENT_BYTES for size in sizes])
                or not np.array_equal(mine["offset"] - PACKET_HEADER.size, offsets)
                or not np.array_equal(mine["size"], sizes)):
            return None
        return offsets, sizes, mine["count"]

    def _read_listed(self, offsets: list[int], sizes: list[int], counts: np.ndarray) -> np.ndarray | None:
        """Decode the listed packets into one array; None when a packet holds another number of
        events than the table states. Errors name the first bad packet in file order."""
        ends = np.cumsum(counts)
        starts = ends - counts
        events = empty_events(int(ends[-1]) if len(ends) else 0)
        status = np.zeros(len(offsets), np.int8)

        def decode(run: tuple[int, int]) -> tuple[int, EventFileError] | None:
            """Packets ``run[0]`` to ``run[1] - 1`` into their slices, setting ``status`` (1: run the
            checks, -1: wrong count, slice untouched); returns the packet index and error that
            stopped the run, or None. One loop per run rather than one task per packet: a packet's
            buffers are freed only after the next packet's are allocated, so the allocator recycles
            them instead of mapping fresh pages for every packet (measured 2.5x slower)."""
            for k in range(*run):
                try:
                    words = self._words(offsets[k], self._data(offsets[k], sizes[k]))
                except EventFileError as err:
                    return k, err
                if len(words) != 2 * counts[k]:
                    status[k] = -1
                else:
                    status[k] = decode_events(words, self.sensor_size, events[starts[k]:ends[k]])[1]
            return None

        bounds = [len(offsets) * i // self._threads for i in range(self._threads + 1)]
        runs = list(zip(bounds[:-1], bounds[1:]))
        if self._threads == 1:
            stops = [decode(runs[0])]
        else:
            with ThreadPoolExecutor(self._threads) as pool:
                stops = list(pool.map(decode, runs))
        stop, error = min((s for s in stops if s is not None), default=(len(offsets), None), key=lambda s: s[0])
        t = events["t"]
        first_t, last_t = t[starts[:stop]], t[ends[:stop] - 1]
        flagged = status[:stop] != 0
        flagged[1:] |= first_t[1:] < last_t[:-1]  # a packet starting before the previous one ends
        for k in np.flatnonzero(flagged):
            if status[k] < 0:
                return None
            self._check(events[starts[k]:ends[k]], offsets[k], int(t[starts[k] - 1]) if k else _T_MIN)
        if error is not None:
            raise error
        return events

    def _seek_position(self, t_us: int) -> int:
        """Header offset of the first event packet ending at or after ``t_us``, from the data table.

        Falls back to the first packet when the table is missing, unreadable (a file cut inside
        it) or not trustworthy (some re-writers leave zero counts and times in it).
        """
        try:
            table = self.data_table()
        except EventFileError:
            table = None
        if table is None:
            return self._data_start
        mine = table[table["stream"] == self.stream_id]
        offsets = mine["offset"] - PACKET_HEADER.size
        if (len(mine) == 0 or np.any(mine["count"] <= 0) or np.any(mine["t_start"] > mine["t_end"])
                or np.any(np.diff(mine["t_end"]) < 0) or np.any(np.diff(offsets) <= 0)
                or offsets[0] < self._data_start or offsets[-1] >= self._data_end):
            return self._data_start
        later = np.flatnonzero(mine["t_end"] >= t_us)
        if len(later) == 0:
            return self._data_end
        pos = int(offsets[later[0]])
        self._file.seek(pos)
        header = self._file.read(PACKET_HEADER.size)
        if header != PACKET_HEADER.pack(self.stream_id, int(mine["size"][later[0]])):
            return self._data_start
        return pos

    def data_table(self) -> np.ndarray | None:
        """The file's FileDataTable, None when it has none (never written, or lost to a cut).

        Returns:
            One row per packet of any stream, in file order: ``offset`` (of the packet data),
            ``stream``, ``size`` (compressed bytes), ``count`` (elements), ``t_start`` and ``t_end``
            (microseconds), as the file states them.
        """
        if not self._has_table:
            return None
        if self._table is None:
            self._file.seek(self._table_pos)
            data = self._file.read()
            try:
                self._table = _table_rows(size_prefixed(decompress(data, self.compression)))
            except ValueError as err:
                raise EventFileError(self.path, f"bad data table: {err}", self._table_pos) from err
        return self._table


_TABLE_FIELDS = (("offset", 0, 0, "<i8", 0), ("stream", 1, 0, "<i4", -1), ("size", 1, 4, "<i4", 0),
                 ("count", 2, 0, "<i8", 0), ("t_start", 3, 0, "<i8", 0), ("t_end", 4, 0, "<i8", 0))
"""Data table columns: name, FileDataDefinition field index, byte offset inside it, type, default."""


def _table_rows(buf) -> np.ndarray:
    """The rows of a FileDataTable FlatBuffer, every field read for all rows at once with NumPy
    (a Python loop over rows costs ~10 µs a row: 50 ms for a file of 5000 packets)."""
    start, n = fb.vector(buf, fb.root_table(buf, b"FTAB"), 0, 4)
    data = np.frombuffer(buf, np.uint8)
    slots = start + 4 * np.arange(n, dtype=np.int64)
    rows = slots + _gather(data, slots, "<u4")
    vtables = rows - _gather(data, rows, "<i4")
    vtable_sizes = _gather(data, vtables, "<u2").astype(np.int64)
    bad = (vtable_sizes < 4) | (vtable_sizes % 2 == 1)
    if np.any(bad):
        raise fb.FlatBufferError(f"vtable size {vtable_sizes[bad][0]} is invalid", int(vtables[bad][0]))
    table = np.empty(n, dtype=[(name, dtype[1:]) for name, _, _, dtype, _ in _TABLE_FIELDS])
    for name, index, inside, dtype, default in _TABLE_FIELDS:
        has = 4 + 2 * index < vtable_sizes
        entry = np.zeros(n, np.int64)
        entry[has] = _gather(data, vtables[has] + 4 + 2 * index, "<u2")
        present = entry != 0
        column = table[name]
        column[:] = default
        column[present] = _gather(data, rows[present] + entry[present] + inside, dtype)
    return table


def _gather(data: np.ndarray, positions: np.ndarray, dtype: str) -> np.ndarray:
    """The little-endian ``dtype`` values at byte ``positions`` of ``data``; FlatBufferError when one
    lies outside it."""
    size = np.dtype(dtype).itemsize
    bad = (positions < 0) | (positions > len(data) - size)
    if np.any(bad):
        raise fb.FlatBufferError(f"{size}-byte value out of the {len(data)}-byte buffer", int(positions[bad][0]))
    return data[positions[:, None] + np.arange(size)].view(dtype).ravel()


class Aedat4Writer(EventWriter):
    """Write events as an AEDAT 4.0 file with one event stream, readable by dv-processing.

    Args:
        path: output file.
        sensor_size: ``(W, H, 2)``.
        compression: one of :data:`COMPRESSIONS` (default ``"lz4"``, as DV records).
        packet_events: events per packet (the unit of decompression and of seeking).
        source: camera name stored in the stream info.

    Example:
        >>> with Aedat4Writer("out.aedat4", (346, 260, 2), compression="zstd") as writer:  # doctest: +SKIP
        ...     writer.write(events)
    """

    format = "aedat4"

    def __init__(self, path: os.PathLike | str, sensor_size, *, compression: str = "lz4",
                 packet_events: int = PACKET_EVENTS, source: str = "evstream"):
        super().__init__(path, sensor_size)
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        if packet_events <= 0:
            raise ValueError(f"packet_events must be positive, got {packet_events}")
        if max(self.sensor_size[:2]) > MAX_COORDINATE + 1:
            raise ValueError(f"AEDAT 4.0 stores int16 coordinates: sensor {self.sensor_size[:2]} is too large")
        self._compression = compression
        self._compress = compressor(compression)
        self._packet_events = int(packet_events)
        self._info = info_node(self.sensor_size, compression, source)
        self._pending: list[np.ndarray] = []  # copies of events not yet in a packet
        self._pending_n = 0
        self._table: list[tuple[int, int, int, int, int]] = []  # offset, size, count, t_start, t_end
        self._file = open(self.path, "wb")
        self._file.write(self._header(-1))

    def _header(self, table_pos: int) -> bytes:
        return MAGIC + encode_io_header(self._compression, table_pos, self._info)

    def _write(self, events: np.ndarray) -> None:
        if self._pending_n:
            take = min(self._packet_events - self._pending_n, len(events))
            self._pending.append(events[:take].copy())
            self._pending_n += take
            events = events[take:]
            if self._pending_n < self._packet_events:
                return
            self._packet(np.concatenate(self._pending))
            self._pending, self._pending_n = [], 0
        full = len(events) - len(events) % self._packet_events
        for k in range(0, full, self._packet_events):
            self._packet(events[k:k + self._packet_events])
        if full < len(events):
            self._pending, self._pending_n = [events[full:].copy()], len(events) - full

    def _packet(self, events: np.ndarray) -> None:
        data = encode_event_packet(events, self._compress)
        offset = self._file.tell() + PACKET_HEADER.size
        self._file.write(PACKET_HEADER.pack(0, len(data)))
        self._file.write(data)
        self._table.append((offset, len(data), len(events), int(events["t"][0]), int(events["t"][-1])))

    def _finish(self) -> None:
        try:
            if self._pending_n:
                self._packet(np.concatenate(self._pending))
            table_pos = self._file.tell()
            rows = [fb.Table([fb.Scalar("q", offset), fb.InlineStruct(PACKET_HEADER.pack(0, size), 4),
                              fb.Scalar("q", count), fb.Scalar("q", t_start), fb.Scalar("q", t_end)])
                    for offset, size, count, t_start, t_end in self._table]
            table = fb.build(fb.Table([fb.TableVector(rows)]), b"FTAB", size_prefixed=True)
            self._file.write(self._compress(table))
            self._file.seek(0)
            self._file.write(self._header(table_pos))
        finally:
            self._file.close()

