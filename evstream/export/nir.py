"""NIR (Neuromorphic Intermediate Representation) export and import of evstream's spiking nets.

:func:`to_nir` writes a chain of layers (conv, linear, average pooling, flatten, LIF / PLIF /
BICLab neurons, a voting readout) as a ``nir.NIRGraph`` that snntorch, norse, sinabs, rockpool and
lava-dl read; :func:`from_nir` builds evstream modules from a graph (:class:`NIRNetwork`).

Discretisation. evstream's neurons step in discrete time; NIR's are continuous. A NIR LIF,
``tau dv/dt = (v_leak - v) + r I``, integrated by forward Euler with step ``dt`` is

    v[t] = v[t-1] + (dt / tau) (v_leak - v[t-1] + r I[t]),  then z = 1 if v > v_threshold, v = v_reset if z,

which is evstream's update with ``1 / tau_steps = dt / tau``:

* LIF / PLIF (``decay_input=True``, hard reset): ``tau = tau_steps dt``, ``r = 1``, ``v_leak = V_reset``;
  ``decay_input=False`` gives ``r = tau_steps``. PLIF's ``tau_steps = 1 / sigmoid(w)`` (its learnt value).
* BICLab cell (TA-SNN: ``U = decay reset(U) + X``, bias 0): ``tau_steps = 1 / (1 - decay)``, ``r = tau_steps``,
  ``v_leak = 0``, ``v_reset`` its reset value.
* An LIF with ``tau = inf`` and ``decay_input=False`` (V += X) is a ``nir.IF`` with ``r = 1``, read as
  norse reads it: ``v += r I`` per step (NIR's IF has no time constant).

``dt`` defaults to 1e-4 s, the step snntorch's NIR importer assumes; norse's ``from_nir`` takes it
as ``dt``. The spike, reset and output come in the same step (snntorch ``reset_delay=False``).
Caveats: evstream fires at ``v >= V_th``, NIR (and snntorch, norse) at ``v > v_th``: the two
differ only when the potential equals the threshold exactly. A soft reset (``V -= V_th``) has no
NIR node and is refused. Neurons start at rest, ``v_leak`` (norse's choice; snntorch starts at 0).

Folding. Eval-mode BatchNorm is folded into the preceding conv / linear layer
(:func:`evstream.snn.fuse_conv_bn`). An average pool that follows a conv or linear layer is written
as a ``nir.SumPool2d`` with ``1 / (kh kw)`` folded into that layer's weights and bias (exact for
power-of-two pool areas): norse reads only sum pooling; ``avg_pool="avg"`` keeps ``nir.AvgPool2d``.

Readout. The graph's output is per time step. A :class:`~evstream.nets.nmnist.VotingClassifier`'s
voters are summed per class by a ``nir.Linear`` of ones, so the output is the integer vote count
per class and step; the graph's metadata says how evstream reads it (``readout``).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from evstream.errors import UserError
from evstream.nets.nmnist import VotingClassifier
from evstream.nets.tasnn import SpikingClassifier, SpikingLayer
from evstream.snn.biclab import BICLabLIF
from evstream.snn.fuse import fuse_conv_bn
from evstream.snn.layers import SeqAvgPool2d, SeqConv2d, SeqFlatten, SeqLinear, Spiking
from evstream.snn.lif import LIF, LIFState
from evstream.snn.plif import PLIF

__all__ = ["DEFAULT_DT", "NIRNetwork", "NIRNeuron", "from_nir", "import_nir", "to_nir"]

DEFAULT_DT = 1e-4
"""Seconds per evstream time step in an exported graph: the step snntorch's NIR importer assumes."""

_NEURONS = (LIF, PLIF, BICLabLIF)
_SKIPPED = (nn.Identity, nn.Dropout)
_WHY = {  # reasons for modules NIR has no node for, by class name
    "TemporalAttention": "NIR has no attention node",
    "ChannelAttention": "NIR has no attention node",
    "SpatialAttention": "NIR has no attention node",
    "TCSA": "NIR has no attention node",
    "TimeAttention": "NIR has no attention node",
    "ILIF": "integer spikes; NIR spikes are binary",
    "MaxPool2d": "NIR has no max pooling",
    "SeqMaxPool2d": "NIR has no max pooling",
    "MembraneShortcut": "a residual branch; only chains of layers are exported",
}


def import_nir():
    """The ``nir`` package; UserError saying how to install it when it is missing."""
    try:
        import nir
    except ImportError:
        raise UserError("NIR export and import need the 'nir' package: pip install 'evstream[nir]'") from None
    return nir


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _voting_readout(classes: int, votes: int) -> nn.Linear:
    """Linear ``[classes * votes] -> [classes]`` summing each class's voters (weights 1)."""
    layer = nn.Linear(classes * votes, classes, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.kron(torch.eye(classes), torch.ones(1, votes)))
    return layer


def _chain(module: nn.Module, name: str, layers: list, problems: list) -> None:
    """Append ``(name, module)`` for each layer of ``module``'s forward, in order; unexportable
    parts go to ``problems`` as ``(name, reason)``."""
    if isinstance(module, SpikingClassifier):
        for i, layer in enumerate(module.features):
            _chain(layer, _join(name, f"features.{i}"), layers, problems)
        layers.append((_join(name, "flatten"), SeqFlatten()))
        for i, layer in enumerate(module.classifier):
            _chain(layer, _join(name, f"classifier.{i}"), layers, problems)
        if isinstance(module, VotingClassifier):
            width = next((layer.out_features for _, layer in reversed(layers) if isinstance(layer, nn.Linear)), None)
            if width is None or width % module.votes:
                problems.append((_join(name, "votes"), "the voting readout needs a linear last layer"))
            else:
                layers.append((_join(name, "votes"), _voting_readout(width // module.votes, module.votes)))
    elif isinstance(module, SpikingLayer):
        _chain(module.synapse, _join(name, "synapse"), layers, problems)
        if module.attention is not None:
            problems.append((_join(name, "attention"), f"{type(module.attention).__name__}: NIR has no attention node"))
        _chain(module.neuron, _join(name, "neuron"), layers, problems)
    elif isinstance(module, nn.Sequential):
        for child_name, child in module.named_children():
            _chain(child, _join(name, child_name), layers, problems)
    elif isinstance(module, Spiking):
        _chain(module.neuron, _join(name, "neuron"), layers, problems)
    elif isinstance(module, _SKIPPED):
        return
    elif isinstance(module, (nn.Conv2d, nn.Linear, nn.AvgPool2d, SeqFlatten, nn.modules.batchnorm._BatchNorm,
                             *_NEURONS)):
        layers.append((name, module))
    else:
        kind = type(module).__name__
        if kind in _WHY or not list(module.children()):
            problems.append((name or "the model", f"{kind}: {_WHY.get(kind, 'no NIR node for it')}"))
            return
        problems.append((name or "the model", f"{kind}: its forward is not a chain of layers NIR can express"))
        for inner, part in module.named_modules():
            if inner and type(part).__name__ in _WHY:
                problems.append((_join(name, inner), f"{type(part).__name__}: {_WHY[type(part).__name__]}"))


def _neuron_node(name: str, neuron: nn.Module, shape: tuple, dt: float, problems: list):
    """The NIR node of an evstream neuron (see the module docstring), or None with a problem noted."""
    nir = import_nir()

    def full(value: float) -> np.ndarray:
        return np.full(shape, value, dtype=np.float64)

    if isinstance(neuron, BICLabLIF):
        p = neuron.p
        if p.liaf or neuron.attention is not None or p.bias != 0.0 or not 0.0 <= p.decay < 1.0:
            problems.append((name, "BICLabLIF with LIAF output, membrane attention, a bias or decay outside [0, 1)"))
            return None
        tau_steps = 1.0 / (1.0 - p.decay)
        return nir.LIF(tau=full(tau_steps * dt), r=full(tau_steps), v_leak=full(0.0), v_threshold=full(p.v_threshold),
                       v_reset=full(p.v_reset))
    p = neuron.p
    if p.v_reset is None:
        problems.append((name, f"{type(neuron).__name__} with soft reset (V -= V_th): NIR resets to v_reset"))
        return None
    if isinstance(neuron, PLIF):
        tau_steps = 1.0 / float(torch.sigmoid(neuron.w.detach()))
    else:
        tau_steps = p.tau
    if math.isinf(tau_steps):
        if p.decay_input:
            problems.append((name, "LIF with tau = inf and decay_input: its input is scaled by 1 / tau = 0"))
            return None
        return nir.IF(r=full(1.0), v_threshold=full(p.v_threshold), v_reset=full(p.v_reset))
    r = 1.0 if p.decay_input else tau_steps
    return nir.LIF(tau=full(tau_steps * dt), r=full(r), v_leak=full(p.v_reset), v_threshold=full(p.v_threshold),
                   v_reset=full(p.v_reset))


def _pool_problem(pool: nn.AvgPool2d) -> str | None:
    if pool.ceil_mode or pool.divisor_override is not None:
        return "AvgPool2d with ceil_mode or divisor_override: NIR pools have neither"
    if not pool.count_include_pad and any(np.atleast_1d(pool.padding)):
        return "AvgPool2d with padding and count_include_pad=False: NIR pools divide by the kernel area"
    return None


def _pair(value) -> tuple[int, int]:
    """``(h, w)`` ints of an int, a pair or an array of one or two values."""
    values = np.atleast_1d(np.asarray(value)).astype(np.int64).ravel()
    if values.size not in (1, 2):
        raise UserError(f"expected one or two sizes, got {value!r}")
    return (int(values[0]), int(values[-1]))


def _summarise(problems: Sequence[tuple[str, str]]) -> str:
    """``reason at a, b, c and N more; reason2 at d`` grouping equal reasons."""
    groups: dict[str, list[str]] = {}
    for name, reason in problems:
        groups.setdefault(reason, []).append(name)
    parts = []
    for reason, names in groups.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        parts.append(f"{shown} ({reason})")
    return "; ".join(parts)


@torch.no_grad()
def to_nir(model: nn.Module, input_shape: Sequence[int], *, dt: float = DEFAULT_DT, avg_pool: str = "sum"):
    """The ``nir.NIRGraph`` of an evstream spiking net (a chain of layers).

    Args:
        model: a :class:`~evstream.nets.tasnn.SpikingClassifier` (voting or not), an ``nn.Sequential``
            of multi-step layers (``SeqConv2d``, ``SeqBatchNorm2d``, ``SeqAvgPool2d``, ``SeqFlatten``,
            ``SeqLinear``, ``Spiking(LIF | PLIF | BICLabLIF)``) or a neuron. Not modified.
        input_shape: one sample's input without time and batch, e.g. ``(2, 34, 34)``.
        dt: seconds per time step (NIR time constants are ``tau_steps * dt``).
        avg_pool: ``"sum"`` writes average pools after a conv / linear layer as ``nir.SumPool2d`` with
            the divisor folded into that layer (what norse reads); ``"avg"`` writes ``nir.AvgPool2d``.

    Returns:
        A graph ``input -> nodes named by module path -> output``; metadata holds ``dt``, the
        time steps (``time_steps``, classifiers) and how evstream reads the output (``readout``).

    Raises:
        UserError: a part NIR cannot express (one line naming every such part and why), a bad
            argument, or the ``nir`` package missing.

    Example:
        >>> from evstream.nets import build
        >>> graph = to_nir(build("cnn_nmnist", time_steps=3), (2, 34, 34))  # doctest: +SKIP
        >>> sorted(graph.nodes)[:3]  # doctest: +SKIP
        ['classifier.0.neuron', 'classifier.0.synapse.0', 'features.0.neuron']
    """
    nir = import_nir()
    if not isinstance(model, nn.Module):
        raise UserError(f"to_nir needs an nn.Module, got {type(model).__name__}")
    if avg_pool not in ("sum", "avg"):
        raise UserError(f"avg_pool must be 'sum' or 'avg', got {avg_pool!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise UserError(f"dt must be a positive number of seconds, got {dt!r}")
    shape = tuple(int(s) for s in input_shape)
    if not shape or min(shape) < 1:
        raise UserError(f"input_shape must be one sample's positive sizes without time and batch, got {input_shape!r}")
    model = fuse_conv_bn(copy.deepcopy(model).cpu().float().eval(), inplace=True)
    layers: list[tuple[str, nn.Module]] = []
    problems: list[tuple[str, str]] = []
    _chain(model, "", layers, problems)
    title = type(model).__name__

    nodes = {"input": nir.Input(input_type=np.array(shape))}
    edges, previous = [], "input"
    probe = torch.zeros(1, *shape)
    for name, layer in layers:
        node = None
        try:
            if isinstance(layer, nn.Conv2d):
                if layer.padding_mode != "zeros" or probe.ndim != 4:
                    problems.append((name, "Conv2d with non-zero padding or a non-image input"))
                    continue
                size = tuple(probe.shape[2:])
                probe = F.conv2d(probe, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation,
                                 layer.groups)
                bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_channels)
                node = nir.Conv2d(input_shape=size, weight=layer.weight.numpy().copy(), bias=bias.numpy().copy(),
                                  stride=tuple(layer.stride), padding=layer.padding if isinstance(layer.padding, str)
                                  else tuple(layer.padding), dilation=tuple(layer.dilation), groups=layer.groups)
            elif isinstance(layer, nn.Linear):
                probe = F.linear(probe, layer.weight, layer.bias)
                weight = layer.weight.numpy().copy()
                node = (nir.Linear(weight=weight) if layer.bias is None else
                        nir.Affine(weight=weight, bias=layer.bias.numpy().copy()))
            elif isinstance(layer, nn.AvgPool2d):
                why = _pool_problem(layer)
                if why:
                    problems.append((name, why))
                    continue
                kernel, stride = _pair(layer.kernel_size), _pair(layer.stride or layer.kernel_size)
                padding = _pair(layer.padding)
                probe = F.avg_pool2d(probe, kernel, stride, padding)
                before = nodes[previous]
                if avg_pool == "sum" and isinstance(before, (nir.Conv2d, nir.Affine)):
                    area = float(np.prod(kernel))
                    before.weight = (before.weight / area).astype(before.weight.dtype)
                    before.bias = (before.bias / area).astype(before.bias.dtype)
                    node = nir.SumPool2d(kernel_size=np.array(kernel), stride=np.array(stride), padding=np.array(padding))
                else:
                    node = nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(stride), padding=np.array(padding))
            elif isinstance(layer, SeqFlatten):
                node = nir.Flatten(input_type={"input": np.array(probe.shape[1:])}, start_dim=0, end_dim=-1)
                probe = probe.flatten(1)
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
                problems.append((name, f"{type(layer).__name__} not right after a conv or linear layer: "
                                       "NIR has no batch norm"))
                continue
            else:
                node = _neuron_node(name, layer, tuple(probe.shape[1:]), dt, problems)
        except RuntimeError as err:  # a layer that does not fit the shape before it
            raise UserError(f"cannot export {title} to NIR: {name} does not fit an input of shape "
                            f"{tuple(probe.shape[1:])} ({str(err).splitlines()[0]})") from None
        if node is None:
            continue
        nodes[name] = node
        edges.append((previous, name))
        previous = name
    if problems:
        raise UserError(f"cannot export {title} to NIR: {_summarise(problems)}")
    if len(nodes) == 1:
        raise UserError(f"cannot export {title} to NIR: it has no layers")
    nodes["output"] = nir.Output(output_type=np.array(probe.shape[1:]))
    edges.append((previous, "output"))
    metadata = {"source": "evstream", "dt": float(dt), "discretisation":
                "forward Euler with step dt: tau = tau_steps * dt; spike, reset and output in the same step"}
    if isinstance(model, SpikingClassifier):
        metadata["time_steps"] = model.time_steps
        scale = f" / (T * {model.votes})" if isinstance(model, VotingClassifier) else " / T"
        metadata["readout"] = f"class rates = output summed over the T = {model.time_steps} steps{scale}"
    else:
        metadata["readout"] = "the output of every time step"
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


class NIRNeuron(nn.Module):
    """An evstream :class:`~evstream.snn.LIF` reading a NIR LIF or IF node on ``[T, B, ...]``.

    The node's input current ``I`` becomes the LIF's input ``X = gain I + shift`` (gain ``r`` or
    none, shift the leak term ``v_leak - v_reset`` scaled as the LIF charges it), and the LIF starts
    at ``rest`` (``v_leak``) when that is not its reset potential.

    Shape: ``[T, B, ...]`` -> spikes ``[T, B, ...]``.
    """

    def __init__(self, lif: LIF, gain: np.ndarray | None = None, shift: np.ndarray | None = None,
                 rest: np.ndarray | None = None):
        super().__init__()
        self.lif = lif
        for key, value in (("gain", gain), ("shift", shift), ("rest", rest)):
            self.register_buffer(key, None if value is None else torch.as_tensor(value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gain is not None:
            x = x * self.gain
        if self.shift is not None:
            x = x + self.shift
        state = None if self.rest is None else LIFState(self.rest.to(x.dtype).expand_as(x[0]).clone())
        return self.lif(x, state)[0]


def _one_value(node_name: str, field: str, values) -> float:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or values.min() != values.max():
        raise UserError(f"NIR node {node_name!r}: {field} differs between neurons; evstream's LIF takes one value "
                        "per layer")
    return float(values.flat[0])


def _neuron_module(name: str, node, dt: float) -> NIRNeuron:
    nir = import_nir()
    v_th = _one_value(name, "v_threshold", node.v_threshold)
    v_reset = _one_value(name, "v_reset", node.v_reset)
    r = np.asarray(node.r, dtype=np.float64)
    if isinstance(node, nir.IF):
        lif = LIF(tau=math.inf, decay_input=False, v_threshold=v_th, v_reset=v_reset)
        return NIRNeuron(lif, gain=None if np.all(r == 1.0) else r)
    tau_steps = _one_value(name, "tau", node.tau) / dt
    if not tau_steps >= 1.0:
        raise UserError(f"NIR node {name!r}: tau {tau_steps * dt:g} s is shorter than the step dt = {dt:g} s "
                        "(forward Euler needs tau >= dt; pass the graph's dt)")
    k = 1.0 / tau_steps
    unit_gain = np.allclose(r, 1.0, rtol=1e-6, atol=0.0)
    decay_input = unit_gain or not np.allclose(r, tau_steps, rtol=1e-6, atol=0.0)  # r = tau_steps: X enters undecayed
    gain = None if unit_gain or not decay_input else r
    leak = np.asarray(node.v_leak, dtype=np.float64) - v_reset
    shift = None if not leak.any() else (leak if decay_input else leak * k)
    rest = None if not leak.any() else np.asarray(node.v_leak, dtype=np.float64)
    lif = LIF(tau=tau_steps, decay_input=decay_input, v_threshold=v_th, v_reset=v_reset)
    return NIRNeuron(lif, gain, shift, rest)


def _module(name: str, node, dt: float) -> nn.Module | None:
    """The evstream module of one NIR node (None for input and output)."""
    nir = import_nir()
    if isinstance(node, (nir.Input, nir.Output)):
        return None
    if isinstance(node, nir.Conv2d):
        weight = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
        conv = SeqConv2d(weight.shape[1] * int(node.groups), weight.shape[0], tuple(weight.shape[2:]),
                         stride=(_pair(node.stride)), padding=node.padding if isinstance(node.padding, str)
                         else (_pair(node.padding)), dilation=(_pair(node.dilation)),
                         groups=int(node.groups))
        conv.weight.data.copy_(weight)
        conv.bias.data.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
        return conv
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
        linear = SeqLinear(weight.shape[1], weight.shape[0], bias=isinstance(node, nir.Affine))
        linear.weight.data.copy_(weight)
        if isinstance(node, nir.Affine):
            linear.bias.data.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
        return linear
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        divisor = 1 if isinstance(node, nir.SumPool2d) else None
        return SeqAvgPool2d((_pair(node.kernel_size)), (_pair(node.stride)), (_pair(node.padding)),
                            divisor_override=divisor)
    if isinstance(node, nir.Flatten):
        start, end = int(node.start_dim), int(node.end_dim)
        return nn.Flatten(start + 2 if start >= 0 else start, end + 2 if end >= 0 else end)
    if isinstance(node, (nir.LIF, nir.IF)):
        return _neuron_module(name, node, dt)
    raise UserError(f"NIR node {name!r} is a {type(node).__name__}, which evstream does not read (it reads Input, "
                    "Output, Conv2d, Affine, Linear, AvgPool2d, SumPool2d, Flatten, LIF and IF)")


def _order(nodes: dict, edges: Iterable[tuple[str, str]]) -> list[str]:
    """Topological order of a feed-forward graph; UserError on unknown names or a cycle."""
    edges = list(edges)
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise UserError(f"NIR graph edge ({a!r}, {b!r}) names no node {end!r}")
    waiting = {name: sum(1 for _, b in edges if b == name) for name in nodes}
    ready = [name for name in nodes if waiting[name] == 0]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for a, b in edges:
            if a == name:
                waiting[b] -= 1
                if waiting[b] == 0:
                    ready.append(b)
    if len(order) != len(nodes):
        loop = sorted(set(nodes) - set(order))
        raise UserError(f"NIR graph has recurrent edges (through {', '.join(loop[:4])}); evstream imports "
                        "feed-forward graphs only")
    return order


class NIRNetwork(nn.Module):
    """A feed-forward NIR graph as evstream multi-step modules, run layer by layer on ``[T, B, ...]``.

    A node's input is the sum of the outputs of the nodes with an edge into it (NIR's rule).
    Built by :func:`from_nir`; ``layers`` holds the modules by NIR node name, ``metadata`` the graph's.

    Shape: ``[T, B, *input_shape]`` -> the output node's input ``[T, B, *output_shape]`` per step.
    """

    def __init__(self, layers: dict[str, nn.Module], order: Sequence[str], sources: dict[str, list[str]],
                 input_name: str, output_name: str, *, dt: float, metadata: dict | None = None):
        super().__init__()
        self.names = list(order)
        self._keys = {name: f"n{i}_{name.replace('.', '_')}" for i, name in enumerate(self.names)}
        self.layers = nn.ModuleDict({self._keys[name]: module for name, module in layers.items()})
        self.sources, self.input_name, self.output_name = sources, input_name, output_name
        self.dt, self.metadata = dt, dict(metadata or {})

    def layer(self, name: str) -> nn.Module:
        """The module of NIR node ``name``."""
        return self.layers[self._keys[name]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 3:
            raise ValueError(f"expected [T, B, ...] input, got shape {tuple(x.shape)}")
        values = {}
        for name in self.names:
            if name == self.input_name:
                values[name] = x
                continue
            inputs = [values[source] for source in self.sources[name]]
            y = inputs[0]
            for other in inputs[1:]:
                y = y + other
            key = self._keys[name]
            values[name] = self.layers[key](y) if key in self.layers else y
        return values[self.output_name]

    def extra_repr(self) -> str:
        return f"dt={self.dt}"


def from_nir(graph, *, dt: float | None = None) -> NIRNetwork:
    """Build evstream modules from a NIR graph (or a ``.nir`` file): the inverse of :func:`to_nir`.

    Args:
        graph: a ``nir.NIRGraph`` or the path of a file ``nir.write`` wrote.
        dt: seconds per time step; default the graph's ``metadata["dt"]`` (evstream's graphs) or
            :data:`DEFAULT_DT` (1e-4 s, snntorch's step).

    Returns:
        A :class:`NIRNetwork` in eval mode: conv -> ``SeqConv2d``, affine / linear -> ``SeqLinear``,
        sum / average pooling -> ``SeqAvgPool2d``, flatten -> ``nn.Flatten`` (after ``[T, B]``),
        LIF / IF -> :class:`NIRNeuron` (an evstream ``LIF`` with ``tau_steps = tau / dt``).

    Raises:
        UserError: an unreadable file, a node type evstream has no module for, recurrent edges,
            per-neuron time constants or thresholds, ``tau < dt``; one line naming the node.
    """
    nir = import_nir()
    if isinstance(graph, (str, os.PathLike)):
        if not os.path.isfile(graph):
            raise UserError(f"{graph}: no such NIR file")
        try:
            graph = nir.read(graph)
        except Exception as err:  # h5py and nir raise many types for a file that is not a NIR graph
            raise UserError(f"{graph}: not a readable NIR file ({type(err).__name__}: {err})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise UserError(f"from_nir needs a nir.NIRGraph or a .nir file, got {type(graph).__name__}")
    metadata = dict(getattr(graph, "metadata", None) or {})
    if dt is None:
        dt = float(metadata.get("dt", DEFAULT_DT))
    if not (math.isfinite(dt) and dt > 0):
        raise UserError(f"dt must be a positive number of seconds, got {dt!r}")
    order = _order(graph.nodes, graph.edges)
    inputs = [n for n in order if isinstance(graph.nodes[n], nir.Input)]
    outputs = [n for n in order if isinstance(graph.nodes[n], nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"NIR graph has {len(inputs)} input and {len(outputs)} output nodes; evstream imports "
                        "graphs with one of each")
    sources = {name: [a for a, b in graph.edges if b == name] for name in order}
    for name in order:
        if name != inputs[0] and not sources[name]:
            raise UserError(f"NIR node {name!r} has no input edge")
        if isinstance(graph.nodes[name], nir.NIRGraph):
            raise UserError(f"NIR node {name!r} is a nested graph; evstream imports flat graphs only")
    layers = {}
    for name in order:
        module = _module(name, graph.nodes[name], dt)
        if module is not None:
            layers[name] = module
    return NIRNetwork(layers, order, sources, inputs[0], outputs[0], dt=dt, metadata=metadata).eval()
