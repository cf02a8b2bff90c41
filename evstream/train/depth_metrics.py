"""Depth errors of the E2Depth protocol (Hidalgo-Carrió et al. 2020, ``rpg_e2depth/evaluation.py``).

Per frame, over valid pixels (``0 < target < max(target)`` and ``0 < prediction < max(target)``,
optionally also ``target < cutoff``): abs-rel, sq-rel, RMSE, RMSE-log, SILog, mean absolute
depth error, median difference and the δ < 1.25^k accuracies; then averaged over frames. Depths
are in metres. Targets are first clipped to ``clip_distance`` and rescaled so that their maximum
equals it (``prepare_depth_data`` in the reference script; the identity whenever some pixel is
at or beyond the clip distance, as in MVSEC outdoors).
"""

from __future__ import annotations

import numpy as np

ALPHA = 3.70378
"""Log-depth regularisation of E2Depth's evaluation (StereoSpike indoors uses 6 with 10 m)."""
EPS = 1e-5
CUTOFFS = (10.0, 20.0, 30.0)
METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "silog", "mean_depth_error", "median_diff",
           "delta1", "delta2", "delta3")


def depth_to_log(depth, d_max: float = 80.0, alpha: float = ALPHA):
    """Normalised log depth ``1 + ln(D / d_max) / alpha`` (1 at d_max, 0 at d_max * e^-alpha)."""
    return 1.0 + np.log(depth / d_max) / alpha


def log_to_depth(log_depth, d_max: float = 80.0, alpha: float = ALPHA):
    """Inverse of :func:`depth_to_log`: ``D = d_max * exp(alpha * (p - 1))``."""
    return d_max * np.exp(alpha * (log_depth - 1.0))


def prepare_target(target: np.ndarray, clip_distance: float = 80.0) -> np.ndarray:
    """Clip a metric depth map to ``clip_distance`` and rescale it so that its maximum equals it."""
    target = np.clip(target, 0, clip_distance)
    return target / np.nanmax(target) * clip_distance


def frame_metrics(target: np.ndarray, prediction: np.ndarray, mask: np.ndarray | None = None,
                  cutoff: float | None = None) -> dict[str, float] | None:
    """The metrics of one frame (metric depths [H, W]); None when no pixel is valid."""
    top = np.nanmax(target)
    valid = (target > 0) & (target < top) & (prediction > 0) & (prediction < top)
    if mask is not None:
        valid &= mask
    if cutoff is not None:
        valid &= np.nan_to_num(target) < cutoff
    if not valid.any():
        return None
    t, p = target[valid].astype(np.float64), prediction[valid].astype(np.float64)
    ratio = np.maximum(t / (p + EPS), p / (t + EPS))
    log_diff = np.log(t + EPS) - np.log(p + EPS)
    abs_diff = np.abs(t - p)
    return {
        "abs_rel": float((abs_diff / (t + EPS)).mean()),
        "sq_rel": float((abs_diff ** 2 / (t ** 2 + EPS)).mean()),
        "rmse": float(np.sqrt((abs_diff ** 2).mean())),
        "rmse_log": float(np.sqrt((log_diff ** 2).mean())),
        "silog": float((log_diff ** 2).mean() - log_diff.mean() ** 2),
        "mean_depth_error": float(abs_diff.mean()),
        "median_diff": float(abs(np.median(t) - np.median(p))),
        "delta1": float((ratio <= 1.25).mean()),
        "delta2": float((ratio <= 1.25 ** 2).mean()),
        "delta3": float((ratio <= 1.25 ** 3).mean()),
    }


def evaluate_depth(targets, predictions, *, clip_distance: float = 80.0, cutoffs=CUTOFFS,
                   masks=None) -> dict[str, float]:
    """Average the frame metrics over frames: keys ``abs_rel``, ... and ``abs_rel@10``, ... per cutoff.

    Args:
        targets, predictions: sequences of metric depth maps [H, W] (NaN = no ground truth).
        masks: optional per-frame boolean masks (e.g. pixels with events).
    """
    sums: dict[str, list[float]] = {}
    for k, (target, prediction) in enumerate(zip(targets, predictions)):
        target = prepare_target(np.asarray(target, dtype=np.float64), clip_distance)
        mask = None if masks is None else masks[k]
        for suffix, cutoff in [("", None)] + [(f"@{c:g}", c) for c in cutoffs]:
            result = frame_metrics(target, np.asarray(prediction, dtype=np.float64), mask, cutoff)
            if result is not None:
                for name, value in result.items():
                    sums.setdefault(name + suffix, []).append(value)
    return {name: float(np.mean(values)) for name, values in sums.items()}
