"""Which module reads or writes which format, and format detection from a file's first bytes."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from evstream.events import EventFileError

READERS = {
    "aedat2": "evstream.io.aedat2:Aedat2Reader",
    "aedat31": "evstream.io.aedat31:Aedat31Reader",
    "aedat4": "evstream.io.aedat4:Aedat4Reader",
    "dat": "evstream.io.dat:DatReader",
    "evt2": "evstream.io.evt2:Evt2Reader",
    "evt3": "evstream.io.evt3:Evt3Reader",
    "atis_bin": "evstream.io.atis_bin:AtisBinReader",
    "mvsec": "evstream.io.hdf5_datasets:MvsecReader",
    "dsec": "evstream.io.hdf5_datasets:DsecReader",
    "evstream_h5": "evstream.io.evstream_h5:EvstreamH5Reader",
    "npz": "evstream.io.npz:NpzReader",
}
"""Format name -> reader class, imported on first use."""

WRITERS = {
    "evstream_h5": "evstream.io.evstream_h5:EvstreamH5Writer",
    "dat": "evstream.io.dat:DatWriter",
    "evt2": "evstream.io.evt2:Evt2Writer",
    "evt3": "evstream.io.evt3:Evt3Writer",
    "aedat4": "evstream.io.aedat4:Aedat4Writer",
    "npz": "evstream.io.npz:NpzWriter",
    "aedat2": "evstream.io.aedat2:Aedat2Writer",
    "aedat31": "evstream.io.aedat31:Aedat31Writer",
    "atis_bin": "evstream.io.atis_bin:AtisBinWriter",
    "mvsec": "evstream.io.hdf5_datasets:MvsecWriter",
}
"""Format name -> writer class, imported on first use."""

WRITER_SUFFIXES = {".h5": "evstream_h5", ".hdf5": "evstream_h5", ".dat": "dat", ".aedat4": "aedat4",
                   ".npz": "npz", ".raw": "evt3", ".bin": "atis_bin"}
"""Default output format by file suffix (``.raw`` is EVT 3.0 unless ``format="evt2"``)."""

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_HEADER_PEEK = 1 << 16


def _load(table: dict[str, str], name: str):
    module, attr = table[name].split(":")
    return getattr(importlib.import_module(module), attr)


def reader_class(name: str):
    """The reader class of a format name."""
    if name not in READERS:
        raise ValueError(f"unknown event format {name!r}; known: {', '.join(READERS)}")
    return _load(READERS, name)


def writer_class(name: str):
    """The writer class of a format name."""
    if name not in WRITERS:
        raise ValueError(f"cannot write format {name!r}; writable: {', '.join(WRITERS)}")
    return _load(WRITERS, name)


def writer_format_for(path: os.PathLike | str) -> str:
    """The default output format of a path, from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITER_SUFFIXES:
        raise ValueError(f"{path}: cannot tell the output format from the suffix {suffix!r}; "
                         f"use one of {', '.join(WRITER_SUFFIXES)} or pass format=")
    return WRITER_SUFFIXES[suffix]


def _prophesee_header_format(head: bytes) -> str | None:
    """'evt2', 'evt3' or 'dat' for a Prophesee ``%`` text header, None when it is not one."""
    if not head.startswith(b"%"):
        return None
    lines = []
    pos = 0
    while pos < len(head) and head[pos:pos + 1] == b"%":
        end = head.find(b"\n", pos)
        if end < 0:
            break
        lines.append(head[pos:end].strip().lower())
        pos = end + 1
        if lines[-1] == b"% end":
            break
    for line in lines:
        if line.startswith(b"% evt "):
            version = line[6:].strip()
            known = {b"2.0": "evt2", b"3.0": "evt3", b"2.1": "evt21"}
            return known.get(version, "evt?" + version.decode(errors="replace"))
        if line.startswith(b"% format "):
            kind = line[9:].split(b";")[0].strip()
            known = {b"evt2": "evt2", b"evt3": "evt3", b"evt21": "evt21"}
            return known.get(kind, "evt?" + kind.decode(errors="replace"))
    return "dat"


def _hdf5_layout(path: Path) -> str:
    from evstream.io.hdf5_datasets import HDF5_DAMAGE, open_hdf5  # h5py and hdf5plugin only when needed

    try:
        with open_hdf5(path) as f:
            if f.attrs.get("evstream_format") is not None:
                return "evstream_h5"
            if "davis" in f and any(f"davis/{cam}/events" in f for cam in ("left", "right")):
                return "mvsec"
            if "events/x" in f and "events/t" in f:
                return "dsec"
            keys = list(f.keys())
    except HDF5_DAMAGE as err:
        raise EventFileError(path, f"damaged HDF5 file ({err})") from err
    raise EventFileError(path, f"HDF5 file without a known event layout (top-level keys {keys}); "
                         "expected MVSEC davis/<camera>/events, DSEC events/{x,y,t,p} or an evstream recording")


def detect_format(path: os.PathLike | str) -> str:
    """The format name of a file, from its bytes (its name only settles headerless ATIS .bin)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(_HEADER_PEEK)
    except OSError as err:
        raise EventFileError(path, f"cannot open: {err.strerror}") from err
    if head.startswith(b"#!AER-DAT"):
        version = head[9:12]
        known = {b"2.0": "aedat2", b"3.1": "aedat31", b"4.0": "aedat4"}
        if version in known:
            return known[version]
        raise EventFileError(path, f"unsupported AEDAT version {version.decode(errors='replace')!r}", 0)
    if head.startswith(_HDF5_MAGIC):
        return _hdf5_layout(path)
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    prophesee = _prophesee_header_format(head)
    if prophesee is not None:
        if prophesee not in ("dat", "evt2", "evt3"):
            raise EventFileError(path, f"unsupported Prophesee RAW encoding {prophesee.removeprefix('evt?')!r}", 0)
        return prophesee
    if head.startswith(b"#"):
        return "aedat2"  # jAER AEDAT 2.0 files whose version line is missing still start with '#' lines
    if path.suffix.lower() == ".bin":
        from evstream.io.atis_bin import atis_records_problem

        problem = atis_records_problem(head)
        if problem is None:
            return "atis_bin"
        raise EventFileError(path, f"unknown event file format: a .bin file, but not ATIS records ({problem})", 0)
    raise EventFileError(path, f"unknown event file format (first bytes {head[:16]!r})", 0)
