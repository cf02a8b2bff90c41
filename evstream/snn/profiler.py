"""Firing rates, synaptic operations and the energy estimate of the SNN papers (SpikeYOLO §1.7).

Forward hooks on every conv / linear layer count MACs and the activity of their input;
hooks on every neuron record its firing rate (mean output: the mean integer spike for
I-LIF). For a layer l with input activity fr_l (the mean input value):

    MACs_l = nnz(W_l) H_out W_out      (per sample, summed over T; linear: nnz(W_l); dense W:
                                        nnz = C_in C_out k^2 / groups)
    SOPs_l = MACs_l fr_l
    E = 4.6 pJ MACs_first + 0.9 pJ sum_{l > first} SOPs_l          (the first layer sees real values)
    E_ANN = 4.6 pJ sum_l MACs_l

Only synapses with a non-zero weight count: a pruned weight (:mod:`evstream.prune`) is no
operation, so a ticket's energy falls with its sparsity. BN (folded into the conv), pooling and
upsampling count as free. SDSA's token sum
(:class:`evstream.snn.sdsa.TokenSum`) counts one MAC per input element (one possible addition),
so its SOPs are the non-zeros of its masked input (the Spike-driven Transformer's E_AC T R N D).
"""

from __future__ import annotations


import torch
from torch import nn

from evstream.snn.biclab import BICLabCell, BICLabLIF
from evstream.snn.ilif import ILIF, ILIFCell
from evstream.snn.lif import LIF, LIFCell
from evstream.snn.plif import PLIF, PLIFCell
from evstream.snn.sdsa import TokenSum

__all__ = ["E_AC_PJ", "E_MAC_PJ", "NEURON_TYPES", "SpikeProfiler", "SpikeRate", "format_report"]

E_AC_PJ = 0.9
E_MAC_PJ = 4.6
NEURON_TYPES = (LIF, LIFCell, PLIF, PLIFCell, ILIF, ILIFCell, BICLabLIF, BICLabCell)
_SYNAPSES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, TokenSum)


def _macs(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, TokenSum):
        return x.numel()
    channels = module.out_features if isinstance(module, nn.Linear) else module.out_channels
    return out.numel() // channels * int(torch.count_nonzero(module.weight))


class SpikeRate:
    """Mean spike value of a model's neurons over the forward calls since :meth:`reset` (the live
    wrappers' per-window firing rate; :class:`SpikeProfiler` gives the per-layer detail).

    Args:
        model: the network; hooks stay on it for the meter's lifetime.
        types: the neuron module types whose outputs are spikes.
    """

    def __init__(self, model: nn.Module, types: tuple[type, ...] = NEURON_TYPES):
        self._total, self._count = 0.0, 0
        self._handles = [m.register_forward_hook(self._add) for m in model.modules() if isinstance(m, types)]

    def _add(self, module, inputs, output) -> None:
        spikes = output[0] if isinstance(output, tuple) else output
        self._total += float(spikes.detach().float().sum())
        self._count += spikes.numel()

    def reset(self) -> None:
        """Start a new count (the live wrappers call it before each window)."""
        self._total, self._count = 0.0, 0

    @property
    def value(self) -> float | None:
        """The mean spike value, or None when no neuron ran."""
        return self._total / self._count if self._count else None


class SpikeProfiler:
    """Context manager recording per-layer activity of ``model`` over one or more forward calls.

    Args:
        model: the network; its first positional input must be ``[T, B, ...]`` (B counts samples).
        e_ac_pj: energy per accumulate (0.9 pJ, 45 nm).
        e_mac_pj: energy per multiply-accumulate (4.6 pJ).
        neuron_types: module classes whose output is a spike tensor (or ``(spikes, state)``).

    Returns:
        :meth:`report` -> dict; :meth:`table` -> printable string.

    Example:
        >>> with SpikeProfiler(net) as prof:  # doctest: +SKIP
        ...     net(frames)
        >>> print(prof.table())  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, *, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ,
                 neuron_types: tuple[type, ...] = NEURON_TYPES):
        self.model, self.e_ac_pj, self.e_mac_pj, self.neuron_types = model, e_ac_pj, e_mac_pj, neuron_types
        self.samples = 0
        self.layers: dict[str, dict] = {}
        self.neurons: dict[str, dict] = {}
        self._handles: list = []

    def __enter__(self) -> "SpikeProfiler":
        self._handles.append(self.model.register_forward_pre_hook(self._count_samples))
        for name, module in self.model.named_modules():
            if isinstance(module, _SYNAPSES):
                self._handles.append(module.register_forward_hook(self._synapse_hook(name or type(module).__name__)))
            elif isinstance(module, self.neuron_types):
                self._handles.append(module.register_forward_hook(self._neuron_hook(name or type(module).__name__)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _count_samples(self, module, inputs) -> None:
        x = inputs[0]
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            raise ValueError("SpikeProfiler needs a [T, B, ...] tensor as the model's first input")
        self.samples += x.shape[1]

    def _synapse_hook(self, name: str):
        def hook(module, inputs, output) -> None:
            with torch.no_grad():
                x = inputs[0]
                rec = self.layers.setdefault(name, {"type": type(module).__name__, "macs": 0, "input_sum": 0.0,
                                                    "input_numel": 0, "sops": 0.0, "order": len(self.layers)})
                macs = _macs(module, x, output)
                rate = float(x.float().mean())
                rec["macs"] += macs
                rec["sops"] += macs * rate
                rec["input_sum"] += float(x.float().sum())
                rec["input_numel"] += x.numel()
        return hook

    def _neuron_hook(self, name: str):
        def hook(module, inputs, output) -> None:
            with torch.no_grad():
                spikes = output[0] if isinstance(output, tuple) else output
                rec = self.neurons.setdefault(name, {"type": type(module).__name__, "sum": 0.0, "numel": 0})
                rec["sum"] += float(spikes.float().sum())
                rec["numel"] += spikes.numel()
        return hook

    def report(self) -> dict:
        """Per-sample numbers.

        Returns:
            ``{"samples", "layers": {name: {type, macs, input_rate, sops, energy_pj, first}},
            "neurons": {name: {type, firing_rate}}, "total_macs", "total_sops", "energy_pj",
            "ann_energy_pj"}``; energies in pJ per sample.
        """
        n = max(self.samples, 1)
        first = min(self.layers, key=lambda k: self.layers[k]["order"]) if self.layers else None
        layers = {}
        for name, rec in self.layers.items():
            macs, sops = rec["macs"] / n, rec["sops"] / n
            energy = macs * self.e_mac_pj if name == first else sops * self.e_ac_pj
            rate = rec["input_sum"] / max(rec["input_numel"], 1)
            layers[name] = {"type": rec["type"], "macs": macs, "input_rate": rate, "sops": sops, "energy_pj": energy,
                            "first": name == first}
        neurons = {name: {"type": rec["type"], "firing_rate": rec["sum"] / max(rec["numel"], 1)}
                   for name, rec in self.neurons.items()}
        total_macs = sum(r["macs"] for r in layers.values())
        return {"samples": self.samples, "layers": layers, "neurons": neurons, "total_macs": total_macs,
                "total_sops": sum(r["sops"] for r in layers.values() if not r["first"]),
                "energy_pj": sum(r["energy_pj"] for r in layers.values()),
                "ann_energy_pj": total_macs * self.e_mac_pj}

    def table(self) -> str:
        """The report as a text table."""
        return format_report(self.report())


def format_report(report: dict) -> str:
    """Format a :meth:`SpikeProfiler.report` dict as a text table (energies in pJ per sample)."""
    lines = [f"{'layer':<32} {'type':<12} {'MACs':>12} {'in rate':>8} {'SOPs':>12} {'energy pJ':>12}"]
    for name, r in report["layers"].items():
        tag = " (MAC)" if r["first"] else ""
        lines.append(f"{name:<32} {r['type']:<12} {r['macs']:>12.4g} {r['input_rate']:>8.4f} {r['sops']:>12.4g} "
                     f"{r['energy_pj']:>12.4g}{tag}")
    lines.append(f"{'neuron':<32} {'type':<12} {'firing rate':>12}")
    for name, r in report["neurons"].items():
        lines.append(f"{name:<32} {r['type']:<12} {r['firing_rate']:>12.4f}")
    lines.append(f"samples {report['samples']}  MACs {report['total_macs']:.4g}  SOPs {report['total_sops']:.4g}  "
                 f"SNN {report['energy_pj'] / 1e6:.4g} uJ  ANN {report['ann_energy_pj'] / 1e6:.4g} uJ")
    return "\n".join(lines)
