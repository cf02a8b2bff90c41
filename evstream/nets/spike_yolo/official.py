"""Import the official SpikeYOLO checkpoints (BICLab/SpikeYOLO, COCO and Gen1 releases) into evstream.

The official models are Ultralytics ``DetectionModel`` s built from ``snn_yolov8.yaml``: their state
dict names are ``model.<layer>.<module>...`` with the modules of ``yolo_spikformer.py``
(``MS_DownSampling.encode_conv``, ``MS_ConvBlock.Conv.pwconv3.body.0.bn``, ``SpikeDetect.cv2``...).
:func:`official_names` maps every evstream weight to its official name by walking evstream's
:class:`~evstream.nets.spike_yolo.SpikeYOLO` beside the official layer table (layer 1 the stem, 2-8
the stages, 9 SpikeSPPF, 10-25 the neck, 26 the head; a stage of n > 1 blocks is an
``nn.Sequential``, so its blocks are ``<layer>.<j>``). The head's DFL conv (``model.26.dfl.conv``,
fixed weights 0..15) has no evstream counterpart: :func:`~evstream.nets.spike_yolo.decode` computes
the same expectation; the importer checks its weights are 0..15.

A released checkpoint (``torch.save`` of Ultralytics: pickled module objects, half precision, the
weights under ``ema`` and ``model``) is read without Ultralytics, spikingjelly or any code of its own
running: :func:`read_official_state_dict` unpickles it with every class replaced by an inert record
and takes the parameters and buffers out of the records. Plain state dicts (``model.state_dict()``
saved by itself or under ``"model"`` / ``"ema"``) are read with ``weights_only=True``.

The architecture comes from the weights (classes, width, repeats, the P5 block's ratio: one of
:data:`~evstream.nets.spike_yolo.SCALES`); the neuron from the release (``variant``: ``"coco"``,
decay 0.25, T = 1; ``"gen1"``, tau 2, T = 2 as the released Gen1 model). Command line::

    python -m evstream.nets.spike_yolo.official best.pt models/spikeyolo_gen1.pt --variant gen1
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from evstream.checkpoint import CheckpointError
from evstream.nets.spike_yolo.blocks import MS_AllConvBlock, MS_ConvBlock, SpikeSPPF
from evstream.nets.spike_yolo.model import SCALES, SpikeYOLO, spike_yolo

__all__ = ["RELEASE_T", "convert_official_state_dict", "load_official", "official_names", "read_official_state_dict"]

RELEASE_T = {"coco": 1, "gen1": 2}
"""Time steps of the released models: COCO images repeated once (``MS_GetT`` T = 1), Gen1 T = 2 bins."""

_DOWN = {"chain.0": "encode_conv", "chain.1": "encode_bn"}  # MS_DownSampling
_CONV = {"chain.0": "conv", "chain.1": "bn"}  # MS_StandardConv, SpikeConv, SpikeConvWithoutBN (conv only)
_SEP = {"pw1.chain.0": "pwconv1", "pw1.chain.1": "bn1", "dw2.chain.0": "dwconv2", "dw2.chain.1": "bn2",
        "pw3.chain.0": "pwconv3.body.0.bn", "pw3.chain.1": "pwconv3.body.1.0", "pw3.chain.2": "pwconv3.body.1.1",
        "pw3.chain.3": "bn3"}  # SepConv: its SepRepConv is BNAndPadLayer (.bn), then body.1 = [1x1, depthwise 3x3]
_LAYERS = (("stem", 1), ("stage1", 2), ("down2", 3), ("stage2", 4), ("down3", 5), ("stage3", 6), ("down4", 7),
           ("stage4", 8), ("sppf", 9), ("lat5", 10), ("top4", 12), ("lat4", 14), ("top3", 16), ("reduce3", 18),
           ("out3", 19), ("down_p3", 20), ("out4", 22), ("down_p4", 23), ("out5", 25), ("head", 26))
"""evstream attribute -> index in ``snn_yolov8.yaml`` (0 MS_GetT, 11/15 Upsample, 13/17/21/24 Concat: no weights)."""


def _rep_conv(name: str, outer_bn: str) -> dict[str, str]:
    """MS_ConvBlock's RepConv ``name`` (1x1, BNAndPad, [depthwise 3x3, 1x1, BN]) and the block's BN after it."""
    return {"chain.0": f"{name}.body.0", "chain.1": f"{name}.body.1.bn", "chain.2": f"{name}.body.2.0",
            "chain.3": f"{name}.body.2.1", "chain.4": f"{name}.body.2.2", "chain.5": outer_bn}


def _block(block: nn.Module) -> dict[str, str]:
    """Module prefixes of an MS_ConvBlock / MS_AllConvBlock: its SepConv is ``Conv``."""
    names = {f"sep.{k}": f"Conv.{v}" for k, v in _SEP.items()}
    if isinstance(block, MS_ConvBlock):
        for i in (1, 2):
            names.update({f"conv{i}.{k}": v for k, v in _rep_conv(f"conv{i}", f"bn{i}").items()})
    elif isinstance(block, MS_AllConvBlock):
        for i in (1, 2):
            names.update({f"conv{i}.{k}": f"conv{i}.{v}" for k, v in _CONV.items()})
    else:
        raise TypeError(f"not a SpikeYOLO block: {type(block).__name__}")
    return names


def _layer(module: nn.Module, name: str) -> dict[str, str]:
    """Module prefixes inside one evstream layer, relative to it (evstream -> official)."""
    if name in ("stem", "down2", "down3", "down4"):
        return dict(_DOWN)
    if isinstance(module, SpikeSPPF):
        return {f"cv{i}.{k}": f"cv{i}.{v}" for i in (1, 2) for k, v in _CONV.items()}
    if isinstance(module, (MS_ConvBlock, MS_AllConvBlock)):
        return _block(module)
    if isinstance(module, nn.Sequential) and name.startswith("stage"):  # Ultralytics: nn.Sequential when n > 1
        single = len(module) == 1
        return {f"{j}.{k}": v if single else f"{j}.{v}" for j, block in enumerate(module)
                for k, v in _block(block).items()}
    if name == "head":
        names = {}
        for branch, official in (("box", "cv2"), ("cls", "cv3")):
            for level in range(len(getattr(module, branch))):
                for unit in range(3):
                    names.update({f"{branch}.{level}.{unit}.{k}": f"{official}.{level}.{unit}.{v}"
                                  for k, v in _CONV.items() if unit < 2 or k == "chain.0"})
        return names
    return dict(_CONV)  # MS_StandardConv


def official_names(model: SpikeYOLO) -> dict[str, str]:
    """Every key of ``model.state_dict()`` -> its name in the official ``DetectionModel``'s state dict.

    Raises:
        ValueError: a weight of ``model`` the official layout has no place for (or two in one place).
    """
    modules: dict[str, str] = {}
    for name, index in _LAYERS:
        for ours, theirs in _layer(getattr(model, name), name).items():
            modules[f"{name}.{ours}"] = f"model.{index}.{theirs}"
    names = {}
    for key in model.state_dict():
        prefix, _, tensor = key.rpartition(".")
        if prefix not in modules:
            raise ValueError(f"official_names: no official module for {key}")
        names[key] = f"{modules[prefix]}.{tensor}"
    if len(set(names.values())) != len(names):
        raise ValueError("official_names: two evstream weights map to one official name")
    return names


# --- reading a checkpoint -----------------------------------------------------------------------

_TRUSTED = {("collections", "OrderedDict"): OrderedDict, ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
            ("torch", "Size"): torch.Size,
            ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
            ("torch.nn.parameter", "Parameter"): nn.Parameter}
_TRUSTED.update({("torch", name): getattr(torch, name) for name in ("float16", "float32", "float64", "bfloat16",
                                                                      "int64", "int32", "bool", "device")})
"""The only globals unpickled as themselves: tensor rebuilding, dtypes, (ordered) sets and dicts. Anything else
(Ultralytics, spikingjelly and torch.nn classes, functions, numpy scalars) becomes an inert record."""


class _Record:
    """What an untrusted pickled object becomes: its class name, constructor arguments and state, nothing run."""

    def __new__(cls, *args, **kwargs):
        record = object.__new__(cls)
        record.args, record.state, record.items = args, None, {}
        return record

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):
        self.items[key] = value

    def append(self, value):
        self.items[len(self.items)] = value

    def extend(self, values):
        for value in values:
            self.append(value)


class _RecordingUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`_TRUSTED` globals; every other one is a :class:`_Record` class."""

    _classes: dict = {}

    def find_class(self, module: str, name: str):
        module = "builtins" if module == "__builtin__" else module  # pickle protocol 2 (torch.save) names
        if (module, name) in _TRUSTED:
            return _TRUSTED[(module, name)]
        key = (module, name)
        if key not in self._classes:
            self._classes[key] = type(name, (_Record,), {"__module__": f"record_of.{module}"})
        return self._classes[key]


class _RecordingPickle:
    """A ``pickle_module`` for ``torch.load`` whose Unpickler runs no code of the file."""

    Unpickler = _RecordingUnpickler
    load = staticmethod(lambda f, **kw: _RecordingUnpickler(f, **kw).load())
    __name__ = "evstream_recording_pickle"


def _module_state(record, prefix: str, out: dict) -> None:
    """The state dict of a pickled ``nn.Module`` record: parameters, persistent buffers, sub-modules in order."""
    state = record.state[0] if isinstance(record.state, tuple) else record.state
    if not isinstance(state, dict) or "_modules" not in state:
        raise ValueError(f"{prefix or 'the model'} is not a pickled torch module")
    skip = state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is not None and name not in skip:
                out[prefix + name] = value.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _module_state(child, f"{prefix}{name}.", out)


def _weights(obj) -> dict[str, torch.Tensor] | None:
    """The state dict held by ``obj`` (a state dict, or a pickled module record), or None."""
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    if isinstance(obj, _Record):
        out: dict[str, torch.Tensor] = {}
        _module_state(obj, "", out)
        return out
    return None


def read_official_state_dict(path: os.PathLike | str) -> dict[str, torch.Tensor]:
    """The float32 state dict of an official SpikeYOLO checkpoint (the EMA weights when it has them).

    Accepts an Ultralytics training checkpoint (``ema`` / ``model`` module objects), a dict with a
    state dict under ``ema`` or ``model``, or a bare state dict. No code of the file runs.

    Raises:
        CheckpointError: unreadable, or no SpikeYOLO weights in it.
    """
    if not os.path.isfile(path):
        raise CheckpointError(path, "no such checkpoint file" if not os.path.exists(path) else "not a file")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # pickled objects: read them as inert records
        try:
            content = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RecordingPickle)
        except Exception as err:
            raise CheckpointError(path, f"not a readable torch checkpoint ({_first_line(err)})") from None
    candidates = [content.get("ema"), content.get("model")] if isinstance(content, Mapping) else []
    for candidate in [*candidates, content]:
        try:
            state = _weights(candidate)
        except ValueError as err:
            raise CheckpointError(path, str(err)) from None
        if state:
            return {k.removeprefix("module."): v.float() if v.is_floating_point() else v for k, v in state.items()}
    raise CheckpointError(path, "no state dict in it (expected an Ultralytics checkpoint with 'ema' or 'model', "
                                "or a state dict)")


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


# --- converting ----------------------------------------------------------------------------------

def _shape(state: Mapping, key: str) -> tuple[int, ...]:
    if key not in state:
        raise ValueError(f"not an official SpikeYOLO state dict: no {key}")
    return tuple(state[key].shape)


def _repeats(state: Mapping, layer: int) -> int:
    """Blocks of a stage: the ``model.<layer>.<j>.`` indices, or 1 when the stage is a single block."""
    prefix = f"model.{layer}."
    indices = {k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)}
    return len(indices) if indices and all(i.isdigit() for i in indices) else 1


def _scale_of(state: Mapping) -> str:
    """The :data:`SCALES` entry whose width, repeats and P5 ratio the official weights have."""
    width = _shape(state, "model.1.encode_conv.weight")[0]
    repeats = tuple(_repeats(state, layer) for layer in (2, 4, 6, 8))
    p5_in = _shape(state, "model.25.Conv.pwconv1.weight")[1]
    p5_hidden = _shape(state, "model.25.conv1.body.2.1.weight")[0]
    for name, scale in SCALES.items():
        if (scale.channels(128) == width and tuple(scale.repeats(n) for n in (3, 6, 9, 3)) == repeats
                and int(p5_in * scale.p5_ratio) == p5_hidden):
            return name
    raise ValueError(f"no SpikeYOLO scale has stem width {width}, stage repeats {repeats} and P5 ratio "
                     f"{p5_hidden / p5_in:g} (known: {', '.join(SCALES)})")


def convert_official_state_dict(state: Mapping[str, torch.Tensor], *, variant: str | None = None,
                                T: int | None = None, D: int = 4) -> tuple[SpikeYOLO, dict]:
    """An evstream SpikeYOLO holding the weights of an official state dict.

    Args:
        state: the official ``DetectionModel`` state dict (keys ``model.<layer>...``).
        variant: ``"coco"`` or ``"gen1"`` (the neuron of that release); None: ``"coco"`` for 80 classes,
            else ``"gen1"``.
        T: time steps (None: the release's, :data:`RELEASE_T`). D: I-LIF maximum spike (4 in both releases).

    Returns:
        ``(model in eval mode, net_options)``: ``spike_yolo(**net_options)`` rebuilds the architecture.

    Raises:
        ValueError: names or shapes that are not an official SpikeYOLO (one line, naming a few).
    """
    state = {k.removeprefix("module."): v for k, v in state.items()}
    num_classes = _shape(state, "model.26.cv3.0.2.conv.weight")[0]
    in_channels = _shape(state, "model.1.encode_conv.weight")[1]
    variant = variant or ("coco" if num_classes == 80 else "gen1")
    if variant not in RELEASE_T:
        raise ValueError(f"unknown variant {variant!r}; one of {', '.join(RELEASE_T)}")
    options = {"scale": _scale_of(state), "num_classes": num_classes, "in_channels": in_channels,
               "T": RELEASE_T[variant] if T is None else int(T), "D": int(D), "variant": variant}
    model = spike_yolo(**options)
    names = official_names(model)
    dfl = state.get("model.26.dfl.conv.weight")
    if dfl is not None and not torch.equal(dfl.float().flatten(), torch.arange(dfl.numel(), dtype=torch.float32)):
        raise ValueError("model.26.dfl.conv.weight is not 0..reg_max-1: evstream's decoding would differ")
    expected = set(names.values()) | {"model.26.dfl.conv.weight"}
    missing, unexpected = sorted(set(names.values()) - set(state)), sorted(set(state) - expected)
    ours = model.state_dict()
    reshaped = [f"{names[k]} {tuple(state[names[k]].shape)} vs {tuple(v.shape)}" for k, v in ours.items()
                if names[k] in state and state[names[k]].shape != v.shape]
    problems = [f"{len(found)} {what} ({', '.join(found[:3])}{' ...' if len(found) > 3 else ''})"
                for what, found in (("missing", missing), ("unexpected", unexpected), ("of another shape", reshaped))
                if found]
    if problems:
        raise ValueError(f"not an official SpikeYOLO-{options['scale']} state dict: " + "; ".join(problems))
    model.load_state_dict({k: state[names[k]].to(v.dtype) for k, v in ours.items()})
    return model.eval(), options


def load_official(path: os.PathLike | str, *, variant: str | None = None, T: int | None = None
                  ) -> tuple[SpikeYOLO, dict]:
    """:func:`read_official_state_dict` then :func:`convert_official_state_dict`; errors name the file."""
    state = read_official_state_dict(path)
    try:
        return convert_official_state_dict(state, variant=variant, T=T)
    except ValueError as err:
        raise CheckpointError(path, str(err)) from None


def _main(argv: list[str] | None = None) -> int:
    """``python -m evstream.nets.spike_yolo.official SRC OUT``: an official checkpoint -> an evstream one."""
    from evstream.sim.road import CLASSES as GEN1_CLASSES
    from evstream.sim.road import ROAD_SIZE as GEN1_SENSOR_SIZE
    from evstream.errors import UserError
    from evstream.nets.spike_yolo.live import DetectionRecipe, save_detector

    parser = argparse.ArgumentParser(prog="python -m evstream.nets.spike_yolo.official",
                                     description="Convert an official SpikeYOLO checkpoint (BICLab/SpikeYOLO, "
                                                 "COCO or Gen1) into an evstream detector checkpoint.")
    parser.add_argument("source", help="the official .pt (Ultralytics checkpoint or state dict)")
    parser.add_argument("output", help="the evstream checkpoint to write (a Gen1 model is a live detector "
                                       "SpikeYOLODetector.from_checkpoint loads)")
    parser.add_argument("--variant", choices=sorted(RELEASE_T),
                        help="which release's neuron (default: coco for 80 classes, else gen1)")
    parser.add_argument("--time-bins", type=int, dest="T",
                        help="T (default: 1 for COCO, 2 for the released Gen1 model)")
    args = parser.parse_args(argv)
    try:
        model, options = load_official(args.source, variant=args.variant, T=args.T)
        if options["variant"] == "gen1":
            recipe = DetectionRecipe(GEN1_SENSOR_SIZE, options["T"], 250_000, 320, resize="linear")
            names = GEN1_CLASSES[:options["num_classes"]] if options["num_classes"] == 2 else \
                tuple(str(i) for i in range(options["num_classes"]))
            save_detector(args.output, model, net_options=options, recipe=recipe, names=names,
                          metrics={"source": os.path.basename(args.source)})
        else:  # a COCO model sees RGB images: weights and builder options, no event recipe
            torch.save({"net": "spike_yolo", "net_options": options,
                        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, args.output)
    except UserError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: spike_yolo {options}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
