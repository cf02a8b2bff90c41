"""A live checkpoint as a NIR graph or an ONNX file (what ``evstream export`` runs).

The checkpoint's recipe gives the input: a classifier's ``[T, B, 2, H, W]`` count frames
(:class:`~evstream.nets.live_classifier.WindowRecipe`), the detector's ``[T, B, 3, H, W]``
letterboxed image (:class:`~evstream.nets.spike_yolo.live.DetectionRecipe`). The detector is
exported fused (BN and re-parameterised convs folded, integer I-LIF spikes), as the live loop runs it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import evstream
from evstream import EVENT_DTYPE, checkpoint
from evstream.checkpoint import CheckpointError
from evstream.errors import UserError
from evstream.export.onnx_graph import DetectorOutputs, export_onnx
from evstream.io.atomic import atomic_output, check_output
from evstream.live.models import checkpoint_kind

__all__ = ["FORMATS", "Exportable", "export_checkpoint", "load_exportable"]

FORMATS = ("nir", "onnx")


@dataclass
class Exportable:
    """A checkpoint's net ready to export.

    Args:
        model: the net in eval mode (the detector fused).
        kind: ``"classifier"`` or ``"detector"``.
        frames: one window's input without the batch, ``[T, C, H, W]`` (from the recipe).
        info: the checkpoint's dict (net, net_options, recipe, names, metrics).
    """

    model: nn.Module
    kind: str
    frames: tuple[int, ...]
    info: dict

    def example(self, batch: int = 2) -> torch.Tensor:
        """A zero input ``[T, batch, C, H, W]``."""
        t, *sample = self.frames
        return torch.zeros(t, batch, *sample)


def load_exportable(path: os.PathLike | str) -> Exportable:
    """Rebuild a live checkpoint's net and input shape.

    Raises:
        CheckpointError: not a checkpoint, a training checkpoint (no recipe) or a depth net.
    """
    kind = checkpoint_kind(checkpoint.load(path))
    if kind is None:
        raise CheckpointError(path, "a training checkpoint, not a live one: export it first with 'evstream eval TASK "
                                    "--checkpoint PATH --export MODEL.pt'")
    if kind == "detector":
        from evstream.nets.spike_yolo.live import DetectionRecipe, load_detector

        model, info = load_detector(path)
        model, recipe = model.fuse().eval(), DetectionRecipe(**info["recipe"])
    elif kind == "classifier":
        from evstream.nets.live_classifier import WindowRecipe, load_classifier

        model, info = load_classifier(path)
        recipe = WindowRecipe(**info["recipe"])
    else:
        raise CheckpointError(path, f"a {kind} checkpoint; evstream export writes classifiers and SpikeYOLO detectors")
    frames = recipe(np.zeros(0, EVENT_DTYPE)).shape
    return Exportable(model, kind, tuple(int(s) for s in frames), info)


def _metadata(item: Exportable) -> dict[str, str]:
    info = item.info
    outputs = ("boxes: [B, A, 4] xyxy in letterboxed input pixels; scores: [B, A, classes] sigmoid probabilities; "
               "non-maximum suppression not included" if item.kind == "detector" else
               "rates: [B, classes] mean output spikes over the T steps, neurons starting at rest")
    recipe = dict(info["recipe"])
    recipe["sensor_size"] = list(recipe["sensor_size"])
    return {"evstream.version": evstream.__version__, "evstream.net": info["net"],
            "evstream.net_options": json.dumps(info["net_options"]), "evstream.recipe": json.dumps(recipe),
            "evstream.names": json.dumps(list(info["names"])), "evstream.input": "frames: [T, B, C, H, W] float32 "
            "from the recipe", "evstream.outputs": outputs}


def export_checkpoint(path: os.PathLike | str, out: os.PathLike | str, *, format: str, dt: float | None = None,
                      avg_pool: str = "sum", overwrite: bool = False) -> dict:
    """Write a live checkpoint as a NIR graph (``format="nir"``) or an ONNX file (``"onnx"``).

    Args:
        path: a checkpoint of ``evstream eval --export`` (or a bundled ``models/*.pt``).
        out: the file to write (atomically).
        format: ``"nir"`` or ``"onnx"``.
        dt: seconds per time step in the NIR graph (default :data:`evstream.export.nir.DEFAULT_DT`).
        avg_pool: NIR pooling, ``"sum"`` (folded, norse reads it) or ``"avg"`` (see :func:`~evstream.export.nir.to_nir`).
        overwrite: replace an existing ``out``.

    Returns:
        A summary: format, output path, bytes, seconds, kind, net, input shape ``[T, B, C, H, W]``.

    Raises:
        UserError: a bad format or output, an unusable checkpoint, or a net the format cannot express.
    """
    if format not in FORMATS:
        raise UserError(f"unknown export format {format!r}; known: {', '.join(FORMATS)}")
    check_output(out, source=path, overwrite=overwrite)
    item = load_exportable(path)
    started = time.perf_counter()
    if format == "nir":
        from evstream.export.nir import DEFAULT_DT, import_nir, to_nir

        graph = to_nir(item.model, item.frames[1:], dt=DEFAULT_DT if dt is None else dt, avg_pool=avg_pool)
        graph.metadata.update({"net": item.info["net"], "names": json.dumps(list(item.info["names"])),
                               "recipe": _metadata(item)["evstream.recipe"]})
        with atomic_output(out) as tmp:
            import_nir().write(tmp, graph)
        detail = {"nodes": len(graph.nodes), "dt": graph.metadata["dt"]}
    else:
        module = DetectorOutputs(item.model) if item.kind == "detector" else item.model
        names = ("boxes", "scores") if item.kind == "detector" else ("rates",)
        export_onnx(module, item.example(), out, output_names=names, metadata=_metadata(item))
        detail = {"outputs": list(names)}
    seconds = time.perf_counter() - started
    return {"format": format, "path": str(out), "bytes": os.path.getsize(out), "seconds": round(seconds, 3),
            "kind": item.kind, "net": item.info["net"], "input": [item.frames[0], "B", *item.frames[1:]], **detail}


def describe(summary: dict) -> str:
    """One line for the command: what was written where."""
    shape = "x".join(str(s) for s in summary["input"])
    extra = (f"{summary['nodes']} nodes, dt {summary['dt']:g} s" if summary["format"] == "nir" else
             f"outputs {', '.join(summary['outputs'])}")
    return (f"wrote {summary['path']} ({summary['bytes']:,} bytes, {summary['format']}: {summary['net']}, "
            f"input {shape}, {extra}) in {summary['seconds']:.1f} s")

