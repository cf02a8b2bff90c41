"""Lottery tickets by iterative pruning with weight rewinding (what ``evstream prune`` runs).

Frankle & Carbin 2019 with rewinding (Frankle et al. 2020, "Linear Mode Connectivity and the
Lottery Ticket Hypothesis"): train the dense net, keeping its weights at epoch ``rewind_epoch``
(0: the initialisation); then for each target sparsity in increasing order, score the weights of
the last trained net (:mod:`evstream.prune.criteria`), prune every layer to that sparsity (the
earlier masks stay), rewind the kept weights to the saved early ones and retrain ``round_epochs``
with the masks held after every optimiser step. Each round is validated on the task's evaluation
split (the validation split for nmnist) at its last epoch, with no selection, and written as a live
checkpoint with its masks.

The dense run lives in ``<out>/dense`` (``last.pt``, ``rewind.pt``): a later call with the same
output folder and settings reuses it, so criteria can be compared on one dense net.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from evstream import checkpoint
from evstream.jsonout import plain
from evstream.prune.criteria import CRITERIA, magnitude_scores, probabilistic_scores
from evstream.prune.masks import Masks
from evstream.train.trainer import Trainer, TrainConfig

__all__ = ["calibration_inputs", "dense_run", "find_tickets", "prune_round"]


def dense_run(task, config: TrainConfig, rewind_epoch: int, *, trainer_factory: Callable = Trainer
              ) -> tuple[dict, dict, dict]:
    """``(trained state, rewind state, metrics)`` of the dense net, trained now or read from ``<out>/dense``.

    Raises:
        ValueError: ``rewind_epoch`` not in [0, epochs).
    """
    if not 0 <= rewind_epoch < config.epochs:
        raise ValueError(f"rewind epoch {rewind_epoch} must be in [0, {config.epochs}) (the dense run's epochs)")
    folder = Path(config.out_dir) / "dense"
    last, rewind_path = folder / "last.pt", folder / "rewind.pt"
    if last.exists() and rewind_path.exists():
        state, rewind = checkpoint.load(last), checkpoint.load(rewind_path)
        if state.get("epoch") == config.epochs and rewind.get("epoch") == rewind_epoch:
            print(f"evstream prune: reusing the dense run in {folder}", file=sys.stderr)
            return state["model"], rewind["model"], state["history"][-1]
    saved = {}

    def keep_rewind_point(epoch: int, step: int) -> None:
        if epoch == rewind_epoch and step == 0:
            saved["model"] = copy.deepcopy(trainer.model.state_dict())

    trainer = trainer_factory(task, replace(config, out_dir=str(folder)), collate_fn=getattr(task, "collate", None),
                              on_step=keep_rewind_point)
    history = trainer.fit()
    checkpoint.save_atomic({"epoch": rewind_epoch, "model": saved["model"]}, rewind_path)
    return trainer.model.state_dict(), saved["model"], history[-1]


def calibration_inputs(task, config: TrainConfig, batches: int) -> list[torch.Tensor]:
    """The first ``batches`` training batches of a classification task (``[B, T, ...]`` frames) as model inputs
    ``[T, B, ...]``, augmented as in training, in an order drawn from the run's seed."""
    train, _ = task.datasets()
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(train, batch_size=config.batch_size, shuffle=True, generator=generator,
                                         collate_fn=getattr(task, "collate", None))
    inputs = []
    for x, _ in loader:
        inputs.append(x.float().transpose(0, 1))
        if len(inputs) == batches:
            break
    return inputs


def prune_round(task, config: TrainConfig, model_state: dict, rewind_state: dict, masks: Masks, *, sparsity: float,
                criterion: str, calibration: Sequence[torch.Tensor], folder: Path,
                trainer_factory: Callable = Trainer) -> tuple[Trainer, Masks]:
    """One round: score ``model_state``'s weights, prune to ``sparsity``, rewind and retrain in ``folder``."""
    trainer = trainer_factory(task, replace(config, out_dir=str(folder)), collate_fn=getattr(task, "collate", None))
    model = trainer.model
    model.load_state_dict(model_state)
    masks.apply(model)
    if criterion == "magnitude":
        scores = magnitude_scores(model)
    else:
        scores = probabilistic_scores(model, [x.to(trainer.device) for x in calibration])
    masks = Masks.prune(scores, sparsity, previous=masks)
    model.load_state_dict(rewind_state)
    hook = masks.attach(model, trainer.optimizer)
    try:
        trainer.fit()
    finally:
        hook.remove()
    return trainer, masks


def find_tickets(task, config: TrainConfig, *, criteria: Iterable[str], sparsities: Sequence[float],
                 rewind_epoch: int = 1, round_epochs: int | None = None, calibration_batches: int = 2,
                 trainer_factory: Callable = Trainer) -> list[dict]:
    """Run the dense net and every criterion's pruning rounds; returns one result row per (criterion, sparsity),
    the dense net first (sparsity 0), also written to ``<out>/<criterion>/results.json`` (with the dense row).

    Args:
        task: a classification task (its ``export`` writes the live checkpoints).
        config: the dense run's train settings (epochs, lr, batch, seed, out_dir).
        criteria: names from :data:`~evstream.prune.criteria.CRITERIA`.
        sparsities: increasing targets in (0, 1), e.g. 0.5, 0.7, 0.8, 0.9, 0.95.
        rewind_epoch: the dense epoch whose weights the kept ones rewind to (0: the initialisation).
        round_epochs: epochs of each round (default: the dense run's remaining ``epochs - rewind_epoch``).
        calibration_batches: training batches the probabilistic criterion measures membranes on.
    """
    criteria = list(criteria)
    unknown = [c for c in criteria if c not in CRITERIA]
    if unknown or not criteria:
        raise ValueError(f"unknown pruning criteria {unknown}; known: {', '.join(CRITERIA)}")
    sparsities = [float(s) for s in sparsities]
    if not sparsities or any(not 0 < s < 1 for s in sparsities) or sparsities != sorted(set(sparsities)):
        raise ValueError(f"sparsities must increase within (0, 1), got {sparsities}")
    round_epochs = config.epochs - rewind_epoch if round_epochs is None else int(round_epochs)
    if round_epochs < 1:
        raise ValueError(f"round epochs must be >= 1, got {round_epochs}")
    out = Path(config.out_dir)
    started = time.perf_counter()
    dense_state, rewind_state, dense_metrics = dense_run(task, config, rewind_epoch, trainer_factory=trainer_factory)
    rows = [{"criterion": "dense", "sparsity": 0.0, **_metrics(dense_metrics), "seconds": time.perf_counter() - started}]
    calibration = calibration_inputs(task, config, calibration_batches) if "probabilistic" in criteria else []
    round_config = replace(config, epochs=round_epochs)
    for criterion in criteria:
        state, masks = dense_state, None
        for sparsity in sparsities:
            begun = time.perf_counter()
            folder = out / criterion / f"sparsity_{round(sparsity * 100):02d}"
            if masks is None:
                model = task.build_model()
                masks = Masks.dense(model)
            trainer, masks = prune_round(task, round_config, state, rewind_state, masks, sparsity=sparsity,
                                         criterion=criterion, calibration=calibration, folder=folder,
                                         trainer_factory=trainer_factory)
            metrics = _metrics(trainer.history[-1])
            task.export(trainer.model, folder / "pruned.pt", metrics=metrics, masks=masks.state_dict())
            state = copy.deepcopy(trainer.model.state_dict())
            rows.append({"criterion": criterion, "sparsity": round(masks.sparsity(), 4), **metrics,
                         "layers": {k: round(v, 4) for k, v in masks.per_layer().items()},
                         "seconds": time.perf_counter() - begun})
            print(json.dumps(plain({k: v for k, v in rows[-1].items() if k != "layers"})), file=sys.stderr, flush=True)
    settings = {"rewind_epoch": rewind_epoch, "round_epochs": round_epochs, "dense_epochs": config.epochs}
    for criterion in criteria:  # one file per criterion: runs of other criteria may share the folder at once
        mine = [r for r in rows if r["criterion"] in ("dense", criterion)]
        (out / criterion / "results.json").write_text(json.dumps(plain({**settings, "rows": mine}), indent=1))
    return rows


def _metrics(row: dict) -> dict:
    """The validation numbers of a log row (top-1 and what the task adds), without the bookkeeping."""
    return {k: v for k, v in row.items() if k not in ("epoch", "train_loss", "lr", "seconds")}
