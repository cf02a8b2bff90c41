"""Depth networks: shapes on odd MVSEC sizes, StereoSpike's neurons and output pool, pinned outputs, errors."""

from __future__ import annotations

import pytest
import torch

from evstream.nets.depth import (DEPTH_NETS, DepthPrediction, SpikingDepthUNet, StereoSpike, spiking_depth_unet,
                                 stereospike)
from evstream.nets.depth.blocks import resize_to
from evstream.nets.depth.stereospike import IF


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_table_names_builders():
    assert DEPTH_NETS == {"spiking_depth_unet": spiking_depth_unet, "stereospike": stereospike}
    assert isinstance(DEPTH_NETS["spiking_depth_unet"](base_channels=4, stages=2), SpikingDepthUNet)
    assert isinstance(DEPTH_NETS["stereospike"](base_channels=4), StereoSpike)


def test_unet_shapes_on_odd_sizes_and_range():
    torch.manual_seed(0)
    net = spiking_depth_unet(time_steps=3, base_channels=4, stages=3, bottleneck_blocks=1).eval()
    x = torch.rand(3, 2, 2, 65, 87) * 4
    with torch.no_grad():
        out = net(x)
    assert isinstance(out, DepthPrediction)
    assert out.depth.shape == (2, 1, 65, 87) and out.scales == (out.depth,)
    assert ((out.depth > 0) & (out.depth < 1)).all()
    assert [m.channels for m in net.modules() if hasattr(m, "channels") and isinstance(m.channels, tuple)] == [
        (4, 8, 16, 32)]


def test_unet_input_stride_scores_at_full_resolution():
    """Stride 2 runs the net on half the rows and columns and resizes its map back (bilinear), so the
    output keeps the input's odd size."""
    torch.manual_seed(0)
    net = spiking_depth_unet(time_steps=2, base_channels=4, stages=2, bottleneck_blocks=1, input_stride=2).eval()
    assert "input_stride=2" in repr(net)
    head = []
    net.head.register_forward_hook(lambda module, inputs, output: head.append(output))
    with torch.no_grad():
        depth = net(torch.rand(2, 1, 2, 33, 47) * 4).depth
    coarse = torch.sigmoid(head[0].mean(0))
    assert depth.shape == (1, 1, 33, 47) and coarse.shape == (1, 1, 17, 24)
    resized = torch.nn.functional.interpolate(coarse, size=(33, 47), mode="bilinear", align_corners=False)
    assert torch.allclose(depth, resized)
    with pytest.raises(ValueError, match="input_stride must be >= 1"):
        spiking_depth_unet(input_stride=0)


def test_unet_pinned_output():
    torch.manual_seed(0)
    net = spiking_depth_unet(time_steps=2, base_channels=4, stages=2, bottleneck_blocks=1).eval()
    torch.manual_seed(1)
    x = torch.rand(2, 1, 2, 16, 24) * 3
    with torch.no_grad():
        depth = net(x).depth
    assert depth.mean().item() == pytest.approx(0.48516, abs=1e-4)
    assert depth.std().item() == pytest.approx(0.00383, abs=1e-4)
    assert depth[0, 0, 5, 7].item() == pytest.approx(0.48543, abs=1e-4)


def test_unet_single_step_turns_temporal_attention_off():
    net = spiking_depth_unet(time_steps=1, base_channels=4, stages=2)
    assert all(m.ta is None for m in net.modules() if type(m).__name__ == "TCSA")
    assert net(torch.rand(1, 1, 2, 16, 16)).depth.shape == (1, 1, 16, 16)


def test_stateless_if_fires_from_reset_every_step():
    x = torch.tensor([[[0.5, 1.0, 2.5]], [[0.6, 0.2, 1.2]]])  # [T=2, B=1, 3]
    assert IF()(x).tolist() == [[[0.0, 1.0, 1.0]], [[0.0, 0.0, 1.0]]]  # 0.5 + 0.6 would fire if it integrated


def test_stereospike_output_pool_integrates_the_scales():
    torch.manual_seed(0)
    net = stereospike(in_channels=4, base_channels=4)
    out = net(torch.rand(1, 2, 4, 65, 87) * 3)
    assert len(out.scales) == 4 and out.depth is out.scales[-1]
    assert all(s.shape == (2, 1, 65, 87) for s in out.scales)
    # with the prediction weights zeroed, each scale's potential is the sum of the biases so far (coarse to fine)
    heads = [net.predict_depth4, net.predict_depth3, net.predict_depth2, net.predict_depth1]
    with torch.no_grad():
        for head, bias in zip(heads, (0.5, 0.25, -1.0, 2.0)):
            head.conv.weight.zero_()
            head.conv.bias.fill_(bias)
        flat = net(torch.rand(1, 1, 4, 32, 32) * 3)
    assert [s.unique().tolist() for s in flat.scales] == [[0.5], [0.75], [-0.25], [1.75]]
    assert [name for name, m in net.named_modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None] == [
        "predict_depth4.conv", "predict_depth3.conv", "predict_depth2.conv", "predict_depth1.conv"]
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())


def test_stereospike_steps_are_independent_samples():
    """Stateless neurons: T steps give the mean of T one-step predictions."""
    torch.manual_seed(0)
    net = stereospike(in_channels=2, base_channels=4, kernel_size=3)
    x = torch.rand(3, 2, 2, 24, 32) * 4
    with torch.no_grad():
        out = net(x)
        single = [net(x[t:t + 1]) for t in range(3)]
    for k in range(4):
        torch.testing.assert_close(out.scales[k], sum(s.scales[k] for s in single) / 3)


def test_stereospike_gradients_reach_the_bottom_layer():
    torch.manual_seed(0)
    net = stereospike(in_channels=2, base_channels=4)
    out = net(torch.rand(1, 1, 2, 32, 48) * 4)
    out.depth.square().mean().backward()
    assert net.bottom.conv.weight.grad.abs().sum() > 0
    assert net.predict_depth1.conv.bias.grad is not None


def test_resize_to_and_input_errors():
    x = torch.arange(4.0).view(1, 1, 1, 2, 2)
    assert resize_to(x, (3, 3))[0, 0, 0].tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [2.0, 2.0, 3.0]]
    with pytest.raises(ValueError, match="T=3"):
        spiking_depth_unet(time_steps=3, base_channels=4, stages=2)(torch.rand(2, 1, 2, 16, 16))
    with pytest.raises(ValueError, match="4, H, W"):
        stereospike()(torch.rand(1, 1, 2, 16, 16))
    with pytest.raises(ValueError, match="5 widths"):
        StereoSpike(in_channels=4, channels=(4, 8), kernel_size=3)
    with pytest.raises(ValueError, match="stem"):
        SpikingDepthUNet(in_channels=2, time_steps=1, channels=(4,), blocks=1, bottleneck_blocks=1, attention=True)


def test_live_depth_from_a_checkpoint(tmp_path):
    import numpy as np

    from evstream import EVENT_DTYPE
    from evstream.nets.depth.live import CHECKPOINT, load_depth, save_depth
    from evstream.outputs import DepthMap
    from evstream.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=f"{CHECKPOINT}: no such checkpoint file"):
        load_depth(tmp_path / CHECKPOINT)
    torch.manual_seed(0)
    kwargs = {"time_steps": 2, "base_channels": 4, "stages": 2}
    net = spiking_depth_unet(**kwargs)
    save_depth(tmp_path / CHECKPOINT, net, builder="spiking_depth_unet", kwargs=kwargs,
               representation={"kind": "cumulative", "n_time_bins": 2, "window_us": 50_000,
                               "sensor_size": [346, 260, 2]}, d_max=40.0, alpha=3.70378, metrics={})
    live, window_us = load_depth(tmp_path / CHECKPOINT)
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = [1, 2, 3], [4, 5, 6], [10, 20_000, 60_000], [1, 0, 1]
    x = live.representation(events)
    assert window_us == 50_000 and x.shape == (2, 2, 260, 346)
    assert x[-1].sum() == 2  # the window [10_001, 60_001) holds the last two events
    out = live(events)
    assert isinstance(out, DepthMap) and out.depth_m.shape == (260, 346) and out.d_max == 40.0
    assert np.all((out.depth_m > 40.0 * np.exp(-3.70378)) & (out.depth_m < 40.0))
    assert 0.0 <= out.firing_rate <= 1.0
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(x).unsqueeze(1)).depth[0, 0].double().numpy()
    np.testing.assert_allclose(out.depth_m, 40.0 * np.exp(3.70378 * (expected - 1.0)), rtol=1e-5)
