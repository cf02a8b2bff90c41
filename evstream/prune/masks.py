"""Weight masks of a pruned net: which conv and linear weights are kept, applied so they stay pruned.

A mask is a bool tensor per prunable weight (``True`` = kept), keyed by the parameter's name in
``model.named_parameters()`` (``features.0.synapse.0.weight``). :meth:`Masks.apply` zeroes the
pruned entries in place; :meth:`Masks.attach` re-applies them after every optimiser step (an
optimiser post-step hook), so momentum or weight decay cannot revive a pruned weight. Weights stay
ordinary dense tensors with zeros: checkpoints, ``evstream export`` (NIR, ONNX) and every tool that
reads them see the sparse net as it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["Masks", "prunable_weights"]


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """``name -> weight`` of every conv and linear layer (biases, norms and neuron parameters are kept dense)."""
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    return {f"{name}.weight" if name else "weight": module.weight for name, module in model.named_modules()
            if isinstance(module, kinds) and isinstance(getattr(module, "weight", None), nn.Parameter)}


class Masks:
    """Bool keep-masks by parameter name (:func:`prunable_weights`'s names).

    Args:
        masks: ``name -> bool tensor`` shaped like the weight.
    """

    def __init__(self, masks: Mapping[str, torch.Tensor]):
        self.masks = {name: torch.as_tensor(mask).bool() for name, mask in masks.items()}

    @classmethod
    def dense(cls, model: nn.Module) -> Masks:
        """Every prunable weight kept."""
        return cls({name: torch.ones_like(w, dtype=torch.bool) for name, w in prunable_weights(model).items()})

    def _parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        params = dict(model.named_parameters())
        missing = sorted(set(self.masks) - set(params))
        if missing:
            raise ValueError(f"masks for parameters the model does not have: {', '.join(missing)}")
        for name, mask in self.masks.items():
            if mask.shape != params[name].shape:
                raise ValueError(f"mask {name} has shape {tuple(mask.shape)}, the weight {tuple(params[name].shape)}")
        return params

    @torch.no_grad()
    def apply(self, model: nn.Module) -> nn.Module:
        """Zero the pruned weights of ``model`` in place; returns it."""
        params = self._parameters(model)
        for name, mask in self.masks.items():
            params[name].mul_(mask.to(params[name].device))
        return model

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        """Apply the masks now and after every ``optimizer.step()``; returns the hook handle (``.remove()``)."""
        self.apply(model)
        return optimizer.register_step_post_hook(lambda *_: self.apply(model))

    def kept(self) -> int:
        """Weights kept."""
        return int(sum(int(m.sum()) for m in self.masks.values()))

    def total(self) -> int:
        """Prunable weights in all."""
        return int(sum(m.numel() for m in self.masks.values()))

    def sparsity(self) -> float:
        """The share of prunable weights pruned."""
        return 1.0 - self.kept() / max(self.total(), 1)

    def per_layer(self) -> dict[str, float]:
        """``name -> sparsity`` of each masked weight."""
        return {name: 1.0 - float(m.float().mean()) for name, m in self.masks.items()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The masks as CPU bool tensors, for a checkpoint's ``masks`` entry."""
        return {name: mask.cpu() for name, mask in self.masks.items()}

    @classmethod
    def prune(cls, scores: Mapping[str, torch.Tensor], sparsity: float, previous: Masks | None = None) -> Masks:
        """Masks keeping, in every layer, the ``1 - sparsity`` share of its weights with the highest scores.

        Layer-wise (each weight tensor pruned to the same sparsity), so no layer is emptied; weights
        pruned by ``previous`` stay pruned (their scores are ignored). Ties are broken by position
        (a stable sort), so the masks are deterministic.

        Raises:
            ValueError: a sparsity outside [0, 1), or below ``previous``'s in some layer.
        """
        if not 0 <= sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        masks = {}
        for name, score in scores.items():
            flat = score.detach().flatten().double().cpu()
            old = previous.masks[name].flatten().cpu() if previous is not None else torch.ones_like(flat, dtype=torch.bool)
            keep = round(flat.numel() * (1.0 - sparsity))
            if keep > int(old.sum()):
                raise ValueError(f"{name}: {sparsity:.0%} sparsity keeps {keep} weights, but only {int(old.sum())} "
                                 "are left from the previous round")
            ranked = torch.where(old, flat, torch.tensor(-torch.inf, dtype=flat.dtype))
            order = torch.sort(ranked, descending=True, stable=True).indices
            mask = torch.zeros_like(old)
            mask[order[:keep]] = True
            masks[name] = mask.view_as(score)
        return cls(masks)
