"""Gen1 detection with SpikeYOLO (models.md §1): model, data, YOLOv8 loss and two evaluations.

Evaluation reports, clearly apart:

* ``sample_mAP50`` / ``sample_mAP``: the number SpikeYOLO reports, mAP@50 and mAP@50:95 over the
  per-timestamp samples (one image per sample, boxes in network-input pixels, no filtering) with
  its Ultralytics validator's semantics (:func:`evstream.train.yolo_map.ultralytics_map`; a
  perfect detector scores 0.995); ``sample_coco_mAP50`` / ``sample_coco_mAP``: the same samples
  with pycocotools' semantics (:func:`evstream.train.coco_map.coco_map`).
* ``prophesee_mAP50`` / ``prophesee_mAP``: the Prophesee Gen1 protocol (:mod:`evstream.train.gen1_eval`:
  first 0.5 s skipped, diagonal >= 30 px, sides >= 10 px on ground truth and detections, one image
  per ground-truth timestamp, detections within ±50 ms), on sensor pixels; -1 when the filter
  leaves no ground truth.
* ``firing_rate``, ``energy_uj``, ``ann_energy_uj``: mean I-LIF activation and the §1.7 energy per
  sample (:class:`evstream.snn.SpikeProfiler`).
* ``prior_*``: the same four mAPs of an events-blind baseline beside the model's, the training
  labels' most frequent box positions answered for every sample whatever its events
  (:meth:`Gen1Task.prior`); left out when the data folder has no train split.
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from evstream.datasets.gen1 import GEN1_CLASSES, Gen1Detection, collate_gen1
from evstream.errors import check_positive
from evstream.nets.spike_yolo import spike_yolo
from evstream.nets.spike_yolo.model import BN_EPS, BN_MOMENTUM, LEGACY_BN_EPS
from evstream.nets.spike_yolo.live import DetectionRecipe, save_detector
from evstream.nets.spike_yolo.loss import DetectionLoss
from evstream.nets.spike_yolo.nms import NMSResult, non_max_suppression
from evstream.ops.spikeyolo_input import resize_mode
from evstream.snn.profiler import SpikeProfiler
from evstream.train.baselines import prior_boxes
from evstream.train.coco_map import Boxes, coco_map
from evstream.train.gen1_eval import evaluate_gen1
from evstream.train.yolo_map import ultralytics_map

__all__ = ["DETECTION_DTYPE", "Gen1Task", "to_sensor_detections"]

DETECTION_DTYPE = np.dtype([("t", "<i8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                            ("class_id", "<u4"), ("class_confidence", "<f4"), ("track_id", "<u4")])
"""Detections in the toolbox's box format (top-left x, y and size in sensor pixels)."""


class Gen1Task:
    """SpikeYOLO on a Gen1-layout folder (``evstream train gen1 --data DIR --set task.scale=s``; the CPU
    default is the real-time scale ``rt``, whose epoch fits 2 GB: ``--recipe paper`` takes the paper's ``s``).

    Args:
        data_dir: the dataset root (train/ val/ test/).
        scale: SpikeYOLO scale (``"s"`` is the paper's Gen1 model; ``"rt"`` the real-time CPU scale).
        T: time bins per 250 ms window (2, as the released checkpoint). D: I-LIF maximum spike (4).
        window_us, imgsz: the sample window and the network input's long side (320 -> 320x256).
        eval_split: the split :meth:`datasets` returns second (``"val"``, on which the trainer selects
            ``best.pt``; ``"test"`` for final numbers, then nothing is selected).
        cache_dir: frame cache folder. conf_threshold, iou_threshold, max_det: validation NMS
            (Ultralytics: 0.001, 0.7, 300).
        eval_batch: samples per forward pass when evaluating: bounds the activations held at once
            whatever the loader's batch (the training batch, 80); the metrics do not depend on it.
        resize: ``"linear"`` (the official ``load_image``, ``cv2.INTER_LINEAR``) or ``"area"`` (the
            resize of evstream's earlier models); exported in the recipe so the live detector repeats it.
        bn_eps, bn_momentum: every BatchNorm's (Ultralytics' 1e-3 and 0.03, the official models'; the
            bundled detector was trained with torch's 1e-5 and 0.1).
    """

    metric: ClassVar[str] = "sample_mAP50"
    metric_mode: ClassVar[str] = "max"
    train_defaults: ClassVar[dict] = {
        "optimizer": "sgd", "lr": 0.02, "momentum": 0.937, "weight_decay": 5e-4, "schedule": "linear",
        "lrf": 0.004, "warmup_epochs": 10, "warmup_style": "yolo", "warmup_momentum": 0.8, "warmup_bias_lr": 0.1,
        "nominal_batch": 64, "decay_norm_and_bias": False, "grad_clip": 10.0, "epochs": 100, "batch_size": 4,
        "ema": True,
    }
    """§1.5, Gen1 column, with Ultralytics' trainer: SGD lr0 0.02, momentum 0.937, weight decay 5e-4 on
    conv weights only (scaled by batch / nominal 64), linear to lrf 0.004, 10 warm-up epochs per
    iteration (momentum from 0.8, bias lr from 0.1), gradient norm clipped at 10, 100 epochs. Batch 4
    instead of ``default.yaml``'s 80 (split over 4 GPUs in the paper; ``--recipe paper``): gradients
    accumulate to the nominal 64 as Ultralytics' do. Ultralytics' weight EMA (decay 0.9999, ramp 2000
    updates) is what is evaluated and exported; float16 autocast with a GradScaler on CUDA (the trainer's
    ``amp="auto"``), as the official trainer, which forces AMP on."""

    collate = staticmethod(collate_gen1)

    def __init__(self, data_dir: os.PathLike | str, *, scale: str = "rt", T: int = 2, D: int = 4,
                 window_us: int = 250_000, imgsz: int = 320, eval_split: str = "val",
                 cache_dir: os.PathLike | str | None = None, conf_threshold: float = 0.001,
                 iou_threshold: float = 0.7, max_det: int = 300, eval_batch: int = 8, resize: str = "linear",
                 bn_eps: float = BN_EPS, bn_momentum: float = BN_MOMENTUM):
        check_positive("task", T=T, D=D, window_us=window_us, imgsz=imgsz, max_det=max_det, eval_batch=eval_batch)
        self.eval_batch = int(eval_batch)
        resize_mode(resize)
        self.resize = resize
        check_positive("task", bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.bn_eps, self.bn_momentum = float(bn_eps), float(bn_momentum)
        self.data_dir, self.scale, self.T, self.D = data_dir, scale, int(T), int(D)
        self.window_us, self.imgsz, self.eval_split, self.cache_dir = int(window_us), int(imgsz), eval_split, cache_dir
        self.conf_threshold, self.iou_threshold, self.max_det = conf_threshold, iou_threshold, max_det
        self.criterion = DetectionLoss(len(GEN1_CLASSES))
        self._prior: NMSResult | None = None

    @property
    def net_name(self) -> str:
        """SpikeYOLO and its scale."""
        return f"spike_yolo-{self.scale}"

    def build_model(self) -> nn.Module:
        return spike_yolo(scale=self.scale, num_classes=len(GEN1_CLASSES), T=self.T, D=self.D, bn_eps=self.bn_eps,
                          bn_momentum=self.bn_momentum)

    def build_model_for(self, state: dict) -> nn.Module:
        """The net for a checkpoint: an exported detector's BatchNorm eps is its own (one written before
        the eps was stored has torch's default), so ``evstream eval`` scores it as it was trained."""
        model = self.build_model()
        if state.get("net") == "spike_yolo":
            eps = state.get("net_options", {}).get("bn_eps", LEGACY_BN_EPS)
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eps = float(eps)
        return model

    def dataset(self, split: str) -> Gen1Detection:
        return Gen1Detection(self.data_dir, split, n_time_bins=self.T, window_us=self.window_us, imgsz=self.imgsz,
                             cache_dir=self.cache_dir, resize=self.resize)

    def datasets(self) -> tuple[Gen1Detection, Gen1Detection]:
        return self.dataset("train"), self.dataset(self.eval_split)

    def loss(self, model: nn.Module, batch, device: torch.device) -> torch.Tensor:
        frames, targets = batch
        return self.criterion(model(frames.to(device, non_blocking=True)), targets.to(device, non_blocking=True))[0]

    def export(self, model: nn.Module, path: os.PathLike | str, metrics: dict | None = None) -> None:
        """Write ``model`` as a live detector checkpoint with this task's recipe (:func:`save_detector`)."""
        recipe = DetectionRecipe(tuple(Gen1Detection.sensor_size), self.T, self.window_us, self.imgsz, self.resize)
        save_detector(path, model, net_options={"scale": self.scale, "num_classes": len(GEN1_CLASSES), "T": self.T,
                                                "D": self.D},
                      recipe=recipe, names=GEN1_CLASSES, metrics=metrics)

    def predict(self, model: nn.Module, frames: torch.Tensor, *, conf_threshold: float | None = None):
        """NMS detections of a batch ``[T, B, 3, H, W]`` (xyxy network-input pixels)."""
        boxes, scores = model.predict(frames)
        conf = self.conf_threshold if conf_threshold is None else conf_threshold
        return non_max_suppression(boxes, scores, conf_threshold=conf, iou_threshold=self.iou_threshold,
                                   max_det=self.max_det, multi_label=True)

    def evaluate(self, model: nn.Module, loader, device: torch.device, *, progress: bool = True) -> dict[str, float]:
        """Both mAPs and the energy over ``loader`` (its dataset a :class:`Gen1Detection`, in order); a
        tqdm bar unless ``progress=False``."""
        dataset: Gen1Detection = loader.dataset
        model.eval()
        results = []
        with torch.no_grad(), SpikeProfiler(model) as profiler:
            for frames, _ in tqdm(loader, desc="eval", leave=False, disable=not progress):
                for part in frames.split(self.eval_batch, dim=1):  # frames [T, B, 3, H, W]
                    results += self.predict(model, part.to(device, non_blocking=True))
        if len(results) != len(dataset):
            raise ValueError("evaluate needs a loader over the whole dataset, in order")
        metrics = self.score(dataset, results)
        report = profiler.report()
        rates = [r["firing_rate"] for r in report["neurons"].values()]
        metrics.update(firing_rate=float(np.mean(rates)) if rates else 0.0, energy_uj=report["energy_pj"] / 1e6,
                       ann_energy_uj=report["ann_energy_pj"] / 1e6)
        prior = self.prior()
        if prior is not None:
            metrics.update({f"prior_{k}": v for k, v in self.score(dataset, [prior] * len(dataset)).items()})
        return metrics

    def prior(self) -> NMSResult | None:
        """The events-blind baseline: :func:`~evstream.train.baselines.prior_boxes` of the train split's
        labels (network-input pixels), read once; None when the data folder has no train split."""
        if self._prior is None:
            try:
                train = self.dataset("train")
            except FileNotFoundError:
                return None
            self._prior = prior_boxes([train.targets(i) for i in range(len(train))], len(GEN1_CLASSES))
        return self._prior

    @classmethod
    def score(cls, dataset: Gen1Detection, results) -> dict[str, float]:
        """Both mAPs (per-sample and Prophesee protocol) of ``results``, one NMS result per sample of
        ``dataset`` in order: a model's or an events-blind baseline's (:mod:`evstream.train.baselines`)."""
        if len(results) != len(dataset):
            raise ValueError(f"score needs one result per sample: {len(results)} results, {len(dataset)} samples")
        return {**cls._sample_map(dataset, results), **cls._prophesee_map(dataset, results)}

    @staticmethod
    def _sample_map(dataset: Gen1Detection, results) -> dict[str, float]:
        g = [dataset.targets(i) for i in range(len(dataset))]
        gt = Boxes(np.concatenate([np.full(len(t), i) for i, t in enumerate(g)]),
                   np.concatenate([t[:, 0] for t in g]).astype(np.int64), _xywh(np.concatenate([t[:, 1:] for t in g])))
        det = Boxes(np.concatenate([np.full(len(r.scores), i) for i, r in enumerate(results)]),
                    np.concatenate([r.classes.cpu().numpy() for r in results]).astype(np.int64),
                    _xywh(np.concatenate([r.boxes.cpu().double().numpy().reshape(-1, 4) for r in results])),
                    np.concatenate([r.scores.cpu().double().numpy() for r in results]))
        yolo, coco = ultralytics_map(gt, det), coco_map(gt, det)
        return {"sample_mAP50": yolo["mAP50"], "sample_mAP": yolo["mAP"], "sample_coco_mAP50": coco["mAP50"],
                "sample_coco_mAP": coco["mAP"]}

    @staticmethod
    def _prophesee_map(dataset: Gen1Detection, results) -> dict[str, float]:
        per_recording: dict = {}
        for sample, result in zip(dataset.samples, results, strict=True):
            detections = to_sensor_detections(dataset, sample.label_time, result)
            per_recording.setdefault(sample.td_path, []).append(detections)
        gts = [dataset.ground_truth(path) for path in per_recording]
        dets = [np.concatenate(d) for d in per_recording.values()]
        try:
            m = evaluate_gen1(gts, dets)
        except ValueError:  # nothing left after the protocol's filter
            return {"prophesee_mAP50": -1.0, "prophesee_mAP": -1.0}
        return {"prophesee_mAP50": m["mAP50"], "prophesee_mAP": m["mAP"]}


def _xywh(xyxy: np.ndarray) -> np.ndarray:
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1)


def to_sensor_detections(dataset: Gen1Detection, label_time: int, result) -> np.ndarray:
    """One sample's NMS result -> :data:`DETECTION_DTYPE` rows at ``label_time`` (sensor pixels, clipped)."""
    width, height = dataset.sensor_size[:2]
    xyxy = dataset.letterbox.boxes_to_sensor(result.boxes.cpu().double().numpy().reshape(-1, 4))
    xyxy = np.clip(xyxy, 0, [width, height, width, height])
    out = np.zeros(len(xyxy), DETECTION_DTYPE)
    out["t"] = label_time
    out["x"], out["y"] = xyxy[:, 0], xyxy[:, 1]
    out["w"], out["h"] = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    out["class_id"] = result.classes.cpu().numpy()
    out["class_confidence"] = result.scores.cpu().numpy()
    return out
