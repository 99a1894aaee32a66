"""VideoPrism stage 1's loss: symmetric InfoNCE over the in-batch similarity matrix (arXiv 2402.13217, §2.3.1).

For L2-normalised video embeddings v_i and text embeddings t_j of a batch of B pairs, and temperature τ:

    S_ij = v_i · t_j / τ
    L    = ½ [ CE_row(S) + CE_col(S) ]
         = -1/(2B) Σ_i [ log softmax_j(S_ij)|_{j=i} + log softmax_j(S_ji)|_{j=i} ]

(video→text and text→video). The paper does not state the training temperature; here τ = exp(-s) with a learnable
s, as CLIP does. Its starting value is a choice of the experiment (see ``VideoTextConfig.init_temperature``).
Retrieval metrics are in ``eval/retrieval.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_infonce(video: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """video, text: (B, D) unit vectors; log_scale: scalar s with 1/τ = exp(s). Returns the scalar loss."""
    logits = video @ text.T * log_scale.exp()  # (B, B); row i = video i against every text
    target = torch.arange(len(video), device=video.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
