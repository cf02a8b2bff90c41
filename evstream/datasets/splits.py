"""Deterministic per-class train/test splits for datasets without an official one."""

from __future__ import annotations

import math


def split_per_class(files_per_class, split: str, train_fraction: float = 0.9):
    """``(label, file)`` pairs of a split: per class, the first ``ceil(train_fraction * n)`` files
    (in the given order) train, the rest test."""
    pairs = []
    for label, files in enumerate(files_per_class):
        cut = math.ceil(train_fraction * len(files))
        chosen = files[:cut] if split == "train" else files[cut:]
        pairs += [(label, f) for f in chosen]
    return pairs
