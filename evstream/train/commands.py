"""``evstream train TASK`` and ``evstream eval TASK``: the shared trainer driven from the command line.

Settings come, last one winning, from the task's defaults, the ``--recipe`` (``cpu``: those
defaults; ``paper``: the official code's hyperparameters, :mod:`evstream.train.recipes`),
``--config FILE``, ``--set group.key=value`` and the flags (``--epochs`` is ``--set
train.epochs=...``); all are checked against their targets' types before anything runs
(:mod:`evstream.train.config`).

``--resume`` continues ``<out>/last.pt`` with the train settings saved in it. A setting this
command gives explicitly (config file, ``--set``, flags) replaces the saved one (``--epochs 20``
trains a 10-epoch run longer), except the optimiser and schedule settings
(:data:`~evstream.train.trainer.OPTIMISER_SETTINGS`: lr, momentum, ...), which the saved optimiser
state holds: those stay as saved. Every difference is reported on stderr, saying which value is
used. Task settings are not saved in ``last.pt``: they come from the command as usual, and a
model they do not fit is an error naming the mismatched weights.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from contextlib import contextmanager
from pathlib import Path

from evstream.errors import UserError
from evstream.train.recipes import RECIPES, describe, recipe_settings

TASKS = {
    "gesture": "evstream.train.tasks.classification:GestureTask",
    "cifar10dvs": "evstream.train.tasks.classification:Cifar10DvsTask",
    "ncaltech101": "evstream.train.tasks.classification:NCaltech101Task",
    "gen1": "evstream.train.tasks.detection:Gen1Task",
    "mvsec": "evstream.train.tasks.depth:MvsecTask",
    "nmnist": "evstream.train.tasks.nmnist:NMNISTTask",
}
"""Task name -> task class (constructed as ``Task(data_dir, **task_options)``)."""

FLAG_SETTINGS = {"epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr", "out": "train.out_dir",
                 "device": "train.device", "seed": "train.seed", "net": "task.net", "scale": "task.scale",
                 "cache_dir": "task.cache_dir"}
"""Command-line flag -> the config entry it sets (after --config and --set: the flag wins)."""


RECIPE_EPILOG = ("--recipe paper (task, net: settings, source):\n" + describe()
                 + "\nOther tasks and nets have no official code to follow: only --recipe cpu.")
"""The paper recipes, listed under ``evstream train --help`` and ``evstream eval --help``."""


def task_class(name: str):
    """The task class registered as ``name``."""
    module, attr = TASKS[name].split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise UserError(f"task {name!r} is not available in this build ({err})") from None


def _settings(args) -> tuple[type, dict, dict, dict]:
    """``(task class, default train settings, explicit train settings, checked task options)``."""
    from evstream.train.config import check_options, load_config

    config = load_config(args.config, args.set)
    for flag, key in FLAG_SETTINGS.items():
        value = getattr(args, flag, None)
        if value is not None:  # already typed by argparse: not parsed as YAML (--out 'runs/[a]' is a path)
            group, name = key.split(".")
            config[group][name] = value
    cls = task_class(args.task)
    recipe_train, recipe_task = recipe_settings(args.task, args.recipe, _net(cls, config["task"]))
    defaults = {**getattr(cls, "train_defaults", {}), **recipe_train, "out_dir": f"runs/{args.task}"}
    return cls, defaults, config["train"], check_options("task", cls, {**recipe_task, **config["task"]})


def _net(cls: type, task_options: dict) -> str | None:
    """The net a task will build: its ``net`` setting, else the class's default (None: the task has no choice)."""
    parameter = inspect.signature(cls).parameters.get("net")
    return task_options.get("net", None if parameter is None else parameter.default)


def _resumed_settings(defaults: dict, explicit: dict) -> dict:
    """The train settings of a resumed run (module docstring), the choices reported on stderr."""
    from evstream import checkpoint
    from evstream.train.config import check_options
    from evstream.train.trainer import OPTIMISER_SETTINGS, TrainConfig

    path = Path(explicit.get("out_dir", defaults["out_dir"])) / "last.pt"
    if not path.exists():
        print(f"evstream train: nothing to resume in {path.parent} (no last.pt): starting at epoch 1", file=sys.stderr)
        return {**defaults, **explicit}
    state = checkpoint.load(path)
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("epoch"), int):
        raise checkpoint.CheckpointError(path, "not a training checkpoint (no saved settings and epoch)")
    known = set(inspect.signature(TrainConfig).parameters)
    try:
        saved = check_options("train", TrainConfig, {k: v for k, v in state["config"].items() if k in known})
    except UserError as err:
        raise checkpoint.CheckpointError(path, f"its saved settings are invalid ({err})") from None
    saved.pop("out_dir", None)  # the run is where last.pt is now (its folder may have moved)
    differ = {key: value for key, value in explicit.items() if key in saved and saved[key] != value}
    kept = [f"{key} {saved[key]!r} (not {value!r})" for key, value in differ.items() if key in OPTIMISER_SETTINGS]
    changed = [f"{key} {saved[key]!r} -> {value!r}" for key, value in differ.items() if key not in OPTIMISER_SETTINGS]
    print(f"evstream train: resuming {path} after epoch {state['epoch']} with its saved train settings"
          + (f"; changed by this command: {', '.join(changed)}" if changed else "")
          + (f"; kept, as the saved optimiser state holds them (start a new run to change them): {', '.join(kept)}"
             if kept else ""), file=sys.stderr)
    return {**defaults, **saved, **{k: v for k, v in explicit.items() if k not in OPTIMISER_SETTINGS or k not in saved}}


def _check_device(name: str) -> None:
    """Refuse a device string torch cannot parse, or a CUDA device this machine does not have."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UserError(f"train.device: {err}") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UserError(f"train.device: {name!r}, but this machine has {torch.cuda.device_count()} CUDA devices "
                        "available to torch")


@contextmanager
def _building(task: str):
    """Turn a network builder's rejection of the settings (a TypeError: unknown or bad keyword) into a UserError."""
    try:
        yield
    except TypeError as err:
        raise UserError(f"cannot build the {task} model from these settings ({err})") from None


def _train(args) -> int:
    from evstream.jsonout import to_json
    from evstream.train.config import train_config
    from evstream.train.trainer import Trainer

    cls, defaults, explicit, task_options = _settings(args)
    train = train_config(_resumed_settings(defaults, explicit) if args.resume else {**defaults, **explicit})
    _check_device(train.device)
    with _building(args.task):
        task = cls(args.data, **task_options)
        trainer = Trainer(task, train, collate_fn=getattr(task, "collate", None))
    history = trainer.fit(resume=args.resume)
    if history:
        print(to_json(history[-1]))
    return 0


def _eval(args) -> int:
    import torch

    from evstream import checkpoint
    from evstream.io.atomic import atomic_output, check_output
    from evstream.jsonout import to_json
    from evstream.train.config import train_config

    cls, defaults, explicit, task_options = _settings(args)
    train = train_config({**defaults, **explicit})
    _check_device(train.device)
    if args.export:
        if not hasattr(cls, "export"):
            raise UserError(f"--export is not available for the {args.task} task")
        check_output(args.export, source=args.checkpoint, overwrite=True)
    state = checkpoint.load(args.checkpoint)
    with _building(args.task):
        task = cls(args.data, **task_options)
        model = task.build_model_for(state) if hasattr(task, "build_model_for") else task.build_model()
    checkpoint.load_model_state(model, state, args.checkpoint)
    model.to(train.device).eval()
    split = args.split or getattr(task, "test_split", None)
    if split is None:
        _, test_set = task.datasets()
    elif hasattr(task, "eval_dataset"):
        test_set = task.eval_dataset(split)
    else:
        raise UserError(f"--split is not available for the {args.task} task")
    device = torch.device(train.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = train.cudnn_benchmark
    loader = torch.utils.data.DataLoader(test_set, batch_size=train.batch_size, num_workers=train.num_workers,
                                         collate_fn=getattr(task, "collate", None), pin_memory=device.type == "cuda")
    with torch.no_grad():
        metrics = task.evaluate(model, loader, device, progress=train.progress)
    print(to_json(metrics))
    if args.export:
        with atomic_output(args.export) as tmp:
            task.export(model, tmp, metrics=metrics)
        print(f"wrote {args.export}")
    return 0


def add_recipe_argument(parser: argparse.ArgumentParser) -> None:
    """``--recipe cpu|paper``: every command that builds a task from settings takes it."""
    parser.add_argument("--recipe", choices=RECIPES, default="cpu",
                        help="default settings: cpu (the task's own, sized for a laptop) or "
                             "paper (the official code's hyperparameters for the task and net, listed under "
                             "'evstream train --help'); --config, --set and the flags override them")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=sorted(TASKS), help="the task: dataset, network family, loss and metrics")
    parser.add_argument("--data", required=True, help="dataset folder in the dataset's own layout")
    parser.add_argument("--net", help="network name (task-specific, e.g. tasnn, masnn, ssnn); = --set task.net=")
    parser.add_argument("--scale", help="model scale (gen1: n, s, m, l, rt); = --set task.scale=")
    add_recipe_argument(parser)
    parser.add_argument("--config", metavar="YAML", help="YAML file with 'train' and 'task' groups of settings")
    parser.add_argument("--set", action="append", metavar="GROUP.KEY=VALUE",
                        help="override one setting, e.g. train.lr=1e-3 or task.time_steps=16 (repeatable; "
                             "the value is YAML; an unknown key lists the known ones)")
    parser.add_argument("--batch-size", dest="batch_size", type=int,
                        help="samples per batch; = --set train.batch_size=")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ...; = --set train.device=")
    parser.add_argument("--cache-dir", dest="cache_dir", metavar="DIR",
                        help="representation cache folder (default <data>/.evstream_cache when the data folder is "
                             "writable); = --set task.cache_dir=")


def register(subparsers) -> None:
    """Add the ``train`` and ``eval`` subcommands."""
    train = subparsers.add_parser("train", help="train a task's network (DDP: torchrun --nproc_per_node N)",
                                  description="Train a task's network; checkpoints, log.csv and tensorboard/ go to "
                                              "the run folder (--out).", epilog=RECIPE_EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(train)
    train.add_argument("--epochs", type=int, help="epochs to train (>= 1); = --set train.epochs=")
    train.add_argument("--lr", type=float, help="learning rate; = --set train.lr=")
    train.add_argument("--seed", type=int, help="seed of data order, initialisation and dropout; = --set train.seed=")
    train.add_argument("--out", help="run folder (checkpoints, log.csv, tensorboard/); default runs/<task>")
    train.add_argument("--resume", action="store_true",
                       help="continue from <out>/last.pt with its saved train settings; explicit ones (e.g. --epochs) "
                            "replace them except the optimiser's (lr, momentum, schedule...); differences are printed")
    train.set_defaults(run=_train)

    evaluate = subparsers.add_parser("eval", help="evaluate a checkpoint on a task's test split",
                                     description="Evaluate a checkpoint on a task's test split; prints the metrics "
                                                 "as one JSON object (null where a metric is undefined).",
                                     epilog=RECIPE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(evaluate)
    evaluate.add_argument("--checkpoint", required=True,
                          help="a training checkpoint (last.pt, best.pt) or an exported live checkpoint (--export)")
    evaluate.add_argument("--split", help="the split to evaluate (default: the task's test split; "
                                          "classification: train, test; nmnist: train, val, test)")
    evaluate.add_argument("--export", metavar="PATH",
                          help="also write the model as a live checkpoint (recipe, names, these metrics)")
    evaluate.set_defaults(run=_eval)
