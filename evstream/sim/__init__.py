"""Event simulator: frames to events (v2e / ESIM principle) and synthetic scenes with ground truth.

:class:`EventEmulator` turns a stream of grey frames into events (the webcam source feeds it frame
by frame); the scene modules render frames with ground truth and write them in the real datasets'
layouts: :func:`write_road_dataset` (Gen1, boxes), :func:`write_depth_sequence` (MVSEC, depth) and
:func:`write_gesture_dataset` (DVS128 Gesture, 11 classes); :func:`video_to_events` converts a video.
"""

from evstream.sim.depth_scene import DepthScene, write_depth_sequence
from evstream.sim.emulator import PRESETS, EventEmulator, SensorParams, frames_to_events, sensor_params
from evstream.sim.gesture import GESTURE_CLASSES, write_gesture_dataset
from evstream.sim.road import RoadScene, write_road_dataset
from evstream.sim.video import video_to_events

__all__ = ["PRESETS", "EventEmulator", "SensorParams", "frames_to_events", "sensor_params", "DepthScene",
           "write_depth_sequence", "GESTURE_CLASSES", "write_gesture_dataset", "RoadScene", "write_road_dataset",
           "video_to_events"]
