"""``evstream robustness TASK``: clean and adversarial accuracy of a checkpoint, and randomized-smoothing certificates.

The task and net come from the same settings as ``evstream train`` (``--config``, ``--set``); the
net must read [0, 1] frames through an input coding (``task.input_scale`` set: nmnist), the space
the budgets refer to. Prints one JSON object (:mod:`evstream.train.robustness` for the methods).
"""

from __future__ import annotations

import time
from fractions import Fraction

from evstream.errors import UserError
from evstream.train.commands import TASKS, add_recipe_argument, _building, _check_device, _settings


def _budget(text: str) -> float:
    """``"8/255"`` or ``"0.03"`` -> a float in (0, 1]."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise UserError(f"--eps {text!r}: expected a number or a fraction such as 8/255") from None
    if not 0 < value <= 1:
        raise UserError(f"--eps {text!r}: a budget must be in (0, 1] (the input range is [0, 1])")
    return value


def _check(args) -> None:
    for name in ("eot", "draws", "pgd_steps", "n0", "certify_n", "samples", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha must be in (0, 1), got {args.alpha}")
    if args.sigma is not None and not args.sigma > 0:
        raise UserError(f"--sigma must be > 0, got {args.sigma}")


def _robustness(args) -> int:
    import torch

    from evstream import checkpoint
    from evstream.jsonout import to_json
    from evstream.snn.coding import CodedClassifier, RandomizedSmoothingCoding
    from evstream.train.robustness import ABSTAIN, certify, fgsm, pgd, predict

    _check(args)
    budgets = [_budget(text) for text in args.eps.split(",")]
    _check_device(args.device)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    cls, _, _, task_options = _settings(args)
    with _building(args.task):
        task = cls(args.data, **task_options)
        model = task.build_model()
    if not isinstance(model, CodedClassifier):
        raise UserError(f"the {args.task} net reads raw counts: set task.input_scale (and task.coding) as it was "
                        "trained, so its [0, 1] input can be attacked")
    state = checkpoint.load(args.checkpoint)
    checkpoint.load_model_state(model, state, args.checkpoint)
    model.to(device).eval()
    split = args.split or task.eval_split
    dataset = task.eval_dataset(split)
    if args.samples is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(args.samples, len(dataset))))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size)
    randomized = bool(getattr(model.coding, "random", False))
    eot, draws = (args.eot, args.draws) if randomized else (1, 1)
    sigma = args.sigma or (model.coding.sigma if isinstance(model.coding, RandomizedSmoothingCoding) else None)
    correct = {"clean": 0, **{f"{kind}@{text}": 0 for text in args.eps.split(",") for kind in ("fgsm", "pgd")}}
    radii, certified_right, abstained, total = [], [], 0, 0
    start = time.perf_counter()
    for x, labels, _ in task._clip_batches(loader, device, progress=not args.quiet):
        labels = labels.to(device)
        u = model.unit(x)
        total += len(labels)
        correct["clean"] += int((predict(model.forward_unit, u, draws=draws) == labels).sum())
        for text, eps in zip(args.eps.split(","), budgets):
            adversarial = fgsm(model.forward_unit, u, labels, eps, eot=eot)
            correct[f"fgsm@{text}"] += int((predict(model.forward_unit, adversarial, draws=draws) == labels).sum())
            adversarial = pgd(model.forward_unit, u, labels, eps, steps=args.pgd_steps, eot=eot)
            correct[f"pgd@{text}"] += int((predict(model.forward_unit, adversarial, draws=draws) == labels).sum())
        if sigma is not None:
            for i in range(len(labels)):
                guess, radius = certify(model.net, u[:, i:i + 1], sigma, n0=args.n0, n=args.certify_n,
                                        alpha=args.alpha, classes=len(task.class_names()))
                abstained += guess == ABSTAIN
                right = guess == int(labels[i])
                certified_right.append(right)
                radii.append(radius if right else 0.0)
    result = {"split": split, "samples": total, "coding": type(model.coding).__name__, "eot": eot, "draws": draws,
              "pgd_steps": args.pgd_steps, **{f"top1_{k}": v / total for k, v in correct.items()}}
    if sigma is not None:
        result.update({"sigma": sigma, "n0": args.n0, "n": args.certify_n, "alpha": args.alpha,
                       "certified_top1": sum(certified_right) / total, "abstained": abstained / total,
                       "mean_certified_radius": sum(radii) / total,
                       **{f"certified_top1@{r}": sum(rad >= r for rad, ok in zip(radii, certified_right) if ok) / total
                          for r in (0.25, 0.5, 1.0)}})
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(to_json(result))
    return 0


def register(subparsers) -> None:
    """Add the ``robustness`` subcommand."""
    parser = subparsers.add_parser(
        "robustness", help="clean, FGSM and PGD accuracy of a checkpoint, and randomized-smoothing certificates",
        description="Evaluate a classifier checkpoint on a split under white-box L-infinity attacks (FGSM, PGD) "
                    "through the surrogate gradients, with expectation over the input coding's randomness (EOT), "
                    "and certify its Gaussian-smoothed version (Cohen et al.'s CERTIFY: Clopper-Pearson bound, "
                    "radius sigma * Phi^-1(pA)). Budgets are in units of the net's [0, 1] input. Prints one JSON "
                    "object.")
    parser.add_argument("task", choices=sorted(TASKS), help="the task whose net and data are evaluated (nmnist)")
    parser.add_argument("--data", required=True, help="dataset folder in the dataset's own layout")
    parser.add_argument("--checkpoint", required=True, help="a training checkpoint of the net (last.pt, best.pt)")
    parser.add_argument("--net", help="network name as trained (nmnist: cnn, ann); = --set task.net=")
    add_recipe_argument(parser)
    parser.add_argument("--config", metavar="YAML", help="YAML file with the task settings the net was trained with")
    parser.add_argument("--set", action="append", metavar="GROUP.KEY=VALUE",
                        help="one task setting as trained, e.g. task.input_scale=4 or task.coding=rsc (repeatable)")
    parser.add_argument("--cache-dir", dest="cache_dir", metavar="DIR",
                        help="representation cache folder; = --set task.cache_dir=")
    parser.add_argument("--split", help="the split to evaluate (default: the task's evaluation split; nmnist: val)")
    parser.add_argument("--samples", type=int, metavar="N", help="evaluate the first N samples of the split (all)")
    parser.add_argument("--eps", default="2/255,4/255,8/255",
                        help="comma-separated L-infinity budgets in [0, 1] input units (default 2/255,4/255,8/255)")
    parser.add_argument("--pgd-steps", dest="pgd_steps", type=int, default=7,
                        help="PGD steps of eps/4 from a random start (default 7)")
    parser.add_argument("--eot", type=int, default=8,
                        help="coding draws averaged per attack gradient, for a random coding (default 8)")
    parser.add_argument("--draws", type=int, default=8,
                        help="coding draws whose mean scores give a random coding's prediction (default 8)")
    parser.add_argument("--sigma", type=float,
                        help="certify the Gaussian-smoothed net at this noise level (default: the RSC coding's "
                             "sigma; none for other codings unless given)")
    parser.add_argument("--n0", type=int, default=100, help="CERTIFY's draws choosing the class (default 100)")
    parser.add_argument("--certify-n", dest="certify_n", type=int, default=1000,
                        help="CERTIFY's draws bounding its probability (default 1000)")
    parser.add_argument("--alpha", type=float, default=0.001, help="CERTIFY's failure probability (default 0.001)")
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=32, help="samples per batch (32)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the attacks' starts and the coding draws (0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_robustness)
