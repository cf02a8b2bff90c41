"""SpikeYOLO: spiking YOLOv8 detector with integer-valued training and spike-driven inference (models.md §1)."""

from evstream.nets.spike_yolo.head import SpikeDetect, decode
from evstream.nets.spike_yolo.model import SCALES, Scale, SpikeYOLO, spike_yolo

__all__ = ["SCALES", "Scale", "SpikeDetect", "SpikeYOLO", "decode", "spike_yolo"]
