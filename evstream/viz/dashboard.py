"""The headless view: the same panels as the Qt window, composed into one RGB frame per window."""

from __future__ import annotations

import cv2
import numpy as np

from evstream.live.pipeline import PipelineStats, WindowResult
from evstream.outputs import Classification, DepthMap, Detections
from evstream.viz.render import EventImage, class_bars, depth_rgb, draw_boxes

PANEL_HEIGHT = 360


def _fit(img: np.ndarray, height: int) -> np.ndarray:
    scale = height / img.shape[0]
    return cv2.resize(img, (max(int(round(img.shape[1] * scale)), 1), height), interpolation=cv2.INTER_NEAREST)


class Dashboard:
    """Keeps the decaying event image and turns each :class:`WindowResult` into a frame."""

    def __init__(self, sensor_size, tau_us: float = 30_000.0):
        self.events = EventImage(sensor_size[0], sensor_size[1], tau_us)

    def frame(self, result: WindowResult, stats: PipelineStats | None = None) -> np.ndarray:
        self.events.update(result.events, result.t_end_us - result.t_start_us)
        panels = [self.events.rgb()]
        output = result.output
        if isinstance(output, Detections):
            panels[0] = draw_boxes(panels[0], output.boxes_xyxy, output.classes, output.scores, output.names)
        elif isinstance(output, DepthMap):
            panels.append(depth_rgb(output.depth_m, d_max=output.d_max))
        frame = np.concatenate([_fit(p, PANEL_HEIGHT) for p in panels], axis=1)
        if isinstance(output, Classification):
            bars = class_bars(output.probabilities, output.names, width=frame.shape[1] // 2)
            frame = np.concatenate([frame, np.pad(bars, ((0, 0), (0, frame.shape[1] - bars.shape[1]), (0, 0)))], axis=0)
        caption = f"t={result.t_end_us / 1e6:9.3f} s  events={len(result.events):7d}  latency={result.latency_ms:6.1f} ms"
        if stats is not None:
            caption += f"  dropped={stats.dropped_windows}"
        cv2.putText(frame, caption, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (240, 240, 240), 1, cv2.LINE_AA)
        return frame
