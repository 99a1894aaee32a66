"""Attention: the readable and the fused paths agree; the soft cap, masks and empty rows behave as documented."""

import math

import pytest
import torch

from minimodels.nn.attention import MultiHeadAttention, Transformer, fused_attention, manual_attention


def qkv(B=2, H=2, L=6, hd=8, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, H, L, hd, generator=g) * scale for _ in range(3))


def reference(q, k, v, allowed=None, cap=None):
    """Plain softmax attention written independently of the module, with an explicit (Lq, Lk) or (B,1,Lq,Lk) mask."""
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if cap is not None:
        logits = cap * torch.tanh(logits / cap)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    w = torch.softmax(logits, -1)
    return torch.nan_to_num(w) @ v


KEY_MASK = torch.tensor([[True, True, False, True, False, True],
                         [False, True, True, True, True, False]])


@pytest.mark.parametrize("cap", [None, 50.0, 2.0])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_manual_and_fused_agree(cap, masked, causal):
    q, k, v = qkv()
    key_mask = KEY_MASK if masked else None
    a = manual_attention(q, k, v, key_mask=key_mask, logit_cap=cap, causal=causal)
    b = fused_attention(q, k, v, key_mask=key_mask, logit_cap=cap, causal=causal)
    assert a.shape == b.shape == q.shape
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cap", [None, 3.0])
def test_manual_matches_an_independent_reference(cap):
    q, k, v = qkv(scale=2.0)
    allowed = KEY_MASK[:, None, None, :] & torch.ones(6, 6, dtype=torch.bool).tril()
    out = manual_attention(q, k, v, key_mask=KEY_MASK, logit_cap=cap, causal=True)
    torch.testing.assert_close(out, reference(q, k, v, allowed, cap), atol=1e-5, rtol=1e-5)


def test_causal_output_ignores_the_future():
    q, k, v = qkv()
    out = manual_attention(q, k, v, causal=True)
    v2 = v.clone()
    v2[:, :, -1] += 100.0  # change only the last position
    k2 = k.clone()
    k2[:, :, -1] -= 100.0
    out2 = manual_attention(q, k2, v2, causal=True)
    torch.testing.assert_close(out[:, :, :-1], out2[:, :, :-1])
    assert not torch.allclose(out[:, :, -1], out2[:, :, -1])


def test_soft_cap_is_close_to_identity_for_small_logits():
    q, k, v = qkv(scale=0.5)  # logits of order 0.25·√8/√8 ≈ well below the cap
    for attend in (manual_attention, fused_attention):
        capped = attend(q, k, v, logit_cap=50.0)
        plain = attend(q, k, v, logit_cap=None)
        torch.testing.assert_close(capped, plain, atol=1e-4, rtol=1e-4)


def test_soft_cap_changes_results_for_large_logits():
    q, k, v = qkv(scale=30.0)  # logits in the hundreds
    for attend in (manual_attention, fused_attention):
        capped = attend(q, k, v, logit_cap=5.0)
        plain = attend(q, k, v, logit_cap=None)
        assert (capped - plain).abs().max() > 1e-2


def test_soft_cap_bounds_the_logits():
    """With |logits| ≤ c the softmax weights of a row differ by at most a factor e^{2c}: no key is starved."""
    cap = 2.0
    q, k, _ = qkv(B=1, H=1, L=5, hd=4, scale=50.0)  # raw logits ~ ±10³: uncapped softmax is one-hot
    L = q.shape[-2]
    v = torch.eye(L)[None, None]  # values = one-hot rows, so the output row *is* the attention weight row
    weights = manual_attention(q, k, v, logit_cap=cap)[0, 0]
    plain = manual_attention(q, k, v, logit_cap=None)[0, 0]
    assert torch.allclose(weights.sum(-1), torch.ones(L))
    assert weights.min() >= math.exp(-2 * cap) / L - 1e-6  # softmax of logits in [-c, c]
    assert (weights.max(-1).values / weights.min(-1).values).max() <= math.exp(2 * cap) * (1 + 1e-4)
    assert plain.min() < 1e-6 and (plain.max(-1).values > 1 - 1e-4).all()  # uncapped: one-hot rows
    assert (weights - plain).abs().max() > 0.1


@pytest.mark.parametrize("cap", [None, 50.0])
@pytest.mark.parametrize("attend", [manual_attention, fused_attention])
def test_rows_with_no_visible_key_are_zero(attend, cap):
    q, k, v = qkv()
    key_mask = KEY_MASK.clone()
    key_mask[1] = False  # batch 1 sees nothing
    out = attend(q, k, v, key_mask=key_mask, logit_cap=cap)
    assert torch.isfinite(out).all()
    assert (out[1] == 0).all()
    assert out[0].abs().sum() > 0
    # causal + a mask hiding key 0: the first query of every row has no visible key.
    key_mask = torch.ones(2, 6, dtype=torch.bool)
    key_mask[:, 0] = False
    out = attend(q, k, v, key_mask=key_mask, logit_cap=cap, causal=True)
    assert torch.isfinite(out).all() and (out[:, :, 0] == 0).all() and (out[:, :, 1:].abs().sum(-1) > 0).all()


@pytest.mark.parametrize("cap", [None, 50.0])
@pytest.mark.parametrize("attend", [manual_attention, fused_attention])
def test_a_masked_key_has_no_influence(attend, cap):
    q, k, v = qkv()
    out = attend(q, k, v, key_mask=KEY_MASK, logit_cap=cap)
    k2, v2 = k.clone(), v.clone()
    k2[0, :, 2] += 50.0  # key 2 is hidden in batch 0, key 0 in batch 1
    v2[0, :, 2] -= 1000.0
    v2[1, :, 0] += 1000.0
    torch.testing.assert_close(attend(q, k2, v2, key_mask=KEY_MASK, logit_cap=cap), out, atol=1e-6, rtol=0)
    # and a visible key does influence it (the test can tell)
    v2[0, :, 1] += 1.0
    assert not torch.allclose(attend(q, k2, v2, key_mask=KEY_MASK, logit_cap=cap), out, atol=1e-3)


def test_module_impls_agree_with_same_weights():
    torch.manual_seed(0)
    manual = Transformer(2, 16, 4, 32, logit_cap=50.0, impl="manual")
    fused = Transformer(2, 16, 4, 32, logit_cap=50.0, impl="fused")
    fused.load_state_dict(manual.state_dict())
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        torch.testing.assert_close(manual(x, key_mask=KEY_MASK), fused(x, key_mask=KEY_MASK), atol=1e-5, rtol=1e-5)



def test_auto_runs_the_manual_path_on_cpu(monkeypatch):
    from minimodels.nn import attention

    torch.manual_seed(0)
    auto = Transformer(1, 16, 4, 32, logit_cap=50.0, impl="auto")
    called = []
    monkeypatch.setattr(attention, "manual_attention", lambda *a, **k: called.append(1) or manual_attention(*a, **k))
    auto(torch.randn(2, 6, 16), key_mask=KEY_MASK)
    assert called == [1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mask", [None, KEY_MASK])
def test_auto_on_cuda_is_the_compiled_capped_kernel_and_agrees_with_manual_in_training(mask):
    torch.manual_seed(0)
    manual = Transformer(2, 64, 4, 128, logit_cap=50.0, impl="manual").cuda()
    auto = Transformer(2, 64, 4, 128, logit_cap=50.0, impl="auto").cuda()
    auto.load_state_dict(manual.state_dict())
    x = torch.randn(2, 6, 64, device="cuda", requires_grad=True)
    mask = None if mask is None else mask.cuda()
    outs, grads = [], []
    for model in (manual, auto):
        y = model(x, key_mask=mask)
        (x_grad,) = torch.autograd.grad(y.square().mean(), x)
        outs.append(y.detach()), grads.append(x_grad)
    torch.testing.assert_close(outs[1], outs[0], atol=2e-4, rtol=2e-4)
    torch.testing.assert_close(grads[1], grads[0], atol=2e-4, rtol=2e-4)

def test_attention_module_rejects_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="manual"):
        MultiHeadAttention(16, 2, impl="flash")


def test_fused_capped_attention_has_the_same_gradients_on_cpu():
    grads = []
    for attend in (manual_attention, fused_attention):
        q, k, v = (t.requires_grad_() for t in qkv())
        attend(q, k, v, key_mask=KEY_MASK, logit_cap=50.0).square().sum().backward()
        grads.append([q.grad, k.grad, v.grad])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_cross_attention_matches_softmax_by_hand():
    """Given a context, queries come from x and keys/values from the context through the same projections."""
    torch.manual_seed(0)
    D = 16
    attn = MultiHeadAttention(D, 1, logit_cap=None)
    x, c = torch.randn(2, 3, D), torch.randn(2, 5, D)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    w_q, w_k, w_v = attn.qkv.weight.split(D)
    b_q, b_k, b_v = attn.qkv.bias.split(D)
    q, k, v = x @ w_q.T + b_q, c @ w_k.T + b_k, c @ w_v.T + b_v
    logits = (q @ k.transpose(1, 2) / math.sqrt(D)).masked_fill(~mask[:, None, :], float("-inf"))
    expected = attn.out(logits.softmax(-1) @ v)
    assert torch.allclose(attn(x, key_mask=mask, context=c), expected, atol=1e-5)
    assert torch.allclose(attn(x, key_mask=torch.ones(2, 3, dtype=torch.bool), context=x), attn(x), atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_capped_attention_past_the_grid_limit_runs_in_batch_slices_with_their_own_masks(monkeypatch, masked):
    from minimodels.nn import attention

    q, k, v = qkv(B=5, H=2)
    key_mask = torch.cat([KEY_MASK, KEY_MASK, KEY_MASK[:1]]) if masked else None
    whole = fused_attention(q, k, v, key_mask=key_mask, logit_cap=2.0)
    calls = []
    flex = attention._flex_attention(False)
    counted = lambda *a, **kw: calls.append(1) or flex(*a, **kw)
    monkeypatch.setattr(attention, "_flex_attention", lambda compiled: counted)
    monkeypatch.setattr(attention, "MAX_GRID_Y", 4)  # 2 clips × 2 heads a call: slices of 2, 2 and 1
    sliced = fused_attention(q, k, v, key_mask=key_mask, logit_cap=2.0)
    assert len(calls) == 3
    torch.testing.assert_close(sliced, whole, atol=1e-6, rtol=1e-6)
