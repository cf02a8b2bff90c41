"""Summary of an event file (format, geometry, count, time span), computed in one streaming pass."""

from __future__ import annotations

import os

from evstream.io import open_events


def file_info(path: os.PathLike | str, **reader_options) -> dict:
    """Format, sensor size, event count, first and last time (µs), mean rate (events/s) and the
    reader's ``notes`` (what it inferred because the file does not say it)."""
    count, t_start, t_end = 0, None, None
    with open_events(path, **reader_options) as reader:
        for block in reader:
            if t_start is None:
                t_start = int(block["t"][0])
            t_end = int(block["t"][-1])
            count += len(block)
        width, height = reader.sensor_size[:2]
        fmt = reader.format
        notes = list(reader.notes)
    span = (t_end - t_start) if count else 0
    return {"path": str(path), "format": fmt, "width": width, "height": height, "events": count,
            "t_start": t_start, "t_end": t_end, "duration_s": span / 1e6,
            "rate_ev_per_s": count / (span / 1e6) if span > 0 else None, "notes": notes}
