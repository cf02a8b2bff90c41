"""T-RevSNN: parameter counts against the official code, reversible gradients equal to stored-activation
gradients (float64), training memory flat in T, and the saved-tensor meter against a hand count."""

import copy

import pytest
import torch
import torch.nn.functional as F

from evstream.nets import build
from evstream.nets.trevsnn import Column, ScaledStdConv2d, TRevSNN, spike
from evstream.snn.memory import SavedTensorMeter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def official_parameters(channels, columns, classes, in_channels=2, k=3):
    """The official ``FullNet(channels, dvs=True, inter_supv=False)`` parameter count, from its layer table."""
    c0, c1, c2, c3 = channels
    std = lambda a, b, kk=1: a * b * kk * kk + 2 * b  # noqa: E731  ScaledStdConv2d: weight, bias, gain
    dw = lambda c: c * k * k + c  # noqa: E731  depthwise conv with bias
    level_blocks = sum(dw(c) + std(c, 4 * c) + std(4 * c, c) + dw(c) + c  # block 1 (own pw2/dw2, gamma)
                       + dw(c) + std(c, 4 * c) for c in channels)     # block 2 (pw2/dw2 shared)
    down = 9 * c0 * c1 + 2 * c1 + 9 * c1 * c2 + 2 * c2 + c2 * c3 + 2 * c3  # conv (no bias) + BN
    up = c1 * c0 + 2 * c0 + c2 * c1 + 2 * c1 + c3 * c2 + 2 * c2           # columns after the first
    column = std(in_channels, c0, 3) + level_blocks + down + sum(channels)  # stem, levels, alphas
    shared = sum(std(4 * c, c) + dw(c) for c in channels)
    classifier = std(c3, classes) + std(classes, classes)
    return columns * column + (columns - 1) * up + shared + classifier


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_parameter_counts_equal_the_official_code():
    # printed by the official models/spike_rev_reuse.py FullNet([32, 64, 128, 256], num_subnet=T, dvs=True,
    # inter_supv=False, num_classes=11): T = 4, 8 (tiny_dvs), 16
    official = {4: 5_267_045, 8: 10_220_645, 16: 20_127_845}
    for steps, n in official.items():
        assert official_parameters((32, 64, 128, 256), steps, 11) == n
    for steps in (4, 8):
        assert count(build("trevsnn_gesture", time_steps=steps)) == official[steps]
    assert count(build("trevsnn_cifar10dvs", channels=(8, 16, 24, 32), time_steps=3)) == official_parameters(
        (8, 16, 24, 32), 3, 10)


def small_net(steps, reversible=True):
    torch.manual_seed(0)
    net = TRevSNN(5, steps, channels=(4, 8, 8, 16), reversible=reversible).double()
    with torch.no_grad():  # weights large enough that every spike path is active
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0.0, 0.5)
        for column in net.columns:
            for a in column.alphas:
                a.uniform_(0.3, 0.9)
    return net


@pytest.mark.parametrize("steps", [1, 3])
def test_reversible_gradients_equal_stored_activation_gradients(steps):
    net = small_net(steps)
    ref = copy.deepcopy(net)
    ref.reversible = False
    x = torch.poisson(torch.full((steps, 3, 2, 8, 8), 0.8, dtype=torch.float64)).requires_grad_(True)
    labels = torch.tensor([0, 2, 4])
    F.cross_entropy(net(x).logits, labels).backward()
    reversible_x_grad = x.grad.clone()
    x.grad = None
    F.cross_entropy(ref(x).logits, labels).backward()
    torch.testing.assert_close(reversible_x_grad, x.grad, rtol=1e-10, atol=1e-12)
    active = 0
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        zero = torch.zeros_like(p)
        torch.testing.assert_close(p.grad if p.grad is not None else zero, q.grad if q.grad is not None else zero,
                                   rtol=1e-10, atol=1e-12, msg=name)
        active += q.grad is not None and bool(q.grad.abs().sum() > 0)
    assert active > len(list(ref.parameters())) // 2  # most gradients are non-zero: the comparison means something
    if steps > 1:
        assert any(float(a.grad.abs().sum()) > 0 for a in net.columns[1].alphas)
    # the recomputation leaves the BN running statistics as one stored-activation step does
    for b1, b2 in zip(net.buffers(), ref.buffers()):
        torch.testing.assert_close(b1, b2, rtol=1e-12, atol=0)


def test_float32_reversible_gradients_on_sparse_events():
    # official initialisation (zero biases): the empty pixels hold exact zeros on the edge of the spike's
    # gradient window; rebuilt through many columns they must keep their gradient mask
    torch.manual_seed(1)
    net = TRevSNN(5, 6, channels=(4, 8, 8, 16))
    with torch.no_grad():
        for column in net.columns:
            for a in column.alphas:
                a.uniform_(0.3, 0.9)
    ref = copy.deepcopy(net)
    ref.reversible = False
    x = torch.poisson(torch.full((6, 2, 2, 16, 16), 0.3))
    for model in (net, ref):
        F.cross_entropy(model(x).logits, torch.tensor([0, 3])).backward()
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        if q.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7, msg=name)


def test_reversible_reconstruction_undoes_the_step():
    column = Column(2, (4, 8, 8, 16), 3, first=False, shared=small_net(2).shared).double().eval()
    prev = [torch.randn(2, c, s, s, dtype=torch.float64) for c, s in ((4, 8), (8, 4), (8, 2), (16, 2))]
    x = torch.rand(2, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        cur = column.step(x, prev)
        rebuilt = [None] * 4
        for i in (3, 2, 1, 0):  # c_i^(t-1) = (c_i^(t) - F_i(c_{i-1}^(t), c_{i+1}^(t-1))) / alpha_i
            below = column.stem(x) if i == 0 else cur[i - 1]
            rebuilt[i] = (cur[i] - column.level(i, below, rebuilt[i + 1] if i < 3 else None)) / column.alphas[i]
    for a, b in zip(rebuilt, prev):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def training_peak(steps, reversible):
    net = TRevSNN(5, steps, channels=(4, 8, 8, 16), reversible=reversible)
    x = torch.poisson(torch.full((steps, 2, 2, 16, 16), 0.5))
    with SavedTensorMeter() as meter:
        F.cross_entropy(net(x).logits, torch.tensor([1, 3])).backward()
    assert meter.current_bytes == 0  # everything saved was released by the backward
    return meter.peak_bytes


def test_training_memory_is_flat_in_t():
    reversible = [training_peak(t, True) for t in (2, 4, 8)]
    bptt = [training_peak(t, False) for t in (2, 4, 8)]
    input_bytes = [t * 2 * 2 * 16 * 16 * 4 for t in (2, 4, 8)]  # the frames, saved once (the data itself)
    activations = [r - i for r, i in zip(reversible, input_bytes)]
    assert max(activations) == min(activations)  # one column's activations, whatever T
    assert bptt[2] > 3.5 * bptt[0] and bptt[2] > 6 * reversible[2]


def test_saved_tensor_meter_hand_count():
    a = torch.randn(1000, requires_grad=True)
    with SavedTensorMeter() as meter:
        b = a.exp()   # saves its result b (4000 bytes)
        c = b.sin()   # saves its input b: the same storage, not counted again
        d = c.cos()   # saves c (4000 bytes)
        assert meter.current_bytes == 8000
        d.sum().backward()
    assert meter.peak_bytes == 8000 and meter.current_bytes == 0
    del b, c, d


def test_spike_and_scaled_std_conv():
    x = torch.tensor([-0.3, 0.2, 0.6, 1.7], requires_grad=True)
    s = spike(x)
    s.sum().backward()
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0] and x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]
    conv = ScaledStdConv2d(3, 2, 3).double()
    with torch.no_grad():
        conv.gain.copy_(torch.tensor([2.0, 0.5], dtype=torch.float64).view(2, 1, 1, 1))
    w = conv.weight.flatten(1)
    standard = (w - w.mean(1, keepdim=True)) / torch.sqrt(w.var(1, unbiased=False, keepdim=True) + 1e-6)
    expected = (standard * conv.gain.view(2, 1) / 27 ** 0.5).view_as(conv.weight)
    x = torch.randn(1, 3, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(conv(x), F.conv2d(x, expected, conv.bias, padding=1))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="multiple of 4"):
        build("trevsnn_gesture", input_size=34)
    net = build("trevsnn_gesture", time_steps=2, channels=(4, 8, 8, 16))
    with pytest.raises(ValueError, match="T=2"):
        net(torch.zeros(3, 1, 2, 16, 16))
    with pytest.raises(ValueError, match="four levels"):
        TRevSNN(3, 2, channels=(4, 8, 16))
