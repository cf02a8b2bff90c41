"""Data-parallel training through ``torchrun``: process groups, a world-size-invariant sampler, synchronised BatchNorm.

The sampler cuts one seeded permutation per epoch into global batches and gives rank r the
samples ``batch[r::world]``: the averaged DDP gradient is then the gradient of the global batch.
With BatchNorm synchronised over the ranks (:func:`sync_batch_norm`, the trainer's default) the
batch statistics are the global batch's too, so without augmentation a run on N processes
follows the single-process run with the same global batch to floating-point tolerance (tested
with 2 gloo processes). Augmentation is drawn per rank (:func:`epoch_seed`): each rank's samples
get their own random crops, as they would in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@dataclass(frozen=True)
class World:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This process's device: ``cuda`` means ``cuda:LOCAL_RANK`` under torchrun (made current)."""
        if device.type == "cuda" and self.size > 1 and device.index is None:
            device = torch.device("cuda", self.local_rank)
        if device.type == "cuda" and device.index is not None:
            torch.cuda.set_device(device)
        return device


def init_world(device: torch.device) -> World:
    """Join the process group when launched by ``torchrun`` (gloo on CPU, nccl on GPU)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def mean_over_ranks(world: World, value: float, device: torch.device) -> float:
    """The mean of each process's ``value`` on every process (e.g. the training loss a scheduler steps
    on, so that every rank takes the same step); ``device`` is where the collective runs (CUDA for nccl)."""
    if world.size == 1:
        return value
    total = torch.tensor(float(value), dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total) / world.size


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The torch seed of an epoch on a rank (augmentation, dropout): rank 0 keeps the single-process
    seed ``seed * 100003 + epoch``, rank r adds ``r * 2**40`` so that no two ranks draw alike."""
    return seed * 100_003 + epoch + (rank << 40)


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks; its gradient is the sum of every rank's gradient (each rank's loss uses the total)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _SyncedBatchNorm(_BatchNorm):
    """A BatchNorm whose training statistics are those of every rank's batch (one all-reduce of the
    per-channel count, sum and sum of squares around the running mean; gradients flow through it).

    Works on every device and backend (torch's ``SyncBatchNorm`` needs CUDA); outside training or
    a multi-process group it is the BatchNorm it was. Placed in the MRO just above ``_BatchNorm`` so
    subclasses that wrap ``super().forward`` (time-flattening, BN-and-pad) keep their own forward.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        channels, dims = input.shape[1], [0, *range(2, input.ndim)]
        shape = [1, channels] + [1] * (input.ndim - 2)
        x = input.float()
        shift = (self.running_mean.detach().float() if self.running_mean is not None
                 else x.new_zeros(channels))  # equal on every rank: DDP broadcasts buffers
        centred = x - shift.view(shape)
        count = x.new_full((1,), input.numel() // channels)
        total = _AllReduceSum.apply(torch.cat([centred.sum(dims), (centred * centred).sum(dims), count]))
        n = total[-1]
        offset = total[:channels] / n
        var = (total[channels:2 * channels] / n - offset * offset).clamp_min(0)
        mean = shift + offset
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * n / (n - 1).clamp_min(1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        y = (x - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(input.dtype)


_SYNCED: dict[type, type] = {}


def sync_batch_norm(model: nn.Module) -> nn.Module:
    """Synchronise every BatchNorm of ``model`` (in place, same parameters and buffers) over the process group.

    Each BatchNorm's class becomes a subclass that inserts :class:`_SyncedBatchNorm` before
    ``_BatchNorm`` in its MRO; its ``state_dict`` is unchanged.
    """
    for module in model.modules():
        cls = type(module)
        if isinstance(module, _BatchNorm) and not isinstance(module, _SyncedBatchNorm):
            if cls not in _SYNCED:
                _SYNCED[cls] = type(f"Synced{cls.__name__}", (cls, _SyncedBatchNorm), {"__module__": __name__})
            module.__class__ = _SYNCED[cls]
    return model


class GlobalBatchSampler(torch.utils.data.Sampler):
    """Batches of this rank's share of each global batch, in a permutation fixed by (seed, epoch).

    Args:
        n: dataset length.
        global_batch: samples per optimisation step over all ranks (divisible by the world size).
        seed: permutation seed; ``shuffle=False`` keeps the dataset order.
    """

    def __init__(self, n: int, global_batch: int, *, seed: int = 0, shuffle: bool = True, world: World = World(),
                 drop_last: bool = True):
        if global_batch % world.size:
            raise ValueError(f"global batch {global_batch} is not divisible by the world size {world.size}")
        self.n, self.global_batch, self.seed, self.shuffle = n, global_batch, seed, shuffle
        self.world, self.drop_last = world, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.global_batch)
        return full + (0 if self.drop_last or rest < self.world.size else 1)

    def __iter__(self):
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        for k in range(len(self)):
            batch = order[k * self.global_batch:(k + 1) * self.global_batch]
            batch = batch[:len(batch) - len(batch) % self.world.size]
            yield batch[self.world.rank::self.world.size].tolist()
