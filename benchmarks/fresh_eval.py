"""Evaluate a model card's checkpoint on fresh test sets, made with seeds never used for its training or
selection, and print each set's metrics with their mean and spread.

Reads the card's ``fresh_test`` section::

    fresh_test:
      seeds: [101, 102]            # two or more
      data: evstream simulate gesture --out {data} --users 21 --test-users 20 --seconds 1.5 --seed {seed}
      eval: evstream eval gesture --data {data} --checkpoint models/gesture_tasnn.pt ...
      used_seeds: [11, 12]         # optional: data seeds the card uses that its data.command does not spell --seed N

and runs, per seed, ``data`` (``{data}``: a folder of that seed's own) and then ``eval``, whose
printed JSON object is that set's metrics (the model's and the events-blind baselines the task
reports beside them). A seed that the card's ``data.command`` passes as ``--seed N``, or that
``used_seeds`` lists, is refused. Prints one JSON object: the seeds, the metrics per seed, and per
numeric metric the mean, the sample standard deviation and the range over the seeds, and the wall
time of each command.

``python benchmarks/fresh_eval.py models/gesture_tasnn.yaml [--seeds 101 102] [--keep DIR]``; with
``--keep`` the sets stay in ``DIR/seed_<S>`` and a later run reuses a complete one (its data
command is skipped).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from _card import load_card, printed_metrics, run_command

DONE = ".fresh_eval_done"
"""Written into a seed's folder once its data command has succeeded: marks a set ``--keep`` may reuse."""


def used_seeds(card: dict) -> set[int]:
    """The data seeds a card uses: ``--seed N`` in its ``data.command`` and its ``fresh_test.used_seeds``."""
    command = (card.get("data") or {}).get("command") or ""
    return {int(n) for n in re.findall(r"--seed[\s=]+(\d+)", command)} | set(card["fresh_test"].get("used_seeds", []))


def fill(command: str, folder: Path, seed: int) -> str:
    """``command`` with ``{data}`` and ``{seed}`` replaced (other braces, e.g. YAML values, stay as written)."""
    return command.replace("{data}", str(folder)).replace("{seed}", str(seed))


def summarise(per_seed: dict[int, dict]) -> dict:
    """Mean, sample standard deviation (ddof 1) and [min, max] over the seeds of every numeric metric."""
    keys = [k for k, v in next(iter(per_seed.values())).items() if isinstance(v, (int, float))]
    summary = {}
    for key in keys:
        values = np.array([metrics[key] for metrics in per_seed.values()], dtype=np.float64)
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)),
                        "range": [float(values.min()), float(values.max())]}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("card", help="the model card (YAML) with a fresh_test section, e.g. models/gesture_tasnn.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="S",
                        help="data seeds of the fresh sets (default: the card's fresh_test.seeds); two or more")
    parser.add_argument("--keep", metavar="DIR",
                        help="write the sets into DIR/seed_<S> and keep them; a complete one there is reused")
    args = parser.parse_args(argv)
    card = load_card(args.card)
    fresh = card.get("fresh_test")
    if not isinstance(fresh, dict) or not {"seeds", "data", "eval"} <= set(fresh):
        sys.exit(f"{args.card}: the card has no fresh_test section with seeds, data and eval")
    seeds = args.seeds or fresh["seeds"]
    reused = sorted(set(seeds) & used_seeds(card))
    if len(set(seeds)) < 2 or reused:
        sys.exit(f"{args.card}: need two or more distinct fresh seeds that the card's data does not use; got {seeds}"
                 + (f" ({reused} used by the card)" if reused else ""))
    per_seed, wall = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp).resolve()
        for seed in seeds:
            folder = root / f"seed_{seed}"
            data_s = 0.0
            if not (folder / DONE).exists():
                folder.mkdir(parents=True, exist_ok=True)
                data_s, _ = run_command(f"{args.card}: the data command of seed {seed}",
                                        fill(fresh["data"], folder, seed))
                (folder / DONE).touch()
            eval_s, printed = run_command(f"{args.card}: the eval command of seed {seed}",
                                          fill(fresh["eval"], folder, seed))
            per_seed[seed] = printed_metrics(printed)
            wall[seed] = {"data_s": round(data_s, 1), "eval_s": round(eval_s, 1)}
            print(f"seed {seed}: data {data_s:.0f} s, eval {eval_s:.0f} s: {json.dumps(per_seed[seed])}",
                  file=sys.stderr, flush=True)
    print(json.dumps({"card": str(args.card), "seeds": seeds, "summary": summarise(per_seed),
                      "per_seed": per_seed, "wall": wall}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
