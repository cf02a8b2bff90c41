"""Command-line options for opening event files, shared by every command that reads one."""

from __future__ import annotations

import argparse

from evstream.errors import UserError
from evstream.io.atis_bin import DATASETS

__all__ = ["add_reader_arguments", "reader_options"]


def reader_options(args: argparse.Namespace) -> dict:
    """The :func:`evstream.open_events` options of the arguments :func:`add_reader_arguments` added."""
    options = {}
    if getattr(args, "chip", None):
        options["chip"] = args.chip
    if getattr(args, "camera", None):
        options["camera"] = args.camera
    if getattr(args, "strict", False):
        options["strict"] = True
    if getattr(args, "sensor_size", None):
        width, height = args.sensor_size
        if width <= 0 or height <= 0:
            raise UserError(f"--sensor-size {width} {height}: width and height must be > 0")
        options["sensor_size"] = (width, height, 2)
    if getattr(args, "dataset", None):
        if "sensor_size" in options:
            raise UserError("--dataset and --sensor-size both give the sensor: pass one of them")
        options["dataset"] = args.dataset
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise UserError(f"--threads {args.threads}: must be at least 1")
        options["threads"] = args.threads
    return options


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of opening an event file (``--chip``, ``--camera``, ``--strict``, ``--sensor-size``,
    ``--dataset``, ``--threads``)."""
    parser.add_argument("--chip", help="AEDAT 2.0 chip when the header names none (e.g. DVS128)")
    parser.add_argument("--camera", choices=["left", "right"], help="MVSEC/DSEC camera")
    parser.add_argument("--strict", action="store_true", help="fail on a truncated file instead of warning")
    parser.add_argument("--sensor-size", dest="sensor_size", type=int, nargs=2, metavar=("W", "H"),
                        help="sensor geometry of files that lack it (headerless DAT or RAW, ATIS .bin, npz, AEDAT 3.1)")
    parser.add_argument("--dataset", choices=sorted(DATASETS),
                        help="data set an ATIS .bin file comes from, for its sensor (nmnist: 34x34; ncaltech101: "
                             "the events' extent within 240x180)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="threads decoding the file's parts where its reader splits them (whole-file reads, "
                             "the ATIS .bin geometry scan); default: $EVSTREAM_THREADS, else one per CPU up to 8")
