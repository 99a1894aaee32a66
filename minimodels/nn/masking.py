"""Which video tokens a model gets to see.

Tube masking hides the same spatial positions in every frame, so a factorized encoder stays dense: it runs on
(B·T, M, D) spatially and (B·M, T, D) temporally with M = N·(1 - ratio). VideoPrism uses it for FLIP-style token
dropping in stage 1 (ratio 0.5, to save memory; arXiv 2402.13217, §2.3.1 and App. C.1). Stage 2 hides 65 % of
the tokens with tube or BEVT-style block masks (§2.3.2 and Fig. 6); both keep the same positions in every frame, so
every clip keeps the same number M.
"""

from __future__ import annotations

import torch


def tube_keep(batch: int, tokens_per_frame: int, drop_ratio: float, generator: torch.Generator | None = None,
              device=None) -> torch.Tensor:
    """(batch, M) sorted indices of the spatial positions kept in every frame, M = round(N·(1 - drop_ratio))."""
    if not 0.0 <= drop_ratio < 1.0:
        raise ValueError(f"drop_ratio must be in [0, 1), got {drop_ratio}")
    keep = max(1, round(tokens_per_frame * (1 - drop_ratio)))
    noise = torch.rand(batch, tokens_per_frame, generator=generator, device=device)  # (B, N)
    return noise.argsort(dim=1)[:, :keep].sort(dim=1).values  # (B, M)


def block_keep(batch: int, grid: int, mask_ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """BEVT-style block masking, repeated over frames: (batch, M) sorted kept positions of a grid × grid frame.

    Random rectangles (aspect ratio 0.3–3.3, each at most a third of the frame) are masked until the masked share
    reaches ``mask_ratio``; the last block is trimmed (in random order) so every clip keeps exactly
    M = N - round(N·mask_ratio) positions, and a batch stays one dense tensor.
    """
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
    N = grid * grid
    target = round(N * mask_ratio)
    rows = []
    for _ in range(batch):
        masked = torch.zeros(grid, grid, dtype=torch.bool)
        while masked.sum() < target:
            area = float(torch.empty(1).uniform_(1, max(1.0, N / 3), generator=generator))
            aspect = float(torch.empty(1).uniform_(0.3, 3.3, generator=generator))
            h = min(grid, max(1, round((area * aspect) ** 0.5)))
            w = min(grid, max(1, round((area / aspect) ** 0.5)))
            top = int(torch.randint(0, grid - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, grid - w + 1, (1,), generator=generator))
            block = torch.zeros_like(masked)
            block[top:top + h, left:left + w] = True
            new = (block & ~masked).flatten().nonzero().flatten()  # positions this block adds
            need = target - int(masked.sum())
            if len(new) > need:  # trim the last block to hit the ratio exactly
                new = new[torch.randperm(len(new), generator=generator)[:need]]
            masked.view(-1)[new] = True
        rows.append((~masked.flatten()).nonzero().flatten())  # (M,) kept, sorted
    return torch.stack(rows)
