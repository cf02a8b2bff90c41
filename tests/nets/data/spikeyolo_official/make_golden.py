"""Provenance of this folder: run the official BICLab/SpikeYOLO code and record what its models hold and compute.

Not part of the test suite (it needs the official sources). Run it from a checkout of
https://github.com/BICLab/SpikeYOLO (commit 309ef5e) with that tree's ``ultralytics`` importable:

    cd SpikeYOLO && python make_golden.py coco OUT                      # the COCO release's code
    cd SpikeYOLO/SpikeYOLO_for_Gen1 && python make_golden.py gen1 OUT   # the Gen1 release's code
    (PYTHONPATH: the tree, its spikingjelly-0.0.0.0.12 (both releases import spikingjelly.clock_driven);
    timm only needs to import: a stub with to_2tuple, trunc_normal_, DropPath, register_model, _cfg serves.
    The files here were made with the ``ultralytics`` package entered without running its
    ``__init__`` (which imports torchvision for the data pipeline): a module object named
    ``ultralytics`` whose ``__path__`` is the tree's folder, ``__version__ = "8.0.0"``, put in
    ``sys.modules`` before ``main`` runs.)

It writes ``OUT/<variant>_keys.json``: the state-dict names and shapes of ``DetectionModel`` built from
``snn_yolov8.yaml`` (COCO: scales n, s, m, l with 80 classes, layer 25 as MS_ConvBlock [2, 7] for m and l
as the yaml says; Gen1: scale s, 2 classes), and ``OUT/<variant>_golden.npz``: the raw head maps and the
decoded output of the model at depth 0.33, width 0.125 (evstream's "rt" scale) in eval mode, with the
weights of :func:`official_weights` on the input of :func:`official_input` (T = 1 for COCO, 2 for Gen1).
``test_spike_yolo_official.py`` rebuilds the same weights under the official names, imports them and
compares. The script keeps CUDA out of the official constructor (``.cuda()`` becomes a no-op).
"""
import copy
import json
import sys
import zlib

import numpy as np
import torch
from torch import nn


def _uniform(key: str, n: int) -> np.ndarray:
    """n numbers in [0, 1) from splitmix64 of (crc32(key), index): the same bits on every machine."""
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) + np.uint64(zlib.crc32(key.encode()) << 32) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def official_weights(shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Deterministic weights for official names: convs uniform with variance 1 / fan-in, BN scale and
    running variance in [0.5, 1.5), BN shift in [-0.5, 0.5), running mean in [-0.2, 0.2), biases in
    [-0.1, 0.1), the DFL conv 0..15."""
    out = {}
    for key, shape in shapes.items():
        n = int(np.prod(shape))
        u = _uniform(key, n).reshape(shape)
        if key.endswith("num_batches_tracked"):
            value = np.zeros(shape, np.int64)
        elif key.endswith("dfl.conv.weight"):
            value = np.arange(n, dtype=np.float64).reshape(shape)
        elif len(shape) == 4:
            value = (u - 0.5) * 2 * np.sqrt(3.0 / (n // shape[0]))
        elif key.endswith("running_var"):
            value = 0.5 + u
        elif key.endswith("running_mean"):
            value = (u - 0.5) * 0.4
        elif key.endswith("conv.bias"):
            value = (u - 0.5) * 0.2
        elif key.endswith("weight"):
            value = 0.5 + u
        else:
            value = u - 0.5
        out[key] = value if value.dtype == np.int64 else value.astype(np.float32)
    return out


def official_input(T: int, height: int = 64, width: int = 64) -> np.ndarray:
    """``[1, T, 3, H, W]`` float32 last-polarity images: each pixel 0, 127 or 255 (/ 255), channels alike."""
    levels = np.array([0, 127, 255], np.float32) / 255
    index = np.minimum((_uniform("input", T * height * width) * 3).astype(np.int64), 2)
    image = levels[index].reshape(1, T, 1, height, width)
    return np.repeat(image, 3, axis=2)


def main(variant: str, out: str) -> None:
    nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.cuda = lambda self, *a, **k: self
    from ultralytics.nn import tasks
    from ultralytics.utils import yaml_load

    base = yaml_load("ultralytics/cfg/models/v8/snn_yolov8.yaml")

    def build(scale, nc, depth_width=None):
        d = copy.deepcopy(base)
        d["nc"], d["scale"] = nc, scale
        if scale in ("m", "l"):
            d["head"][-2][3] = [2, 7]
        if depth_width is not None:
            d["scales"] = {scale: [*depth_width, 1024]}
        return tasks.DetectionModel(d, ch=3, nc=nc, verbose=False)

    models = {"coco": [("n", 80), ("s", 80), ("m", 80), ("l", 80)], "gen1": [("s", 2)]}[variant]
    keys = {}
    for scale, nc in models:
        model = build(scale, nc)
        keys[f"{scale}_nc{nc}"] = [[k, list(v.shape)] for k, v in model.state_dict().items()]
        keys[f"{scale}_nc{nc}_parameters"] = sum(p.numel() for p in model.parameters())
    with open(f"{out}/{variant}_keys.json", "w") as f:
        json.dump(keys, f, separators=(",", ":"))

    nc, T = (80, 1) if variant == "coco" else (2, 2)
    model = build("s", nc, (0.33, 0.125))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict({k: torch.from_numpy(v) for k, v in official_weights(shapes).items()})
    model.eval()
    x = torch.from_numpy(official_input(T))
    with torch.no_grad():
        decoded, raw = model(x[:, 0] if variant == "coco" else x)  # COCO: [B, 3, H, W] (MS_GetT repeats T = 1)
    np.savez_compressed(f"{out}/{variant}_golden.npz", decoded=decoded.numpy(),
                        **{f"raw{i}": r.numpy() for i, r in enumerate(raw)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
