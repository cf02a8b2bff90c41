"""Re-run a model card's commands and check the weights against its bundled checkpoint, bit for bit.

Reads ``data.command`` (when the card simulates its data), ``training.command`` and
``training.export`` from the card and runs them as written, from the repository root, except that
every folder or file they write (the values of ``--out``, ``--export`` and ``task.cache_dir=``) is
moved into a temporary folder, so nothing of the repository (``models/``) is touched. Prints the
wall time of each command, the metrics the export printed, and the SHA-256 of the re-run's state
dict, the bundled checkpoint's and the card's ``training.state_sha256``
(:func:`evstream.checkpoint.state_digest`). Exit status 0 only when the three are the same.

A card's commands take minutes to an hour (the card's ``wall_time``), so this is a script, not a
test: ``python benchmarks/reproduce_card.py models/gesture_tasnn.yaml [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import torch

from _card import ROOT, load_card, printed_metrics, run_command
from evstream.checkpoint import state_digest

WRITTEN = re.compile(r"(?:--out\s+|--export\s+|task\.cache_dir=)(\S+)")
"""The paths a card's commands write: run and data folders, the exported checkpoint, representation caches."""


def card_commands(card: dict) -> list[tuple[str, str]]:
    """``(name, command)`` of the card's data, training and export commands, in the order they run."""
    data = (card.get("data") or {}).get("command")
    steps = [("data", data)] if data else []
    return steps + [("training", card["training"]["command"]), ("export", card["training"]["export"])]


def relocate(commands: list[str], into: Path) -> list[str]:
    """``commands`` with every path they write (and anything read under it) moved under ``into``.

    ``data/gesture_sim`` becomes ``<into>/data/gesture_sim``, ``/tmp/det/road`` ``<into>/tmp/det/road``,
    wherever it appears as a whole path or a path's leading folders.
    """
    written = sorted({path for command in commands for path in WRITTEN.findall(command)}, key=len, reverse=True)
    if not written:
        return list(commands)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, written)) + r")(?![\w.-])")
    return [pattern.sub(lambda m: str(into / m.group(1).lstrip("/")), command) for command in commands]


def weights_digest(path: Path) -> str:
    """SHA-256 of the ``model`` state dict of a checkpoint file."""
    return state_digest(torch.load(path, map_location="cpu", weights_only=True)["model"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("card", help="the model card (YAML), e.g. models/gesture_tasnn.yaml")
    parser.add_argument("--keep", metavar="DIR", help="write into DIR and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    card = load_card(args.card)
    try:
        steps = card_commands(card)
    except (KeyError, TypeError) as err:
        sys.exit(f"{args.card}: the card has no training.command and training.export ({err})")
    export = re.search(r"--export\s+(\S+)", steps[-1][1])
    if export is None or Path(export.group(1)) != Path(card["checkpoint"]):
        sys.exit(f"{args.card}: training.export must write the card's checkpoint ({card['checkpoint']}) with --export")
    with tempfile.TemporaryDirectory() as tmp:
        into = Path(args.keep or tmp).resolve()
        into.mkdir(parents=True, exist_ok=True)
        total, printed = 0.0, ""
        for (name, _), command in zip(steps, relocate([command for _, command in steps], into), strict=True):
            seconds, printed = run_command(f"{args.card}: the {name} command", command)
            total += seconds
            print(f"{name} command: {seconds:.0f} s wall", flush=True)
        rerun = weights_digest(into / card["checkpoint"].lstrip("/"))
    bundled = weights_digest(ROOT / card["checkpoint"])
    stated = card["training"].get("state_sha256")
    print(f"all commands: {total:.0f} s wall ({total / 60:.1f} min), torch {torch.__version__}")
    print("re-run metrics:", json.dumps(printed_metrics(printed)))
    print(f"state sha256 bundled {bundled}\n             re-run  {rerun}\n             card    {stated}")
    same = bundled == rerun == stated
    print("bit-identical" if same else "DIFFERENT weights")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
