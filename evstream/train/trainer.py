"""One trainer for every task: epochs, checkpoints, resume, best model, logs, DDP.

A task supplies the model, the datasets, the loss and the evaluation (:class:`Task`); the
trainer owns the loop. Every epoch ends with an atomic ``last.pt`` (and ``best.pt`` when the
task's metric improves); ``resume=True`` restarts from ``last.pt``, and because the data order
and the random state of each epoch derive from (seed, epoch), a resumed run reproduces the
weights of an uninterrupted one.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn
from tqdm import tqdm

from evstream.train import checkpoint
from evstream.train.distributed import GlobalBatchSampler, World, barrier, init_world, share_from_main


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings (the papers' values live in each task's defaults)."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw | sgd
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine | linear | constant | plateau (ReduceLROnPlateau on the task metric)
    plateau_factor: float = 0.1
    plateau_patience: int = 5
    lrf: float = 0.0  # final lr = lr * lrf
    warmup_epochs: int = 0
    grad_clip: float = 0.0
    seed: int = 0
    device: str = "cpu"
    num_workers: int = 0
    out_dir: str = "runs/default"
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """What the trainer needs from a task (gesture, detection, depth...)."""

    metric: str  # the key of evaluate()'s result that selects the best model
    metric_mode: str  # "max" or "min"

    def build_model(self) -> nn.Module: ...

    def datasets(self) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]: ...

    def loss(self, model: nn.Module, batch, device: torch.device) -> torch.Tensor: ...

    def evaluate(self, model: nn.Module, loader, device: torch.device) -> dict[str, float]: ...


def build_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov-free, momentum), Adam or AdamW with the configured weight decay."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r} (sgd, adam, adamw)")


def lr_factor(epoch: int, config: TrainConfig) -> float:
    """Learning-rate multiplier of an epoch: linear warm-up, then cosine/linear decay to ``lrf``."""
    if epoch < config.warmup_epochs:
        return (epoch + 1) / (config.warmup_epochs + 1)
    span = max(config.epochs - config.warmup_epochs, 1)
    progress = (epoch - config.warmup_epochs) / span
    if config.schedule == "cosine":
        return config.lrf + (1 - config.lrf) * 0.5 * (1 + math.cos(math.pi * progress))
    if config.schedule == "linear":
        return 1 - (1 - config.lrf) * progress
    if config.schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {config.schedule!r} (cosine, linear, constant)")


class Trainer:
    """Train a task's model with a config; ``on_step(epoch, step)`` is a hook for tests and tools."""

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
        self.optimizer = build_optimizer(self.model.parameters(), config)
        if config.schedule == "plateau":  # TA-SNN: x0.1 after 5 epochs without improvement
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode=task.metric_mode, factor=config.plateau_factor, patience=config.plateau_patience)
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda e: lr_factor(e, config))
        self.ddp_model = (nn.parallel.DistributedDataParallel(self.model) if self.world.size > 1 else self.model)
        self.start_epoch = 0
        self.best: float | None = None
        self.history: list[dict[str, float]] = []

    # --- checkpoints -----------------------------------------------------------------------
    def _state(self, epoch: int) -> dict:
        return {"epoch": epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "best": self.best, "history": self.history,
                "config": asdict(self.config)}

    def resume(self) -> bool:
        """Load ``last.pt`` when present; returns whether training continues from it."""
        path = self.out_dir / "last.pt"
        if not path.exists():
            return False
        state = checkpoint.load(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch, self.best, self.history = state["epoch"] + 1, state["best"], state["history"]
        return True

    # --- loop ------------------------------------------------------------------------------
    def _loader(self, dataset, sampler=None, batch_size=1):
        if sampler is not None:
            return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=self.config.num_workers,
                                               collate_fn=self.collate_fn)
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=self.config.num_workers,
                                           collate_fn=self.collate_fn)

    def fit(self, resume: bool = False) -> list[dict[str, float]]:
        """Train from epoch 0 (or from ``last.pt`` with ``resume``); returns the per-epoch log rows."""
        if resume:
            self.resume()
        config = self.config
        sampler = GlobalBatchSampler(len(self.train_set), config.batch_size, seed=config.seed, world=self.world)
        train_loader = self._loader(self.train_set, sampler)
        val_loader = self._loader(self.val_set, batch_size=config.batch_size)
        for epoch in range(self.start_epoch, config.epochs):
            sampler.set_epoch(epoch)
            torch.manual_seed(config.seed * 100_003 + epoch)  # dropout & co.: a function of (seed, epoch)
            start = time.perf_counter()
            train_loss = self._train_epoch(epoch, train_loader)
            if config.schedule != "plateau":
                self.scheduler.step()
            row = {"epoch": epoch, "train_loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"],
                   "seconds": time.perf_counter() - start}
            if self.world.is_main:
                self.model.eval()
                with torch.no_grad():
                    row.update(self.task.evaluate(self.model, val_loader, self.device))
            metric = share_from_main(self.world, row.get(self.task.metric))
            if config.schedule == "plateau" and metric is not None:
                self.scheduler.step(metric)
            if self.world.is_main:
                self._log(row)
                self._checkpoint(epoch, row)
            barrier(self.world)
        return self.history

    def _train_epoch(self, epoch: int, loader) -> float:
        self.ddp_model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.config.epochs}", leave=False,
                   disable=not (self.config.progress and self.world.is_main))
        for step, batch in enumerate(bar):
            if self.on_step is not None:
                self.on_step(epoch, step)
            loss = self.task.loss(self.ddp_model, batch, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            total += float(loss.detach())
            count += 1
            bar.set_postfix(loss=f"{total / count:.4f}")
        return total / max(count, 1)

    def _checkpoint(self, epoch: int, row: dict) -> None:
        value = row.get(self.task.metric)
        improved = value is not None and (self.best is None or (value > self.best if self.task.metric_mode == "max"
                                                                 else value < self.best))
        if improved:
            self.best = value
        state = self._state(epoch)
        checkpoint.save_atomic(state, self.out_dir / "last.pt")
        if improved:
            checkpoint.save_atomic(state, self.out_dir / "best.pt")

    def _log(self, row: dict) -> None:
        self.history.append(row)
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
