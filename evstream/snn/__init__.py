"""Spiking building blocks: neurons, surrogate gradients, multi-step layers, attention, profiler.

Tensors are time first, ``[T, B, ...]``. Neurons follow one convention: a pure step
``*_step(x, state, params) -> (spikes, state)`` with NamedTuple params and state, a cell
module (one step) and a multi-step module, both ``forward(x, state=None) -> (out, state)``.

CPU speed: glibc's malloc maps and unmaps large activations on every call; start Python with
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184``
(or jemalloc) for conv SNNs (see benchmarks/bench_snn.py).
"""

from evstream.snn.asa import ASA
from evstream.snn.attention import (ChannelAttention, SpatialAttention, TCSA, TemporalAttention, TimeAttention,
                                    discard_frames)
from evstream.snn.biclab import (BICLabCell, BICLabLIF, BICLabParams, BICLabState, biclab_multi_step,
                                 biclab_step)
from evstream.snn.fuse import fuse_conv_bn
from evstream.snn.ilif import (ILIF, ILIFCell, ILIFParams, ILIFState, collapse_virtual_steps, expand_virtual_steps,
                               ilif_multi_step, ilif_step)
from evstream.snn.layers import (MembraneShortcut, SeqAvgPool2d, SeqBatchNorm1d, SeqBatchNorm2d, SeqConv2d,
                                 SeqFlatten, SeqLinear, SeqMaxPool2d, SeqUpsample, Spiking, seq_apply)
from evstream.snn.lif import LIF, LIFCell, LIFParams, LIFState, lif_multi_step, lif_step
from evstream.snn.multibit import multibit_lif, multibit_params, set_bits
from evstream.snn.plif import PLIF, PLIFCell, plif_multi_step, plif_step
from evstream.snn.profiler import E_AC_PJ, E_MAC_PJ, SpikeProfiler, format_report
from evstream.snn.sdsa import SDSA
from evstream.snn.surrogate import heaviside, quantize, surrogate_names

__all__ = [
    "ASA", "BICLabCell", "BICLabLIF", "BICLabParams", "BICLabState", "ChannelAttention", "E_AC_PJ", "E_MAC_PJ",
    "ILIF", "ILIFCell", "ILIFParams", "ILIFState", "LIF", "LIFCell", "LIFParams", "LIFState", "MembraneShortcut",
    "PLIF", "PLIFCell", "SDSA", "SeqAvgPool2d", "SeqBatchNorm1d", "SeqBatchNorm2d", "SeqConv2d", "SeqFlatten",
    "SeqLinear", "SeqMaxPool2d", "SeqUpsample", "SpatialAttention", "SpikeProfiler", "Spiking", "TCSA",
    "TemporalAttention", "TimeAttention", "biclab_multi_step", "biclab_step", "collapse_virtual_steps",
    "discard_frames", "expand_virtual_steps", "format_report", "fuse_conv_bn", "heaviside", "ilif_multi_step", "ilif_step",
    "lif_multi_step", "lif_step", "multibit_lif", "multibit_params", "plif_multi_step", "plif_step", "quantize",
    "seq_apply", "set_bits", "surrogate_names",
]
