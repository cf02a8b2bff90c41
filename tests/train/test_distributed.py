"""DDP: two gloo processes with the global batch split between them train the same weights as one process.

The net has BatchNorm (the project's time-flattening ``SeqBatchNorm2d``), so the equality needs the
statistics synchronised over the ranks; the logged training loss must be the mean over the ranks.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from evstream.snn.layers import SeqBatchNorm2d, SeqConv2d
from evstream.train.distributed import epoch_seed, sync_batch_norm
from evstream.train.trainer import TrainConfig, Trainer


class TinyTask:
    """32 fixed random ``[T=2, 2, 8, 8]`` samples in 4 classes; a conv, a BatchNorm and a linear read-out."""

    metric, metric_mode, eval_split = "accuracy", "max", "val"

    def build_model(self) -> nn.Module:
        return nn.Sequential(SeqConv2d(2, 4, 3, padding=1, bias=False), SeqBatchNorm2d(4), nn.Flatten(2),
                             nn.Linear(4 * 64, 4))

    def datasets(self):
        g = torch.Generator().manual_seed(7)
        x, y = torch.randn(32, 2, 2, 8, 8, generator=g) * 2 + 0.5, torch.randint(0, 4, (32,), generator=g)
        data = torch.utils.data.TensorDataset(x, y)
        return data, torch.utils.data.Subset(data, range(8))

    def loss(self, model, batch, device):
        x, y = batch
        return nn.functional.cross_entropy(model(x.to(device).transpose(0, 1)).mean(0), y.to(device))

    def evaluate(self, model, loader, device, *, progress=True):
        right = sum(int((model(x.transpose(0, 1)).mean(0).argmax(1) == y).sum()) for x, y in loader)
        return {"accuracy": right / 8}


def _config(out_dir) -> TrainConfig:
    return TrainConfig(epochs=2, batch_size=8, lr=0.05, optimizer="sgd", momentum=0.9, schedule="constant",
                       out_dir=str(out_dir), progress=False, seed=3)


def _rank(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(TinyTask(), _config(out_dir))
    assert type(trainer.model[1]).__name__ == "SyncedSeqBatchNorm2d"  # synchronised by default under torchrun
    history = trainer.fit()
    torch.save({"model": trainer.model.state_dict(), "history": history}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_train_the_weights_of_one(tmp_path):
    torch.set_num_threads(1)
    single = Trainer(TinyTask(), _config(tmp_path / "single"))
    single.fit()
    mp.spawn(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key, value in single.model.state_dict().items():
        for rank in ranks:  # both ranks hold the single-process weights and BatchNorm statistics
            torch.testing.assert_close(rank["model"][key], value, rtol=1e-5, atol=1e-6)
    assert not torch.equal(single.model[0].weight, TinyTask().build_model()[0].weight)  # it did train
    # the logged loss (rank 0 logs): the mean over the ranks, i.e. the global batch's
    assert [row["train_loss"] for row in ranks[0]["history"]] == pytest.approx(
        [row["train_loss"] for row in single.history], rel=1e-5)


def test_synced_batch_norm_is_plain_batch_norm_outside_a_process_group():
    torch.manual_seed(0)
    plain, synced = SeqBatchNorm2d(3), sync_batch_norm(nn.Sequential(SeqBatchNorm2d(3)))[0]
    x = torch.randn(2, 4, 3, 5, 5)
    torch.testing.assert_close(synced(x), plain(x), rtol=0, atol=0)
    assert synced.state_dict().keys() == plain.state_dict().keys()


def test_ranks_draw_distinct_augmentation_seeds():
    assert epoch_seed(3, 5, 0) == 3 * 100_003 + 5  # one process: the seed it always had (checkpoints reproduce)
    seeds = {epoch_seed(3, epoch, rank) for epoch in range(50) for rank in range(8)}
    assert len(seeds) == 400
