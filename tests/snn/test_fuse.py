"""fuse_conv_bn: folded networks give the same outputs as the original in eval mode."""

import pytest
import torch
from torch import nn

from evstream.snn import LIF, SeqBatchNorm1d, SeqBatchNorm2d, SeqConv2d, SeqLinear, SeqMaxPool2d, Spiking
from evstream.snn.fuse import fuse_conv_bn


def _randomise_bn(net: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    return net.eval()


def _conv_net(bias: bool, affine: bool = True) -> nn.Sequential:
    torch.manual_seed(3)
    return _randomise_bn(nn.Sequential(
        SeqConv2d(2, 8, 3, padding=1, bias=bias), SeqBatchNorm2d(8, affine=affine), Spiking(LIF(v_reset=None)),
        SeqMaxPool2d(2),
        nn.Sequential(SeqConv2d(8, 16, 3, stride=2, padding=1, groups=2, bias=bias), SeqBatchNorm2d(16)),
        SeqConv2d(16, 4, 1)))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_fused_conv_net_equals_original(bias, affine):
    net = _conv_net(bias, affine)
    x = torch.rand(3, 2, 2, 16, 16, generator=torch.Generator().manual_seed(4)) * 2
    with torch.no_grad():
        ref = net[:2](x)  # pre-spike membrane input: real-valued, so 1e-5 is a real bound
        out_net = fuse_conv_bn(net)
        out = out_net[:2](x)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out_net(x), net(x), rtol=1e-5, atol=1e-5)
    assert isinstance(out_net[1], nn.Identity) and isinstance(out_net[4][1], nn.Identity)
    assert isinstance(out_net[0], SeqConv2d) and out_net[0].bias is not None
    assert isinstance(net[1], SeqBatchNorm2d)  # not in place by default


def test_linear_bn1d_and_explicit_pairs():
    class Block(nn.Module):  # conv and BN as attributes: fused only when named
        def __init__(self):
            super().__init__()
            self.conv, self.bn = SeqConv2d(2, 4, 3, padding=1, bias=False), SeqBatchNorm2d(4)
            self.head = nn.Sequential(SeqLinear(4 * 8 * 8, 6), SeqBatchNorm1d(6))

        def forward(self, x):
            return self.head(self.bn(self.conv(x)).flatten(2))

    torch.manual_seed(5)
    net = _randomise_bn(Block())
    x = torch.randn(2, 3, 2, 8, 8)
    with torch.no_grad():
        ref = net(x)
        auto = fuse_conv_bn(net)
        assert isinstance(auto.bn, SeqBatchNorm2d) and isinstance(auto.head[1], nn.Identity)
        both = fuse_conv_bn(net, [("conv", "bn")])
        assert isinstance(both.bn, nn.Identity)
        torch.testing.assert_close(auto(x), ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(both(x), ref, rtol=1e-5, atol=1e-5)
    same = fuse_conv_bn(net, [("conv", "bn")], inplace=True)
    assert same is net and isinstance(net.bn, nn.Identity)


def test_errors_and_untouched_cases():
    net = _conv_net(False).train()
    with pytest.raises(ValueError, match="eval"):
        fuse_conv_bn(net)
    with pytest.raises(ValueError):
        fuse_conv_bn(_conv_net(False), [("0", "nope")])
    with pytest.raises(TypeError):
        fuse_conv_bn(_conv_net(False), [("2", "1")])
    with pytest.raises(TypeError):
        fuse_conv_bn("net")
    no_stats = nn.Sequential(SeqConv2d(2, 4, 1), SeqBatchNorm2d(4, track_running_stats=False)).eval()
    assert isinstance(fuse_conv_bn(no_stats)[1], SeqBatchNorm2d)  # batch statistics: not foldable
    mismatch = nn.Sequential(SeqConv2d(2, 4, 1), SeqMaxPool2d(2), SeqBatchNorm2d(4)).eval()
    assert isinstance(fuse_conv_bn(mismatch)[2], SeqBatchNorm2d)  # not adjacent
