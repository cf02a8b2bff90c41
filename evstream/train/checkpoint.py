"""Checkpoints written atomically (temporary file, fsync, rename): a crash never leaves half a file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch


def save_atomic(state: dict, path: os.PathLike | str) -> None:
    """``torch.save`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: os.PathLike | str, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_atomic` (weights and plain Python values only)."""
    return torch.load(path, map_location=map_location, weights_only=False)


def state_digest(state: dict) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and tensor bytes, in order: equal digests mean
    bit-identical weights, whatever file (training or live checkpoint) holds them."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
