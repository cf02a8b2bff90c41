"""Real inputs for the export tests: N-MNIST validation recordings and DVS128 / DAVIS240C windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import RECORDINGS, SHARED

MODELS = Path(__file__).resolve().parents[2] / "models"
NMNIST_SMALL = SHARED / "datasets/nmnist_small"
DVS128 = RECORDINGS / "aedat2/MovingDarkBox_dvs128.aedat"
DAVIS240 = RECORDINGS / "aedat2/IMU_translBoxes_davis240c.aedat"


@pytest.fixture(scope="session")
def nmnist_val(shared):
    """``(frames [3, 95, 2, 34, 34], labels [95])``: the bundled model's validation recordings in its recipe."""
    from evstream.datasets import NMNIST
    from evstream.nets.live_classifier import load_classifier, WindowRecipe
    from evstream.train.tasks.nmnist import validation_split

    data = NMNIST(NMNIST_SMALL)
    _, val = validation_split(data.labels, 0.1)
    recipe = WindowRecipe(**load_classifier(MODELS / "nmnist_cnn.pt")[1]["recipe"])
    frames = torch.stack([torch.from_numpy(recipe(data.events(i))) for i in val], 1)
    return frames, torch.tensor([data.labels[i] for i in val])


def windows(path: Path, count: int, span_us: int, **options) -> list[np.ndarray]:
    """``count`` windows of ``span_us`` ending at evenly spaced times of a real recording (last one at its end)."""
    from evstream.io import read_events

    events = read_events(path, **options)
    t = events["t"]
    ends = np.linspace(t[0] + span_us, t[-1] + 1, count).astype(np.int64)
    return [events[(t >= end - span_us) & (t < end)] for end in ends]
