"""``evstream train TASK`` and ``evstream eval TASK``: the shared trainer driven from the command line."""

from __future__ import annotations

import argparse
import importlib
import json

TASKS = {
    "gesture": "evstream.train.tasks.classification:GestureTask",
    "cifar10dvs": "evstream.train.tasks.classification:Cifar10DvsTask",
    "ncaltech101": "evstream.train.tasks.classification:NCaltech101Task",
    "gen1": "evstream.train.tasks.detection:Gen1Task",
    "mvsec": "evstream.train.tasks.depth:MvsecTask",
    "nmnist": "evstream.train.tasks.nmnist:NMNISTTask",
}
"""Task name -> task class (constructed as ``Task(data_dir, **task_options)``)."""


def task_class(name: str):
    module, attr = TASKS[name].split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"task {name!r} is not available in this build ({err})") from None


def _configs(args):
    from evstream.train.config import load_config, train_config

    overrides = list(args.set or [])
    for flag, key in (("epochs", "train.epochs"), ("batch_size", "train.batch_size"), ("lr", "train.lr"),
                      ("out", "train.out_dir"), ("device", "train.device"), ("seed", "train.seed"),
                      ("net", "task.net"), ("scale", "task.scale")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    config = load_config(args.config, overrides)
    cls = task_class(args.task)
    train_values = {**getattr(cls, "train_defaults", {}), **config["train"]}
    train_values.setdefault("out_dir", f"runs/{args.task}")
    return cls, train_config(train_values), config["task"]


def _train(args) -> int:
    from evstream.train.trainer import Trainer

    cls, train, task_options = _configs(args)
    task = cls(args.data, **task_options)
    history = Trainer(task, train, collate_fn=getattr(task, "collate", None)).fit(resume=args.resume)
    if history:
        print(json.dumps(history[-1]))
    return 0


def _eval(args) -> int:
    import torch

    from evstream.train import checkpoint

    cls, train, task_options = _configs(args)
    if args.export and not hasattr(cls, "export"):
        raise SystemExit(f"evstream eval {args.task}: --export is not available for this task")
    task = cls(args.data, **task_options)
    model = task.build_model()
    model.load_state_dict(checkpoint.load(args.checkpoint)["model"])
    model.eval()
    split = args.split or getattr(task, "test_split", None)
    if split is None:
        _, test_set = task.datasets()
    elif hasattr(task, "eval_dataset"):
        test_set = task.eval_dataset(split)
    else:
        raise SystemExit(f"evstream eval {args.task}: --split is not available for this task")
    loader = torch.utils.data.DataLoader(test_set, batch_size=train.batch_size, collate_fn=getattr(task, "collate", None))
    with torch.no_grad():
        metrics = task.evaluate(model, loader, torch.device(train.device))
    print(json.dumps(metrics))
    if args.export:
        task.export(model, args.export, metrics=metrics)
        print(f"wrote {args.export}")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--data", required=True, help="dataset folder in the dataset's own layout")
    parser.add_argument("--net", help="network name (task-specific, e.g. tasnn, masnn, ssnn)")
    parser.add_argument("--scale", help="model scale (gen1: n, s, m, l, rt)")
    parser.add_argument("--config", help="YAML file with 'train' and 'task' groups")
    parser.add_argument("--set", action="append", metavar="GROUP.KEY=VALUE", help="override a config entry")
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ...")


def register(subparsers) -> None:
    """Add the ``train`` and ``eval`` subcommands."""
    train = subparsers.add_parser("train", help="train a task's network (DDP: torchrun --nproc_per_node N)")
    _common(train)
    train.add_argument("--epochs", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--out", help="run folder (checkpoints, log.csv, tensorboard/)")
    train.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    train.set_defaults(run=_train)

    evaluate = subparsers.add_parser("eval", help="evaluate a checkpoint on a task's test split")
    _common(evaluate)
    evaluate.add_argument("--checkpoint", required=True,
                          help="a training checkpoint (last.pt, best.pt) or a live checkpoint written by --export")
    evaluate.add_argument("--split", help="the split to evaluate (default: the task's test split; "
                                          "classification: train, test; nmnist: train, val, test)")
    evaluate.add_argument("--export", metavar="PATH",
                          help="also write the model as a live checkpoint (recipe, names, these metrics)")
    evaluate.set_defaults(run=_eval)
