"""``evstream export``: a live checkpoint as a NIR graph or an ONNX file."""

from __future__ import annotations

import argparse


def _export(args) -> int:
    from evstream.export.checkpoint_export import describe, export_checkpoint

    summary = export_checkpoint(args.checkpoint, args.out, format=args.format, dt=args.dt, avg_pool=args.avg_pool,
                                overwrite=args.force)
    print(describe(summary))
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def register(sub) -> None:
    """Add the ``export`` subcommand."""
    export = sub.add_parser(
        "export", help="write a live checkpoint as a NIR graph or an ONNX file",
        description="Write a live checkpoint (evstream eval --export, models/*.pt) for other tools: NIR for "
                    "spiking classifiers (snntorch, norse, sinabs, rockpool, lava-dl read it; LIF time constants "
                    "are tau_steps * dt), ONNX for the classifiers and the fused integer-spike SpikeYOLO (unrolled "
                    "over the T time steps; onnxruntime runs it).")
    export.add_argument("checkpoint", help="live checkpoint to export (.pt with its input recipe)")
    export.add_argument("--format", required=True, choices=("nir", "onnx"), help="output format")
    export.add_argument("--out", required=True, metavar="FILE", help="file to write (.nir or .onnx)")
    export.add_argument("--dt", type=_seconds, metavar="SECONDS",
                        help="NIR only: seconds per time step; time constants are written as tau_steps * dt "
                             "(default 1e-4, the step snntorch's NIR importer assumes)")
    export.add_argument("--avg-pool", choices=("sum", "avg"), default="sum",
                        help="NIR only: write average pools as sum pools with the divisor folded into the conv "
                             "before them (sum, what norse reads) or as NIR AvgPool2d (avg)")
    export.add_argument("--force", action="store_true", help="replace an existing output file")
    export.set_defaults(run=_export)
