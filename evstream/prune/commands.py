"""``evstream prune TASK``: lottery tickets by iterative pruning with rewinding (magnitude or probabilistic)."""

from __future__ import annotations

import argparse

CRITERIA = ("magnitude", "probabilistic")
"""The criteria's names (:data:`evstream.prune.criteria.CRITERIA`; here without importing torch)."""


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"a sparsity is a fraction in (0, 1), got {text!r}")
    return value


def _prune(args) -> int:
    from evstream.errors import UserError
    from evstream.jsonout import to_json
    from evstream.prune.lottery import find_tickets
    from evstream.train.commands import _building, _check_device, _settings
    from evstream.train.config import train_config

    cls, defaults, explicit, task_options = _settings(args)
    if not hasattr(cls, "export") or not hasattr(cls, "class_names"):
        raise UserError(f"evstream prune works on classification tasks, not {args.task}")
    train = train_config({**defaults, "out_dir": f"runs/prune_{args.task}", **explicit})
    _check_device(train.device)
    with _building(args.task):
        task = cls(args.data, **task_options)
    try:
        rows = find_tickets(task, train, criteria=args.criterion or ["magnitude"], sparsities=args.sparsity,
                            rewind_epoch=args.rewind_epoch, round_epochs=args.round_epochs,
                            calibration_batches=args.calibration_batches)
    except ValueError as err:
        raise UserError(f"evstream prune: {err}") from None
    print(to_json([{k: v for k, v in row.items() if k != "layers"} for row in rows]))
    return 0


def register(sub) -> None:
    """Add the ``prune`` subcommand."""
    from evstream.train.commands import _common

    prune = sub.add_parser(
        "prune", help="find sparse lottery tickets: iterative pruning with weight rewinding",
        description="Train a task's net dense (or reuse <out>/dense), then for each sparsity in turn: score the "
                    "weights, prune every conv and linear layer to it, rewind the kept weights to the dense run's "
                    "early epoch and retrain with the masks held. Writes <out>/<criterion>/sparsity_NN/pruned.pt "
                    "(live checkpoints with their masks; evstream export keeps the zeros) and <out>/<criterion>/results.json; "
                    "prints the validation metrics of each round.")
    _common(prune)
    prune.add_argument("--criterion", action="append", choices=CRITERIA,
                       help="what to prune: magnitude (smallest |w|, the lottery-ticket baseline) or probabilistic "
                            "(least likely to flip a spike, after Yao et al. 2023); repeatable (default magnitude)")
    prune.add_argument("--sparsity", type=_fraction, nargs="+", default=[0.5, 0.7, 0.8, 0.9, 0.95], metavar="S",
                       help="increasing target sparsities, one pruning round each (default 0.5 0.7 0.8 0.9 0.95)")
    prune.add_argument("--epochs", type=int, help="epochs of the dense run (>= 1); = --set train.epochs=")
    prune.add_argument("--rewind-epoch", type=int, default=1, metavar="E",
                       help="rewind kept weights to the dense run's weights after E epochs (0: the initialisation; "
                            "default 1)")
    prune.add_argument("--round-epochs", type=int, metavar="N",
                       help="epochs of retraining per round (default: the dense run's epochs after the rewind epoch)")
    prune.add_argument("--calibration-batches", type=int, default=2, metavar="N",
                       help="probabilistic criterion: training batches its membrane statistics are measured on "
                            "(default 2)")
    prune.add_argument("--lr", type=float, help="learning rate of the dense run and of each round; = --set train.lr=")
    prune.add_argument("--seed", type=int, help="seed of data order and initialisation; = --set train.seed=")
    prune.add_argument("--out", help="output folder (dense/, <criterion>/sparsity_NN/ and <criterion>/results.json); "
                                     "default runs/prune_<task>")
    prune.set_defaults(run=_prune)
