"""``open_source("dv:SERIAL" | "dvnet:HOST:PORT" | "metavision[:PATH]" | "webcam[:N]" | "video:FILE" |
"synthetic" | "file:PATH")``: one factory for every live source.

Options go to the source: ``stream_id``, ``queue_size`` for ``dvnet``; those of
:class:`~evstream.live.other_sources.SyntheticSource` and :class:`~evstream.live.replay.FileReplaySource`.
"""

from __future__ import annotations

from evstream.live.source import EventSource

SOURCE_KINDS = ("dv", "dvnet", "metavision", "webcam", "video", "synthetic", "file")


def open_source(spec: str, *, timeout_s: float = 5.0, **options) -> EventSource:
    """Build the source a spec names (the source opens its device now: errors come from here).

    ``timeout_s`` bounds how long a network source may stay silent (connect, read).
    """
    kind, _, arg = spec.partition(":")
    if kind == "dv":
        from evstream.live.dv_sources import DvCameraSource

        return DvCameraSource(arg or None)
    if kind == "dvnet":
        from evstream.live.dv_client import DvNetworkSource

        host, _, port = arg.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"source {spec!r}: expected dvnet:HOST:PORT")
        return DvNetworkSource(host, int(port), timeout_s=timeout_s, **options)
    if kind == "metavision":
        from evstream.live.other_sources import MetavisionSource

        return MetavisionSource(arg)
    if kind in ("webcam", "video"):
        from evstream.live.other_sources import EmulatedVideoSource

        if kind == "video" and not arg:
            raise ValueError("source 'video' needs a file: video:FILE")
        return EmulatedVideoSource(int(arg or 0) if kind == "webcam" else arg)
    if kind == "synthetic":
        from evstream.live.other_sources import SyntheticSource

        return SyntheticSource(**options)
    if kind == "file":
        from evstream.live.replay import FileReplaySource

        return FileReplaySource(arg, **options)
    raise ValueError(f"unknown source {spec!r}; one of: {', '.join(SOURCE_KINDS)}")
