"""SpikeYOLO: parameter counts, fused / binary inference, head decoding, NMS and loss on hand cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evstream.nets.spike_yolo import SCALES, spike_yolo
from evstream.nets.spike_yolo.blocks import (
    BNPad2d,
    MS_AllConvBlock,
    MS_ConvBlock,
    RepConv,
    SpikeSPPF,
    Synapse,
    fold_chain,
    fuse_model,
    set_binary,
)
from evstream.nets.spike_yolo.head import decode, dfl_expectation, dist_to_xyxy, make_anchors
from evstream.nets.spike_yolo.live import (
    DetectionRecipe,
    SpikeYOLODetector,
    load_detector,
    save_detector,
)
from evstream.nets.spike_yolo.loss import DetectionLoss, TaskAlignedAssigner, bbox_ciou, dfl_loss
from evstream.nets.spike_yolo.model import Scale, SpikeYOLO
from evstream.nets.spike_yolo.nms import batched_nms, box_iou, nms, non_max_suppression
from evstream.outputs import Detections
from evstream.snn.ilif import ILIFParams
from evstream.train.coco_map import Boxes, coco_map

TINY = Scale(0.33, 0.0625)  # 8/16/32/64 channels: the layer table at a test-sized width


def tiny(num_classes=2, T=1) -> SpikeYOLO:
    return SpikeYOLO(TINY, num_classes, T=T, neuron=ILIFParams.coco(4))


def _randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BN statistics and affine parameters, so folding is really tested."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen, dtype=m.running_mean.dtype) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=gen, dtype=m.running_var.dtype) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen, dtype=m.weight.dtype) + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=gen, dtype=m.bias.dtype) * 0.2 + 0.3)


# --- architecture ---------------------------------------------------------------------------

@pytest.mark.parametrize("scale, expected_m", [("n", 13.2), ("s", 23.1), ("m", 48.0), ("l", 69.0)])
def test_parameter_counts_match_the_paper_within_2_percent(scale, expected_m):
    with torch.device("meta"):
        model = spike_yolo(scale=scale, num_classes=80)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(params - expected_m) / expected_m < 0.02, params


def test_s_scale_resolves_the_layer_table():
    s = SCALES["s"]
    assert [s.channels(c) for c in (128, 256, 512, 1024)] == [64, 128, 256, 512]
    assert [s.repeats(n) for n in (1, 3, 6, 9)] == [1, 1, 2, 3]
    assert [SCALES["l"].repeats(n) for n in (3, 6, 9)] == [2, 3, 4]
    assert SCALES["n"].channels(128) == 48
    with torch.device("meta"):
        model = spike_yolo(scale="s", num_classes=2)
    assert (len(model.stage1), len(model.stage2), len(model.stage3), len(model.stage4)) == (1, 2, 3, 1)
    stem = model.stem.chain[0]
    assert model.stem.neuron is None and stem.kernel_size == (7, 7) and stem.stride == (4, 4) and stem.padding == (2, 2)
    assert model.head.box[0][0].chain[0].out_channels == 64 and model.head.cls[0][0].chain[0].out_channels == 128
    assert model.out5.conv1.chain[0].in_channels == 512 and model.out5.conv1.chain[3].out_channels == 512  # r = 1


def test_builder_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown scale"):
        spike_yolo(scale="xl", num_classes=2)
    with pytest.raises(ValueError, match="differs from D"):
        spike_yolo(scale="rt", num_classes=2, D=4, neuron=ILIFParams.coco(2))
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny()(torch.zeros(1, 1, 3, 40, 64))


def test_forward_shapes_static_and_event_input():
    model = tiny(num_classes=3, T=2).eval()
    maps = model(torch.rand(1, 3, 32, 64))  # static image, repeated T = 2 times
    assert [tuple(m.shape) for m in maps] == [(1, 67, 4, 8), (1, 67, 2, 4), (1, 67, 1, 2)]
    boxes, scores = model.predict(torch.rand(3, 2, 3, 32, 32))  # [T, B, C, H, W] events, T = 3
    assert boxes.shape == (2, 21, 4) and scores.shape == (2, 21, 3) and ((scores >= 0) & (scores <= 1)).all()


def test_head_bias_init_is_yolov8s():
    model = tiny(num_classes=80)
    for cls, box, stride in zip(model.head.cls, model.head.box, (8, 16, 32), strict=True):
        assert torch.allclose(cls[-1].chain[0].bias, torch.tensor(math.log(5 / 80 / (640 / stride) ** 2)))
        assert torch.all(box[-1].chain[0].bias == 1.0)


# --- folding and binary inference -----------------------------------------------------------

def test_bnpad_border_is_the_bn_value_of_zero():
    bn = BNPad2d(3, pad=1).eval()
    _randomise_bn(bn, torch.Generator().manual_seed(1))
    y = bn(torch.rand(2, 3, 4, 5))
    zero = bn(torch.zeros(1, 3, 1, 1))[0, :, 1, 1]  # the 1x1 input sits at the centre of a 3x3 output
    assert y.shape == (2, 3, 6, 7)
    assert torch.allclose(y[0, :, 0, 0], zero) and torch.allclose(y[1, :, -1, 3], zero)


def test_fold_chain_equals_repconv_and_conv_bn():
    gen = torch.Generator().manual_seed(2)
    chain = RepConv(4, 6, extra_bn=True).double().eval()
    _randomise_bn(chain, gen)
    fused = fold_chain(chain)
    x = torch.randint(0, 5, (2, 4, 7, 9), generator=gen).double()
    assert fused.kernel_size == (3, 3) and fused.padding == (1, 1)
    torch.testing.assert_close(fused(x), chain(x), rtol=0, atol=1e-10)
    strided = nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1, groups=2, bias=True), nn.BatchNorm2d(8)).double().eval()
    _randomise_bn(strided, gen)
    torch.testing.assert_close(fold_chain(strided)(x), strided(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("block", [MS_ConvBlock, MS_AllConvBlock])
def test_fused_blocks_equal_unfused(block):
    torch.manual_seed(3)
    module = nn.Sequential(SpikeSPPF(8, 8, neuron=ILIFParams.gen1(4)), block(8, 2, 7, neuron=ILIFParams.gen1(4)))
    module = module.double()
    _randomise_bn(module, torch.Generator().manual_seed(3))
    module.eval()
    x = torch.rand(2, 2, 8, 12, 12, dtype=torch.float64) * 6
    with torch.no_grad():
        reference = module(x)
        fuse_model(module)
        torch.testing.assert_close(module(x), reference, rtol=0, atol=1e-9)
    assert all(len(m.chain) == 1 for m in module.modules() if isinstance(m, Synapse))


def test_binary_inference_equals_integer_mode():
    torch.manual_seed(3)
    model = tiny(T=2)
    _randomise_bn(model, torch.Generator().manual_seed(3))
    model.eval().fuse()
    model.double()  # float64 sums: the D binary partial sums add up to the integer conv exactly enough
    x = torch.rand(2, 1, 3, 32, 64, dtype=torch.float64) * 4
    with torch.no_grad():
        spikes = model.stage2[0].sep.pw1.neuron(model.down2(model.stage1(model.stem(x))))[0]
        assert spikes.max() >= 2 and spikes.mean() > 0.05  # integer spikes above 1: the expansion matters
        integer = model(x)
        binary = model.set_binary(True)(x)
    for i, b in zip(integer, binary, strict=True):
        torch.testing.assert_close(b, i, rtol=0, atol=1e-9)


def test_binary_mode_runs_the_convs_on_binary_spikes():
    synapse = Synapse(nn.Sequential(nn.Conv2d(2, 3, 1, bias=True)), ILIFParams.coco(4))
    seen = []
    synapse.fuse()
    set_binary(synapse)
    original = torch.nn.functional.conv2d

    def spy(x, *args, **kwargs):
        seen.append(x.unique())
        return original(x, *args, **kwargs)

    x = torch.tensor([0.2, 1.6, 3.4, 9.0]).view(1, 1, 1, 2, 2).expand(2, 1, 2, 2, 2)
    torch.nn.functional.conv2d = spy
    try:
        y = synapse(x)
    finally:
        torch.nn.functional.conv2d = original
    assert set(seen[0].tolist()) <= {0.0, 1.0} and len(seen) == 1
    set_binary(synapse, False)
    torch.testing.assert_close(y, synapse(x))


def test_binary_mode_needs_fused_synapses():
    with pytest.raises(ValueError, match="fuse_model"):
        tiny().set_binary(True)


# --- head -----------------------------------------------------------------------------------

def test_dfl_expectation_and_decoding_hand_case():
    bins = torch.full((4, 16), -1e4)
    for side, d in enumerate((2, 3, 0, 5)):
        bins[side, d] = 0.0
    assert dfl_expectation(bins.flatten()).tolist() == [2.0, 3.0, 0.0, 5.0]
    half = torch.full((1, 64), -1e4)
    half[0, [1, 2]] = 0.0  # half on 1, half on 2 -> 1.5
    assert dfl_expectation(half)[0, 0].item() == pytest.approx(1.5)
    assert dist_to_xyxy(torch.tensor([2.0, 3.0, 0.0, 5.0]), torch.tensor([4.5, 6.5])).tolist() == [2.5, 3.5, 4.5, 11.5]
    points, strides = make_anchors([(2, 3), (1, 1)], (8, 16))
    assert points[:4].tolist() == [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5]] and points[-1].tolist() == [0.5, 0.5]
    assert strides[:, 0].tolist() == [8.0] * 6 + [16.0]
    # one anchor (level stride 8, cell (1, 0)) predicting distances (1, 1, 2, 2) and class logit 0
    maps = [torch.full((1, 66, 1, 2), -1e4), torch.full((1, 66, 1, 1), -1e4)]
    maps[0][0, [1, 16 + 1, 32 + 2, 48 + 2], 0, 1] = 0.0
    maps[0][0, 64:, :, :] = 0.0
    boxes, scores = decode(maps, (8, 16))
    assert boxes[0, 1].tolist() == [(1.5 - 1) * 8, (0.5 - 1) * 8, (1.5 + 2) * 8, (0.5 + 2) * 8]
    assert scores[0, 1].tolist() == [0.5, 0.5]


# --- NMS ------------------------------------------------------------------------------------

def test_box_iou_hand_values():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10], [3, 3, 3, 8]])
    assert box_iou(a, b)[0].tolist() == pytest.approx([50 / 150, 0.0, 1.0, 0.0])


def test_nms_hand_cases():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 9], [0, 0, 10, 7], [50, 50, 60, 60], [1, 0, 11, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.95])
    # IoU(0, 1) = 0.9 > 0.7: suppressed; IoU(0, 2) = 0.7 exactly: kept; box 4 (score .95) suppresses box 0
    assert nms(boxes[:3], scores[:3], 0.7).tolist() == [0, 2]
    assert nms(boxes, scores, 0.7).tolist() == [4, 2, 3]
    assert nms(boxes, scores, 0.7, max_keep=2).tolist() == [4, 2]
    classes = torch.tensor([0, 1, 0, 0, 1])
    assert batched_nms(boxes, scores, classes, 0.7).tolist() == [4, 0, 2, 3]  # 4 and 0 differ in class
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.7).tolist() == []
    with pytest.raises(ValueError):
        nms(boxes, scores[:2], 0.7)


def test_non_max_suppression_thresholds_and_max_det():
    boxes = torch.tensor([[[0.0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [40, 40, 50, 50]]])
    scores = torch.tensor([[[0.9, 0.1], [0.2, 0.8], [0.05, 0.3], [0.5, 0.6]]])
    single = non_max_suppression(boxes, scores, conf_threshold=0.25)[0]
    assert single.scores.tolist() == pytest.approx([0.9, 0.8, 0.6, 0.3])
    assert single.classes.tolist() == [0, 1, 1, 1]
    multi = non_max_suppression(boxes, scores, conf_threshold=0.15, multi_label=True)[0]
    assert multi.scores.tolist() == pytest.approx([0.9, 0.8, 0.6, 0.5, 0.3])  # (0, car) suppresses (1, car)
    assert multi.classes.tolist() == [0, 1, 1, 0, 1]
    capped = non_max_suppression(boxes, scores, conf_threshold=0.0, max_det=2)[0]
    assert capped.boxes.tolist() == [[0.0, 0, 10, 10], [0, 0, 10, 9]]


# --- loss -----------------------------------------------------------------------------------

def test_ciou_hand_cases():
    a = torch.tensor([0.0, 0, 10, 10])
    assert bbox_ciou(a, a).item() == pytest.approx(1.0, abs=1e-6)
    # same shape, shifted by 10: IoU 0, centre distance^2 100, enclosing diagonal^2 400 + 100
    assert bbox_ciou(a, torch.tensor([10.0, 0, 20, 10])).item() == pytest.approx(-100 / 500, abs=1e-6)
    # nested 10x10 in 20x10: IoU 0.5, centres 5 apart, diagonal^2 500, aspect term v
    b = torch.tensor([0.0, 0, 20, 10])
    v = 4 / math.pi ** 2 * (math.atan(2.0) - math.atan(1.0)) ** 2
    expected = 0.5 - 25 / 500 - v * v / (v - 0.5 + 1)
    assert bbox_ciou(a, b).item() == pytest.approx(expected, abs=1e-6)


def test_dfl_loss_hand_case():
    bins = torch.zeros(1, 4, 16)  # uniform: every cross-entropy is log 16
    assert dfl_loss(bins, torch.tensor([[2.3, 0.0, 7.5, 14.9]])).item() == pytest.approx(math.log(16), abs=1e-6)
    bins = torch.full((1, 4, 16), -1e4)
    bins[0, :, 2], bins[0, :, 3] = 0.0, 0.0  # half on bins 2 and 3
    target = torch.full((1, 4), 2.3)
    assert dfl_loss(bins, target).item() == pytest.approx(math.log(2), abs=1e-5)


def test_assigner_hand_case():
    points = torch.tensor([[4.0, 4.0], [12.0, 4.0], [20.0, 4.0], [28.0, 4.0]])
    gt = torch.tensor([[[0.0, 0.0, 16.0, 8.0]]])  # covers the anchors at x = 4 and 12
    pred = torch.tensor([[[0.0, 0.0, 16.0, 8.0], [0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 16.0, 8.0], [0, 0, 1, 1]]])
    scores = torch.full((1, 4, 2), 0.5)
    assigner = TaskAlignedAssigner(2, topk=10, alpha=0.5, beta=6.0)
    boxes, target_scores, fg = assigner(scores, pred, points, torch.tensor([[1]]), gt, torch.tensor([[True]]))
    assert fg.tolist() == [[True, True, False, False]]  # anchor 2 predicts the box but lies outside it
    assert boxes[0, 0].tolist() == [0.0, 0.0, 16.0, 8.0]
    # metric = 0.5^0.5 CIoU^6; normalised by the best metric and scaled by the best CIoU (1.0)
    ciou = bbox_ciou(gt[0, 0], pred[0, 1]).item()
    assert target_scores[0, :, 0].tolist() == [0.0] * 4
    assert target_scores[0, :, 1].tolist() == pytest.approx([1.0, ciou ** 6, 0.0, 0.0], abs=1e-6)
    one = TaskAlignedAssigner(2, topk=1)(scores, pred, points, torch.tensor([[1]]), gt, torch.tensor([[True]]))
    assert one[2].tolist() == [[True, False, False, False]]


def test_detection_loss_without_targets_is_the_background_bce():
    maps = [torch.full((2, 66, 2, 2), 0.0), torch.full((2, 66, 1, 1), 0.0)]
    maps[0][:, 64:] = -2.0
    maps[1][:, 64:] = 1.0
    total, parts = DetectionLoss(2, (8, 16))(maps, torch.zeros(0, 6))
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    cls = (2 * 4 * 2 * softplus(-2.0) + 2 * 1 * 2 * softplus(1.0)) * 0.5
    assert parts == pytest.approx({"box": 0.0, "cls": cls, "dfl": 0.0})
    assert total.item() == pytest.approx(2 * cls)


def test_detection_loss_perfect_box_has_no_box_loss():
    # one anchor of a 1x1 map (stride 8, centre (4, 4)) predicting exactly the box (0, 0, 8, 8): distances 0.5
    maps = [torch.full((1, 65, 1, 1), -1e4)]  # 64 bins + 1 class
    for side in range(4):
        maps[0][0, side * 16: side * 16 + 2] = 0.0  # half on 0, half on 1 -> 0.5
    maps[0][0, 64] = 3.0
    total, parts = DetectionLoss(1, (8,))(maps, torch.tensor([[0, 0, 0.0, 0.0, 8.0, 8.0]]))
    assert parts["box"] == pytest.approx(0.0, abs=1e-5)
    assert parts["dfl"] == pytest.approx(1.5 * math.log(2), abs=1e-4)  # the half / half split costs log 2
    assert parts["cls"] == pytest.approx(0.5 * math.log1p(math.exp(-3.0)), abs=1e-5)  # target score 1


def test_detection_loss_rejects_bad_targets():
    maps = [torch.zeros(1, 66, 1, 1)]
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        DetectionLoss(2, (8,))(maps, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="image indices"):
        DetectionLoss(2, (8,))(maps, torch.tensor([[1, 0, 0.0, 0, 4, 4]]))


# --- training and live ----------------------------------------------------------------------

def _two_images():
    x = torch.zeros(1, 2, 3, 64, 64)
    x[0, 0, :, 8:40, 10:30] = 1.0
    x[0, 1, :, 30:60, 20:62] = 1.0
    targets = torch.tensor([[0, 0, 10.0, 8, 30, 40], [1, 1, 20, 30, 62, 60]])
    gt = Boxes(np.array([0, 1]), np.array([0, 1]), np.array([[10.0, 8, 20, 32], [20, 30, 42, 30]]))
    return x, targets, gt


def _map50(model, x, gt) -> float:
    model.eval()
    with torch.no_grad():
        results = non_max_suppression(*model.predict(x), conf_threshold=0.001, multi_label=True)
    det = Boxes(np.concatenate([np.full(len(r.scores), i) for i, r in enumerate(results)]),
                np.concatenate([r.classes.numpy() for r in results]),
                np.concatenate([torch.cat([r.boxes[:, :2], r.boxes[:, 2:] - r.boxes[:, :2]], 1).double().numpy()
                                for r in results]),
                np.concatenate([r.scores.double().numpy() for r in results]))
    return coco_map(gt, det)["mAP50"]


@pytest.fixture
def flush_denormals():
    """Denormal activations early in training make CPU steps ~200x slower; the flag is
    process-global (it breaks hypothesis' float strategies), so it is restored after."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.mark.slow
def test_two_image_overfit_reaches_map50_of_one(flush_denormals):
    torch.manual_seed(0)
    model = tiny()
    x, targets, gt = _two_images()
    criterion = DetectionLoss(2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    best = 0.0
    for step in range(300):
        model.train()
        loss = criterion(model(x), targets)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            best = _map50(model, x, gt)
            if best == pytest.approx(1.0):
                break
    assert best == pytest.approx(1.0)


def test_live_detector_maps_boxes_to_sensor_pixels(tmp_path):
    from evstream import EVENT_DTYPE

    torch.manual_seed(0)
    model = spike_yolo(scale="rt", num_classes=2, T=1)
    recipe = DetectionRecipe((64, 24, 2), n_time_bins=1, window_us=10_000, imgsz=64)
    path = tmp_path / "det.pt"
    save_detector(path, model, net_options={"scale": "rt", "num_classes": 2, "T": 1}, recipe=recipe,
                  names=("car", "pedestrian"), metrics={"sample_mAP50": 0.5})
    loaded, info = load_detector(path)
    assert info["recipe"]["sensor_size"] == (64, 24, 2) and info["metrics"] == {"sample_mAP50": 0.5}
    events = np.zeros(50, EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = np.arange(50), 12, np.arange(50) * 100, 1
    detector = SpikeYOLODetector.from_checkpoint(path, conf_threshold=0.0, max_det=5)
    out = detector(events)
    assert isinstance(out, Detections) and out.names == ("car", "pedestrian")
    assert out.boxes_xyxy.shape == (5, 4) and out.scores.shape == (5,) and out.classes.shape == (5,)
    assert (out.boxes_xyxy >= 0).all()
    assert (out.boxes_xyxy[:, [0, 2]] <= 64).all() and (out.boxes_xyxy[:, [1, 3]] <= 24).all()
    assert 0.0 <= out.firing_rate <= 4.0
    assert all(len(m.chain) == 1 for m in detector.model.modules() if isinstance(m, Synapse))  # fused
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)


def test_official_batch_norm_settings_and_variants():
    """Ultralytics' initialize_weights: every BatchNorm2d eps 1e-3, momentum 0.03; COCO's neuron for 80 classes."""
    from evstream.snn.ilif import ILIFParams

    model = spike_yolo(scale="rt", num_classes=80)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == 0.03 for m in norms)
    assert {m.p for m in model.modules() if isinstance(getattr(m, "p", None), ILIFParams)} == {ILIFParams.coco(4)}
    gen1 = spike_yolo(scale="rt", num_classes=2)
    assert {m.p for m in gen1.modules() if isinstance(getattr(m, "p", None), ILIFParams)} == {ILIFParams.gen1(4)}
    with pytest.raises(ValueError, match="unknown variant 'voc'"):
        spike_yolo(scale="rt", variant="voc")


def test_bundled_detector_keeps_the_settings_it_was_trained_with():
    """models/detector_spikeyolo.pt predates bn_eps and resize: loaded with torch's eps and INTER_AREA."""
    from evstream.nets.spike_yolo.live import load_detector

    path = Path(__file__).resolve().parents[2] / "models" / "detector_spikeyolo.pt"
    model, info = load_detector(path)
    assert info["recipe"]["resize"] == "area" and info["net_options"]["bn_eps"] == 1e-5
    assert all(m.eps == 1e-5 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
