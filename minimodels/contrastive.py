"""Symmetric InfoNCE over the in-batch similarity matrix, and the retrieval metrics it is judged by.

For L2-normalised video embeddings v_i and text embeddings t_j of a batch of B pairs, and temperature τ:

    S_ij = v_i · t_j / τ
    L    = ½ [ CE_row(S) + CE_col(S) ]
         = -1/(2B) Σ_i [ log softmax_j(S_ij)|_{j=i} + log softmax_j(S_ji)|_{j=i} ]

(video→text and text→video). The paper does not state the training temperature; here τ = exp(-s) with a learnable
s, as CLIP does. Its starting value is a choice of the experiment (see ``VideoTextConfig.init_temperature``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_infonce(video: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """video, text: (B, D) unit vectors; log_scale: scalar s with 1/τ = exp(s). Returns the scalar loss."""
    logits = video @ text.T * log_scale.exp()  # (B, B); row i = video i against every text
    target = torch.arange(len(video), device=video.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def ranks(similarity: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of the matching item for every query; row i's match is column i. (Q, Q) -> (Q,)."""
    correct = similarity.diagonal()[:, None]  # (Q, 1)
    return (similarity > correct).sum(dim=1) + 1


def retrieval_metrics(similarity: torch.Tensor, prefix: str) -> dict[str, float]:
    """R@1, R@5, R@10 (in %) and the median rank, for queries on the rows of ``similarity``."""
    r = ranks(similarity).float()
    out = {f"{prefix}_r{k}": round(100 * (r <= k).float().mean().item(), 2) for k in (1, 5, 10)}
    out[f"{prefix}_median_rank"] = r.median().item()
    return out
