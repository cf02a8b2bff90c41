"""A minimal FlatBuffers reader and builder: just what AEDAT 4.0 headers and packets need.

Reading walks tables, vtables, strings and vectors of a buffer with every offset
bounds-checked, so a corrupt buffer raises :class:`FlatBufferError` (a ``ValueError``
naming the position in the buffer) instead of reading garbage. Building lays a tree of
:class:`Table`, :class:`String`, :class:`StructVector` and :class:`TableVector` out front
to back (children after their parent, so every offset is positive), aligning each scalar
to its size as the FlatBuffers verifiers expect. This avoids a ``flatbuffers`` dependency
for four fixed schemas (IOHeader, EventPacket, FileDataTable and its definitions).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")


class FlatBufferError(ValueError):
    """A FlatBuffer whose offsets or sizes point outside it (``position`` is within the buffer)."""

    def __init__(self, reason: str, position: int):
        self.position = position
        super().__init__(f"{reason} (flatbuffer position {position})")


# --- reading -------------------------------------------------------------------------------
def _unpack(fmt: struct.Struct, buf, pos: int, what: str):
    if pos < 0 or pos + fmt.size > len(buf):
        raise FlatBufferError(f"{what} of {fmt.size} bytes out of the {len(buf)}-byte buffer", pos)
    return fmt.unpack_from(buf, pos)[0]


def _follow(buf, pos: int, what: str) -> int:
    """The position a uoffset stored at ``pos`` points to."""
    return pos + _unpack(_U32, buf, pos, f"offset to {what}")


def root_table(buf, identifier: bytes | None = None) -> int:
    """Position of the root table; checks the 4-byte file identifier when one is given."""
    if identifier is not None and bytes(buf[4:8]) != identifier:
        raise FlatBufferError(f"file identifier {bytes(buf[4:8])!r}, expected {identifier!r}", 4)
    return _follow(buf, 0, "root table")


def field_position(buf, table: int, index: int) -> int | None:
    """Absolute position of field ``index`` of the table at ``table``, None when absent."""
    vtable = table - _unpack(_I32, buf, table, "table's vtable offset")
    vtable_size = _unpack(_U16, buf, vtable, "vtable size")
    if vtable_size < 4 or vtable_size % 2:
        raise FlatBufferError(f"vtable size {vtable_size} is invalid", vtable)
    if 4 + 2 * index >= vtable_size:
        return None
    offset = _unpack(_U16, buf, vtable + 4 + 2 * index, "vtable entry")
    return table + offset if offset else None


def scalar(buf, table: int, index: int, fmt: str, default):
    """Scalar field ``index`` (struct format ``fmt``, little-endian), ``default`` when absent."""
    pos = field_position(buf, table, index)
    return default if pos is None else _unpack(struct.Struct("<" + fmt), buf, pos, f"field {index}")


def struct_field(buf, table: int, index: int, fmt: str) -> tuple | None:
    """An inline struct field unpacked with ``fmt`` (little-endian), None when absent."""
    pos = field_position(buf, table, index)
    if pos is None:
        return None
    layout = struct.Struct("<" + fmt)
    if pos + layout.size > len(buf):
        raise FlatBufferError(f"struct field {index} out of the {len(buf)}-byte buffer", pos)
    return layout.unpack_from(buf, pos)


def vector(buf, table: int, index: int, element_size: int) -> tuple[int, int]:
    """``(start, length)`` of vector field ``index``; ``(0, 0)`` when absent."""
    pos = field_position(buf, table, index)
    if pos is None:
        return 0, 0
    at = _follow(buf, pos, f"vector field {index}")
    length = _unpack(_U32, buf, at, "vector length")
    start = at + 4
    if start + length * element_size > len(buf):
        raise FlatBufferError(f"vector of {length} x {element_size} bytes runs past the "
                              f"{len(buf)}-byte buffer", at)
    return start, length


def string(buf, table: int, index: int) -> bytes | None:
    """String field ``index`` as bytes, None when absent."""
    if field_position(buf, table, index) is None:
        return None
    start, length = vector(buf, table, index, 1)
    return bytes(buf[start:start + length])


def table_vector(buf, table: int, index: int) -> list[int]:
    """Positions of the tables of the vector-of-tables field ``index``."""
    start, length = vector(buf, table, index, 4)
    return [_follow(buf, start + 4 * k, "vector element") for k in range(length)]


# --- building ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scalar:
    """A scalar table field: struct format (``"i"``, ``"q"``...) and value; always written."""

    fmt: str
    value: int


@dataclass(frozen=True)
class InlineStruct:
    """A struct table field stored inline: its packed bytes and alignment."""

    data: bytes
    align: int


@dataclass(frozen=True)
class String:
    """A string (written with its length and NUL terminator)."""

    data: bytes


@dataclass(frozen=True)
class StructVector:
    """A vector of structs given as their packed bytes (any buffer) and the struct alignment."""

    data: object
    element_size: int
    align: int


@dataclass(frozen=True)
class Table:
    """A table: one entry per field id, ``None`` for an absent field."""

    fields: list


@dataclass(frozen=True)
class TableVector:
    """A vector of tables."""

    tables: list


class _Layout:
    """A buffer being filled front to back; offsets are differences, so a size prefix may lead it."""

    def __init__(self):
        self.buf = bytearray()

    def pad(self, align: int, ahead: int = 0) -> None:
        """Pad so that the byte ``ahead`` bytes from the end lands on a multiple of ``align``."""
        self.buf += bytes(-(len(self.buf) + ahead) % align)

    def place(self, node) -> int:
        """Append ``node`` and its children; return the position an offset to it must point to."""
        if isinstance(node, Table):
            return self._table(node)
        if isinstance(node, String):
            self.pad(4)
            at = len(self.buf)
            self.buf += _U32.pack(len(node.data)) + node.data + b"\0"
            return at
        if isinstance(node, StructVector):
            self.pad(max(node.align, 4), 4)
            at = len(self.buf)
            data = memoryview(node.data).cast("B")
            self.buf += _U32.pack(len(data) // node.element_size)
            self.buf += data
            return at
        if isinstance(node, TableVector):
            self.pad(4)
            at = len(self.buf)
            self.buf += _U32.pack(len(node.tables)) + bytes(4 * len(node.tables))
            for k, table in enumerate(node.tables):
                self.patch(at + 4 + 4 * k, self.place(table))
            return at
        raise TypeError(f"cannot lay out {type(node).__name__}")

    def patch(self, pos: int, target: int) -> None:
        _U32.pack_into(self.buf, pos, target - pos)

    def _table(self, table: Table) -> int:
        inline = []  # (field id, bytes, align)
        for index, value in enumerate(table.fields):
            if isinstance(value, Scalar):
                data = struct.pack("<" + value.fmt, value.value)
                inline.append((index, data, len(data)))
            elif isinstance(value, InlineStruct):
                inline.append((index, value.data, value.align))
            elif value is not None:
                inline.append((index, bytes(4), 4))
        align = max([4] + [a for _, _, a in inline])
        offsets = [0] * len(table.fields)
        size = 4
        for index, data, a in inline:
            size += -size % a
            offsets[index] = size
            size += len(data)
        size += -size % align
        vtable = struct.pack(f"<{2 + len(offsets)}H", 4 + 2 * len(offsets), size, *offsets)
        self.pad(2)
        vtable_at = len(self.buf)
        self.buf += vtable
        self.pad(align)
        at = len(self.buf)
        body = bytearray(size)
        _I32.pack_into(body, 0, at - vtable_at)
        for index, data, _ in inline:
            body[offsets[index]:offsets[index] + len(data)] = data
        self.buf += body
        for index, value in enumerate(table.fields):
            if value is not None and not isinstance(value, (Scalar, InlineStruct)):
                self.patch(at + offsets[index], self.place(value))
        return at


def build(root: Table, identifier: bytes | None = None, size_prefixed: bool = False) -> bytearray:
    """Serialise ``root`` as a FlatBuffer (optionally with a file identifier and a u32 size prefix)."""
    if identifier is not None and len(identifier) != 4:
        raise ValueError(f"a file identifier has 4 bytes, got {identifier!r}")
    layout = _Layout()
    start = 4 if size_prefixed else 0
    layout.buf += bytes(start + 4) + (identifier or b"")
    layout.patch(start, layout.place(root))
    if size_prefixed:
        _U32.pack_into(layout.buf, 0, len(layout.buf) - 4)
    return layout.buf
