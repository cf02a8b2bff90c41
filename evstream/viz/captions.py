"""The words and numbers of the view, shared by the window (status bar, info panel) and the video
(caption, info line), so both always say the same thing."""

from __future__ import annotations

import os

from evstream.live.pipeline import PipelineStats

END_OF_RECORDING = "end of recording — press play to replay"
EVENTS_TITLE, DEPTH_TITLE, CLASSES_TITLE = "Events", "Depth", "Class probabilities"


def decay_text(tau_us: float) -> str:
    """How long the event image remembers: ``"decay 30 ms"``."""
    return f"decay {tau_us / 1e3:g} ms"


def depth_subtitle(width: int, height: int) -> str:
    """What the depth panel shows: the model's output size and the scale."""
    return f"model output {width} × {height}, metres (log scale)"


def seconds_text(t_s: float | None) -> str:
    """A time on the recording, ``"12.345 s"`` (``"1:02.345"`` from a minute on; ``"-"`` when unknown)."""
    if t_s is None:
        return "-"
    if abs(t_s) < 60:
        return f"{t_s:.3f} s"
    minutes, seconds = divmod(t_s, 60)
    return f"{int(minutes)}:{seconds:06.3f}"


def rate_text(events_per_s: float) -> str:
    """``"1.23 M events/s"``."""
    if events_per_s >= 1e6:
        return f"{events_per_s / 1e6:.2f} M events/s"
    if events_per_s >= 1e3:
        return f"{events_per_s / 1e3:.1f} k events/s"
    return f"{events_per_s:.0f} events/s"


def drops_text(stats: PipelineStats) -> str:
    """The two losses, apart: batches the source queue dropped, windows processed too late."""
    batches, windows = stats.source_drops, stats.dropped_windows
    return (f"drops: {batches} source batch{'' if batches == 1 else 'es'}, "
            f"{windows} late window{'' if windows == 1 else 's'}")


def latency_text(latency_ms: float, stats: PipelineStats | None = None) -> str:
    """``"latency 12.3 ms (p50 10.1, p99 40.2)"``."""
    text = f"latency {latency_ms:.1f} ms"
    if stats is not None:
        p50, p99 = stats.latency_percentiles()
        if p50 is not None:
            text += f" (p50 {p50:.1f}, p99 {p99:.1f})"
    return text


def time_text(t_s: float, duration_s: float | None) -> str:
    """``"t 1.250 s / 2.000 s"``: the shown time, relative to the recording start, and the duration
    (a window's end can pass the last event by a microsecond: never shown beyond the duration)."""
    if duration_s:
        t_s = min(t_s, duration_s)
    return f"t {seconds_text(t_s)}" + (f" / {seconds_text(duration_s)}" if duration_s else "")


def error_text(error: BaseException) -> str:
    """A failure as one line."""
    lines = str(error).strip().splitlines()
    return f"error: {lines[0] if lines else type(error).__name__}"


def info_rows(source_info: dict, model_info: str | None) -> list[tuple[str, str]]:
    """The fixed rows of the info panel: what is shown (source, file, format, sensor, duration, model)."""
    rows = [("source", str(source_info.get("source", "-")))]
    if "path" in source_info:
        rows.append(("file", os.path.basename(str(source_info["path"]))))
    if "format" in source_info:
        rows.append(("format", str(source_info["format"])))
    rows.append(("sensor", str(source_info.get("sensor", "-")).replace("x", " × ")))
    if source_info.get("duration_s") is not None:
        rows.append(("duration", seconds_text(float(source_info["duration_s"]))))
    rows.append(("model", model_info or "none (events only)"))
    return rows


def info_line(source_info: dict, model_info: str | None) -> str:
    """The info panel's fixed rows as one line (the video's)."""
    return " · ".join(value for key, value in info_rows(source_info, model_info) if key not in ("file",))


def status_parts(t_s: float, duration_s: float | None, latency_ms: float,
                 stats: PipelineStats | None) -> list[str]:
    """The running numbers, in the order the status bar and the video caption show them."""
    parts = [time_text(t_s, duration_s)]
    if stats is not None:
        parts.append(rate_text(stats.events_per_s))
    parts.append(latency_text(latency_ms, stats))
    if stats is not None:
        parts.append(drops_text(stats))
    return parts
