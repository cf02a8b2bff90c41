"""Weight initialisations shared by nets ported from official code."""

from __future__ import annotations

from torch import nn


def trunc_normal_conv_init(m: nn.Module) -> None:
    """BICLab's initialisation (Spike-driven Transformer, T-RevSNN): conv weights truncated normal
    (std 0.02), conv biases 0; use as ``model.apply(trunc_normal_conv_init)``."""
    if isinstance(m, nn.Conv2d):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
