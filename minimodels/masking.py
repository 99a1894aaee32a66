"""Which video tokens a model gets to see.

Tube masking hides the same spatial positions in every frame, so a factorized encoder stays dense: it runs on
(B·T, M, D) spatially and (B·M, T, D) temporally with M = N·(1 - ratio). VideoPrism uses it for FLIP-style token
dropping in stage 1 (ratio 0.5, to save memory; PAPERS.md §1.3).
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
