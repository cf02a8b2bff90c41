"""ONNX files of evstream's nets: torch.export (the dynamo exporter) unrolled over the T time steps.

The spiking layers run their T steps in Python loops, so the graph is static in T (the
checkpoint's) and dynamic in the batch. Neuron states start at rest in every call (a live
classifier's default, ``carry_state=False``). ONNX needs the ``onnx`` and ``onnxscript`` packages
(the dynamo exporter's); onnxruntime runs the files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from evstream.errors import UserError
from evstream.io.atomic import atomic_output

__all__ = ["DetectorOutputs", "export_onnx"]


class DetectorOutputs(nn.Module):
    """SpikeYOLO's decoded predictions as one graph: ``frames -> (boxes, scores)``.

    ``boxes [B, A, 4]`` are xyxy in letterboxed input pixels, ``scores [B, A, nc]`` sigmoid class
    probabilities (:meth:`SpikeYOLO.predict`); non-maximum suppression is left to the caller.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.predict(frames)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence torch.onnx's progress lines and internal deprecation warnings (not the caller's)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _check_packages() -> None:
    """UserError naming the install command when the exporter's packages (the ``onnx`` extra) are missing."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise UserError(f"ONNX export needs the '{err.name}' package: pip install 'evstream[onnx]'") from None


def export_onnx(module: nn.Module, example: torch.Tensor, path: os.PathLike | str, *, input_name: str = "frames",
                output_names: Sequence[str], metadata: dict[str, str] | None = None, dynamic_batch: bool = True
                ) -> None:
    """Write ``module``'s forward on inputs shaped like ``example`` as an ONNX file (one file, weights inside).

    Args:
        module: a net in eval mode taking one ``[T, B, ...]`` tensor.
        example: an input of the right shape (its values do not matter); a batch of 2 or more, so that the
            exporter does not specialise the batch dimension to 1.
        path: the ``.onnx`` file, written atomically.
        input_name, output_names: the graph's input and output names.
        metadata: strings stored as the model's ``metadata_props`` (recipe, class names, ...).
        dynamic_batch: make dimension 1 (the batch) dynamic.

    Raises:
        UserError: the onnx / onnxscript packages are missing, or the exporter fails (first line).
    """
    _check_packages()
    module = module.eval()
    dynamic = ({1: torch.export.Dim("batch")},) if dynamic_batch else None
    with _quiet_exporter(), torch.no_grad():
        try:
            program = torch.onnx.export(module, (example,), None, dynamo=True, verbose=False,
                                        input_names=[input_name], output_names=list(output_names),
                                        dynamic_shapes=dynamic, optimize=True)
        except Exception as err:  # torch.export and the translation raise many types; all mean "not exportable"
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"ONNX export of {type(module).__name__} failed: {first}") from None
    for key, value in (metadata or {}).items():
        program.model.metadata_props[key] = str(value)
    for node in program.model.graph:  # the exporter's Python stack traces name this machine's paths
        node.metadata_props.pop("pkg.torch.onnx.stack_trace", None)
    with atomic_output(path) as tmp:
        program.save(tmp, external_data=False)
