"""Spike-driven self-attention (SDSA, Spike-driven Transformer, NeurIPS 2023).

On the membrane tensor X ``[T, B, C, H, W]`` with N = H W tokens, h heads of d = C / h:

    S = LIF(X)                                              (shortcut LIF: the block starts spiking)
    Q, K, V = LIF(BN(Conv1x1(S)))                           (binary, [T, B, h, N, d])
    A = SN_{V_th = 0.5}(sum_N (K * V))                      (one d-vector per head and step)
    Y = X + BN(Conv1x1(Q * A))                              (membrane shortcut)

All LIFs: tau 2, hard reset to 0, detach_reset, V_th 1 except the attention LIF (0.5).
``dvs=True`` adds the "Erode" 3x3 max-pool of the DVS models after K, V, K*V and Q*A,
applied to the last two dimensions exactly as the official code does.

The token sum runs in :class:`TokenSum`, so the profiler counts SDSA's mask-and-add work as the
paper does: K * V and Q * A are masks (free), the sum over N adds every non-zero of K * V
(E_AC T R N D, R the rate of K * V).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from evstream.snn.layers import SeqBatchNorm2d, SeqConv2d
from evstream.snn.lif import LIF

__all__ = ["SDSA", "TokenSum"]


def _erode(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool3d(x, kernel_size=(1, 3, 3), stride=1, padding=(0, 1, 1))


class TokenSum(nn.Module):
    """The column sum of SDSA over the N tokens of a masked ``K * V`` ``[T, B, h, N, d]`` -> ``[T, B, h, 1, d]``.

    A module of its own so :class:`evstream.snn.profiler.SpikeProfiler` counts one accumulate per
    non-zero input element (the additions of the spike-driven sum).
    """

    def forward(self, kv: torch.Tensor) -> torch.Tensor:
        return kv.sum(dim=-2, keepdim=True)


class SDSA(nn.Module):
    """Spike-driven self-attention block with membrane shortcut.

    Args:
        dim: channels C.
        num_heads: heads h (C must be divisible by h).
        dvs: add the Erode max-pools of the DVS variant.
        tau: time constant of every LIF.
        surrogate: surrogate of every LIF.

    Shape: ``[T, B, C, H, W]`` -> same.

    Example:
        >>> y = SDSA(64, num_heads=8)(torch.rand(4, 2, 64, 8, 8))
    """

    def __init__(self, dim: int, num_heads: int = 8, *, dvs: bool = False, tau: float = 2.0,
                 surrogate: str = "sigmoid"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.num_heads, self.dvs = dim, num_heads, dvs

        def lif(v_threshold: float = 1.0) -> LIF:
            return LIF(tau=tau, v_threshold=v_threshold, detach_reset=True, surrogate=surrogate)

        self.shortcut_lif = lif()
        self.q_conv, self.q_bn, self.q_lif = SeqConv2d(dim, dim, 1, bias=False), SeqBatchNorm2d(dim), lif()
        self.k_conv, self.k_bn, self.k_lif = SeqConv2d(dim, dim, 1, bias=False), SeqBatchNorm2d(dim), lif()
        self.v_conv, self.v_bn, self.v_lif = SeqConv2d(dim, dim, 1, bias=False), SeqBatchNorm2d(dim), lif()
        self.token_sum, self.attn_lif = TokenSum(), lif(0.5)
        self.proj_conv, self.proj_bn = SeqConv2d(dim, dim, 1), SeqBatchNorm2d(dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        t, b, c, _, _ = x.shape
        return x.flatten(3).transpose(-1, -2).reshape(t, b, -1, self.num_heads, c // self.num_heads).transpose(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[2] != self.dim:
            raise ValueError(f"expected [T, B, {self.dim}, H, W], got shape {tuple(x.shape)}")
        s = self.shortcut_lif(x)[0]
        q = self.q_lif(self.q_bn(self.q_conv(s)))[0]
        k = self.k_lif(self.k_bn(self.k_conv(s)))[0]
        v = self.v_lif(self.v_bn(self.v_conv(s)))[0]
        if self.dvs:
            k, v = _erode(k), _erode(v)
        kv = self._heads(k) * self._heads(v)
        if self.dvs:
            kv = _erode(kv)
        a = self.attn_lif(self.token_sum(kv))[0]
        y = self._heads(q) * a
        if self.dvs:
            y = _erode(y)
        y = y.transpose(3, 4).reshape(x.shape)
        return x + self.proj_bn(self.proj_conv(y))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, dvs={self.dvs}"
