"""Numba kernels on event arrays: representations (frames, voxel grids, time surfaces, HATS, model inputs),
filters, the slicer and training augmentations.

Each operation is a pure function (tonic's names and arguments where tonic has it) plus a small
transform calling it; a transform is stateless (a reused instance equals a fresh one). The
filters that keep per-pixel history give their streaming form with ``stream()``
(:mod:`evstream.ops.streams`).
"""

from evstream.ops._time_table import TimeTableStream
from evstream.ops.augment import (RandomCrop, RandomFlipLR, RandomFlipUD, RandomShift, RandomTimeCrop, random_crop,
                                  random_flip_lr, random_flip_ud, random_shift, random_time_crop)
from evstream.ops.denoise import BackgroundActivityFilter, Denoise, background_activity_filter, denoise
from evstream.ops.depth_repr import (ToCumulativeStack, ToStereoSpikeInput, to_cumulative_stack,
                                     to_stereospike_histogram, to_stereospike_input)
from evstream.ops.frames import ToFrame, frame_slices, to_frame
from evstream.ops.geometry import (CenterCrop, Crop, Downsample, FlipLR, FlipUD, MergePolarities, center_crop, crop,
                                   downsample, flip_lr, flip_ud, merge_polarities, translate)
from evstream.ops.hats import ToAveragedTimesurface, to_averaged_time_surface
from evstream.ops.hot_pixels import (HotPixelFilter, HotPixelStream, drop_pixels, find_hot_pixels, hot_pixel_filter,
                                     hot_pixel_mask, pixel_counts)
from evstream.ops.integrate import (IntegrateByDuration, IntegrateByNumber, IntegrateByTime, integrate_by_duration,
                                    integrate_by_number, integrate_by_time)
from evstream.ops.refractory import RefractoryPeriod, refractory_period
from evstream.ops.slicer import Slicer, slice_by_count, slice_by_time
from evstream.ops.spikeyolo_input import (Letterbox, ToSpikeYOLOInput, last_polarity_frames, letterbox_geometry,
                                          to_spikeyolo_input)
from evstream.ops.streams import StreamResetWarning
from evstream.ops.tasnn import (ToTASNNClips, ToTASNNFrames, tasnn_clip_starts, tasnn_random_start, to_tasnn_clips,
                                to_tasnn_frames)
from evstream.ops.time_crop import CropTime, crop_time
from evstream.ops.time_surface import ToTimesurface, to_time_surface
from evstream.ops.voxel import ToVoxelGrid, to_voxel_grid

__all__ = [
    "BackgroundActivityFilter",
    "CenterCrop",
    "Crop",
    "CropTime",
    "Denoise",
    "Downsample",
    "FlipLR",
    "FlipUD",
    "HotPixelFilter",
    "HotPixelStream",
    "IntegrateByDuration",
    "IntegrateByNumber",
    "IntegrateByTime",
    "Letterbox",
    "MergePolarities",
    "RandomCrop",
    "RandomFlipLR",
    "RandomFlipUD",
    "RandomShift",
    "RandomTimeCrop",
    "RefractoryPeriod",
    "Slicer",
    "StreamResetWarning",
    "TimeTableStream",
    "ToAveragedTimesurface",
    "ToCumulativeStack",
    "ToFrame",
    "ToSpikeYOLOInput",
    "ToStereoSpikeInput",
    "ToTASNNClips",
    "ToTASNNFrames",
    "ToTimesurface",
    "ToVoxelGrid",
    "background_activity_filter",
    "center_crop",
    "crop",
    "crop_time",
    "denoise",
    "downsample",
    "drop_pixels",
    "find_hot_pixels",
    "flip_lr",
    "flip_ud",
    "frame_slices",
    "hot_pixel_filter",
    "hot_pixel_mask",
    "integrate_by_duration",
    "integrate_by_number",
    "integrate_by_time",
    "last_polarity_frames",
    "letterbox_geometry",
    "merge_polarities",
    "pixel_counts",
    "random_crop",
    "random_flip_lr",
    "random_flip_ud",
    "random_shift",
    "random_time_crop",
    "refractory_period",
    "slice_by_count",
    "slice_by_time",
    "tasnn_clip_starts",
    "tasnn_random_start",
    "to_averaged_time_surface",
    "to_cumulative_stack",
    "to_frame",
    "to_spikeyolo_input",
    "to_stereospike_histogram",
    "to_stereospike_input",
    "to_tasnn_clips",
    "to_tasnn_frames",
    "to_time_surface",
    "to_voxel_grid",
    "translate",
]
