"""VideoPrism stage 2 mechanisms: masks at 0.65, the shuffle and its canonical positions, target alignment, losses."""

import pytest
import torch

from minimodels.nn.masking import block_keep, tube_keep
from minimodels.videoprism.distill import GlobalDecoder, LocalDecoder, cosine_distance, fill_masked, random_permutations


@pytest.mark.parametrize("make", [lambda g: tube_keep(4, 16, 0.65, g), lambda g: block_keep(4, 4, 0.65, g)])
def test_stage2_masks_keep_the_ratio(make):
    keep = make(torch.Generator().manual_seed(0))
    assert keep.shape == (4, 16 - round(16 * 0.65))
    for row in keep:
        assert row.tolist() == sorted(set(row.tolist()))


def test_block_mask_is_made_of_blocks():
    """On a 16 × 16 grid, masked positions cluster: most masked cells have a masked neighbour (random ones: fewer)."""
    keep = block_keep(8, 16, 0.65, torch.Generator().manual_seed(1))
    for row in keep:
        masked = torch.ones(256, dtype=torch.bool)
        masked[row] = False
        m = masked.view(16, 16)
        neighbours = torch.zeros_like(m)
        neighbours[1:] |= m[:-1]
        neighbours[:-1] |= m[1:]
        neighbours[:, 1:] |= m[:, :-1]
        neighbours[:, :-1] |= m[:, 1:]
        assert (m & neighbours).sum() >= 0.95 * m.sum()
        assert masked.sum() == round(256 * 0.65)
    with pytest.raises(ValueError, match="mask_ratio"):
        block_keep(1, 4, 0.0)


def test_fill_masked_puts_content_at_its_canonical_position():
    T, N, d = 2, 4, 3
    visible = torch.tensor([[1, 3]])
    tokens = torch.arange(1, T * 2 * d + 1, dtype=torch.float).view(1, T * 2, d)  # frame-major, 2 visible per frame
    full = fill_masked(tokens, visible, torch.full((d,), -1.0), T, N).view(T, N, d)
    assert torch.equal(full[0, 1], tokens[0, 0]) and torch.equal(full[0, 3], tokens[0, 1])
    assert torch.equal(full[1, 1], tokens[0, 2]) and torch.equal(full[1, 3], tokens[0, 3])
    assert (full[:, [0, 2]] == -1).all()


def test_random_permutations_are_permutations():
    perm = random_permutations(5, 12, torch.Generator().manual_seed(0))
    assert all(sorted(p.tolist()) == list(range(12)) for p in perm)
    assert not all(torch.equal(perm[0], p) for p in perm[1:])


def make_decoder():
    torch.manual_seed(0)
    return LocalDecoder(in_width=6, width=8, layers=1, heads=2, mlp_dim=16, out_width=5, num_tokens=2 * 4).eval()


def test_shuffle_moves_content_but_not_positions():
    """With the identity permutation the output equals no shuffle; with a permutation, the positional embedding stays
    in canonical order: feeding x[π] + P is what the decoder computes, not (x + P)[π]."""
    dec = make_decoder()
    visible, tokens = torch.tensor([[0, 2]]), torch.randn(1, 4, 6)
    ident = torch.arange(8)[None]
    assert torch.allclose(dec(tokens, visible, 2, 4), dec(tokens, visible, 2, 4, permutation=ident))
    perm = random_permutations(1, 8, torch.Generator().manual_seed(3))
    x = fill_masked(dec.proj_in(tokens), visible, dec.mask_token, 2, 4)
    by_hand = dec.head(dec.norm(dec.blocks(x[:, perm[0]] + dec.pos)))
    assert torch.allclose(dec(tokens, visible, 2, 4, permutation=perm), by_hand, atol=1e-6)
    wrong = dec.head(dec.norm(dec.blocks((x + dec.pos)[:, perm[0]])))
    assert not torch.allclose(by_hand, wrong, atol=1e-4)


def test_outputs_stay_aligned_with_canonical_targets():
    """Slot i is scored against target i. A target permuted along with the inputs would give a different loss."""
    dec = make_decoder()
    visible, tokens = torch.tensor([[0, 2]]), torch.randn(1, 4, 6)
    perm = random_permutations(1, 8, torch.Generator().manual_seed(3))
    target = torch.randn(1, 8, 5)
    opt = torch.optim.Adam(dec.parameters(), lr=0.05)
    dec.train()
    for _ in range(150):  # learn to map this shuffled input onto the canonical targets
        loss = cosine_distance(dec(tokens, visible, 2, 4, permutation=perm), target).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = dec(tokens, visible, 2, 4, permutation=perm)
    assert cosine_distance(out, target).mean() < 0.05
    assert cosine_distance(out, target[:, perm[0]]).mean() > 0.3  # the permuted targets are not what it learned


def test_cosine_distance_on_known_vectors():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    b = torch.tensor([[3.0, 0.0], [0.0, -1.0], [1.0, -1.0]])
    assert torch.allclose(cosine_distance(a, b), torch.tensor([0.0, 2.0, 1.0]))


def test_global_decoder_ignores_token_order():
    """No positional embedding and attention pooling: the global embedding is permutation-invariant."""
    torch.manual_seed(0)
    dec = GlobalDecoder(in_width=6, width=8, layers=1, heads=2, mlp_dim=16, out_width=5).eval()
    tokens = torch.randn(2, 7, 6)
    assert dec(tokens).shape == (2, 5)
    assert torch.allclose(dec(tokens), dec(tokens[:, torch.randperm(7)]), atol=1e-5)


def test_fill_masked_keeps_the_tokens_dtype_under_mixed_precision():
    # under CUDA autocast the projected tokens are bf16 while [MASK] is an fp32 parameter
    tokens, visible = torch.randn(2, 2 * 3, 4).bfloat16(), torch.tensor([[0, 2, 3], [1, 2, 3]])
    full = fill_masked(tokens, visible, torch.zeros(4), 2, 4)
    assert full.dtype == torch.bfloat16 and full.shape == (2, 8, 4)
