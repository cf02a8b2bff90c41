"""``evstream cache TASK --data DIR``: build a task's representation cache before training.

The task is built from the same settings as ``evstream train`` (``--config``, ``--set``), and the
cache filled is the one its datasets open, so a training run with those settings reads every
sample from it. ``--shard I/N`` splits the work across machines or jobs, ``--workers N`` across
processes; a killed run is resumed by running it again (:mod:`evstream.datasets.cache_build`).
"""

from __future__ import annotations

import os

from evstream.errors import UserError
from evstream.train.commands import TASKS, add_recipe_argument, _building, _settings


def _cache(args) -> int:
    from evstream.datasets.cache_build import Shard, build_cache
    from evstream.jsonout import to_json

    shard = Shard.parse(args.shard)
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    cls, _, _, task_options = _settings(args)
    with _building(args.task):
        task = cls(args.data, **task_options)
    if task.cache_dir is None:
        raise UserError(f"{args.data}: the data folder is not writable, so there is no default cache folder; "
                        "pass --cache-dir DIR (and the same to evstream train)")
    if args.split:
        if not hasattr(task, "eval_dataset"):
            raise UserError(f"--split is not available for the {args.task} task")
        datasets = [task.eval_dataset(split) for split in args.split]
    else:
        datasets = task.datasets()
    summary = build_cache(datasets, workers=args.workers, shard=shard, progress=not args.quiet)
    print(to_json({**summary, "shard": f"{shard.index}/{shard.count}", "cache_dir": os.fspath(task.cache_dir)}))
    return 0


def register(subparsers) -> None:
    """Add the ``cache`` subcommand."""
    parser = subparsers.add_parser(
        "cache", help="build a task's representation cache ahead of training (resumable, workers, shards)",
        description="Decode and bin every sample a training run of TASK reads into its representation cache "
                    "(the same settings as evstream train give the same cache). A killed run resumes where it "
                    "stopped; --shard I/N lets N jobs (any scheduler, any machines sharing the cache folder) "
                    "each build their part. Prints a JSON summary.")
    parser.add_argument("task", choices=sorted(TASKS), help="the task whose datasets are cached")
    parser.add_argument("--data", required=True, help="dataset folder in the dataset's own layout")
    parser.add_argument("--cache-dir", dest="cache_dir", metavar="DIR",
                        help="cache folder (default <data>/.evstream_cache when the data folder is writable); "
                             "= --set task.cache_dir=; give evstream train the same")
    add_recipe_argument(parser)
    parser.add_argument("--config", metavar="YAML", help="YAML file with 'train' and 'task' groups of settings "
                                                         "(the task settings decide the representation)")
    parser.add_argument("--set", action="append", metavar="GROUP.KEY=VALUE",
                        help="override one setting, e.g. task.dt_ms=50 (repeatable; as evstream train)")
    parser.add_argument("--split", action="append", metavar="NAME",
                        help="cache this evaluation split (repeatable, e.g. test for evstream eval) instead of the "
                             "training and evaluation data evstream train reads")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes computing entries at once (default 1)")
    parser.add_argument("--shard", default="0/1", metavar="I/N",
                        help="build only shard I of N (0-based; every N-th sample from the I-th): run "
                             "0/N .. N-1/N anywhere, in any order, to build the whole cache (default 0/1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_cache)

