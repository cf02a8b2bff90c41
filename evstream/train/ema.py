"""Exponential moving average of a model's weights, as Ultralytics' ``ModelEMA`` (the official SpikeYOLO trainer).

After every optimiser step each floating-point entry of the state dict (parameters and BatchNorm
running statistics) moves towards the trained model's: ``v = d v + (1 - d) w`` with
``d = decay * (1 - exp(-updates / tau))``, a ramp that lets the average follow the fast early
changes (``d`` is 0 at the first update, 0.9999 * 0.39 after ``tau`` = 2000). Integer buffers
(``num_batches_tracked``) keep the value they had when the copy was made. The average is the model
the trainer evaluates and writes as ``model`` in its checkpoints.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

__all__ = ["ModelEMA"]


class ModelEMA:
    """A frozen copy of ``model`` (:attr:`module`) holding the moving average of its weights.

    Args:
        model: the trained model (not a DDP wrapper); copied now.
        decay: the asymptotic decay (Ultralytics: 0.9999). tau: the ramp's time constant in updates (2000).
        updates: updates already done (a resumed run).
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0):
        if not 0.0 <= decay < 1.0 or tau <= 0:
            raise ValueError(f"EMA needs 0 <= decay < 1 and tau > 0, got decay {decay}, tau {tau}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.tau, self.updates = float(decay), float(tau), int(updates)

    def factor(self, updates: int) -> float:
        """The decay ``d`` at update number ``updates`` (1 for the first)."""
        return self.decay * (1.0 - math.exp(-updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step towards ``model``'s current weights (call after each optimiser step)."""
        self.updates += 1
        d = self.factor(self.updates)
        weights = model.state_dict()
        for key, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(weights[key].detach().to(value.dtype), alpha=1.0 - d)
