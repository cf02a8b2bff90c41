"""The ``evstream`` command: one subcommand per job (info, convert, simulate, train, live, ...).

:func:`main` is the one place where failures become messages: a bad file, setting or checkpoint
prints ``evstream <command>: error: <what and why>`` on one line and exits 2, Ctrl-C exits 130,
and a closed output pipe (``evstream info F | head -1``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import evstream
from evstream.errors import UserError
from evstream.io.options import add_reader_arguments, reader_options

DESCRIPTION = ("Event-camera streams for spiking neural networks: read and convert event files, simulate "
               "recordings, train and evaluate networks, run them live on a camera or a file.")

EXIT_ERROR = 2
"""Exit status of a command that failed on its input (argparse's usage errors use it too)."""

EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, as shells report it)."""


def _info(args) -> int:
    from evstream.io.info import file_info
    from evstream.jsonout import to_json

    info = file_info(args.path, **reader_options(args))
    if args.json:
        print(to_json(info))
        return 0
    rate = f"{info['rate_ev_per_s'] / 1e6:.3f} M events/s" if info["rate_ev_per_s"] else "n/a"
    print(f"{info['path']}\n  format      {info['format']}\n  sensor      {info['width']} x {info['height']}\n"
          f"  events      {info['events']:,}\n  time        {info['t_start']} .. {info['t_end']} us "
          f"({info['duration_s']:.6f} s)\n  mean rate   {rate}")
    for note in info["notes"]:
        print(f"  note        {note}")
    return 0


def _convert(args) -> int:
    from evstream.io.convert import convert

    n = convert(args.input, args.output, format=args.format, start_us=args.start, end_us=args.end,
                crop=args.crop, progress=not args.quiet, overwrite=args.force, **reader_options(args))
    print(f"wrote {n:,} events to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="evstream", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {evstream.__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="format, sensor size, event count and time span of an event file",
                          description="Read an event file once and print its format, sensor size, event count, "
                                      "time span and mean rate, and what the reader inferred where the file "
                                      "does not say it.")
    info.add_argument("path", help="event file (any readable format; detected from its bytes)")
    info.add_argument("--json", action="store_true", help="print one JSON object (null where undefined)")
    add_reader_arguments(info)
    info.set_defaults(run=_info)

    convert = sub.add_parser("convert", help="convert an event file to another format (streaming)",
                             description="Stream an event file into another format, optionally cut in time and "
                                         "space. The output appears only when complete; an existing one is kept "
                                         "unless --force.")
    convert.add_argument("input", help="event file to read (any readable format)")
    convert.add_argument("output", help="output path; the suffix picks the format (.h5 .dat .raw .aedat4 .npz .bin)")
    convert.add_argument("--format", help="output format name (e.g. evt2 for a .raw file)")
    convert.add_argument("--start", type=int, metavar="US", help="keep events at or after this time (us)")
    convert.add_argument("--end", type=int, metavar="US", help="keep events before this time (us)")
    convert.add_argument("--crop", type=int, nargs=4, metavar=("X", "Y", "W", "H"), help="keep a rectangle")
    convert.add_argument("--force", action="store_true", help="replace an existing output file")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")
    add_reader_arguments(convert)
    convert.set_defaults(run=_convert)

    for module in _COMMAND_MODULES:
        __import__(module, fromlist=["register"]).register(sub)
    return parser


_COMMAND_MODULES = ["evstream.train.commands", "evstream.sim.commands", "evstream.viz.commands"]
"""Modules whose ``register(subparsers)`` adds further subcommands."""


def error_message(err: BaseException) -> str:
    """One line saying what went wrong: the message of a known error, ``path: reason`` of an OSError,
    the type and message of anything else."""
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename is not None else ""
        return f"{where}{err.strerror}"
    text = " ".join(str(err).split())
    if isinstance(err, (ValueError, OSError)):  # UserError, EventFileError, CheckpointError, the library's checks
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _quiet_broken_pipe() -> int:
    """Python's recipe for a reader that went away: send the rest of stdout to devnull, exit 1."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``evstream`` console script; returns the exit status.

    Every failure of a command ends here as one line on stderr, ``evstream <command>: error: ...``,
    and exit status 2; set ``EVSTREAM_TRACEBACK=1`` to see the traceback of an unexpected one.
    Warnings (a truncated file read without ``--strict``) are one line too.
    """
    args = build_parser().parse_args(argv)
    prefix = f"evstream {args.command}"

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{prefix}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # one line, whatever failed; the traceback only on request
        if os.environ.get("EVSTREAM_TRACEBACK") and not isinstance(err, UserError):
            raise
        print(f"{prefix}: error: {error_message(err)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
