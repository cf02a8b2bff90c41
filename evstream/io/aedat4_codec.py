"""The AEDAT 4 pieces that files and DV network streams share: IOHeader, info node and event packets.

An AEDAT 4 file is ``#!AER-DAT4.0\\r\\n`` followed by what a DV network stream (dv-processing's
``NetworkWriter``, DV's ``net_tcp_server``) sends each client: an int32 length and the IOHeader
FlatBuffer (compression, data-table position, an XML info node listing the streams), then packets:
int32 stream id, int32 size and the (compressed) size-prefixed packet FlatBuffer. An event packet
is a vector of 16-byte structs (int64 t, int16 x, int16 y, bool polarity, 3 bytes padding).

Decompression is bounded: a packet (or a file's data table) may inflate to at most
:data:`INFLATE_RATIO` times its compressed size plus 64 KiB, and never beyond
:data:`MAX_INFLATED` (real event packets inflate about 2x); a packet that would inflate further
is a ValueError, so a decompression bomb, in a file or from a server, costs at most that much memory.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

import lz4.frame
import numpy as np
import zstandard

from evstream._jit import kernel
from evstream.events import EVENT_DTYPE, empty_events
from evstream.io import flatbuffers_lite as fb
from evstream.io.reader import sensor_side

COMPRESSIONS = ("none", "lz4", "lz4_high", "zstd", "zstd_high")
"""IOHeader compression enum values 0..4, by name."""
IO_HEADER_LENGTH = struct.Struct("<i")
"""The int32 length before the IOHeader FlatBuffer."""
PACKET_HEADER = struct.Struct("<ii")
"""A packet's header: stream id, size of the data that follows."""
EVENT_BYTES = 16
"""Bytes of one event struct."""
MAX_COORDINATE = (1 << 15) - 1
"""Largest x or y an int16 event struct holds."""
INFLATE_RATIO = 64
"""Most bytes a packet may inflate to per compressed byte (beyond 64 KiB)."""
MAX_INFLATED = 128 << 20
"""Most bytes any packet or data table may inflate to (8 M events)."""

_INFLATE_STEP = 1 << 20
_PREFIX = struct.Struct("<I")
_T_MIN = np.iinfo(np.int64).min


@dataclass(frozen=True)
class StreamInfo:
    """One stream of the info node: id, type identifier ("EVTS", "FRME", ...) and size when given."""

    id: int
    type: str
    width: str | None
    height: str | None
    """The info node's sizeX and sizeY as written (checked by :func:`event_stream`)."""


@dataclass(frozen=True)
class IOHeader:
    """A decoded IOHeader: packet compression (one of :data:`COMPRESSIONS`), data-table position
    (-1: none, always so on a network stream) and the streams its info node lists."""

    compression: str
    table_pos: int
    streams: list[StreamInfo]


def parse_streams(info: bytes) -> list[StreamInfo]:
    """The streams listed under ``outInfo`` in an IOHeader info node (XML)."""
    root = ET.fromstring(info.rstrip(b"\0 \t\r\n"))
    out_info = root.find("node[@name='outInfo']")
    if out_info is None:
        raise ValueError("info node has no outInfo node")
    streams = []
    for node in out_info.findall("node"):
        attrs = {a.get("key"): (a.text or "") for a in node.findall("attr")}
        size = {a.get("key"): a.text for a in node.findall("node[@name='info']/attr")}
        dims = [size[k].strip() if size.get(k) else None for k in ("sizeX", "sizeY")]
        streams.append(StreamInfo(int(node.get("name")), attrs.get("typeIdentifier", ""), *dims))
    return streams


def parse_io_header(buf) -> IOHeader:
    """Decode an IOHeader FlatBuffer; ValueError says what is wrong with it."""
    try:
        root = fb.root_table(buf, b"IOHE")
        code = fb.scalar(buf, root, 0, "i", 0)
        table_pos = fb.scalar(buf, root, 1, "q", -1)
        info = fb.string(buf, root, 2)
    except fb.FlatBufferError as err:
        raise ValueError(f"bad IOHeader: {err}") from err
    if not 0 <= code < len(COMPRESSIONS):
        raise ValueError(f"unknown compression code {code} in the IOHeader")
    try:
        streams = parse_streams(info or b"")
    except (ET.ParseError, ValueError, TypeError) as err:
        raise ValueError(f"bad info node in the IOHeader: {err}") from err
    return IOHeader(COMPRESSIONS[code], table_pos, streams)


def event_stream(streams: list[StreamInfo], stream_id: int | None = None) -> tuple[int, tuple[int, int, int]]:
    """The id and sensor size ``(W, H, 2)`` of the first event stream (or the one with ``stream_id``).

    ValueError names the streams there are when none fits, and the field when the stream's size is
    not a whole number in 1..65535 (:func:`~evstream.io.reader.sensor_side`).
    """
    events = [s for s in streams if s.type == "EVTS"]
    listing = ", ".join(f"{s.id}: {s.type}" for s in streams) or "none"
    if stream_id is not None:
        events = [s for s in events if s.id == stream_id]
    if not events:
        wanted = "no event stream" if stream_id is None else f"no event stream with id {stream_id}"
        raise ValueError(f"{wanted} (streams {listing})")
    stream = events[0]
    if not stream.width or not stream.height:
        raise ValueError(f"event stream {stream.id} has no sizeX/sizeY in its info node")
    try:
        width = sensor_side(stream.width, f"sizeX of stream {stream.id}")
        height = sensor_side(stream.height, f"sizeY of stream {stream.id}")
    except ValueError as err:
        raise ValueError(f"info node: {err}") from None
    return stream.id, (width, height, 2)


def info_node(sensor_size, compression: str, source: str, stream_id: int = 0) -> bytes:
    """The XML info node of one event stream, as DV and dv-processing write it."""
    width, height = sensor_size[:2]
    path = f"/outInfo/{stream_id}/"
    return (
        '<dv version="2.0">\n'
        '    <node name="outInfo" path="/outInfo/">\n'
        f'        <node name="{stream_id}" path="{path}">\n'
        f'            <attr key="compression" type="string">{compression.upper()}</attr>\n'
        '            <attr key="originalModuleName" type="string">evstream</attr>\n'
        '            <attr key="originalOutputName" type="string">events</attr>\n'
        '            <attr key="typeDescription" type="string">Array of events (polarity ON/OFF).</attr>\n'
        '            <attr key="typeIdentifier" type="string">EVTS</attr>\n'
        f'            <node name="info" path="{path}info/">\n'
        f'                <attr key="sizeX" type="int">{width}</attr>\n'
        f'                <attr key="sizeY" type="int">{height}</attr>\n'
        f'                <attr key="source" type="string">{escape(source)}</attr>\n'
        '            </node>\n'
        '        </node>\n'
        '    </node>\n'
        '</dv>\n'
    ).encode()


def encode_io_header(compression: str, table_pos: int, info: bytes) -> bytes:
    """An IOHeader as files and streams carry it: its int32 length, then the FlatBuffer."""
    buf = fb.build(fb.Table([fb.Scalar("i", COMPRESSIONS.index(compression)), fb.Scalar("q", table_pos),
                             fb.String(info)]), b"IOHE")
    return IO_HEADER_LENGTH.pack(len(buf)) + buf


def inflate_limit(compressed_bytes: int) -> int:
    """Most bytes ``compressed_bytes`` of a packet may inflate to (see the module docstring)."""
    return min(MAX_INFLATED, INFLATE_RATIO * compressed_bytes + (64 << 10))


def _inflate_lz4(data, limit: int):
    """An LZ4 frame inflated into at most ``limit`` bytes (bytes, or a uint8 array past 1 MiB).

    The first MiB comes back as bytes (every real packet); larger output is gathered a MiB at a
    time into an array whose pages are only touched as they fill, so memory never exceeds the
    output (one ``decompress(max_length=limit)`` call held it twice).
    """
    stream = lz4.frame.LZ4FrameDecompressor()
    part = stream.decompress(data, max_length=min(limit + 1, _INFLATE_STEP))
    if not stream.eof and not stream.needs_input:
        out = np.empty(limit + 1, np.uint8)
        out[:len(part)] = np.frombuffer(part, np.uint8)
        filled = len(part)
        while not stream.eof and not stream.needs_input and filled <= limit:
            part = stream.decompress(b"", max_length=min(limit + 1 - filled, _INFLATE_STEP))
            out[filled:filled + len(part)] = np.frombuffer(part, np.uint8)
            filled += len(part)
        if filled > limit:
            raise ValueError(f"lz4 frame inflates beyond the {limit}-byte bound")
        part = out[:filled]
    if len(part) > limit:
        raise ValueError(f"lz4 frame inflates beyond the {limit}-byte bound")
    if not stream.eof:
        raise ValueError("lz4 frame is incomplete")
    return part


def decompress(data, compression: str):
    """Undo a packet's compression into at most :func:`inflate_limit` bytes (bytes, or a uint8 array
    for a large LZ4 packet); raises ValueError on a corrupt or incomplete stream and on one that
    would inflate beyond that."""
    if compression == "none":
        return data
    limit = inflate_limit(len(data))
    try:
        if compression.startswith("lz4"):
            declared = lz4.frame.get_frame_info(data)["content_size"]  # 0: not stated
            if declared > limit:
                raise ValueError(f"lz4 frame states {declared} bytes, beyond the {limit}-byte bound")
            return _inflate_lz4(data, limit)
        declared = zstandard.frame_content_size(data)  # -1: not stated
        if declared > limit:
            raise ValueError(f"zstd frame states {declared} bytes, beyond the {limit}-byte bound")
        try:
            return zstandard.ZstdDecompressor().decompress(data, max_output_size=limit)
        except zstandard.ZstdError as err:
            raise ValueError(f"zstd frame is incomplete or inflates beyond the {limit}-byte bound ({err})") from err
    except (RuntimeError, MemoryError, zstandard.ZstdError) as err:  # MemoryError: a corrupt frame size
        raise ValueError(f"{compression} decompression failed: {err}") from err


def compressor(compression: str):
    """The function compressing one packet for a compression name."""
    if compression == "lz4":
        return lz4.frame.compress
    if compression == "lz4_high":
        return lambda data: lz4.frame.compress(data, compression_level=lz4.frame.COMPRESSIONLEVEL_MINHC)
    if compression.startswith("zstd"):
        return zstandard.ZstdCompressor(level=19 if compression == "zstd_high" else 3).compress
    return bytes


def size_prefixed(raw) -> memoryview:
    """The FlatBuffer inside a size-prefixed buffer."""
    if len(raw) < 8:
        raise fb.FlatBufferError(f"buffer of {len(raw)} bytes is too short", 0)
    size = _PREFIX.unpack_from(raw)[0]
    if size > len(raw) - 4:
        raise fb.FlatBufferError(f"size prefix {size} exceeds the {len(raw) - 4} bytes present", 0)
    return memoryview(raw)[4:4 + size]


def packet_words(data, compression: str) -> np.ndarray:
    """A packet's event structs as int64 pairs (t; x | y << 16 | polarity << 32), every size and
    offset checked; ValueError says what is wrong."""
    try:
        raw = decompress(data, compression)
    except ValueError as err:
        raise ValueError(f"corrupt packet: {err}") from err
    try:
        buf = size_prefixed(raw)
        start, n = fb.vector(buf, fb.root_table(buf, b"EVTS"), 0, EVENT_BYTES)
    except fb.FlatBufferError as err:
        raise ValueError(f"bad event packet FlatBuffer: {err}") from err
    return np.frombuffer(raw, np.int64, count=2 * n, offset=4 + start)


def decode_events(words: np.ndarray, sensor_size, out: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Event structs from :func:`packet_words` -> ``EVENT_DTYPE`` (into ``out`` when given).

    Returns:
        The events and whether one lies outside the sensor or goes back in time within the
        packet: only then need a caller run its checks (and build their error).
    """
    n = len(words) // 2
    if out is None:
        out = empty_events(n)
    elif len(out) != n:
        raise ValueError(f"decode_events: out holds {len(out)} events, the packet {n}")
    return out, bool(_unpack_events(words, sensor_size[0], sensor_size[1], out))


def encode_event_packet(events: np.ndarray, compress) -> bytes:
    """A compressed, size-prefixed event packet FlatBuffer (``compress`` from :func:`compressor`)."""
    words = np.empty(2 * len(events), np.int64)
    _pack_events(events["x"], events["y"], events["t"], events["p"], words)
    return compress(fb.build(fb.Table([fb.StructVector(words, EVENT_BYTES, 8)]), b"EVTS", size_prefixed=True))


def load_kernels() -> None:
    """Compile, or load from numba's cache, the packet kernels for every array layout that streams
    pass them. A first call holds the GIL for a second or more, so live sources and servers call
    this before their threads start streaming."""
    for n in (1, 2):  # the columns of one event are contiguous, those of more are strided
        packet = encode_event_packet(np.zeros(n, EVENT_DTYPE), bytes)
    for buffer in (packet, np.frombuffer(packet, np.uint8).copy()):  # read-only and writable
        decode_events(packet_words(memoryview(buffer), "none"), (1, 1))


@kernel
def _unpack_events(words, width, height, out):
    """Event structs seen as int64 pairs (t; x | y << 16 | polarity << 32) -> ``out``.

    Returns 1 when an event lies outside ``width`` x ``height`` or goes back in time within the
    packet, else 0.
    """
    doubt = 0
    previous = _T_MIN
    for i in range(out.shape[0]):
        t = words[2 * i]
        packed = words[2 * i + 1]
        x = packed & 0xFFFF
        y = (packed >> 16) & 0xFFFF
        if x >= width or y >= height or t < previous:
            doubt = 1
        previous = t
        out[i].t = t
        out[i].x = x
        out[i].y = y
        out[i].p = 1 if (packed >> 32) & 0xFF else 0
    return doubt


@kernel
def _pack_events(x, y, t, p, words):
    """Our columns -> event structs as int64 pairs (padding bytes zero)."""
    for i in range(t.shape[0]):
        words[2 * i] = t[i]
        words[2 * i + 1] = np.int64(x[i]) | (np.int64(y[i]) << 16) | (np.int64(p[i] != 0) << 32)
