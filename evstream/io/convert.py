"""Stream any readable event file into any writable format, optionally cut in time and space."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from evstream.errors import UserError
from evstream.io import open_events, open_writer
from evstream.io.atomic import atomic_output, check_output
from evstream.io.registry import writer_format_for


def crop_events(events: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """Events inside the rectangle ``[x0, x0 + width) x [y0, y0 + height)``, shifted to its origin."""
    x, y = events["x"], events["y"]
    keep = events[(x >= x0) & (x < x0 + width) & (y >= y0) & (y < y0 + height)]
    keep["x"] -= x0
    keep["y"] -= y0
    return keep


def iter_range(reader, start_us: int | None = None, end_us: int | None = None) -> Iterator[np.ndarray]:
    """Blocks of a reader restricted to ``[start_us, end_us)``."""
    if start_us is not None:
        reader.seek(start_us)
    for block in reader:
        if end_us is not None and block["t"][-1] >= end_us:
            block = block[:np.searchsorted(block["t"], end_us, side="left")]
            if len(block):
                yield block
            return
        yield block


def convert(src: os.PathLike | str, dst: os.PathLike | str, *, format: str | None = None,
            start_us: int | None = None, end_us: int | None = None,
            crop: tuple[int, int, int, int] | None = None, progress: bool = True, overwrite: bool = False,
            **reader_options) -> int:
    """Copy the events of ``src`` to ``dst`` in bounded memory; returns the number written.

    The output is written to a temporary file beside ``dst`` and renamed at the end, so an error
    or Ctrl-C never leaves half a file (nor the temporary one), and an existing ``dst`` is only
    replaced by a complete conversion.

    Args:
        src: any file :func:`evstream.open_events` reads.
        dst: output path; its suffix picks the format unless ``format`` is given. Never ``src``
            itself; an existing file only with ``overwrite`` (:func:`~evstream.io.atomic.check_output`).
        start_us, end_us: keep events with ``start_us <= t < end_us``.
        crop: ``(x, y, width, height)``: keep that rectangle, shifted to the origin.
        reader_options: passed to :func:`evstream.open_events` (``strict``, ``sensor_size``, ...).
    """
    check_output(dst, source=src, overwrite=overwrite)
    format = format or writer_format_for(dst)
    written = 0
    with open_events(src, **reader_options) as reader:
        sensor_size = reader.sensor_size
        if crop is not None:
            x0, y0, width, height = (int(v) for v in crop)
            if x0 < 0 or y0 < 0 or width <= 0 or height <= 0 or x0 + width > sensor_size[0] \
                    or y0 + height > sensor_size[1]:
                raise UserError(f"crop {crop} does not fit the {sensor_size[0]}x{sensor_size[1]} sensor of {src}")
            sensor_size = (width, height, sensor_size[2])
        with atomic_output(dst) as tmp, open_writer(tmp, sensor_size, format=format) as writer, \
                tqdm(desc=f"convert {os.path.basename(src)}", unit="ev", unit_scale=True, disable=not progress) as bar:
            for block in iter_range(reader, start_us, end_us):
                if crop is not None:
                    block = crop_events(block, x0, y0, width, height)
                writer.write(block)
                written += len(block)
                bar.update(len(block))
    return written
