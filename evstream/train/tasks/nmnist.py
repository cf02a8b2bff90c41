"""N-MNIST classification: each ~300 ms recording as T frames, validated on held-out training recordings.

Representation: the live recipe itself (:class:`WindowRecipe`, T count frames of ``dt`` ending at
the sample's last event; the default 3 x 110 ms = 330 ms covers every recording, 291-314 ms long,
about one frame per saccade), cached per sample, so training, evaluation and :class:`LiveClassifier`
see the same frames. Training augments them: a random shift (the reference ANN's augmentation),
dropped events, and a small rotation and zoom. Splits: ``train`` and ``val`` divide ``Train/`` per
digit (:func:`validation_split`, deterministic, no seed); ``test`` is ``Test/``, read only by
``evstream eval --split test``: the trainer selects ``best.pt`` on ``val``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evstream.datasets import NMNIST
from evstream.datasets.splits import split_per_class
from evstream.errors import UserError
from evstream.nets.live_classifier import WindowRecipe
from evstream.ops.augment import Compose
from evstream.snn.coding import CodedClassifier
from evstream.snn.coding import coding as coding_layer
from evstream.train.tasks.classification import ClipWindows, _ClassificationTask

__all__ = ["NMNISTTask", "RandomAffineFrames", "RandomDropEvents", "RandomShiftFrames", "validation_split"]


def validation_split(labels, val_fraction: float) -> tuple[list[int], list[int]]:
    """``(train indices, validation indices)``: per class, the last ``val_fraction`` of its samples in
    dataset order are validation (:func:`split_per_class` with ``1 - val_fraction``), both lists sorted."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    per_class = [np.flatnonzero(labels == c).tolist() for c in range(int(labels.max()) + 1)] if len(labels) else []
    train = sorted(i for _, i in split_per_class(per_class, "train", 1 - val_fraction))
    val = sorted(i for _, i in split_per_class(per_class, "test", 1 - val_fraction))
    return train, val


@dataclass(frozen=True)
class RandomShiftFrames:
    """Shift every frame of a sample by one uniform integer ``(dx, dy)`` in ``[-max_shift, max_shift]`` (zeros in).

    The same frames as binning events moved by ``(dx, dy)`` with those leaving the sensor dropped
    (:func:`evstream.ops.augment.random_shift`), done on the cached frames. Draws from torch's default
    generator, which the trainer seeds from (seed, epoch).

    Shape: ``[T, C, H, W]`` -> float32 tensor ``[T, C, H, W]``.
    """

    max_shift: int

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames, dtype=np.float32))
        m = int(self.max_shift)
        dx, dy = (int(v) for v in torch.randint(-m, m + 1, (2,)))
        h, w = x.shape[-2:]
        out = torch.zeros_like(x)
        out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        return out


@dataclass(frozen=True)
class RandomAffineFrames:
    """Rotate by a uniform angle in ``[-max_degrees, max_degrees]`` and scale by a uniform factor in
    ``[1 - max_scale, 1 + max_scale]`` about the frame centre, the same for every frame of a sample
    (bilinear, zeros outside; the small rotations and zooms of MNIST augmentation). Draws from torch's
    default generator.

    Shape: ``[T, C, H, W]`` float tensor -> same.
    """

    max_degrees: float
    max_scale: float

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        angle, scale = (torch.rand(2, dtype=torch.float64) * 2 - 1) * torch.tensor([self.max_degrees, self.max_scale],
                                                                                   dtype=torch.float64)
        angle, scale = math.radians(float(angle)), 1.0 + float(scale)
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        theta = torch.tensor([[[cos, -sin, 0.0], [sin, cos, 0.0]]], dtype=frames.dtype)
        x = frames.flatten(0, 1)[None]  # one image of T * C channels: one transform for every frame
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)[0].view_as(frames)


@dataclass(frozen=True)
class RandomDropEvents:
    """Drop each event of a sample with a probability drawn uniformly in ``[0, max_drop]`` per sample
    (as tonic's ``DropEvent`` with a random ratio, on count frames: events are kept independently, so
    every count becomes a binomial draw). Draws from torch's default generator.

    Shape: ``[T, C, H, W]`` count tensor -> same.
    """

    max_drop: float

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        keep = 1.0 - self.max_drop * float(torch.rand(()))
        return torch.binomial(frames, torch.full_like(frames, keep))


class NMNISTTask(_ClassificationTask):
    """N-MNIST with the compact conv SNN ``cnn_nmnist`` (``evstream train nmnist --data DIR``).

    Args:
        data_dir: the folder holding ``Train/`` (and ``Test/`` for ``--split test``).
        net: ``"cnn"`` (builder ``cnn_nmnist``), ``"ann"`` (``ann_nmnist``: its layout with ReLU units) or
            ``"sdt"`` (``sdt_nmnist``, the Spike-driven Transformer).
        input_scale: when set, the net reads the count frames divided by it and clipped to [0, 1], through
            the input ``coding`` (:class:`~evstream.snn.coding.CodedClassifier`; what ``evstream
            robustness`` attacks); None (default): the counts themselves, no coding layer.
        coding: ``"direct"``, ``"poisson"`` or ``"rsc"`` (:func:`~evstream.snn.coding.coding`; needs input_scale).
        coding_sigma: RSC's noise standard deviation in [0, 1] input units (0.25).
        time_steps, dt_ms: T frames of ``dt_ms`` (3 x 110 ms); ds: spatial downsampling (1: 34x34).
        max_shift: training shift in pixels (:class:`RandomShiftFrames`; 3, 0 turns it off).
        max_drop: largest share of a training sample's events dropped (:class:`RandomDropEvents`; 0.3).
        max_degrees, max_scale: training rotation and zoom ranges (:class:`RandomAffineFrames`; 10 degrees, 0.1).
        val_fraction: the share of each digit's training recordings held out for validation (0.1).
        cache_dir, net_options, loss_options: as the other classification tasks.

    ``train_defaults``: Adam lr 2e-3, cosine to 0, batch 32, 30 epochs, no weight decay.
    """

    dataset_cls = NMNIST
    family = "nmnist"
    losses = {"cnn": ("rate_mse",), "ann": ("rate_mse",), "sdt": ("ce", "tet")}
    defaults = {"time_steps": 3, "dt_ms": 110, "ds": 1, "n_clips": 1}
    train_defaults = {"optimizer": "adam", "lr": 2e-3, "weight_decay": 0.0, "batch_size": 32, "epochs": 30,
                      "schedule": "cosine"}
    splits = ("train", "val", "test")

    def __init__(self, data_dir: os.PathLike | str, *, net: str = "cnn", max_shift: int = 3, max_degrees: float = 10.0,
                 max_scale: float = 0.1, max_drop: float = 0.3, val_fraction: float = 0.1,
                 input_scale: float | None = None, coding: str = "direct", coding_sigma: float = 0.25, **options):
        super().__init__(data_dir, net=net, **options)
        if input_scale is None and coding != "direct":
            raise ValueError(f"coding {coding!r} reads frames in [0, 1]: set input_scale (counts that read as 1)")
        coding_layer(coding, coding_sigma)  # checks the name and sigma now, not at the first build
        self.input_scale, self.coding, self.coding_sigma = input_scale, coding, float(coding_sigma)
        if self.n_clips != 1:
            raise ValueError(f"nmnist evaluates one window covering each sample: n_clips must be 1, not {self.n_clips}")
        if not (0 <= int(max_shift) < min(NMNIST.sensor_size[:2]) and 0 <= max_scale < 1 and 0 <= max_drop < 1):
            raise ValueError(f"augmentation out of range: max_shift {max_shift} (0-33), max_scale {max_scale} and "
                             f"max_drop {max_drop} (in [0, 1))")
        self.augment = Compose([RandomShiftFrames(int(max_shift)), RandomDropEvents(float(max_drop)),
                                RandomAffineFrames(float(max_degrees), float(max_scale))])
        self.val_fraction = float(val_fraction)
        self.representation = WindowRecipe(NMNIST.sensor_size, self.time_steps, self.dt_us, self.ds)

    def build_model(self) -> nn.Module:
        """The net, inside its input coding (:class:`CodedClassifier`) when ``input_scale`` is set."""
        net = super().build_model()
        if self.input_scale is None:
            return net
        return CodedClassifier(net, coding_layer(self.coding, self.coding_sigma), self.input_scale)

    def export(self, model: nn.Module, path: os.PathLike | str, metrics: dict | None = None,
               masks: dict | None = None) -> None:
        """As the other classification tasks (``masks``: a pruned net's keep-masks); a net inside an input
        coding is refused (the live loop feeds counts)."""
        if self.input_scale is not None:
            raise UserError("a net with an input coding (task.input_scale set) cannot be exported as a live "
                            "classifier: the live classifier feeds it count frames without the coding")
        super().export(model, path, metrics, masks)

    def _dataset(self, split: str, sample_transform) -> NMNIST:
        return NMNIST(self.data_dir, split, transform=self.representation, sample_transform=sample_transform,
                      cache_dir=self.cache_dir)

    def datasets(self):
        """``(train, val)``: augmented training frames, and the validation recordings as one clip each."""
        train = self._dataset("train", self.augment)
        part, _ = validation_split(train.labels, self.val_fraction)
        return torch.utils.data.Subset(train, part), self.eval_dataset("val")

    eval_split = "val"  # the trainer's evaluation (and best.pt) reads the validation split only

    def eval_dataset(self, split: str):
        """The recordings of ``split`` (``train``, ``val`` or ``test``) as ``[1, T, 2, H, W]`` clips, unaugmented."""
        if split not in self.splits:
            raise ValueError(f"nmnist has the splits {self.splits}, not {split!r}")
        data = self._dataset("test" if split == "test" else "train", ClipWindows(self.time_steps, 1))
        if split == "test":
            return data
        train, val = validation_split(data.labels, self.val_fraction)
        return torch.utils.data.Subset(data, train if split == "train" else val)

    def evaluate(self, model: nn.Module, loader, device: torch.device, *, progress: bool = True) -> dict[str, float]:
        """Top-1, the sample count, the best constant answer's top-1 on these samples (an events-blind
        baseline), and the firing rate and energy per sample (:class:`SpikeProfiler`): one clip per
        sample, so the per-clip and vote metrics of the other classification tasks are left out."""
        metrics = super().evaluate(model, loader, device, progress=progress)
        return {k: metrics[k] for k in ("top1", "samples", "majority_top1", "firing_rate", "energy_uj",
                                        "ann_energy_uj") if k in metrics}
