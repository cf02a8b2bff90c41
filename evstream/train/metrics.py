"""Classification metrics: top-1, TA-SNN's clip voting, the frame-discarding sweep, firing rates and energy.

Scores are ``[N, C]`` (rates or logits, larger is more likely); clip scores ``[B, K, C]`` for K
test clips per sample. TA-SNN's vote (models.md §2.3): a sample is correct when more than half
of its clips are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from evstream.snn import SpikeProfiler

__all__ = ["accuracy", "clip_metrics", "discard_sweep", "spike_stats"]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of ``scores [N, C]`` against ``labels [N]`` (0.0 for N = 0)."""
    if scores.ndim != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f"expected scores [N, C] and labels [N], got {tuple(scores.shape)}, {tuple(labels.shape)}")
    if len(labels) == 0:
        return 0.0
    return float((scores.argmax(1) == labels).float().mean())


def clip_metrics(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Per-sample and per-clip accuracy of ``scores [B, K, C]`` for K clips per sample.

    Returns:
        ``{"top1": argmax of the scores summed over clips, "top1_clip": accuracy of every clip on
        its own, "vote": TA-SNN's rule (correct when more than half of the clips are)}``.
    """
    if scores.ndim != 3 or labels.shape != scores.shape[:1]:
        raise ValueError(f"expected scores [B, K, C] and labels [B], got {tuple(scores.shape)}, {tuple(labels.shape)}")
    correct = scores.argmax(2) == labels[:, None]
    return {"top1": accuracy(scores.sum(1), labels),
            "top1_clip": float(correct.float().mean()) if correct.numel() else 0.0,
            "vote": float((correct.float().mean(1) > 0.5).float().mean()) if len(labels) else 0.0}


def discard_sweep(model: nn.Module, batches: Callable[[], Batches], thresholds: Sequence[float],
                  device: torch.device | str = "cpu") -> list[dict[str, float]]:
    """TA-SNN's accuracy versus kept frames: run with every d_th in ``thresholds``.

    Args:
        model: a net with ``run(x, discard_threshold=...)`` (TA-SNN, :class:`evstream.nets.SpikingClassifier`).
        batches: a function returning a fresh iterable of ``(frames [T, B, C, H, W], labels [B])``.
        thresholds: the d_th values (0 keeps every frame).
        device: where to run.

    Returns:
        One row per threshold: ``{"threshold", "kept": fraction of first-layer frames kept, "top1"}``.
    """
    rows = []
    model.eval()
    with torch.no_grad():
        for threshold in thresholds:
            kept, frames, correct, count = 0, 0, 0, 0
            for x, y in batches():
                result = model.run(x.to(device), discard_threshold=float(threshold))
                kept += int(result.keep.sum())
                frames += result.keep.numel()
                correct += int((result.rates.argmax(1).cpu() == y).sum())
                count += len(y)
            rows.append({"threshold": float(threshold), "kept": kept / max(frames, 1), "top1": correct / max(count, 1)})
    return rows


def spike_stats(model: nn.Module, batches: Batches, device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean firing rate and energy per sample from :class:`evstream.snn.SpikeProfiler`.

    Args:
        model: the net (its first input ``[T, B, ...]``).
        batches: iterable of ``(frames [T, B, ...], labels)``.

    Returns:
        ``{"firing_rate": mean of the neuron layers' firing rates, "energy_uj", "ann_energy_uj", "sops", "macs"}``
        (per sample).
    """
    model.eval()
    with torch.no_grad(), SpikeProfiler(model) as profiler:
        for x, _ in batches:
            model(x.to(device))
    return profile_summary(profiler.report())


def profile_summary(report: dict) -> dict[str, float]:
    """The :func:`spike_stats` numbers of a :meth:`SpikeProfiler.report`."""
    neurons = report["neurons"].values()
    rate = sum(r["firing_rate"] for r in neurons) / max(len(neurons), 1)
    return {"firing_rate": rate, "energy_uj": report["energy_pj"] / 1e6, "ann_energy_uj": report["ann_energy_pj"] / 1e6,
            "sops": report["total_sops"], "macs": report["total_macs"]}
