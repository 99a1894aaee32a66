"""VideoPrism stage 2 mechanisms: the decoders (Table 11), the shuffle and its canonical positions, target alignment
and normalisation, losses."""

import torch

from minimodels.videoprism.distill import (
    GlobalDecoder,
    LocalDecoder,
    cosine_distance,
    fill_masked,
    normalise_targets,
    random_permutations,
    standardise_tokens,
)


def test_fill_masked_keeps_seen_tokens_in_place_and_puts_mask_elsewhere():
    tokens = torch.arange(1, 2 * 4 * 3 + 1, dtype=torch.float).view(2, 4, 3)  # (B, n, d)
    seen = torch.tensor([[True, False, True, False], [False, False, False, True]])
    full = fill_masked(tokens, seen, torch.full((3,), -1.0))
    assert torch.equal(full[seen], tokens[seen]) and (full[~seen] == -1).all()


def test_random_permutations_are_permutations():
    perm = random_permutations(5, 12, torch.Generator().manual_seed(0))
    assert all(sorted(p.tolist()) == list(range(12)) for p in perm)
    assert not all(torch.equal(perm[0], p) for p in perm[1:])


def make_decoder():
    torch.manual_seed(0)
    return LocalDecoder(in_width=6, width=8, layers=1, heads=2, mlp_dim=16, out_width=5, num_tokens=2 * 4).eval()


SEEN = torch.tensor([[True, False, True, False, True, False, True, False]])  # (1, T·N): 2 frames of 4 positions


def test_shuffle_moves_content_but_not_positions():
    """With the identity permutation the output equals no shuffle; with a permutation, the positional embedding stays
    in canonical order: feeding x[π] + E is what the decoder computes, not (x + E)[π]."""
    dec = make_decoder()
    tokens = torch.randn(1, 8, 6)
    ident = torch.arange(8)[None]
    assert torch.allclose(dec(tokens, SEEN), dec(tokens, SEEN, permutation=ident))
    perm = random_permutations(1, 8, torch.Generator().manual_seed(3))
    x = fill_masked(dec.proj_in(tokens), SEEN, dec.mask_token)
    by_hand = dec.proj_out(dec.norm(dec.blocks(x[:, perm[0]] + dec.pos)))
    assert torch.allclose(dec(tokens, SEEN, permutation=perm), by_hand, atol=1e-6)
    wrong = dec.proj_out(dec.norm(dec.blocks((x + dec.pos)[:, perm[0]])))
    assert not torch.allclose(by_hand, wrong, atol=1e-4)


def test_decoder_positions_are_fixed_sinusoids_and_unseen_tokens_are_never_read():
    dec = make_decoder()
    assert "pos" not in dict(dec.named_parameters()) and dec.pos.shape == (8, 8)  # a buffer: MAE/VideoMAE's choice
    assert torch.allclose(dec.pos[0], torch.tensor([0.0] * 4 + [1.0] * 4))  # sin 0, cos 0
    tokens = torch.randn(1, 8, 6)
    garbage = tokens.clone()
    garbage[~SEEN] = 1e3
    assert torch.equal(dec(tokens, SEEN), dec(garbage, SEEN))


def test_outputs_stay_aligned_with_canonical_targets():
    """Slot i is scored against target i. A target permuted along with the inputs would give a different loss."""
    dec = make_decoder()
    tokens = torch.randn(1, 8, 6)
    perm = random_permutations(1, 8, torch.Generator().manual_seed(3))
    target = torch.randn(1, 8, 5)
    opt = torch.optim.Adam(dec.parameters(), lr=0.05)
    dec.train()
    for _ in range(150):  # learn to map this shuffled input onto the canonical targets
        loss = cosine_distance(dec(tokens, SEEN, permutation=perm), target).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = dec(tokens, SEEN, permutation=perm)
    assert cosine_distance(out, target).mean() < 0.05
    assert cosine_distance(out, target[:, perm[0]]).mean() > 0.3  # the permuted targets are not what it learned


def test_cosine_distance_on_known_vectors():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    b = torch.tensor([[3.0, 0.0], [0.0, -1.0], [1.0, -1.0]])
    assert torch.allclose(cosine_distance(a, b), torch.tensor([0.0, 2.0, 1.0]))


def test_global_decoder_ignores_token_order_and_unseen_tokens():
    """No positional embedding and attention pooling: the global embedding is permutation-invariant; tokens the
    student did not see are no key anywhere."""
    torch.manual_seed(0)
    dec = GlobalDecoder(in_width=6, width=8, layers=1, heads=2, mlp_dim=16, out_width=5).eval()
    tokens, seen = torch.randn(2, 7, 6), torch.ones(2, 7, dtype=torch.bool)
    assert dec(tokens, seen).shape == (2, 5)
    order = torch.randperm(7)
    assert torch.allclose(dec(tokens, seen), dec(tokens[:, order], seen), atol=1e-5)
    seen[0, [1, 4]] = False
    garbage = tokens.clone()
    garbage[~seen] = 1e3
    assert torch.allclose(dec(tokens, seen), dec(garbage, seen), atol=1e-6)
    assert not torch.allclose(dec(tokens, seen), dec(tokens, torch.ones_like(seen)), atol=1e-4)


def test_decoders_have_table_11s_shape_at_any_width():
    """Four layers between MLP projectors in and out (Linear, GELU, Linear), the global MAP at 4 × the width."""
    local = LocalDecoder(64, 32, 4, 4, 128, 64, num_tokens=16)
    glob = GlobalDecoder(64, 32, 4, 4, 128, 64)
    for dec in (local, glob):
        assert len(dec.blocks.blocks) == 4
        assert [type(m).__name__ for m in dec.proj_in] == ["Linear", "GELU", "Linear"]
        assert dec.proj_in[0].weight.shape == (32, 64) and dec.proj_out[0].weight.shape == (64, 32)
    assert glob.pooler.q_proj.weight.shape == (4 * 32, 32)


def test_fill_masked_keeps_the_tokens_dtype_under_mixed_precision():
    # under CUDA autocast the projected tokens are bf16 while [MASK] is an fp32 parameter
    tokens, seen = torch.randn(2, 8, 4).bfloat16(), torch.rand(2, 8) > 0.5
    full = fill_masked(tokens, seen, torch.zeros(4))
    assert full.dtype == torch.bfloat16 and full.shape == (2, 8, 4)


def test_target_normalisations():
    """"none": the tokens as they are (the paper); "layer": each token centred and scaled over its channels, no
    parameters (data2vec, vision); "instance": each channel standardised over the clip's tokens."""
    tokens = torch.randn(3, 10, 5) * 4 + 7
    assert torch.equal(normalise_targets(tokens, "none"), tokens)
    layer = normalise_targets(tokens, "layer")
    assert torch.allclose(layer.mean(-1), torch.zeros(3, 10), atol=1e-5)
    assert torch.allclose(layer.var(-1, unbiased=False), torch.ones(3, 10), atol=1e-3)
    instance = normalise_targets(tokens, "instance")
    assert torch.equal(instance, standardise_tokens(tokens))
    assert torch.allclose(instance.mean(1), torch.zeros(3, 5), atol=1e-5)
    assert torch.allclose(instance.var(1, unbiased=False), torch.ones(3, 5), atol=1e-3)
