"""Models out of evstream: NIR graphs and ONNX files of the live checkpoints (``evstream export``).

* :func:`export_checkpoint` writes a live checkpoint (``evstream eval --export``) as NIR
  (:func:`evstream.export.nir.to_nir`, spiking classifiers) or ONNX (:func:`export_onnx`: the
  classifiers and the fused integer-spike SpikeYOLO, unrolled over the T time steps).
* :func:`load_exportable` rebuilds a checkpoint's net with an example input from its recipe.
"""

from evstream.export.checkpoint_export import Exportable, export_checkpoint, load_exportable
from evstream.export.onnx_graph import DetectorOutputs, export_onnx

__all__ = ["DetectorOutputs", "Exportable", "export_checkpoint", "export_onnx", "load_exportable"]
