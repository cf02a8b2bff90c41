"""StereoSpike against the official code (``urancon/StereoSpike``), transcribed by hand in this file.

- the official layer table (``network/SNN_models.py`` ``StereoSpike.__init__``, ``network/blocks.py``):
  module names, state-dict keys and shapes, kernels, strides, padding, biases, 18,148,708 parameters;
- the official decoder sizes (``up_size`` constants, upsampled to ``up_size + k - 1``) at 346x260;
- the official forward (spikingjelly ``IFNode``s as the official code uses them) and the official
  ``Total_Loss`` (``network/loss.py``) on a small input: outputs, loss and every weight's gradient.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from evstream.nets.depth import StereoSpike, stereospike
from evstream.nets.depth.stereospike import IF, UpConv, from_official_state_dict
from evstream.train.depth_losses import stereospike_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OFFICIAL_PARAMETERS = 18_148_708

# (official module, path of its conv inside it, in, out, kernel, stride, padding, bias, up_size)
OFFICIAL_CONVS = [
    ("bottom", "0", 4, 32, 5, 1, 2, False, None),
    ("conv1", "0", 32, 64, 5, 2, 2, False, None),
    ("conv2", "0", 64, 128, 5, 2, 2, False, None),
    ("conv3", "0", 128, 256, 5, 2, 2, False, None),
    ("conv4", "0", 256, 512, 5, 2, 2, False, None),
    ("bottleneck.0.conv1", "0", 512, 512, 3, 1, 1, False, None),
    ("bottleneck.0.conv2", "0", 512, 512, 3, 1, 1, False, None),
    ("bottleneck.1.conv1", "0", 512, 512, 3, 1, 1, False, None),
    ("bottleneck.1.conv2", "0", 512, 512, 3, 1, 1, False, None),
    ("deconv4", "0.up.1", 512, 256, 5, 1, 0, False, (33, 44)),
    ("deconv3", "0.up.1", 256, 128, 5, 1, 0, False, (65, 87)),
    ("deconv2", "0.up.1", 128, 64, 5, 1, 0, False, (130, 173)),
    ("deconv1", "0.up.1", 64, 32, 5, 1, 0, False, (260, 346)),
    ("predict_depth4", "0.up.1", 256, 1, 3, 1, 0, True, (260, 346)),
    ("predict_depth3", "0.up.1", 128, 1, 3, 1, 0, True, (260, 346)),
    ("predict_depth2", "0.up.1", 64, 1, 3, 1, 0, True, (260, 346)),
    ("predict_depth1", "0.up.1", 32, 1, 3, 1, 0, True, (260, 346)),
]


def official_state_dict(gain: float = 0.0, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict under the official keys and shapes; weights N(0, gain^2 / fan_in) (zeros for gain 0)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for module, inner, c_in, c_out, k, *_, bias, _ in OFFICIAL_CONVS:
        weight = torch.randn(c_out, c_in, k, k, generator=gen)
        state[f"{module}.{inner}.weight"] = weight * gain / math.sqrt(c_in * k * k)
        if bias:
            state[f"{module}.{inner}.bias"] = torch.randn(c_out, generator=gen) * 0.5
    return state


def test_layer_table_equals_the_official_one():
    net = stereospike()
    official = official_state_dict()
    assert sum(v.numel() for v in official.values()) == OFFICIAL_PARAMETERS
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL_PARAMETERS
    converted = from_official_state_dict(official)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in net.state_dict().items()}
    net.load_state_dict(converted)  # strict: the same keys, nothing else in either
    for module, _, c_in, c_out, k, stride, padding, bias, up_size in OFFICIAL_CONVS:
        layer = net.get_submodule(module)
        conv = layer.conv
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (c_in, c_out, (k, k)), module
        assert (conv.stride, conv.padding) == ((stride, stride), (padding, padding)), module
        assert (conv.bias is not None) == bias, module
        assert isinstance(layer, UpConv) == (up_size is not None), module
        # IF after every conv but the prediction layers'; arctan (train.py) except SEWResBlock's default sigmoid
        expected = None if module.startswith("predict") else "sigmoid" if module.startswith("bottleneck") else "atan"
        assert (None if layer.spike is None else layer.spike.params.surrogate) == expected, module
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    with pytest.raises(ValueError, match="'Ineurons.v' is not a weight of the official StereoSpike"):
        from_official_state_dict({"Ineurons.v": torch.zeros(1)})


def test_decoder_sizes_are_the_official_constants_at_346x260():
    """Each official NNConvUpsampling upsamples to up_size + k - 1 and convolves back to up_size."""
    net = StereoSpike(in_channels=4, channels=(2, 2, 2, 2, 2))
    seen = {}
    for module, *_, up_size in OFFICIAL_CONVS:
        if up_size is not None:
            net.get_submodule(module).conv.register_forward_hook(
                lambda m, inputs, out, name=module: seen.__setitem__(name, (inputs[0].shape[-2:], out.shape[-2:])))
    with torch.no_grad():
        net(torch.zeros(1, 1, 4, 260, 346))
    for module, *_, k, _, _, _, up_size in OFFICIAL_CONVS:
        if up_size is not None:
            assert seen[module] == ((up_size[0] + k - 1, up_size[1] + k - 1), up_size), module


def official_forward(w: dict[str, torch.Tensor], x: torch.Tensor, neuron, surrogate) -> list[torch.Tensor]:
    """``StereoSpike.forward`` of the official code on official weights ``w``; ``x`` [B, frames, 4, H, W].

    The official ``up_size`` constants are the skips' sizes at 346x260 (previous test); here, at
    another input size, they are the skips' sizes of that input.
    """
    def if_node(surrogate_function):  # a fresh node: reset_net before every sample
        return neuron.IFNode(v_threshold=1.0, v_reset=0.0, surrogate_function=surrogate_function, detach_reset=True)

    def conv_if(name, inp, stride):
        return if_node(surrogate.ATan())(F.conv2d(inp, w[f"{name}.0.weight"], stride=stride, padding=2) * 1.0)

    def sew(name, inp):
        out = if_node(surrogate.Sigmoid())(F.conv2d(inp, w[f"{name}.conv1.0.weight"], padding=1) * 1.0)
        out = if_node(surrogate.Sigmoid())(F.conv2d(out, w[f"{name}.conv2.0.weight"], padding=1) * 1.0)
        out += inp
        return out

    def nn_conv_upsampling(name, inp, up_size):
        weight, bias = w[f"{name}.0.up.1.weight"], w.get(f"{name}.0.up.1.bias")
        k = weight.shape[-1]
        up = F.interpolate(inp, size=(up_size[0] + k - 1, up_size[1] + k - 1), mode="nearest")
        return F.conv2d(up, weight, bias, stride=1, padding=0) * 1.0

    frame = x[:, 0, :, :, :]
    out_bottom = conv_if("bottom", frame, 1)
    out_conv1 = conv_if("conv1", out_bottom, 2)
    out_conv2 = conv_if("conv2", out_conv1, 2)
    out_conv3 = conv_if("conv3", out_conv2, 2)
    out_conv4 = conv_if("conv4", out_conv3, 2)
    out_rconv = sew("bottleneck.1", sew("bottleneck.0", out_conv4))
    full = frame.shape[-2:]
    ineurons = neuron.IFNode(v_threshold=float("inf"), v_reset=0.0, surrogate_function=surrogate.ATan())

    out_add4 = if_node(surrogate.ATan())(nn_conv_upsampling("deconv4", out_rconv, out_conv3.shape[-2:])) + out_conv3
    ineurons(nn_conv_upsampling("predict_depth4", out_add4, full))
    depth4 = ineurons.v
    out_add3 = if_node(surrogate.ATan())(nn_conv_upsampling("deconv3", out_add4, out_conv2.shape[-2:])) + out_conv2
    ineurons(nn_conv_upsampling("predict_depth3", out_add3, full))
    depth3 = ineurons.v
    out_add2 = if_node(surrogate.ATan())(nn_conv_upsampling("deconv2", out_add3, out_conv1.shape[-2:])) + out_conv1
    ineurons(nn_conv_upsampling("predict_depth2", out_add2, full))
    depth2 = ineurons.v
    out_add1 = if_node(surrogate.ATan())(nn_conv_upsampling("deconv1", out_add2, out_bottom.shape[-2:])) + out_bottom
    ineurons(nn_conv_upsampling("predict_depth1", out_add1, full))
    depth1 = ineurons.v
    return [depth1, depth2, depth3, depth4]


def official_total_loss(predicted: list[torch.Tensor], groundtruth: torch.Tensor) -> torch.Tensor:
    """``Total_Loss(alpha=0.5, scale_weights=(1., 1., 1., 1.), penalize_spikes=False)`` of ``network/loss.py``."""
    def scale_invariant(pred, gt):
        mask = ~torch.isnan(gt)
        n = torch.count_nonzero(mask)
        res = pred - gt
        res[mask == False] = 0  # noqa: E712 (the official line)
        return 1 / n * torch.sum(torch.pow(res[mask], 2)) - 1 / (n ** 2) * torch.pow(torch.sum(res[mask]), 2)

    def gradient_matching(pred, gt):
        mask = ~torch.isnan(gt)
        n = torch.count_nonzero(mask)
        res = pred - gt
        res[mask == False] = 0  # noqa: E712
        sobel_x = torch.Tensor([[1, 0, -1], [2, 0, -2], [1, 0, -1]]).view((1, 1, 3, 3))
        sobel_y = torch.Tensor([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]).view((1, 1, 3, 3))
        grad_x = F.conv2d(res, sobel_x, stride=1, padding=1) * mask
        grad_y = F.conv2d(res, sobel_y, stride=1, padding=1) * mask
        return 1 / n * torch.sum(torch.abs(grad_x[mask]) + torch.abs(grad_y[mask]))

    def rescaled(gt, pred):
        return F.interpolate(gt, size=pred.shape[-2:], mode="bilinear", align_corners=False)

    si = sum(scale_invariant(p, rescaled(groundtruth, p)) for p in predicted)
    grad = sum(gradient_matching(p, rescaled(groundtruth, p)) for p in predicted)
    return si + 0.5 * grad


@pytest.mark.slow
def test_forward_loss_and_gradients_equal_the_official_code():
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")
    official = {k: v.requires_grad_() for k, v in official_state_dict(gain=4.0, seed=3).items()}
    net = stereospike()
    net.load_state_dict(from_official_state_dict({k: v.detach() for k, v in official.items()}))
    gen = torch.Generator().manual_seed(4)
    x = torch.poisson(torch.full((2, 1, 4, 40, 56), 1.5), generator=gen)  # histogram counts [B, frames, 4, H, W]
    depth = 1.0 + 9.0 * torch.rand(2, 1, 40, 56, generator=gen)  # metres, with holes
    depth[torch.rand(depth.shape, generator=gen) < 0.2] = float("nan")

    rates = []
    for m in net.modules():
        if isinstance(m, IF):
            m.register_forward_hook(lambda m, inputs, out: rates.append(out.mean().item()))
    ours = net(x.transpose(0, 1))  # [T=1, B, 4, H, W]
    theirs = official_forward(official, x, neuron, surrogate)
    assert len(rates) == 13 and all(0.01 < r < 0.9 for r in rates), rates  # every layer spikes, none saturates
    for mine, ref in zip(ours.scales, theirs[::-1]):  # ours coarse to fine, official fine to coarse
        torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-5)
    assert ours.depth.std() > 0.1  # a non-trivial depth map

    loss, official_loss = stereospike_loss(ours.scales, depth), official_total_loss(theirs, depth)
    torch.testing.assert_close(loss, official_loss, rtol=1e-5, atol=1e-5)
    loss.backward()
    official_loss.backward()
    grads = from_official_state_dict({k: v.grad for k, v in official.items()})
    for name, param in net.named_parameters():
        scale = grads[name].abs().max().item()  # float32 sums in another order: ~1e-6 of the largest gradient
        assert scale > 0, name
        torch.testing.assert_close(param.grad, grads[name], rtol=1e-4, atol=1e-5 * scale, msg=name)
