"""Spiking depth networks for MVSEC (models.md §5): the depth paper's multi-step U-Net and StereoSpike.

Both map ``[T, B, C, H, W]`` event tensors to a :class:`DepthPrediction` (normalised log depth, or metres
for StereoSpike trained on metric depth as its official code).
:data:`DEPTH_NETS` is the name -> builder table the depth task selects from.
"""

from evstream.nets.depth.blocks import DepthPrediction
from evstream.nets.depth.stereospike import StereoSpike, stereospike
from evstream.nets.depth.unet import SpikingDepthUNet, spiking_depth_unet

DEPTH_NETS = {"spiking_depth_unet": spiking_depth_unet, "stereospike": stereospike}
"""Depth network name -> keyword-only builder."""

__all__ = ["DEPTH_NETS", "DepthPrediction", "SpikingDepthUNet", "StereoSpike", "spiking_depth_unet", "stereospike"]
