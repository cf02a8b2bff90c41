"""Depth losses on hand cases, the depth task on the synthetic recording, and a two-sample overfit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evstream.datasets.mvsec import MVSECDepth
from evstream.nets.depth import DepthPrediction, spiking_depth_unet
from evstream.train.depth_losses import (e2depth_loss, multiscale_gradient_loss, scale_invariant_loss,
                                         sobel_gradient_loss, stereospike_loss)
from evstream.train.depth_metrics import ALPHA, prepare_target
from evstream.train.tasks.depth import STEREOSPIKE_RECIPE, MvsecTask, log_depth_target, per_pixel_prior

RECORDING = Path(__file__).resolve().parents[2] / "recordings" / "mvsec_depth"
NAN = float("nan")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ramp(h=8, w=8):
    return torch.arange(w, dtype=torch.float32).expand(1, 1, h, w).clone()


def test_scale_invariant_hand_case():
    target = torch.tensor([[[[0.0, 0.0], [0.0, NAN]]]])
    prediction = torch.tensor([[[[1.0, -1.0], [2.0, 7.0]]]])
    # valid residuals 1, -1, 2: mean(R^2) = 2, mean(R) = 2/3
    assert scale_invariant_loss(prediction, target).item() == pytest.approx(2 - 4 / 9)
    assert scale_invariant_loss(prediction, target, lam=0.0).item() == pytest.approx(2.0)
    # a constant offset costs nothing with lambda = 1
    assert scale_invariant_loss(target.nan_to_num() + 0.3, target).item() == pytest.approx(0.0, abs=1e-7)
    assert scale_invariant_loss(prediction, torch.full_like(target, NAN)).item() == 0.0


def test_gradient_losses_on_a_ramp():
    zero = torch.zeros(1, 1, 8, 8)
    # E2Depth: normalised Sobel on R pooled by 1, 2, 4, 8 with replicated borders:
    # 7/8 (interior 1, border 0.5), 1.5 (pooled steps of 2), 2 (2x2), 0 (1x1); mean over 4 scales
    assert multiscale_gradient_loss(_ramp(), zero).item() == pytest.approx((0.875 + 1.5 + 2.0 + 0.0) / 4)
    # StereoSpike: raw Sobel with zero padding (the official F.conv2d(res, sobel, padding=1)). |Gx|: inner rows
    # 8 inside, 4 at column 0, 24 at column 7 (6 - pad 0), x3/4 on the top and bottom rows (one kernel row in the
    # padding): 6 * 76 + 2 * 57 = 570; |Gy|: 0 inside, 4x on the top and bottom rows (1 and 20 at the corners):
    # 2 * 105 = 210; (570 + 210) / 64 pixels
    assert sobel_gradient_loss(_ramp(), zero).item() == pytest.approx(780 / 64)
    # a constant offset of 3 is seen at the borders only: |Gx| 12 on the outer columns' inner rows, 9 at the
    # corners, |Gy| the same on the outer rows: 2 * 2 * (6 * 12 + 2 * 9) / 64. The scale-invariant loss
    # (lambda 1) ignores offsets; this is what ties the official metric depth to its absolute level
    assert sobel_gradient_loss(zero + 3.0, zero).item() == pytest.approx(360 / 64)
    assert multiscale_gradient_loss(zero + 3.0, zero).item() == 0.0
    masked = zero.clone()
    masked[..., :, 0] = NAN  # column 0 has no target: its residual is 0 and it leaves the mean
    r = _ramp()
    # the residual is the ramp again (column 0 is 0 either way); column 0's |Gx| + |Gy| (6 * 4 + 2 * 3 + 2 * 1)
    # leaves the sum, its 8 pixels the count
    assert sobel_gradient_loss(r, masked).item() == pytest.approx((780 - 32) / 56)


def test_total_losses_weights():
    target = torch.zeros(1, 1, 8, 8)
    p = _ramp() * 0.1
    si = scale_invariant_loss(p, target).item()
    assert e2depth_loss(p, target).item() == pytest.approx(si + 0.25 * multiscale_gradient_loss(p, target).item())
    ss = si + 0.5 * sobel_gradient_loss(p, target).item()
    assert stereospike_loss([p, p], target).item() == pytest.approx(2 * ss)
    with pytest.raises(ValueError, match="at least one"):
        stereospike_loss([], target)
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        scale_invariant_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))


def test_log_depth_target():
    depth = torch.tensor([80.0, 80.0 * math.exp(-ALPHA), NAN])
    out = log_depth_target(depth, 80.0, ALPHA)
    assert out[:2].tolist() == pytest.approx([1.0, 0.0], abs=1e-6) and torch.isnan(out[2])


class Oracle(nn.Module):
    """Returns a fixed normalised log depth, whatever the input."""

    def __init__(self, log_depth: torch.Tensor):
        super().__init__()
        self.log_depth = log_depth

    def forward(self, x):
        return DepthPrediction(self.log_depth, (self.log_depth,))


def test_task_on_the_synthetic_recording():
    task = MvsecTask(RECORDING, scenario="synthetic", time_steps=2, base_channels=4, stages=2)
    train, test = task.datasets()
    assert (len(train), len(test)) == (16, 4) and task.d_max == 40.0
    x, depth = train[0]
    assert x.shape == (2, 2, 260, 346) and depth.shape == (260, 346)
    batch = torch.utils.data.default_collate([test[0], test[1]])
    # an oracle predicting the ground truth scores 0 m; one predicting twice the depth has abs-rel 1
    # (E2Depth rescales each target so that its maximum is d_max: the oracle predicts that target)
    prepared = np.stack([prepare_target(d.numpy().astype(np.float64), task.d_max) for d in batch[1]])
    target_log = log_depth_target(torch.as_tensor(prepared).unsqueeze(1), task.d_max, task.alpha)
    exact = task.evaluate(Oracle(target_log.nan_to_num(0.5)), [batch], torch.device("cpu"))
    assert exact["mean_depth_error@10"] == pytest.approx(0.0, abs=1e-4) and exact["delta1"] == 1.0
    double = task.evaluate(Oracle((target_log + math.log(2.0) / task.alpha).nan_to_num(0.5)), [batch],
                           torch.device("cpu"))
    assert double["abs_rel"] == pytest.approx(1.0, abs=1e-4) and double["delta3"] == 0.0
    model = task.build_model()
    loss = task.loss(model, batch, torch.device("cpu"))
    assert loss.ndim == 0 and np.isfinite(loss.item()) and loss.item() > 0
    assert MvsecTask(RECORDING, net="stereospike", scenario="synthetic").representation.__class__.__name__ == \
        "HistogramWindow"
    with pytest.raises(ValueError, match="unknown depth network"):
        MvsecTask(RECORDING, net="resnet")
    with pytest.raises(ValueError, match="input_stride is a setting of the spiking U-Net"):
        MvsecTask(RECORDING, net="stereospike", input_stride=2)


def test_per_pixel_prior_is_the_geometric_mean_of_known_depths():
    maps = [np.array([[1.0, NAN], [4.0, NAN]]), np.array([[4.0, NAN], [NAN, NAN]])]
    # pixel (0, 0): sqrt(1 * 4) = 2; (1, 0): 4 (one known map); the never-known column gets the geometric
    # mean of every known value, (1 * 4 * 4) ** (1 / 3)
    np.testing.assert_allclose(per_pixel_prior(iter(maps)), [[2.0, 16 ** (1 / 3)], [4.0, 16 ** (1 / 3)]])
    with pytest.raises(ValueError, match="no known depth"):
        per_pixel_prior([np.full((2, 2), NAN)])


def test_prior_baseline_on_a_held_out_folder():
    """``test_data``: the held-out folder's every map is scored; a net that outputs the prior scores as the prior."""
    task = MvsecTask(RECORDING, scenario="synthetic", time_steps=2, base_channels=4, stages=2, test_data=RECORDING,
                     prior_baseline=True)
    train, held_out = task.datasets()
    assert (len(train), len(held_out), task.eval_split) == (16, 20, "test")
    assert MvsecTask(RECORDING, scenario="synthetic").eval_split == "val"
    prior = task.prior()
    assert prior.shape == (260, 346) and np.isfinite(prior).all()
    loader = torch.utils.data.DataLoader(held_out, batch_size=4)
    as_prior = Oracle(log_depth_target(torch.as_tensor(prior, dtype=torch.float32), task.d_max, task.alpha)
                      .expand(4, 1, 260, 346))
    result = task.evaluate(as_prior, loader, torch.device("cpu"), progress=False)
    for key in ("mean_depth_error@10", "abs_rel", "delta1"):
        assert result[key] == pytest.approx(result[f"prior_{key}"], rel=1e-4, abs=1e-6)
    assert result["prior_mean_depth_error@10"] > 0.1


@pytest.mark.parametrize("net", ["spiking_depth_unet", "stereospike"])
def test_export_gives_the_live_depth_model(tmp_path, net):
    from evstream.nets.depth.live import CHECKPOINT, load_depth

    stride = 2 if net == "spiking_depth_unet" else 1
    task = MvsecTask(RECORDING, net=net, scenario="synthetic", time_steps=2, base_channels=4, stages=2,
                     input_stride=stride)
    model = task.build_model()
    assert getattr(model, "input_stride", None) == (2 if net == "spiking_depth_unet" else None)
    task.export(model, tmp_path / "depth_spiking_unet.pt", metrics={"mean_depth_error@10": 0.5})
    live, window_us = load_depth(tmp_path / CHECKPOINT)
    assert window_us == 50_000 and (live.d_max, live.alpha) == (40.0, ALPHA)
    assert live.target == task.target == ("log" if net == "spiking_depth_unet" else "metric")
    assert live.kind == ("cumulative" if net == "spiking_depth_unet" else "histogram")
    assert live.n_time_bins == (2 if net == "spiking_depth_unet" else 1) and live.sensor_size == (346, 260, 2)
    assert getattr(live.model, "input_stride", None) == getattr(model, "input_stride", None)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(live.model.state_dict()[key], value)
    events = MVSECDepth(RECORDING, "test", scenario="synthetic").events(0)[0]
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(live.representation(events)).unsqueeze(1)).depth[0, 0].double().numpy()
    expected = out if net == "stereospike" else 40.0 * np.exp(ALPHA * (out - 1.0))  # metres as they are, or from log
    np.testing.assert_allclose(live(events).depth_m, expected, rtol=1e-5)


def test_stereospike_learns_metric_depth_by_default_log_depth_on_request():
    cpu = torch.device("cpu")
    metric = MvsecTask(RECORDING, net="stereospike", scenario="synthetic", base_channels=4)
    log = MvsecTask(RECORDING, net="stereospike", scenario="synthetic", base_channels=4, target="log")
    assert (metric.target, log.target, MvsecTask(RECORDING).target) == ("metric", "log", "log")
    _, test = metric.datasets()
    batch = torch.utils.data.default_collate([test[0], test[1]])
    depth = batch[1].unsqueeze(1).float()
    assert torch.equal(metric._inputs(batch, cpu)[1].nan_to_num(-1.0), depth.nan_to_num(-1.0))
    torch.testing.assert_close(log._inputs(batch, cpu)[1], log_depth_target(depth, 40.0, ALPHA), equal_nan=True)
    # a metric oracle scores 0 m (the target E2Depth rescales so that its maximum is d_max), twice it abs-rel 1
    prepared = torch.as_tensor(np.stack([prepare_target(d.numpy().astype(np.float64), 40.0) for d in batch[1]]))
    exact = metric.evaluate(Oracle(prepared.unsqueeze(1).nan_to_num(1.0)), [batch], cpu)
    assert exact["mean_depth_error@10"] == pytest.approx(0.0, abs=1e-4) and exact["delta1"] == 1.0
    double = metric.evaluate(Oracle(2 * prepared.unsqueeze(1).nan_to_num(1.0)), [batch], cpu)
    assert double["abs_rel"] == pytest.approx(1.0, abs=1e-4)
    loss = metric.loss(metric.build_model(), batch, cpu)
    assert loss.ndim == 0 and np.isfinite(loss.item())
    with pytest.raises(ValueError, match="task.target: 'metric' is not a target of spiking_depth_unet"):
        MvsecTask(RECORDING, target="metric")
    with pytest.raises(ValueError, match="task.target: 'disparity' is not a target of stereospike"):
        MvsecTask(RECORDING, net="stereospike", target="disparity")


def test_stereospike_recipe_is_the_official_train_py():
    from evstream.train.config import train_config

    config = train_config(dict(STEREOSPIKE_RECIPE))
    # train.py: Adam(lr=0.0002, weight_decay=0.0), batchsize 1, n_epochs 70, MultiStepLR([8, 42, 60], gamma=0.5)
    assert (config.optimizer, config.lr, config.weight_decay, config.batch_size, config.epochs) == (
        "adam", 2e-4, 0.0, 1, 70)
    assert (config.schedule, config.milestones, config.gamma) == ("multistep", (8, 42, 60), 0.5)


@pytest.mark.slow
def test_two_sample_overfit_drives_the_loss_near_zero():
    """Two scenes, a near box (3 events per bin) on a far background (0.5): the loss falls below 1.5 % of its start.

    The depth must be readable from the events. The former target, a row ramp over pure noise, asks a
    conv net for the image row (only padding knows it) and stalls at 2-5 % (base width 16 to 4). Binary
    spikes leave ~0.01 of log-depth pixel noise: ~0.95 % at step 200 here, 0.4 % for a ReLU copy.
    """
    gen = torch.Generator().manual_seed(0)
    h, w, steps = 16, 24, 200
    near = torch.zeros(2, 1, h, w, dtype=torch.bool)
    near[0, :, 3:11, 4:14] = True
    near[1, :, 6:15, 10:21] = True
    rate = torch.where(near, 3.0, 0.5).expand(3, 2, 2, h, w).contiguous()
    x = torch.poisson(rate, generator=gen).cumsum(0)  # the cumulative stack [T=3, B=2, 2, H, W]
    target = torch.where(near, 0.3, 0.8)
    torch.manual_seed(0)
    net = spiking_depth_unet(time_steps=3, base_channels=16, stages=2, bottleneck_blocks=1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = []
    for _ in range(steps):
        loss = e2depth_loss(net(x).depth, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    assert losses[0] > 0.05
    assert min(losses[-10:]) < 0.015 * losses[0]
