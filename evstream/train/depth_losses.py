"""Depth losses: scale-invariant loss and gradient matching (models.md §5.2, §5.3), on log or metric depth.

With the residual R = prediction - target over the n valid (non-NaN) target pixels of the batch:

- scale-invariant: ``L_SI = (1/n) sum R^2 - lambda (1/n^2) (sum R)^2`` (lambda = 1);
- E2Depth's multi-scale gradient matching: R with NaN -> 0, average-pooled by 1, 2, 4, 8, Sobel
  gradients (kernel / 8, replicated borders, as kornia's normalised ``spatial_gradient``), mean of
  ``|d/dx| + |d/dy|`` over pixels, averaged over the scales;
- StereoSpike's gradient matching (official ``network/loss.py``, ``GradientMatching_Loss``): R with
  NaN -> 0, unnormalised Sobel with zero padding, ``(1/n) sum (|Sobel_x R| + |Sobel_y R|)`` over the
  valid pixels.

Totals: E2Depth ``L_SI + 0.25 L_grad`` on the final map; StereoSpike the official ``Total_Loss``
(alpha 0.5, scale weights 1): ``sum_s L_SI(p_s) + 0.5 sum_s L_grad(p_s)`` over the multi-scale
predictions. The official loss resizes the target to each prediction bilinearly; StereoSpike's
predictions are all at full resolution, where that resize is the identity (NaN included).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

__all__ = ["E2DEPTH_GRAD_WEIGHT", "STEREOSPIKE_GRAD_WEIGHT", "e2depth_loss", "multiscale_gradient_loss",
           "scale_invariant_loss", "sobel_gradient_loss", "stereospike_loss"]

E2DEPTH_GRAD_WEIGHT = 0.25
STEREOSPIKE_GRAD_WEIGHT = 0.5

_SOBEL = torch.tensor([[[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]],
                       [[[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]]])


def _check(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.ndim != 4 or prediction.shape[1] != 1 or prediction.shape != target.shape:
        raise ValueError(f"expected prediction and target [B, 1, H, W] of one shape, got "
                         f"{tuple(prediction.shape)} and {tuple(target.shape)}")


def _residual(prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R with 0 where the target is NaN, valid mask)``."""
    valid = ~torch.isnan(target)
    return torch.where(valid, prediction - torch.nan_to_num(target), torch.zeros_like(prediction)), valid


def _sobel(r: torch.Tensor, padding: str) -> torch.Tensor:
    """Sobel x and y responses of ``[B, 1, H, W]`` with ``"replicate"`` or ``"zeros"`` borders: ``[B, 2, H, W]``."""
    if padding == "zeros":
        return F.conv2d(r, _SOBEL.to(r), padding=1)
    return F.conv2d(F.pad(r, (1, 1, 1, 1), mode=padding), _SOBEL.to(r))


def scale_invariant_loss(prediction: torch.Tensor, target: torch.Tensor, *, lam: float = 1.0) -> torch.Tensor:
    """Scale-invariant loss ``mean(R^2) - lam mean(R)^2`` over the valid pixels of the batch.

    Args:
        prediction, target: depth ``[B, 1, H, W]`` (normalised log or metres); NaN in ``target`` marks no
            ground truth.
        lam: weight of the scale term (1: fully scale invariant).

    Returns:
        A scalar; 0 when no pixel is valid.
    """
    _check(prediction, target)
    r, valid = _residual(prediction, target)
    n = valid.sum().clamp_min(1)
    return (r.square().sum() - lam * r.sum().square() / n) / n


def multiscale_gradient_loss(prediction: torch.Tensor, target: torch.Tensor, *, num_scales: int = 4) -> torch.Tensor:
    """E2Depth's multi-scale gradient matching loss (pooling 1, 2, ..., 2^(num_scales - 1)).

    Shape: ``[B, 1, H, W]`` each -> scalar.
    """
    _check(prediction, target)
    r, _ = _residual(prediction, target)
    total = r.new_zeros(())
    for s in range(num_scales):
        pooled = F.avg_pool2d(r, 2 ** s) if s else r
        total = total + (_sobel(pooled, "replicate") / 8.0).abs().sum(1).mean()
    return total / num_scales


def sobel_gradient_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """StereoSpike's gradient matching ``(1/n) sum(|Sobel_x R| + |Sobel_y R|)`` over valid pixels (zero padding).

    The zero padding (and R = 0 where there is no target) make a constant offset of the prediction
    visible at borders and holes: with lambda = 1 the scale-invariant term ignores offsets, so this term
    is what ties a metric-depth prediction to its absolute level, as in the official code.

    Shape: ``[B, 1, H, W]`` each -> scalar.
    """
    _check(prediction, target)
    r, valid = _residual(prediction, target)
    grad = _sobel(r, "zeros").abs().sum(1, keepdim=True) * valid
    return grad.sum() / valid.sum().clamp_min(1)


def e2depth_loss(prediction: torch.Tensor, target: torch.Tensor, *, grad_weight: float = E2DEPTH_GRAD_WEIGHT,
                 lam: float = 1.0) -> torch.Tensor:
    """E2Depth: ``L_SI + 0.25 L_multiscale_grad`` on one prediction ``[B, 1, H, W]``."""
    return (scale_invariant_loss(prediction, target, lam=lam)
            + grad_weight * multiscale_gradient_loss(prediction, target))


def stereospike_loss(predictions: Sequence[torch.Tensor], target: torch.Tensor, *,
                     grad_weight: float = STEREOSPIKE_GRAD_WEIGHT, lam: float = 1.0) -> torch.Tensor:
    """StereoSpike's official ``Total_Loss``: ``sum_s L_SI(p_s) + 0.5 L_grad(p_s)`` over the predictions.

    Shape: predictions ``[B, 1, H, W]`` each, target the same -> scalar.
    """
    if len(predictions) == 0:
        raise ValueError("stereospike_loss needs at least one prediction")
    total = target.new_zeros(())
    for p in predictions:
        total = total + scale_invariant_loss(p, target, lam=lam) + grad_weight * sobel_gradient_loss(p, target)
    return total
