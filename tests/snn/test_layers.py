"""Multi-step layers equal the torch layer applied to each time step."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from evstream.snn import (LIF, MembraneShortcut, SeqAvgPool2d, SeqBatchNorm1d, SeqBatchNorm2d, SeqConv2d, SeqFlatten,
                          SeqLinear, SeqMaxPool2d, SeqUpsample, Spiking)

X5 = torch.rand(3, 2, 4, 8, 8, generator=torch.Generator().manual_seed(8))


@pytest.mark.parametrize("layer, base", [
    (SeqConv2d(4, 6, 3, stride=2, padding=1), nn.Conv2d),
    (SeqMaxPool2d(2), nn.MaxPool2d),
    (SeqAvgPool2d(2), nn.AvgPool2d),
    (SeqBatchNorm2d(4).eval(), nn.BatchNorm2d),
])
def test_per_step_equality(layer, base):
    assert isinstance(layer, base)
    out = layer(X5)
    expected = torch.stack([base.forward(layer, xt) for xt in X5])
    torch.testing.assert_close(out, expected)


def test_batchnorm_statistics_over_time_and_batch():
    bn = SeqBatchNorm2d(4)
    out = bn(X5)
    flat = X5.flatten(0, 1)
    expected = (flat - flat.mean((0, 2, 3), keepdim=True)) / torch.sqrt(flat.var((0, 2, 3), unbiased=False,
                                                                                   keepdim=True) + bn.eps)
    torch.testing.assert_close(out, expected.unflatten(0, (3, 2)), rtol=1e-5, atol=1e-5)


def test_linear_bn1d_flatten():
    lin = SeqLinear(4 * 8 * 8, 5)
    y = lin(SeqFlatten()(X5))
    assert y.shape == (3, 2, 5)
    torch.testing.assert_close(y[1], F.linear(X5[1].flatten(1), lin.weight, lin.bias))
    assert SeqBatchNorm1d(5)(y).shape == (3, 2, 5)


def test_upsample_keeps_time():
    y = SeqUpsample(2.0)(X5)
    assert y.shape == (3, 2, 4, 16, 16)
    torch.testing.assert_close(y[2, 1, 3, 5, 7], X5[2, 1, 3, 2, 3])
    with pytest.raises(ValueError):
        SeqUpsample()(X5[0])


def test_membrane_shortcut_and_spiking_adapter():
    conv = SeqConv2d(4, 4, 3, padding=1, bias=False)
    block = MembraneShortcut(nn.Sequential(Spiking(LIF()), conv))
    y = block(X5)
    torch.testing.assert_close(y, X5 + conv(LIF()(X5)[0]))


def test_gradcheck_conv():
    conv = SeqConv2d(2, 3, 3, padding=1).double()
    x = torch.rand(2, 1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(conv, (x,), fast_mode=True)


def test_channels_last_passes_through_without_copies():
    # [T, B, C, H, W] whose samples are channels_last: flattening T and B stays a view and the
    # conv / BN / pool / LIF outputs keep the layout (what evstream-opt in bench_snn relies on).
    x = X5.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, X5.shape[:2])
    assert x.flatten(0, 1).data_ptr() == x.data_ptr() and x.flatten(0, 1).is_contiguous(
        memory_format=torch.channels_last)
    net = nn.Sequential(SeqConv2d(4, 6, 3, padding=1), SeqBatchNorm2d(6), Spiking(LIF()), SeqMaxPool2d(2)).eval()
    with torch.no_grad():
        ref = net(X5)
        y = net.to(memory_format=torch.channels_last)(x)
    assert y.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, ref)
