"""Which weights to prune: magnitude (the lottery-ticket baseline) and the probabilistic spike-flip criterion.

Both return ``name -> score`` over :func:`~evstream.prune.masks.prunable_weights`; higher scores are kept.

* :func:`magnitude_scores`: ``|w|`` (Frankle & Carbin 2019, iterative magnitude pruning).
* :func:`probabilistic_scores`: the probability that removing a weight flips a spike of the neuron it
  feeds, under a Gaussian model of that neuron's membrane potential, after Yao et al. 2023
  ("Probabilistic Modeling: Proving the Lottery Ticket Hypothesis in Spiking Neural Network",
  arXiv 2305.12148). Their argument: a spiking neuron's output changes only when its membrane
  potential lies within the perturbation of the threshold, so a weight's importance depends on how
  much probability mass of the membrane potential sits near V_th, not on its size alone. evstream's
  form of it (the paper's criterion section and code were not available to us; this is our reading
  of its model, README "Pruning"): for output channel ``o`` with membrane potential
  ``H ~ N(mu_o, sigma_o^2)`` before firing (measured on calibration samples over time steps, samples
  and positions) and ``d = -w * dmean(H_o)/dw`` the first-order shift of its mean when ``w`` is removed
  (through conv/linear, BN, pooling and the neuron's charge, over the T steps),
  ``score = |Phi((V_th - mu_o) / sigma_o) - Phi((V_th - mu_o - d) / sigma_o)|``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from evstream.errors import UserError
from evstream.prune.commands import CRITERIA
from evstream.prune.masks import prunable_weights
from evstream.snn.lif import LIF, charge, fire_reset, initial_v
from evstream.snn.plif import PLIF

__all__ = ["CRITERIA", "magnitude_scores", "membrane_potentials", "probabilistic_scores"]



def magnitude_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    """``|w|`` of every prunable weight."""
    return {name: w.detach().abs() for name, w in prunable_weights(model).items()}


def _decay(neuron: nn.Module) -> torch.Tensor | float:
    """``k = 1 / tau`` of an LIF or PLIF neuron."""
    return torch.sigmoid(neuron.w) if isinstance(neuron, PLIF) else 1.0 / neuron.p.tau


def membrane_potentials(neuron: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """The membrane potential H[t] before firing at each step of an LIF/PLIF neuron from rest, ``[T, B, ...]``
    (the neuron's own charge, fire and reset). Differentiable in ``x_seq`` with the spikes held fixed (the
    step function's true derivative, 0 off the threshold, not the training surrogate's)."""
    k, p = _decay(neuron), neuron.p._replace(detach_reset=True)
    v, hs = initial_v(x_seq[0], p), []
    for x in x_seq:
        h = charge(x, v, k, p)
        _, v = fire_reset(h, p)
        hs.append(h)
    return torch.stack(hs)


def _neurons_of(model: nn.Module, names: Iterable[str]) -> dict[str, nn.Module]:
    """``weight name -> the first neuron after its layer`` in module order (the neuron the weight charges)."""
    modules = list(model.named_modules())
    found = {}
    for weight in names:
        owner = weight.removesuffix(".weight")
        start = next(i for i, (name, _) in enumerate(modules) if name == owner)
        after = [(name, m) for name, m in modules[start + 1:] if _is_neuron(m)]
        if not after:
            raise UserError(f"probabilistic pruning: no spiking neuron follows {owner}")
        name, neuron = after[0]
        if not isinstance(neuron, (LIF, PLIF)):
            raise UserError(f"probabilistic pruning models LIF and PLIF membranes; {name} is a "
                            f"{type(neuron).__name__}")
        found[weight] = neuron
    return found


def _is_neuron(module: nn.Module) -> bool:
    """A multi-step spiking neuron of evstream's (any module with LIF-style parameters ``p.v_threshold``)."""
    return hasattr(getattr(module, "p", None), "v_threshold") and not list(module.children())


def probabilistic_scores(model: nn.Module, batches: Iterable[torch.Tensor], *, eps: float = 1e-6
                         ) -> dict[str, torch.Tensor]:
    """Spike-flip probabilities of every prunable weight (module docstring) from calibration inputs.

    Args:
        model: a spiking net whose conv/linear layers each charge an LIF or PLIF neuron (BN, pooling between).
        batches: model inputs ``[T, B, ...]`` (a few training batches); the model runs in eval mode
            (BN with its running statistics), as it will after pruning.
        eps: floor of sigma_o.

    Raises:
        UserError: a weight charges no neuron, or one whose membrane the criterion does not model.
    """
    weights = prunable_weights(model)
    neurons = _neurons_of(model, weights)
    unique = {id(n): n for n in neurons.values()}
    was_training = model.training
    model.eval()
    grads = {name: torch.zeros_like(w) for name, w in weights.items()}
    moments = {i: [0.0, 0.0, 0] for i in unique}  # per neuron: sum H, sum H^2, count (per channel tensors)
    inputs: dict[int, torch.Tensor] = {}
    hooks = [n.register_forward_hook(lambda m, args, out: inputs.__setitem__(id(m), args[0])) for n in unique.values()]
    try:
        for count, x in enumerate(batches, 1):
            with torch.enable_grad():
                model(x)
                potentials = {i: membrane_potentials(unique[i], inputs[i]) for i in unique}
                for name, w in weights.items():
                    h = potentials[id(neurons[name])]
                    per_channel = h.transpose(0, 2).flatten(1).mean(1)  # [C]: channel axis 2 of [T, B, C, ...]
                    grads[name] += torch.autograd.grad(per_channel.sum(), w, retain_graph=True)[0]
            for i, h in potentials.items():
                flat = h.detach().transpose(0, 2).flatten(1).double()
                moments[i][0] = moments[i][0] + flat.sum(1)
                moments[i][1] = moments[i][1] + (flat ** 2).sum(1)
                moments[i][2] += flat.shape[1]
            inputs.clear()
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if not moments or any(m[2] == 0 for m in moments.values()):
        raise ValueError("probabilistic pruning needs at least one calibration batch")
    scores = {}
    for name, w in weights.items():
        neuron = neurons[name]
        total, squares, n = moments[id(neuron)]
        mu = total / n
        sigma = (squares / n - mu ** 2).clamp_min(0).sqrt().clamp_min(eps)
        shape = (-1,) + (1,) * (w.ndim - 1)
        shift = -(w.detach().double() * grads[name].double() / count)
        z = ((neuron.p.v_threshold - mu) / sigma).view(shape)
        scores[name] = _mass_between(z, z - shift / sigma.view(shape)).float()
    return scores


def _mass_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|Phi(a) - Phi(b)|``, the standard normal mass between ``a`` and ``b``, accurate in both tails (taken on the
    side of zero where the CDF is small: ``|Phi(a) - Phi(b)| = |Phi(-b) - Phi(-a)|``), so that weights of neurons far
    from threshold still rank by their tiny probabilities instead of tying at 0."""
    upper = (a + b) > 0
    a, b = torch.where(upper, -b, a), torch.where(upper, -a, b)
    phi = lambda x: 0.5 * torch.erfc(-x / math.sqrt(2.0))  # noqa: E731  the CDF, exact where it is small
    return (phi(a) - phi(b)).abs()
