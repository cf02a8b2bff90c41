"""Attention modules: shapes and equality with direct implementations of the formulas."""

import math

import pytest
import torch

from evstream.snn import (ASA, SDSA, TCSA, ChannelAttention, SpatialAttention, TemporalAttention, TimeAttention,
                          discard_frames)
from evstream.snn.lif import LIFParams, lif_multi_step

G = torch.Generator().manual_seed(10)


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def test_ta_hand_case_and_frame_scores():
    ta = TemporalAttention(4, reduction=2).double()
    with torch.no_grad():
        ta.excitation[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]]))
        ta.excitation[0].bias.copy_(torch.tensor([0.0, 0.5]))
        ta.excitation[2].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [2.0, 1.0]]))
        ta.excitation[2].bias.zero_()
    # one sample, C*H*W = 2 values per frame; frame means s = [1, 0, 3, 1]
    x = torch.tensor([[0.5, 1.5], [0.0, 0.0], [2.0, 4.0], [1.0, 1.0]], dtype=torch.float64).view(4, 1, 2, 1, 1)
    # hidden = relu([1, 3 - 1 + 0.5]) = [1, 2.5]; d = sigmoid([1, 2.5, -1, 4.5])
    d = torch.tensor([sigmoid(1.0), sigmoid(2.5), sigmoid(-1.0), sigmoid(4.5)], dtype=torch.float64)
    torch.testing.assert_close(ta.scores(x), d.view(4, 1))
    torch.testing.assert_close(ta(x), x * d.view(4, 1, 1, 1, 1))
    kept, keep = discard_frames(x, ta.scores(x), 0.5)
    assert keep.flatten().tolist() == [True, True, False, True]
    assert torch.equal(kept[2], torch.zeros_like(x[2])) and torch.equal(kept[0], x[0])
    assert TemporalAttention(16, 4)(torch.rand(16, 3, 10)).shape == (16, 3, 10)  # FC layers [T, B, F]
    with pytest.raises(ValueError):
        TemporalAttention(4, reduction=8)


def mlp(w1, w2, v):
    return w2 @ torch.relu(w1 @ v)


def test_ma_parts_equal_direct_formulas():
    t, b, c, h, w = 4, 2, 8, 5, 5
    x = torch.randn(t, b, c, h, w, generator=G, dtype=torch.float64)
    tcsa = TCSA(t, c, t_ratio=2, c_ratio=4).double()
    ta_w1, ta_w2 = tcsa.ta.mlp[0].weight, tcsa.ta.mlp[2].weight
    ca_w1, ca_w2 = tcsa.ca.mlp[0].weight, tcsa.ca.mlp[2].weight
    sa_w = tcsa.sa.conv.weight[0]
    with torch.no_grad():
        expected = torch.empty_like(x)
        for n in range(b):
            xs = x[:, n]                                       # [T, C, H, W]
            flat = xs.reshape(t, -1)
            a_t = torch.sigmoid(mlp(ta_w1, ta_w2, flat.mean(1)) + mlp(ta_w1, ta_w2, flat.amax(1)))
            z1 = a_t.view(t, 1, 1, 1) * xs
            per_c = z1.transpose(0, 1).reshape(c, -1)
            a_c = torch.sigmoid(mlp(ca_w1, ca_w2, per_c.mean(1)) + mlp(ca_w1, ca_w2, per_c.amax(1)))
            z2 = a_c.view(1, c, 1, 1) * z1
            maps = torch.stack([z2.reshape(-1, h, w).mean(0), z2.reshape(-1, h, w).amax(0)])
            padded = torch.nn.functional.pad(maps, (1, 1, 1, 1))
            conv = torch.zeros(h, w, dtype=torch.float64)
            for i in range(h):
                for j in range(w):
                    conv[i, j] = (padded[:, i:i + 3, j:j + 3] * sa_w).sum()
            expected[:, n] = torch.relu(torch.sigmoid(conv) * z2)
        torch.testing.assert_close(tcsa(x), expected)
        assert TimeAttention(t, 2).double()(x).shape == (t, b, 1, 1, 1)
        assert ChannelAttention(c, 4).double()(x).shape == (1, b, c, 1, 1)
        assert SpatialAttention(7).double()(x).shape == (1, b, 1, h, w)


def test_tcsa_ablation_and_gradcheck():
    x = torch.randn(4, 1, 4, 3, 3, generator=G, dtype=torch.float64, requires_grad=True)
    ca_only = TCSA(4, 4, 2, 2, temporal=False, spatial=False).double()
    torch.testing.assert_close(ca_only(x), torch.relu(ca_only.ca(x) * x))
    torch.autograd.gradcheck(TCSA(4, 4, 2, 2).double(), (x,), fast_mode=True)
    with pytest.raises(ValueError):
        TCSA(4, 4, temporal=False, channel=False, spatial=False)


def asa_reference(mod, x, intersection):
    """ASA written out on [N, T, C, H, W] with explicit loops for the top sets."""
    x = x.transpose(0, 1)
    n, t, c, h, w = x.shape
    avg, mx = x.mean(dim=(3, 4)), x.amax(dim=(3, 4))
    m = 0.5 * (avg + mx) + mod.a * avg + mod.b * mx                   # [N, T, C]
    m = mod.fc(m.transpose(1, 2)).transpose(1, 2)
    top_c = torch.zeros(n, t, c, dtype=x.dtype)
    top_t = torch.zeros(n, t, c, dtype=x.dtype)
    for i in range(n):
        for j in range(t):
            top_c[i, j, m[i, j].topk(int(c * mod.lam)).indices] = 1
        for k in range(c):
            top_t[i, m[i, :, k].topk(int(t * mod.lam)).indices, k] = 1
    imp = top_c * top_t if intersection else ((top_c + top_t) / 2 == 0.5).to(x.dtype)
    imp = imp[..., None, None]
    im, sub = (imp * x).reshape(n, t * c, h, w), ((1 - imp) * x).reshape(n, t * c, h, w)
    map_im = torch.sigmoid(mod.conv_im(torch.cat([im.mean(1, keepdim=True) / mod.lam, im.amax(1, keepdim=True)], 1)))
    map_sub = torch.sigmoid(mod.conv_sub(torch.cat([sub.mean(1, keepdim=True) / (1 - mod.lam),
                                                    sub.amax(1, keepdim=True)], 1)))
    out = (map_im * im + map_sub * sub).reshape(n, t, c, h, w)
    return out.transpose(0, 1)


@pytest.mark.parametrize("reduction, intersection", [(1, False), (2, True)])
def test_asa_equals_reference(reduction, intersection):
    x = torch.randn(6, 2, 8, 4, 4, generator=G, dtype=torch.float64)
    mod = ASA(6, 8, reduction=reduction, intersection=intersection).double()
    with torch.no_grad():
        y = mod(x)
        torch.testing.assert_close(y, asa_reference(mod, x, intersection))
    mask = mod.importance(x)
    assert mask.shape == (6, 2, 8, 1, 1) and set(mask.unique().tolist()) <= {0.0, 1.0}


def test_asa_mask_hand_case():
    # T = 2, C = 2, lam = 0.5: one top channel per step, one top step per channel.
    mod = ASA(2, 2).double()
    with torch.no_grad():
        mod.fc.weight.copy_(torch.eye(2))
        mod.a.zero_()
        mod.b.zero_()
    # M[t, c] = (avg + max) / 2 of constant maps = the constants below
    vals = torch.tensor([[3.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    x = vals.view(2, 1, 2, 1, 1).expand(2, 1, 2, 2, 2).clone()
    # top channel per step: c0 at t0 and t1; top step per channel: t0 for c0 and c1
    # exactly-one rule: (t0,c0) in both -> 0; (t1,c0) -> 1; (t0,c1) -> 1; (t1,c1) -> 0
    assert mod.importance(x).flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    mod.intersection = True
    assert mod.importance(x).flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


def official_asa(mod, x):
    """ASA-SNN's ``ASA.forward`` (``models/module/Attn.py``) transcribed on ``[N, T, C, H, W]`` with ``mod``'s weights.

    The top sets are marked as its ``get_im_subim_channels`` marks them, ``important[:, i, topk[:, i]] = 1``:
    the index ``topk[:, i]`` holds every sample's top entries and the leading ``:`` writes them into every sample.
    """
    n, t, c, h, w = x.shape
    avg, mx = x.mean(dim=(3, 4), keepdim=True), x.amax(dim=(3, 4), keepdim=True)  # AdaptiveAvg/MaxPool3d((None, 1, 1))
    m = 0.5 * (avg + mx) + mod.a * avg + mod.b * mx
    m = mod.fc(m.squeeze().transpose(1, 2)).transpose(1, 2)                    # [N, T, C]

    def im_subim(k, scores):                                                    # scores [N, rows, cols]
        topk = torch.topk(scores, dim=2, k=k).indices
        important = torch.zeros_like(scores)
        for i in range(scores.shape[1]):
            important[:, i, topk[:, i]] = 1
        return important

    important = (im_subim(int(c * mod.lam), m) + im_subim(int(t * mod.lam), m.transpose(1, 2)).transpose(1, 2)) / 2
    important = torch.where(important == 0.5, 1, 0)[..., None, None]
    im = (important * x).reshape(n, t * c, h, w)
    sub = ((1.0 - important) * x).reshape(n, t * c, h, w)
    im_map = torch.sigmoid(mod.conv_im(torch.cat([im.mean(1, keepdim=True) / mod.lam, im.amax(1, keepdim=True)], 1)))
    sub_map = torch.sigmoid(mod.conv_sub(torch.cat([sub.mean(1, keepdim=True) / (1 - mod.lam),
                                                    sub.amax(1, keepdim=True)], 1)))
    return (im_map * im + sub_map * sub).reshape(n, t, c, h, w)


@pytest.mark.parametrize("reduction", [1, 2])
def test_asa_batch_scope_equals_the_official_code(reduction):
    x = torch.randn(6, 3, 8, 4, 4, generator=G, dtype=torch.float64)          # [T, B, C, H, W], distinct samples
    mod = ASA(6, 8, reduction=reduction, topk_scope="batch").double()
    with torch.no_grad():
        official = official_asa(mod, x.transpose(0, 1)).transpose(0, 1)
        torch.testing.assert_close(mod(x), official)
        batch_mask = mod.importance(x)
        alone_batch = mod(x[:, 1:2])
        mod.topk_scope = "sample"
        assert not torch.equal(mod.importance(x), batch_mask)                  # the union changes the sets
        assert float((mod(x) - official).abs().max()) > 1e-3
        torch.testing.assert_close(mod(x[:, 1:2]), alone_batch)                # a sample alone is its own batch


def test_asa_batch_scope_hand_case():
    # T = 2, C = 2, lam = 0.5: one top channel per step, one top step per channel; M = the constants below
    mod = ASA(2, 2, topk_scope="batch").double()
    with torch.no_grad():
        mod.fc.weight.copy_(torch.eye(2))
        mod.a.zero_()
        mod.b.zero_()
    vals = torch.tensor([[[3.0, 1.0], [2.0, 1.0]], [[2.0, 0.0], [3.0, 0.0]]], dtype=torch.float64)  # [T, B, C]
    x = vals[..., None, None].expand(2, 2, 2, 2, 2).clone()
    # both samples: top channel c0 at t0 and t1. Top step of c0: t0 (sample 0), t1 (sample 1); of c1: t0 (both).
    # batch union: channel set {(t0,c0), (t1,c0)}, step set {(t0,c0), (t1,c0), (t0,c1)}; exactly one: (t0,c1)
    assert mod.importance(x)[..., 0, 0].tolist() == [[[0.0, 1.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]
    mod.topk_scope = "sample"
    # sample 0: steps {(t0,c0), (t0,c1)} -> (t0,c1), (t1,c0); sample 1: steps {(t1,c0), (t0,c1)} -> (t0,c0), (t0,c1)
    assert mod.importance(x)[..., 0, 0].tolist() == [[[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]]]
    with pytest.raises(ValueError, match="topk_scope"):
        ASA(2, 2, topk_scope="global")


def test_sdsa_equals_direct_formula():
    t, b, c, h, w, heads = 3, 2, 8, 3, 3, 2
    torch.manual_seed(0)  # the conv weights come from the global generator: fixed, whatever ran before
    mod = SDSA(c, heads).double().eval()
    x = torch.randn(t, b, c, h, w, generator=G, dtype=torch.float64) * 2 + 1
    lif = LIFParams(detach_reset=True)
    with torch.no_grad():
        for bn in (mod.q_bn, mod.k_bn, mod.v_bn, mod.proj_bn):
            bn.running_mean.uniform_(-0.2, 0.2, generator=G)
            bn.running_var.uniform_(0.5, 1.5, generator=G)
            bn.weight.fill_(4.0)
            bn.bias.fill_(0.5)
        s = lif_multi_step(x, None, lif)[0]
        q = lif_multi_step(mod.q_bn(mod.q_conv(s)), None, lif)[0]
        k = lif_multi_step(mod.k_bn(mod.k_conv(s)), None, lif)[0]
        v = lif_multi_step(mod.v_bn(mod.v_conv(s)), None, lif)[0]
        d = c // heads
        # A[t, b, head, j] = SN_0.5(sum_n K V) per channel j of the head
        kv_sum = (k * v).sum(dim=(3, 4))                               # [T, B, C]
        a = lif_multi_step(kv_sum, None, lif._replace(v_threshold=0.5))[0]
        y = q * a[..., None, None]
        expected = x + mod.proj_bn(mod.proj_conv(y))
        torch.testing.assert_close(mod(x), expected)
        assert 0 < float(a.mean()) < 1 and 0 < float(q.mean()) < 1
        assert d * heads == c
        assert SDSA(c, heads, dvs=True).double().eval()(x).shape == x.shape
    with pytest.raises(ValueError):
        SDSA(10, 4)


def test_gradcheck_ta_and_asa():
    x = torch.randn(4, 1, 4, 2, 2, generator=G, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(TemporalAttention(4, 2).double(), (x,), fast_mode=True)
    torch.autograd.gradcheck(ASA(4, 4, reduction=2).double(), (x,), fast_mode=True)


def test_membrane_placement_inside_the_cell():
    from evstream.snn import BICLabLIF

    csa = TCSA(1, 8, c_ratio=4, temporal=False).double()
    x = torch.rand(5, 2, 8, 4, 4, generator=G, dtype=torch.float64)
    out, state = BICLabLIF(attention=csa)(x)
    assert out.shape == x.shape and state.h.shape == x.shape[1:]
    h, expected = torch.zeros_like(x[0]), []
    with torch.no_grad():
        for xt in x:  # U <- ReLU(SA(CA(U) U) ...) before firing
            u = csa((h + xt).unsqueeze(0)).squeeze(0)
            o = (u >= 0.3).to(x.dtype)
            h = 0.3 * (1 - o) * u
            expected.append(o)
    torch.testing.assert_close(out.detach(), torch.stack(expected))
