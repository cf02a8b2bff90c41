"""Write a file all or nothing: a temporary file beside it, fsync, then one atomic rename.

A crash, an error or Ctrl-C while writing leaves the old file (or none) and no temporary
file behind; readers never see half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evstream.errors import UserError

__all__ = ["atomic_output", "check_output", "default_file_mode"]


def check_output(path: os.PathLike | str, *, source: os.PathLike | str | None = None, overwrite: bool = False) -> None:
    """Refuse an output path that is ``source`` (whatever path or link leads to it), that exists
    (unless ``overwrite``), that is a folder, or whose folder does not exist; raises :class:`UserError`."""
    if os.path.isdir(path):
        raise UserError(f"{path}: the output is a folder; give a file name")
    if os.path.exists(path):
        if source is not None and os.path.exists(source) and os.path.samefile(source, path):
            raise UserError(f"{path}: the output is the input file {source}; writing it would destroy it")
        if not overwrite:
            raise UserError(f"{path}: the output exists; pass --force (overwrite=True) to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{path}: the output folder {folder} does not exist")


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 minus the umask (0o644 under the usual 022).

    ``tempfile.mkstemp`` creates 0o600 files; the renamed result gets this mode instead. The umask
    can only be read by setting it, so it is set and restored at once.
    """
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_output(path: os.PathLike | str) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (same suffix); on success it replaces ``path``.

    The temporary file is flushed to disk and given :func:`default_file_mode` before the rename;
    on any exception (KeyboardInterrupt included) it is removed and the exception propagates.
    The folder must exist.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
