"""MiniGPT4-Video's 4→1 visual token merging (arXiv 2404.03413, §3.1), exactly as the official code does it
(``token_pooling`` in ``minigpt4/models/mini_gpt4_llama_v2.py``).

The frozen encoder gives a frame 256 patch tokens of width 1408 (a 16×16 grid, raster order, CLS dropped). The code
reshapes (256, 1408) to (64, 5632) in plain memory order:

    merged[j] = concat( x[4j], x[4j+1], x[4j+2], x[4j+3] )        j = 0 .. 63

so each merged token is a 1×4 horizontal strip of one grid row, *not* a 2×2 block as "four adjacent tokens" might
suggest. A trainable linear layer then maps 5632 to the LLM's width (4096), one frame = 64 LLM positions.
"""

from __future__ import annotations

import torch


def merge_tokens(tokens: torch.Tensor, group: int = 4) -> torch.Tensor:
    """(..., L, D) -> (..., L / group, group · D): every ``group`` consecutive tokens concatenated along channels."""
    *lead, length, width = tokens.shape
    if length % group:
        raise ValueError(f"cannot merge {length} tokens in groups of {group}: {length} is not a multiple of {group}")
    return tokens.reshape(*lead, length // group, group * width)
