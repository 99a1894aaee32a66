"""Stage 2's masks: BEVT's 2-D blocks over a wrapping span of the frames, its blocks in every frame, tube masks."""

import pytest
import torch

from minimodels.nn.masking import BEVT_SPAN, block_mask, masked_span, stage2_keep, tube_keep


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_tube_keep_ratio_and_indices():
    keep = tube_keep(4, 16, 0.5, gen())
    assert keep.shape == (4, 8) and all(row.tolist() == sorted(set(row.tolist())) for row in keep)
    assert tube_keep(2, 10, 0.75).shape == (2, 2)  # round(10 · 0.25) = 2
    with pytest.raises(ValueError, match="drop_ratio"):
        tube_keep(1, 16, 1.0)


def test_block_mask_reaches_its_count_with_rectangles_on_the_papers_grid():
    """On a 16 × 16 grid BEiT's rectangles reach round(0.65 · 256) = 166 patches, and they are blocks: far fewer
    edges between a masked and a visible patch than the same count of random positions has."""
    def boundary(masked):  # masked/visible neighbour pairs, across rows and across columns
        return int((masked[1:] != masked[:-1]).sum() + (masked[:, 1:] != masked[:, :-1]).sum())

    scattered = torch.zeros(256, dtype=torch.bool)
    scattered[torch.randperm(256, generator=gen())[:166]] = True
    for seed in range(8):
        masked = block_mask(16, 0.65, gen(seed))
        assert masked.sum() == 166 and boundary(masked) < 0.4 * boundary(scattered.view(16, 16))


def test_block_mask_never_exceeds_its_count_and_may_stop_short_on_a_tiny_grid():
    counts = [int(block_mask(4, 0.65, gen(seed)).sum()) for seed in range(50)]
    assert max(counts) <= round(0.65 * 16) and min(counts) >= 4  # at least one rectangle of 4 patches
    assert sum(c == 10 for c in counts) > 25  # most reach the count


def test_masked_span_wraps_around_the_clip():
    assert masked_span(8, 2, 3).tolist() == [False, False, True, True, True, False, False, False]
    assert masked_span(8, 6, 4).tolist() == [True, True, False, False, False, False, True, True]


@pytest.mark.parametrize("frames", [8, 16])
def test_bevt_masks_one_block_mask_over_a_span_of_half_to_three_quarters_of_the_frames(frames):
    keep = stage2_keep("bevt", 64, frames, 4, 0.65, gen())  # (B, T, N), True = visible
    assert keep.shape == (64, frames, 16) and keep.dtype == torch.bool
    lengths = set()
    for clip in keep:
        masked_frames = (~clip).any(dim=1)  # (T,)
        hidden = [frozenset((~clip[t]).nonzero().flatten().tolist()) for t in range(frames) if masked_frames[t]]
        assert len(set(hidden)) == 1  # the same 2-D mask in every masked frame
        n = int(masked_frames.sum())
        lengths.add(n)
        starts = [t for t in range(frames) if masked_frames[t] and not masked_frames[t - 1]]
        assert len(starts) == 1 and torch.equal(masked_frames, masked_span(frames, starts[0], n))  # one span
    assert min(lengths) >= int(BEVT_SPAN[0] * frames) and max(lengths) <= int(BEVT_SPAN[1] * frames)
    assert len(lengths) > 1
    # a masked patch is visible in the frames outside the span: no position is hidden in every frame
    assert keep.any(dim=1).all()


def test_block_tube_and_tube_hide_the_same_positions_in_every_frame():
    for kind in ("block-tube", "tube"):
        keep = stage2_keep(kind, 16, 8, 4, 0.65, gen())
        assert (keep == keep[:, :1]).all()
    tube = stage2_keep("tube", 16, 8, 4, 0.65, gen())
    assert ((~tube[:, 0]).sum(dim=1) == round(0.65 * 16)).all()  # tube masks are exact


def test_masks_are_reproducible_from_their_generator_and_check_their_arguments():
    assert torch.equal(stage2_keep("bevt", 4, 8, 4, 0.65, gen(3)), stage2_keep("bevt", 4, 8, 4, 0.65, gen(3)))
    assert not torch.equal(stage2_keep("bevt", 4, 8, 4, 0.65, gen(3)), stage2_keep("bevt", 4, 8, 4, 0.65, gen(4)))
    with pytest.raises(ValueError, match="mask ratio"):
        stage2_keep("bevt", 1, 8, 4, 1.0)
    with pytest.raises(ValueError, match="'bevt', 'block-tube' or 'tube'"):
        stage2_keep("random", 1, 8, 4, 0.65)
