"""The ``evstream`` command: one subcommand per job (info, convert, simulate, ...)."""

from __future__ import annotations

import argparse
import json
import sys

from evstream.events import EventFileError


def _info(args) -> int:
    from evstream.io.info import file_info

    info = file_info(args.path, **reader_options(args))
    if args.json:
        print(json.dumps(info))
        return 0
    rate = f"{info['rate_ev_per_s'] / 1e6:.3f} M events/s" if info["rate_ev_per_s"] else "n/a"
    print(f"{info['path']}\n  format      {info['format']}\n  sensor      {info['width']} x {info['height']}\n"
          f"  events      {info['events']:,}\n  time        {info['t_start']} .. {info['t_end']} us "
          f"({info['duration_s']:.6f} s)\n  mean rate   {rate}")
    return 0


def _convert(args) -> int:
    from evstream.io.convert import convert

    n = convert(args.input, args.output, format=args.format, start_us=args.start, end_us=args.end,
                crop=args.crop, progress=not args.quiet, **reader_options(args))
    print(f"wrote {n:,} events to {args.output}")
    return 0


def reader_options(args) -> dict:
    options = {}
    if getattr(args, "chip", None):
        options["chip"] = args.chip
    if getattr(args, "camera", None):
        options["camera"] = args.camera
    if getattr(args, "strict", False):
        options["strict"] = True
    return options


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chip", help="AEDAT 2.0 chip when the header names none (e.g. DVS128)")
    parser.add_argument("--camera", choices=["left", "right"], help="MVSEC/DSEC camera")
    parser.add_argument("--strict", action="store_true", help="fail on a truncated file instead of warning")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="evstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="format, sensor size, event count and time span of an event file")
    info.add_argument("path")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    add_reader_arguments(info)
    info.set_defaults(run=_info)

    convert = sub.add_parser("convert", help="convert an event file to another format (streaming)")
    convert.add_argument("input")
    convert.add_argument("output", help="output path; the suffix picks the format (.h5 .dat .raw .aedat4 .npz .bin)")
    convert.add_argument("--format", help="output format name (e.g. evt2 for a .raw file)")
    convert.add_argument("--start", type=int, metavar="US", help="keep events at or after this time (us)")
    convert.add_argument("--end", type=int, metavar="US", help="keep events before this time (us)")
    convert.add_argument("--crop", type=int, nargs=4, metavar=("X", "Y", "W", "H"), help="keep a rectangle")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")
    add_reader_arguments(convert)
    convert.set_defaults(run=_convert)

    for module in _COMMAND_MODULES:
        __import__(module, fromlist=["register"]).register(sub)
    return parser


_COMMAND_MODULES = ["evstream.train.commands", "evstream.sim.commands", "evstream.viz.commands"]
"""Modules whose ``register(subparsers)`` adds further subcommands."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``evstream`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (EventFileError, ValueError, FileNotFoundError) as err:
        print(f"evstream {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
