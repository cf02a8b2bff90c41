"""Mixed precision for the shared trainer: which autocast dtype a setting means on a device.

``auto`` is the official SpikeYOLO trainer's choice on CUDA (``torch.cuda.amp.autocast`` with a
``GradScaler``: float16) and full float32 elsewhere; ``bf16`` / ``fp16`` force a dtype on any
device torch autocasts (CUDA, CPU); ``off`` trains in float32. float16 gradients go through a
``GradScaler`` (they underflow otherwise); bfloat16 has float32's range and needs none.
"""

from __future__ import annotations

import torch

__all__ = ["AMP_MODES", "autocast_dtype"]

AMP_MODES = ("auto", "off", "bf16", "fp16")


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The dtype ``torch.autocast`` runs the forward pass and loss in, or None for float32.

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in AMP_MODES:
        raise ValueError(f"unknown amp mode {mode!r} (one of {', '.join(AMP_MODES)})")
    if mode == "auto":
        return torch.float16 if device.type == "cuda" else None
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]
