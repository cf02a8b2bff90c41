"""Data-parallel training through ``torchrun``: process-group setup and a world-size-invariant sampler.

The sampler cuts one seeded permutation per epoch into global batches and gives rank r the
samples ``batch[r::world]``: the averaged DDP gradient is then the gradient of the global batch,
so a run on N processes follows the single-process run (to floating-point tolerance).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


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
