"""One trainer for every task: epochs, checkpoints, resume, best model, logs, DDP.

A task supplies the model, the datasets, the loss and the evaluation (:class:`Task`); the
trainer owns the loop. Before the first epoch it prints a summary (task, samples, net and its
parameters, device, output folder, epochs, batch) and refuses a batch larger than the training
set (an epoch of zero steps). Every epoch ends with an atomic ``last.pt``; ``resume=True``
restarts from it, and because the data order and the random state of each epoch derive from
(seed, epoch), a resumed run reproduces the weights of an uninterrupted one.

Epochs are numbered from 1 wherever they are shown: the progress bar (``epoch 1/10``), the
``epoch`` column of ``log.csv`` and of the history rows (the JSON ``evstream train`` prints),
TensorBoard's step, and the ``epoch`` field of a checkpoint, which is the number of epochs done
(``resume`` continues with the next one). Internally, :func:`lr_factor`, :func:`yolo_warmup` and
the ``on_step`` hook take the 0-based epoch index (the logged number minus 1).

Nothing that steers training reads test data:

* the ``plateau`` schedule steps on the epoch's mean training loss (mode "min"), as the official
  TA-SNN and MA-SNN code (``scheduler.step(train_loss)`` in their ``process.py``);
* ``best.pt`` is chosen on the task's metric only when the split it evaluates is a validation
  split (``task.eval_split == "val"``); a task evaluating its test split (DVS128 Gesture,
  CIFAR10-DVS, N-Caltech101 and MVSEC have no validation split) has its test metrics logged
  every epoch, but no ``best.pt``: the model is ``last.pt``, and the start-up summary says so.
"""

from __future__ import annotations

import bisect
import csv
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from evstream.errors import UserError, check_positive
from evstream.jsonout import plain
from evstream import checkpoint
from evstream.train.distributed import GlobalBatchSampler, World, barrier, init_world, mean_over_ranks


OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "linear", "constant", "plateau", "multistep")

OPTIMISER_SETTINGS = ("optimizer", "lr", "momentum", "weight_decay", "schedule", "plateau_factor", "plateau_patience",
                      "lrf", "warmup_epochs", "warmup_style", "warmup_momentum", "warmup_bias_lr", "nominal_batch",
                      "decay_norm_and_bias", "milestones", "gamma")
"""Settings baked into the optimiser and scheduler state of ``last.pt``: a resumed run keeps the saved ones."""


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings (the papers' values live in each task's defaults)."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw | sgd
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine | linear | constant | plateau (ReduceLROnPlateau on the mean training loss)
    # | multistep (torch's MultiStepLR: lr x gamma after each milestone epoch)
    plateau_factor: float = 0.1
    plateau_patience: int = 5
    milestones: tuple[int, ...] = ()  # multistep: epochs (counted from 1) after which the lr is multiplied by gamma
    gamma: float = 0.1
    lrf: float = 0.0  # final lr = lr * lrf
    warmup_epochs: int = 0
    warmup_style: str = "epoch"  # epoch: lr ramps epoch by epoch | yolo: Ultralytics' per-iteration warm-up
    warmup_momentum: float = 0.8  # yolo warm-up: momentum ramps from this to ``momentum``
    warmup_bias_lr: float = 0.1  # yolo warm-up: the biases' lr ramps down from this
    nominal_batch: int = 0  # > 0: accumulate gradients up to this batch, weight decay scaled (Ultralytics nbs)
    decay_norm_and_bias: bool = True  # False: weight decay on conv/linear weights only (Ultralytics)
    grad_clip: float = 0.0
    seed: int = 0
    device: str = "cpu"
    num_workers: int = 0
    out_dir: str = "runs/default"
    progress: bool = True  # tqdm bars over the training and the evaluation batches (main process)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        """Reject settings that would train wrongly or not at all (types are checked by the config loader)."""
        check_positive("train", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                       plateau_factor=self.plateau_factor, gamma=self.gamma)
        self.milestones = tuple(self.milestones)
        if (any(not isinstance(m, int) or m < 1 for m in self.milestones)
                or list(self.milestones) != sorted(set(self.milestones))):
            raise UserError(f"train.milestones must be increasing epochs >= 1, got {list(self.milestones)}")
        for name in ("momentum", "weight_decay", "plateau_patience", "lrf", "warmup_epochs", "warmup_momentum",
                     "warmup_bias_lr", "nominal_batch", "grad_clip", "num_workers"):
            if getattr(self, name) < 0:
                raise UserError(f"train.{name} must be >= 0, got {getattr(self, name)!r}")
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "warmup_style": ("epoch", "yolo")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"train.{name}: unknown value {getattr(self, name)!r} (one of {', '.join(allowed)})")
        if self.warmup_style == "yolo" and self.schedule == "plateau":
            raise UserError("train.warmup_style: the yolo warm-up needs a scheduled lr (cosine, linear, constant), "
                            "not plateau")


class Task(Protocol):
    """What the trainer needs from a task (gesture, detection, depth...).

    ``datasets()`` returns ``(train, eval)``; ``eval_split`` names the second: ``"val"`` lets the
    trainer select ``best.pt`` on ``metric``; any other value (``"test"``) only reports it. A
    task without ``eval_split`` is treated as evaluating its test split. ``net_name`` (optional)
    names the net in the start-up summary (default: the model's class).
    """

    metric: str  # the key of evaluate()'s result that selects the best model (on a validation split)
    metric_mode: str  # "max" or "min"
    eval_split: str  # "val" or "test": which split datasets()[1] is

    def build_model(self) -> nn.Module: ...

    def datasets(self) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]: ...

    def loss(self, model: nn.Module, batch, device: torch.device) -> torch.Tensor: ...

    def evaluate(self, model: nn.Module, loader, device: torch.device, *, progress: bool = True
                 ) -> dict[str, float]: ...


def accumulation_steps(config: TrainConfig) -> int:
    """Batches whose gradients are summed before one optimiser step (1 without a nominal batch)."""
    return max(round(config.nominal_batch / config.batch_size), 1) if config.nominal_batch > 0 else 1


def parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """The optimiser's parameter groups.

    With ``decay_norm_and_bias=False`` they are Ultralytics' three: biases (group 0, the one the
    yolo warm-up starts high), normalisation weights, and the other weights, the only ones that
    decay. With a nominal batch the decay is scaled by ``batch * accumulation / nominal``.
    """
    decay = config.weight_decay
    if config.nominal_batch > 0:
        decay *= config.batch_size * accumulation_steps(config) / config.nominal_batch
    if config.decay_norm_and_bias:
        return [{"params": list(model.parameters()), "weight_decay": decay}]
    norms = tuple(m for name, m in vars(nn).items() if "Norm" in name and isinstance(m, type))
    biases, norm_weights, weights = [], [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if "bias" in name:
                biases.append(param)
            elif isinstance(module, norms):
                norm_weights.append(param)
            else:
                weights.append(param)
    return [{"params": biases, "weight_decay": 0.0}, {"params": norm_weights, "weight_decay": 0.0},
            {"params": weights, "weight_decay": decay}]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, no Nesterov), Adam or AdamW over :func:`parameter_groups`."""
    groups = parameter_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    raise ValueError(f"unknown optimizer {config.optimizer!r} (sgd, adam, adamw)")


def lr_factor(epoch: int, config: TrainConfig) -> float:
    """Learning-rate multiplier of an epoch: cosine/linear decay to ``lrf``, or multistep (``gamma`` to the
    number of milestones <= ``epoch``, as torch's ``MultiStepLR``).

    The ``epoch`` warm-up ramps the first ``warmup_epochs`` linearly and decays over the rest; the
    ``yolo`` warm-up happens per iteration (:func:`yolo_warmup`) over a decay spanning every epoch.
    """
    warmup = config.warmup_epochs if config.warmup_style == "epoch" else 0
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    progress = (epoch - warmup) / max(config.epochs - warmup, 1)
    if config.schedule == "cosine":
        return config.lrf + (1 - config.lrf) * 0.5 * (1 + math.cos(math.pi * progress))
    if config.schedule == "linear":
        return 1 - (1 - config.lrf) * progress
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "multistep":
        return config.gamma ** bisect.bisect_right(config.milestones, epoch)
    raise ValueError(f"unknown schedule {config.schedule!r} (cosine, linear, constant, multistep)")


def yolo_warmup(optimizer: torch.optim.Optimizer, iteration: int, warmup_iterations: int, epoch: int,
                config: TrainConfig) -> int:
    """Ultralytics' warm-up at one iteration; returns the accumulation to use for it.

    Over the first ``warmup_iterations`` (max(warmup_epochs * batches, 100)) every lr rises from 0,
    the biases' from ``warmup_bias_lr``, to its scheduled value; momentum rises from
    ``warmup_momentum``; gradient accumulation rises from 1 to the nominal batch.
    """
    points = [0, warmup_iterations]
    for index, group in enumerate(optimizer.param_groups):
        start = config.warmup_bias_lr if index == 0 and not config.decay_norm_and_bias else 0.0
        group["lr"] = float(np.interp(iteration, points, [start, group["initial_lr"] * lr_factor(epoch, config)]))
        if "momentum" in group:
            group["momentum"] = float(np.interp(iteration, points, [config.warmup_momentum, config.momentum]))
    nominal = config.nominal_batch / config.batch_size if config.nominal_batch > 0 else 1
    return max(1, round(float(np.interp(iteration, points, [1, nominal]))))


class Trainer:
    """Train a task's model with a config; ``on_step(epoch, step)`` is a hook for tests and tools
    (0-based epoch index and step, called before each batch)."""

    def __init__(self, task: Task, config: TrainConfig, *, collate_fn: Callable | None = None,
                 on_step: Callable[[int, int], None] | None = None):
        self.task, self.config, self.on_step = task, config, on_step
        self.device = torch.device(config.device)
        self.world = init_world(self.device)
        self.out_dir = Path(config.out_dir)
        torch.manual_seed(config.seed)
        self.model = task.build_model().to(self.device)
        self.train_set, self.val_set = task.datasets()
        self.collate_fn = collate_fn
        self.optimizer = build_optimizer(self.model, config)
        if config.schedule == "plateau":  # TA-SNN: x0.1 after 5 epochs without a lower training loss
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience)
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda e: lr_factor(e, config))
        self.ddp_model = (nn.parallel.DistributedDataParallel(self.model) if self.world.size > 1 else self.model)
        self.selects_best = getattr(task, "eval_split", "test") == "val"
        self.start_epoch = 0  # index of the next epoch (= epochs done)
        self.best: float | None = None
        self.history: list[dict[str, float]] = []

    # --- checkpoints -----------------------------------------------------------------------
    def _state(self, epochs_done: int) -> dict:
        """A checkpoint after ``epochs_done`` epochs (its ``epoch`` field, 1-based like the logs)."""
        return {"epoch": epochs_done, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "best": self.best, "history": self.history,
                "config": asdict(self.config)}

    def resume(self) -> bool:
        """Load ``last.pt`` when present; returns whether training continues from it.

        Raises:
            checkpoint.CheckpointError: the file is unreadable, not a training checkpoint, or of
                another model or optimiser.
        """
        path = self.out_dir / "last.pt"
        if not path.exists():
            return False
        state = checkpoint.load(path, map_location=self.device)
        missing = [key for key in ("epoch", "optimizer", "scheduler", "best", "history") if key not in state]
        if missing:
            raise checkpoint.CheckpointError(path, f"not a training checkpoint (no {', '.join(missing)}); "
                                                   "an exported model cannot be resumed")
        checkpoint.load_model_state(self.model, state, path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (ValueError, KeyError, TypeError) as err:
            raise checkpoint.CheckpointError(path, f"its optimiser state does not fit this run's ({err})") from None
        self.start_epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        return True

    # --- start-up ----------------------------------------------------------------------------
    def check_batch(self) -> None:
        """Refuse a batch larger than the training set: every epoch would train zero steps."""
        samples, batch = len(self.train_set), self.config.batch_size
        if samples < batch:
            raise ValueError(f"batch size {batch} is larger than the training set ({samples} samples): "
                             f"lower --batch-size to at most {samples}")

    def summary(self, steps_per_epoch: int) -> str:
        """The start-up block: task, samples, net, parameters, device, output, epochs, batch, schedule."""
        config, task = self.config, self.task
        net = getattr(task, "net_name", type(self.model).__name__)
        parameters = sum(p.numel() for p in self.model.parameters())
        split = getattr(task, "eval_split", "test")
        selection = (f"best.pt on {task.metric}, {task.metric_mode}" if self.selects_best
                     else "metrics reported, no best.pt: the model is last.pt")
        processes = f", {self.world.size} processes (DDP)" if self.world.size > 1 else ""
        resumed = f", resuming after epoch {self.start_epoch}" if self.start_epoch else ""
        steps = f"{steps_per_epoch} step{'s' if steps_per_epoch != 1 else ''} per epoch"
        schedule = {"plateau": "plateau on the mean training loss",
                    "multistep": f"x{config.gamma:g} after epochs {', '.join(map(str, config.milestones))}"
                    }.get(config.schedule, config.schedule)
        return "\n".join([
            f"training {type(task).__name__}",
            f"  samples   train {len(self.train_set)}, {split} {len(self.val_set)} ({selection})",
            f"  net       {net}, {parameters:,} parameters",
            f"  device    {self.device}{processes}",
            f"  output    {self.out_dir}",
            f"  epochs    {config.epochs}{resumed}; batch {config.batch_size}, {steps}",
            f"  optimiser {config.optimizer} lr {config.lr:g}, schedule {schedule}"])

    # --- loop ------------------------------------------------------------------------------
    def _loader(self, dataset, sampler=None, batch_size=1):
        if sampler is not None:
            return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=self.config.num_workers,
                                               collate_fn=self.collate_fn)
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=self.config.num_workers,
                                           collate_fn=self.collate_fn)

    def fit(self, resume: bool = False) -> list[dict[str, float]]:
        """Train from the first epoch (or after ``last.pt``'s with ``resume``); returns the per-epoch log rows.

        Raises:
            ValueError: the batch is larger than the training set (before anything is trained or written).
        """
        self.check_batch()
        if resume:
            self.resume()
        self.optimizer.zero_grad(set_to_none=True)
        config = self.config
        sampler = GlobalBatchSampler(len(self.train_set), config.batch_size, seed=config.seed, world=self.world)
        train_loader = self._loader(self.train_set, sampler)
        val_loader = self._loader(self.val_set, batch_size=config.batch_size)
        if self.world.is_main:
            print(self.summary(len(sampler)), file=sys.stderr, flush=True)
        for epoch in range(self.start_epoch, config.epochs):
            sampler.set_epoch(epoch)
            torch.manual_seed(config.seed * 100_003 + epoch)  # dropout & co.: a function of (seed, epoch)
            start = time.perf_counter()
            train_loss = mean_over_ranks(self.world, self._train_epoch(epoch, train_loader), self.device)
            row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"],
                   "seconds": time.perf_counter() - start}  # lr: the one this epoch ended with
            if config.schedule == "plateau":
                self.scheduler.step(train_loss)
            else:
                self.scheduler.step()
            if self.world.is_main:
                self.model.eval()
                with torch.no_grad():
                    row.update(self.task.evaluate(self.model, val_loader, self.device,
                                                  progress=config.progress))
                self._log(row)
                self._checkpoint(epoch + 1, row)
            barrier(self.world)
        return self.history

    def _train_epoch(self, epoch: int, loader) -> float:
        config = self.config
        self.ddp_model.train()
        total, count, pending = 0.0, 0, 0
        batches = len(loader)
        accumulate = accumulation_steps(config)
        warmup_iterations = max(round(config.warmup_epochs * batches), 100) if config.warmup_epochs > 0 else -1
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not (config.progress and self.world.is_main))
        for step, batch in enumerate(bar):
            iteration = step + batches * epoch
            if config.warmup_style == "yolo" and iteration <= warmup_iterations:
                accumulate = yolo_warmup(self.optimizer, iteration, warmup_iterations, epoch, config)
            if self.on_step is not None:
                self.on_step(epoch, step)
            loss = self.task.loss(self.ddp_model, batch, self.device)
            loss.backward()
            pending += 1
            if pending >= accumulate or step == batches - 1:  # an epoch never leaves gradients behind
                self._optimizer_step()
                pending = 0
            total += float(loss.detach())
            count += 1
            bar.set_postfix(loss=f"{total / count:.4f}")
        return total / max(count, 1)

    def _optimizer_step(self) -> None:
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _checkpoint(self, epochs_done: int, row: dict) -> None:
        """``last.pt``, and ``best.pt`` when the metric improved on a validation split."""
        value = row.get(self.task.metric) if self.selects_best else None
        improved = value is not None and (self.best is None or (value > self.best if self.task.metric_mode == "max"
                                                                 else value < self.best))
        if improved:
            self.best = plain(value)
        state = self._state(epochs_done)
        checkpoint.save_atomic(state, self.out_dir / "last.pt")
        if improved:
            checkpoint.save_atomic(state, self.out_dir / "best.pt")

    def _log(self, row: dict) -> None:
        self.history.append(plain(row))  # Python numbers: last.pt stays loadable with weights_only=True
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / "log.csv"
        keys = list(dict.fromkeys(k for r in self.history for k in r))
        with open(path, "w", newline="") as f:  # rewritten whole: columns may grow, resume keeps history
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        with SummaryWriter(self.out_dir / "tensorboard") as tb:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    tb.add_scalar(key, value, row["epoch"])
