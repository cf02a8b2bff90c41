"""Checkpoints: written atomically, read safely, checked against the model they are loaded into.

Saving goes through a temporary file, fsync and a rename (a crash never leaves half a file).
Loading uses ``torch.load(weights_only=True)``: a checkpoint holds only tensors and plain Python
values (dicts, lists, strings, numbers), so a file cannot run code when it is opened. Every
problem (unreadable file, not a checkpoint, another network's weights) is a
:class:`CheckpointError` naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from evstream.errors import UserError
from evstream.io.atomic import atomic_output

__all__ = ["CheckpointError", "load", "load_model_state", "save_atomic", "state_digest"]


class CheckpointError(UserError):
    """A checkpoint file that cannot be used: ``"<path>: <reason>"``."""

    def __init__(self, path: os.PathLike | str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def save_atomic(state: dict, path: os.PathLike | str) -> None:
    """``torch.save`` to ``path`` through a temporary file in the same folder and an atomic rename.

    The file gets the umask's default mode (0644 usually); on failure no file is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def load(path: os.PathLike | str, map_location="cpu") -> dict:
    """The dict of a checkpoint (a training ``last.pt`` / ``best.pt`` or an exported live checkpoint).

    Raises:
        CheckpointError: no such file, not a readable torch file, objects other than weights and
            plain values, or no ``"model"`` state dict in it.
    """
    if not os.path.isfile(path):
        raise CheckpointError(path, "no such checkpoint file" if not os.path.exists(path) else "not a file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # the unpickler fails in many types; each means the file is unusable
        raise CheckpointError(path, f"not a readable evstream checkpoint ({_first_line(err)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"not an evstream checkpoint (it holds a {type(state).__name__}, not a dict)")
    model = state.get("model")
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        what = "a bare state dict" if state and all(isinstance(v, torch.Tensor) for v in state.values()) else \
            f"keys {sorted(map(str, state))[:8]}"
        raise CheckpointError(path, f"not an evstream checkpoint: no 'model' state dict ({what}); "
                                    "use a last.pt / best.pt of 'evstream train' or a file of 'evstream eval --export'")
    return state


def _examples(names) -> str:
    names = sorted(names)
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def load_model_state(model: nn.Module, state: dict, path: os.PathLike | str) -> None:
    """Load ``state["model"]`` into ``model`` after checking that its names and shapes match exactly.

    Raises:
        CheckpointError: missing or unexpected weights, or weights of another shape; the message
            says which (a few names) and, for an exported checkpoint, which network it holds.
    """
    saved, expected = state["model"], model.state_dict()
    missing, unexpected = set(expected) - set(saved), set(saved) - set(expected)
    reshaped = [f"{k} {tuple(saved[k].shape)} vs {tuple(expected[k].shape)}" for k in sorted(set(saved) & set(expected))
                if saved[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} weights missing ({_examples(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_examples(unexpected)})")
    if reshaped:
        problems.append(f"{len(reshaped)} of another shape ({_examples(reshaped)}; checkpoint vs model)")
    if problems:
        holds, options = state.get("net") or state.get("builder"), state.get("net_options") or state.get("kwargs")
        built = ", ".join(f"{k}={v!r}" for k, v in options.items()) if isinstance(options, dict) else ""
        origin = f" (it holds a {holds} network{' built with ' + built if built else ''})" if isinstance(holds, str) \
            else ""
        raise CheckpointError(path, f"does not fit the {type(model).__name__} built from these settings{origin}: "
                                    + "; ".join(problems))
    model.load_state_dict(saved)


def state_digest(state: dict) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and tensor bytes, in order: equal digests mean
    bit-identical weights, whatever file (training or live checkpoint) holds them."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
