"""Which video tokens a model gets to see.

Stage 1 drops tokens to save memory (FLIP-style, ratio 0.5; arXiv 2402.13217, §2.3.1 and App. C.1) with **tube**
masks: the same spatial positions in every frame, so a factorized encoder stays dense, (B·T, M, D) spatially and
(B·M, T, D) temporally (``tube_keep``, kept indices).

Stage 2 masks with **BEVT's** generator (§2.3.2 and Fig. 6, citing Wang et al. 2022, BEVT; its code:
``mmaction/datasets/pipelines/mask_generator.py``, ``MaskedPositionGenerate``, built on BEiT's ``MaskingGenerator``):

1. a 2-D mask of the frame's grid made of rectangles: each one's area drawn uniformly between ``min_block`` patches
   and the patches still to mask, its aspect ratio log-uniformly in [0.3, 1/0.3]; a rectangle is added where it
   masks at least one new patch and no more than are still wanted (ten tries each), until ``round(ratio·N)``
   patches are masked or no rectangle fits;
2. laid over a random contiguous span of 50–75 % of the frames, starting at a random frame and wrapping around the
   end of the clip; the other frames stay whole.

So a masked patch is visible in the frames outside the span, and filling it in asks where things were and where
they went: the motion task the paper relies on. The same 2-D mask over every frame (``block-tube``) and random
positions over every frame (``tube``, VideoMAE's) are the other settings. Every stage-2 mask is a (B, T, N) boolean,
True = visible, in the encoder's time-major order; the ratio counts the patches of the 2-D mask, the share of a
masked frame that is hidden (BEVT's ``num_masking_patches``), so BEVT hides fewer tokens of the clip than a tube
mask of the same ratio.
"""

from __future__ import annotations

import math

import torch

BEVT_SPAN = (0.5, 0.75)  # share of the frames the 2-D mask covers (BEVT's masked_tube_range)
MIN_BLOCK = 4  # patches in the smallest rectangle (BEiT's and BEVT's min_num_patches)
MIN_ASPECT = 0.3  # rectangles' aspect ratios lie in [0.3, 1/0.3]


def tube_keep(batch: int, tokens_per_frame: int, drop_ratio: float, generator: torch.Generator | None = None,
              device=None) -> torch.Tensor:
    """(batch, M) sorted indices of the spatial positions kept in every frame, M = round(N·(1 - drop_ratio))."""
    if not 0.0 <= drop_ratio < 1.0:
        raise ValueError(f"drop_ratio must be in [0, 1), got {drop_ratio}")
    keep = max(1, round(tokens_per_frame * (1 - drop_ratio)))
    noise = torch.rand(batch, tokens_per_frame, generator=generator, device=device)  # (B, N)
    return noise.argsort(dim=1)[:, :keep].sort(dim=1).values  # (B, M)


def _uniform(low: float, high: float, generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(low: int, high: int, generator) -> int:  # low..high, both included
    return int(torch.randint(low, high + 1, (), generator=generator))


def block_mask(grid: int, ratio: float, generator: torch.Generator | None = None,
               min_block: int = MIN_BLOCK) -> torch.Tensor:
    """(grid, grid) booleans, True = masked: BEiT's rectangles until ``round(ratio · grid²)`` patches are masked."""
    masked = torch.zeros(grid, grid, dtype=torch.bool)
    wanted = round(ratio * grid * grid)
    log_aspect = (math.log(MIN_ASPECT), -math.log(MIN_ASPECT))
    while int(masked.sum()) < wanted:
        still = wanted - int(masked.sum())
        added = 0
        for _ in range(10):  # a few tries for one rectangle that fits
            area = _uniform(min_block, still, generator)
            aspect = math.exp(_uniform(*log_aspect, generator))
            h, w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if not (h < grid and w < grid):  # as BEiT: never a whole row or column of the grid
                continue
            top, left = _randint(0, grid - h, generator), _randint(0, grid - w, generator)
            new = h * w - int(masked[top:top + h, left:left + w].sum())
            if 0 < new <= still:
                masked[top:top + h, left:left + w] = True
                added = new
                break
        if not added:  # no rectangle fits what is left: BEiT stops short of the target
            break
    return masked


def masked_span(frames: int, start: int, length: int) -> torch.Tensor:
    """(frames,) booleans, True for the ``length`` frames from ``start`` on, wrapping around the clip's end."""
    return (torch.arange(frames) - start) % frames < length


def stage2_keep(kind: str, batch: int, frames: int, grid: int, ratio: float, generator: torch.Generator | None = None,
                span: tuple[float, float] = BEVT_SPAN, min_block: int = MIN_BLOCK) -> torch.Tensor:
    """(batch, T, N) booleans, True = visible, for stage 2's ``kind`` of mask: "bevt", "block-tube" or "tube"."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
    N = grid * grid
    if kind == "tube":
        kept = tube_keep(batch, N, ratio, generator)  # (B, M)
        keep = torch.zeros(batch, N, dtype=torch.bool).scatter_(1, kept, True)
        return keep[:, None, :].expand(batch, frames, N).clone()
    if kind not in ("bevt", "block-tube"):
        raise ValueError(f"unknown mask {kind!r}; choose 'bevt', 'block-tube' or 'tube'")
    # BEVT's span in frames: int(share · T), at least 1 and at most T
    shortest, longest = max(int(span[0] * frames), 1), min(int(span[1] * frames), frames)
    rows = []
    for _ in range(batch):
        hidden = block_mask(grid, ratio, generator, min_block).flatten()  # (N,)
        if kind == "block-tube":
            in_span = torch.ones(frames, dtype=torch.bool)
        else:
            start, length = _randint(0, frames - 1, generator), _randint(shortest, longest, generator)
            in_span = masked_span(frames, start, length)  # (T,)
        rows.append(~(in_span[:, None] & hidden[None, :]))  # (T, N)
    return torch.stack(rows)
